"""Jupyter display: a run (dense or layered), a derivation and a grade show `--format html`'s
page in a notebook, as a fragment (`_repr_html_`): the same blocks through the same writer, its
stylesheet scoped to its own <div>, no <html> wrapper, no script, nothing fetched."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from test_pictures_html import CHROMIUM, PROBE, _chromium, _frame

import gradcalc
from gradcalc.step.examples import available

ROOT = Path(__file__).resolve().parent.parent
SLIP = str(ROOT / "configs" / "answers" / "worked-example-slip.yaml")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.first: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.first is None:
            self.first = (tag, dict(attrs))
        self.tags.append(tag)
        self.attrs += attrs


def _fragment(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert parser.first == ("div", {"class": "gradcalc"})
    assert text.rstrip().endswith("</div>")
    for tag in ("html", "head", "body", "script", "link", "img", "iframe", "meta"):
        assert tag not in parser.tags, tag
    assert not [a for a, _ in parser.attrs if a in ("src", "href", "srcset")]
    assert not re.search(r"url\((?!#)", text) and "@import" not in text
    # A <style> in a cell applies to the whole notebook: every rule is under the fragment's div.
    style = re.search(r"<style>(.*?)</style>", text, re.S)
    assert style
    for selectors in re.findall(r"([^{}]+)\{[^{}]*\}", style.group(1)):
        for sel in selectors.split(","):
            assert sel.strip().startswith(".gradcalc "), sel
    return parser


def _body(text: str) -> str:
    """A page's content, or a fragment's: what lies between <main> (or the <style>) and its end."""
    if text.startswith("<!DOCTYPE"):
        return text.split("<main>\n", 1)[1].rsplit("\n</main>", 1)[0]
    return text.split("</style>\n", 1)[1].rsplit("\n</div>", 1)[0]


@pytest.mark.parametrize("example", ["worked-example", "conv-worked-example", "tanh-mse"])
def test_a_run_shows_the_step_page(run_cli, example: str) -> None:
    spec = gradcalc.load(str(available()[example]))
    trace = gradcalc.run(spec, steps=4)
    shown = trace._repr_html_()
    tags = _fragment(shown)
    assert tags.tags.count("svg") == 2 and "math" in tags.tags  # the network and the curves
    page = run_cli(["step", "--example", example, "--steps", "4", "--format", "html"])
    assert page.exit_code == 0, page.output
    # The same blocks through the same writer: the page's content, byte for byte, but the
    # source's name (the API's run names the file it loaded).
    name = str(available()[example])
    assert _body(shown).replace(name, Path(name).name) == _body(page.stdout).replace(
        name, Path(name).name
    )
    bundle = getattr(trace, "_repr_mimebundle_", None)
    if bundle is not None:  # (a layered run has no rich view: Jupyter calls _repr_html_)
        assert bundle()["text/html"] == shown


def test_a_derivation_shows_the_derive_page(run_cli) -> None:
    d = gradcalc.derive("sigmoid", at=0.3)
    shown = d._repr_html_()
    tags = _fragment(shown)
    assert "svg" in tags.tags and "math" in tags.tags
    page = run_cli(["derive", "sigmoid", "--at", "0.3", "--format", "html"])
    assert _body(shown) == _body(page.stdout)
    assert d._repr_mimebundle_()["text/html"] == shown


def test_a_grade_shows_the_check_page(run_cli) -> None:
    config = str(available()["worked-example"])
    grade = gradcalc.check(config, SLIP, decimals=3)
    shown = grade._repr_html_()
    tags = _fragment(shown)
    assert "table" in tags.tags
    assert "missing_activation_derivative" in shown and "✗ wrong" in shown
    page = run_cli(["check", config, SLIP, "--decimals", "3", "--format", "html"])
    assert page.exit_code == 1
    assert _body(shown) == _body(page.stdout)
    bundle = grade._repr_mimebundle_()
    assert bundle["text/html"] == shown and "text/markdown" in bundle
    assert "text/html" not in grade._repr_mimebundle_(exclude=["text/html"])


def test_the_scoped_stylesheet_keeps_every_rule_of_the_page() -> None:
    from gradcalc.doc.html import CSS, _scoped

    scoped = _scoped(CSS, ".gradcalc")
    screen = CSS.split("@media print", 1)[0]
    rules = re.findall(r"([^{}]+)\{([^{}]*)\}", screen)
    page_wide = {":root", "*", "body", "main"}
    kept = [(s, b) for s, b in rules if s.strip() not in page_wide]
    assert len(re.findall(r"\{", scoped)) == len(kept)
    for selectors, body in kept:
        first = selectors.split(",")[0].strip()
        assert f".gradcalc {first}" in scoped and body in scoped


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_fragment_renders_in_a_narrow_notebook(tmp_path) -> None:
    """In a host page of its own (a notebook's), 390 px wide: no horizontal overflow, and the
    MathML laid out (a superscript raised above its base)."""
    trace = gradcalc.run(gradcalc.load(str(available()["worked-example"])), steps=2)
    host = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="margin:8px;font:13px serif">'
        f"{trace._repr_html_()}</body></html>"
    )
    dom = _chromium(
        tmp_path,
        _frame(tmp_path, host, 390, True).as_uri(),
        "--window-size=1400,1000",
        "--dump-dom",
    )
    found = re.search(r'<body[^>]*data-probe="([^"]*)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    probe: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    assert probe["inner"] == 390
    assert probe["scroll"] <= probe["client"] and probe["body"] <= probe["client"], probe
    assert probe["sup"] < probe["base"], probe
    assert PROBE  # (the probe script is the page tests')
