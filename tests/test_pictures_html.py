"""`--format html` of step, derive and check: one self-contained page (no script, nothing
fetched), its mathematics as MathML, opened in headless Chromium where it is installed."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.layers.config import LayeredSpec
from gradcalc.step.examples import available, load


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag in ("style", "svg"):
            self._skip += 1
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "svg"):
            self._skip -= 1
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def assert_self_contained(text: str) -> _Page:
    assert text.startswith("<!DOCTYPE html>")
    page = _page(text)
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert not [a for a, _ in page.attrs if a in ("src", "href", "srcset")]
    # Only references within the page (an SVG marker by its id); nothing to fetch.
    assert not re.search(r"url\((?!#)", text) and "@import" not in text
    # Every TeX command became MathML: none is left as text, none fell back to its name.
    words = "".join(page.text)
    assert not re.search(r"\\[A-Za-z]+", words), re.search(r".{30}\\[A-Za-z]+.{30}", words)
    assert "$" not in words
    assert "<mtext>\\" not in text
    assert "@media print" in text
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), ids  # one page, several pictures: no id twice
    return page


@pytest.mark.parametrize("example", sorted(available()))
def test_the_step_page_of_every_example(run_cli, example) -> None:
    result = run_cli(["step", "--example", example, "--format", "html"])
    assert result.exit_code == 0, result.output
    page = assert_self_contained(result.stdout)
    assert "math" in page.tags and "svg" in page.tags
    assert "table" in page.tags  # its numbers as tables, whatever its layers
    assert "data-q=" in result.stdout  # the network drawn, its numbers marked


def _layered_examples() -> list[str]:
    return sorted(n for n in available() if isinstance(load(n), LayeredSpec))


def _tables(page: _Page) -> dict[str, list[str]]:
    """The layered page's pass tables: each array's numbers (its name's rows, then those of
    its other matrices: `K², kernel 0, channel 1`), in the order the rows give them."""
    out: dict[str, list[str]] = {}
    name = ""
    for row in page.rows:
        if not row or row[0] in ("forward", "backward", "update"):
            continue
        if row[0]:
            name = row[0].split(", ")[0]
            if name.endswith(" after the step") or name.endswith(" after"):
                name = name.rsplit(" after", 1)[0] + " after"
        out.setdefault(name, []).extend(c for c in row[2:] if c)
    return out


@pytest.mark.parametrize("example", _layered_examples())
def test_the_layered_page_tables_are_the_runs_numbers(run_cli, example) -> None:
    """Every layer's z, δ, ∂C/∂x, gradients and new parameters in the page's tables equal the
    JSON record's (the first example's), to the decimals written."""
    from test_pictures import parse_number

    from gradcalc.doc.notation import superscript

    result = run_cli(["step", "--example", example, "--format", "html"])
    tables = _tables(_page(result.stdout))
    record = json.loads(run_cli(["step", "--example", example, "--format", "json"]).stdout)
    batch = record["examples"] > 1
    symbols = {k: v.symbols for k, v in _kinds().items()}
    for layer in record["steps"][0]["layers"]:
        sup = superscript(str(layer["layer"]))
        first = (lambda a: a[0]) if batch else (lambda a: a)
        expected = {
            f"z{sup}": first(layer["z"]),
            f"δ{sup}": first(layer["delta"]),
            f"∂C/∂x at layer {layer['layer']}": first(layer["grad_input"]),
        }
        names = symbols[layer["type"]]
        for key, g in layer["grads"].items():
            expected[f"∂C/∂{names.get(key, key)}{sup}"] = g
            expected[f"{names.get(key, key)}{sup} after"] = layer["params"][key]
        for name, values in expected.items():
            flat = [float(v) for v in _flatten(values)]
            shown = tables[name]
            assert len(shown) == len(flat), (name, shown, flat)
            for text, value in zip(shown, flat, strict=True):
                number, half = parse_number(text)
                assert abs(number - value) <= half * 1.0001 + 1e-12, (name, text, value)


def _kinds() -> dict[str, Any]:
    from gradcalc.layers import REGISTRY

    return dict(REGISTRY)


def _flatten(values: Any) -> list[Any]:
    if isinstance(values, list):
        return [v for item in values for v in _flatten(item)]
    return [values]


def test_the_step_page_shows_the_sheets_numbers(run_cli) -> None:
    result = run_cli(["step", "--example", "worked-example", "--format", "html"])
    page = _page(result.stdout)
    units = {r[0]: r for r in page.rows if r and r[0].startswith("unit ")}
    # z, a, δ, b, ∂C/∂b, new b of the output unit, as the sheet has them.
    assert units["unit 1 of layer 3"][1:] == [
        "−0.322",
        "0.420",
        "−0.117",
        "−0.200",
        "−0.117",
        "−0.0831",
    ]
    weights = {r[0]: r for r in page.rows if r and r[0].startswith("w")}
    assert weights["w³₁₁"][1:] == ["−0.300", "−0.0646", "−0.235"]


def test_a_long_run_page_has_its_curve(run_cli) -> None:
    result = run_cli(["step", "--example", "tanh-mse", "--steps", "50", "--format", "html"])
    assert result.exit_code == 0
    assert 'data-series="C"' in result.stdout


@pytest.mark.parametrize("name", [a.name for a in ACTIVATIONS] + ["x*tanh(x)"])
def test_the_derive_page(run_cli, name) -> None:
    result = run_cli(["derive", name, "--at", "0.4", "--format", "html"])
    assert result.exit_code == 0, result.output
    page = assert_self_contained(result.stdout)
    assert "math" in page.tags and "svg" in page.tags


def test_the_check_page_shows_each_cells_verdict_and_mistake(run_cli) -> None:
    result = run_cli(
        ["check", "--example", "worked-example-slip", "--decimals", "3", "--format", "html"]
    )
    assert result.exit_code == 1  # an answer is wrong, as with the table
    page = assert_self_contained(result.stdout)
    rows = {r[0]: r for r in page.rows if r}
    assert rows["δ³₁"][3:] == ["✗ wrong", "missing_activation_derivative"]
    assert rows["δ²₁"][3] == "↳ follows from your answers"
    assert rows["z²₁"][3] == "✓ correct"
    assert "Score: 15 of 16." in "".join(page.text)


def test_mathml_of_the_notations_tex() -> None:
    from gradcalc.doc.mathml import mathml

    assert (
        mathml(r"\tfrac{1}{2}")
        == '<math><mfrac displaystyle="false"><mn>1</mn><mn>2</mn></mfrac></math>'
    )
    assert mathml("w^{2}_{11}") == "<math><msubsup><mi>w</mi><mn>11</mn><mn>2</mn></msubsup></math>"
    assert mathml("(-0.2)") == (
        '<math><mrow><mo stretchy="false">(</mo><mn>−0.2</mn>'
        '<mo stretchy="false">)</mo></mrow></math>'
    )
    assert "<mtable>" in mathml(r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}")
    assert mathml(r"\unknown") == "<math><mtext>\\unknown</mtext></math>"


# -- in a browser ------------------------------------------------------------------------------

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Measured inside the page (a copy: the page itself has no script): whether the body is wider
# than the window, and where MathML put a fraction's parts and a superscript.
PROBE = """<script>
const e = document.documentElement;
const f = document.querySelector('mfrac'), s = document.querySelector('msup');
const box = (el) => el ? el.getBoundingClientRect() : {top: null, bottom: null, height: null};
parent.document.body.setAttribute('data-probe', JSON.stringify({
  inner: innerWidth, scroll: e.scrollWidth, client: e.clientWidth, body: document.body.scrollWidth,
  num: box(f && f.children[0]).bottom, den: box(f && f.children[1]).top, frac: box(f).height,
  base: box(s && s.children[0]).top, sup: box(s && s.children[1]).top}));
</script>"""


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _frame(tmp_path: Path, page: str, width: int, probe: bool) -> Path:
    """The page in a frame `width` px wide (a headless window is at least 500 px wide)."""
    inner = page.replace("</body>", PROBE + "</body>") if probe else page
    outer = tmp_path / f"frame-{width}-{probe}.html"
    outer.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<iframe style="border:0;width:{width}px;height:1000px" '
        f'srcdoc="{html.escape(inner, quote=True)}"></iframe></body></html>',
        encoding="utf-8",
    )
    return outer


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize(
    "args",
    [
        ["step", "--example", "worked-example"],
        ["step", "--example", "conv-worked-example", "--steps", "3"],
        ["step", "--example", "batchnorm-worked-example"],
        ["step", "--example", "rnn-bptt", "--steps", "2"],
        ["step", "--example", "lstm-step"],
        ["derive", "sigmoid", "--at", "0.3"],
        ["check", "--example", "worked-example-slip", "--decimals", "3"],
    ],
    ids=["step", "step-conv", "step-batchnorm", "step-rnn", "step-lstm", "derive", "check"],
)
@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_renders_in_chromium(run_cli, tmp_path, args, width) -> None:
    result = run_cli([*args, "--format", "html"])
    assert result.stdout.startswith("<!DOCTYPE html>")
    dom = _chromium(
        tmp_path,
        _frame(tmp_path, result.stdout, width, True).as_uri(),
        "--window-size=1400,1000",
        "--dump-dom",
    )
    found = re.search(r'<body[^>]*data-probe="([^"]*)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    probe: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    assert probe["inner"] == width
    # No horizontal overflow: wide equations, tables and pictures scroll in their own boxes.
    assert probe["scroll"] <= probe["client"] and probe["body"] <= probe["client"], probe
    # MathML laid out, not shown as raw text: the numerator above the denominator, the
    # superscript raised above its base (check's page has no mathematics).
    if args[0] == "check":
        assert probe["frac"] is None
    else:
        if "<mfrac" in result.stdout:  # (a conv layer's solution has sums and powers alone)
            assert probe["num"] <= probe["den"] + 0.5 and probe["frac"] > 10, probe
        assert probe["sup"] < probe["base"], probe
    shot = tmp_path / f"page-{width}.png"
    _chromium(
        tmp_path,
        _frame(tmp_path, result.stdout, width, False).as_uri(),
        "--window-size=1400,1000",
        f"--screenshot={shot}",
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_a_template_is_no_page(run_cli) -> None:
    result = run_cli(["check", "--example", "worked-example", "--template", "--format", "html"])
    assert result.exit_code == 2
    assert "--format html a grading report: give one or the other" in result.stderr
