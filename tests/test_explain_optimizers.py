"""The update rules in the views: the step table's Update table, --explain, Markdown and LaTeX.

Every number a worked solution writes for an update is checked against the JSON of the same run
(itself checked against an independent implementation in test_optimizers.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gradcalc.doc.notation import Notation
from gradcalc.functions.optimizers import OPTIMIZERS, REGISTRY

RULES = [rule.name for rule in OPTIMIZERS]
TEXT = Notation("text")

NET = """\
input: [0.8, 0.7, 0.1]
target: [0.9]
loss: quadratic
learning_rate: 0.5
steps: {steps}
optimizer: {optimizer}
weight_decay: {lam}
layers:
  - weights: [[0.2, 0.3, 0.4], [-0.2, 0.1, 0.5]]
    biases: [-0.2, -0.2]
    activation: {{name: prelu, a: 0.25}}
  - weights: [[-0.3, 0.1]]
    biases: [-0.2]
    activation: sigmoid
"""

WORKED = Path(__file__).resolve().parents[1] / "configs" / "worked-example.yaml"


def _run(run_cli, path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    # What the lines say, not how they wrap: one equation a line (test_terminal_width.py checks
    # the wrapping at the terminal's width).
    result = run_cli(["step", str(path), *args], env={"COLUMNS": "1000", **(env or {})})
    assert result.exit_code == 0, result.output
    return result.stdout


def _line(text: str, start: str, last: bool = False) -> str:
    hits = [line.strip() for line in text.splitlines() if line.strip().startswith(start)]
    assert hits, f"no line starts with {start!r}"
    return hits[-1 if last else 0]


def test_every_rule_has_a_written_form() -> None:
    # The record owns it (a required field), and every hyperparameter has its symbol in both
    # notations; test_explain_writes_each_quantity_with_the_runs_numbers runs each form.
    for rule in REGISTRY.values():
        assert callable(rule.written)
        assert all(p.written is not None for p in rule.params), rule.name
    assert set(RULES) == {rule.name for rule in REGISTRY.values()}


def test_the_issue_example(run_cli, write_config, tmp_path: Path) -> None:
    """The worked example with Adam writes m³₁₁ as a hand solution does."""
    text = WORKED.read_text(encoding="utf-8") + "optimizer: adam\n"
    out = _run(run_cli, write_config(tmp_path, text), "--explain", "--no-color")
    assert "m³₁₁ → β₁ m³₁₁ + (1 − β₁) ∂C/∂w³₁₁ = 0.9×0 + 0.1×(−0.0646) = −0.00646" in out, out
    # Bias correction: m̂ = m/(1 − β₁¹) = −0.00646/0.1 = −0.0646, v̂ = g² = 0.0646² = 0.00417.
    assert "m̂³₁₁ = m³₁₁/(1 − β₁ᵗ) = (−0.00646)/(1 − 0.9¹) = −0.0646" in out
    assert _line(out, "v̂³₁₁ =").endswith("= 0.00417")
    # With v̂ = g², Adam's first step moves every weight by η·g/|g| = ±1 (η = 1).
    assert _line(out, "w³₁₁ → w³₁₁ − η m̂³₁₁/(√v̂³₁₁ + ε)").endswith("= 0.700")


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("lam", [0.0, 0.02])
def test_explain_writes_each_quantity_with_the_runs_numbers(
    run_cli, write_config, tmp_path: Path, rule: str, lam: float
) -> None:
    path = write_config(tmp_path, NET.format(steps=2, optimizer=rule, lam=lam))
    doc = json.loads(_run(run_cli, path, "--format", "json"))
    out = _run(run_cli, path, "--explain", "--no-color")
    record = REGISTRY[rule]
    last = doc["steps"][1]["layers"][1]  # layer 3 after step 2
    step2 = out[out.index("Step 2 of 2") :]
    update = step2[step2.index("Update (" if rule != "sgd" else "Gradient descent") :]
    for name in record.state:
        sym = record.symbols[name].text
        value = last["optimizer_state"]["weights"][name][0][0]
        assert _line(update, f"{sym}³₁₁ →").endswith("= " + TEXT.num(value)), name
        bias = last["optimizer_state"]["biases"][name][0]
        assert _line(update, f"{sym}³₁ →").endswith("= " + TEXT.num(bias)), name
        prelu = doc["steps"][1]["layers"][0]["optimizer_state"]["a"][name]
        assert _line(update, f"{sym}(α²) →").endswith("= " + TEXT.num(prelu)), name
    for name in record.derived:
        assert _line(update, f"{record.symbols[name].text}³₁₁ =")
    # The parameter's own update is its last line (AdamW's decay comes first).
    new_w = TEXT.num(last["weights"][0][0])
    assert _line(update, "w³₁₁ → w³₁₁ −", last=True).endswith("= " + new_w)
    assert _line(update, "b³₁ → b³₁ −").endswith("= " + TEXT.num(last["biases"][0]))
    if record.lookahead is not None:
        ahead = last["weights_lookahead"][0][0]
        assert _line(step2, "w̃³₁₁ = w³₁₁ − η μ v³₁₁").endswith("= " + TEXT.num(ahead))
        assert "the step's cost, at the parameters before the step, is C = " in step2
    if record.decay:
        assert _line(update, "w³₁₁ → w³₁₁ − η λ w³₁₁")
        assert "b³₁ → b³₁ − η λ" not in update  # biases are not decayed
    if lam:
        st = doc["steps"][1]
        total = (
            f"= {TEXT.num(st['data_loss'])} + {TEXT.num(st['penalty'])} = {TEXT.num(st['loss'])}"
        )
        cost = _line(step2, "C = C₀ + (λ/2)")
        if record.lookahead is None:
            assert cost.endswith(total)
        assert "+ λ w³₁₁ =" in _line(step2, "∂C/∂w³₁₁ =")
    else:
        assert "C₀" not in out and "λ w³₁₁" not in out.replace("η λ w³₁₁", "")


def test_round_rounds_the_state(run_cli, write_config, tmp_path: Path) -> None:
    path = write_config(tmp_path, NET.format(steps=2, optimizer="momentum", lam=0))
    doc = json.loads(_run(run_cli, path, "--format", "json", "--round", "3"))
    for st in doc["steps"]:
        for layer in st["layers"]:
            for arrays in layer["optimizer_state"].values():
                for value in arrays.values():
                    thousandths = np.ravel(value) * 1000
                    np.testing.assert_allclose(thousandths, np.round(thousandths), atol=1e-6)
    out = _run(run_cli, path, "--explain", "--round", "3", "--no-color")
    v = doc["steps"][1]["layers"][1]["optimizer_state"]["weights"]["velocity"][0][0]
    assert _line(out[out.index("Step 2 of 2") :], "v³₁₁ →").endswith(f"= {v:.3f}".replace("-", "−"))


def test_round_says_when_adams_state_is_lost(run_cli, write_config, tmp_path: Path) -> None:
    path = write_config(tmp_path, NET.format(steps=1, optimizer="adam", lam=0))
    assert "became 0" in _run(run_cli, path, "--explain", "--round", "3", "--no-color")
    assert "became 0" not in _run(run_cli, path, "--explain", "--no-color")


@pytest.mark.parametrize("rule", RULES)
def test_update_table(run_cli, write_config, tmp_path: Path, rule: str) -> None:
    path = write_config(tmp_path, NET.format(steps=1, optimizer=rule, lam=0.02))
    out = _run(run_cli, path, "--no-color", "--max-rows", "0", env={"COLUMNS": "200"})
    record = REGISTRY[rule]
    assert "(penalty (λ/2) Σ w²)" in out
    if rule == "sgd":
        assert "Update   " not in out
        return
    table = out[out.index("Update   ") : out.index("Summary")]
    for name in (*record.state, *record.derived):
        assert f" {record.symbols[name].text} " in table, name
    # 8 weights, 3 biases and PReLU's a: 12 parameters, one row per quantity, and one more
    # per weight for a decoupled decay.
    per = len(record.state) + len(record.derived) + 1 + (record.lookahead is not None)
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert len(rows) == 12 * per + (8 if record.decay else 0)
    capped = _run(run_cli, path, "--no-color", "--max-rows", "5", env={"COLUMNS": "200"})
    part = capped[capped.index("Update   ") : capped.index("Summary")]
    assert len([line for line in part.splitlines() if line.startswith("│")]) == 5
    assert "more rows" in part


@pytest.mark.parametrize("rule", RULES)
def test_documents(run_cli, write_config, tmp_path: Path, rule: str) -> None:
    path = write_config(tmp_path, NET.format(steps=2, optimizer=rule, lam=0.02))
    record = REGISTRY[rule]
    md = _run(run_cli, path, "--format", "markdown")
    tex = _run(run_cli, path, "--format", "latex")
    for doc in (md, tex):
        for name in (*record.state, *record.derived):
            assert record.symbols[name].tex + "^{3}_{11}" in doc, name
        assert "C_{0}" in doc
    assert tex.isascii()
    if rule != "sgd":
        assert "quantity by quantity" in md


@pytest.mark.parametrize("rule", RULES)
def test_latex_compiles(
    run_cli, write_config, tmp_path: Path, pdflatex, monkeypatch, rule: str
) -> None:
    write_config(tmp_path, NET.format(steps=2, optimizer=rule, lam=0.02), "net.yaml")
    monkeypatch.chdir(tmp_path)  # the document names its config: keep the name short
    _run(run_cli, Path("net.yaml"), "--format", "latex", "-o", "solution.tex")
    log = pdflatex(tmp_path / "solution.tex")
    assert "Overfull \\hbox" not in log  # nothing runs off the page


def test_readme_update_lines_are_what_the_tool_writes(run_cli, write_config, tmp_path) -> None:
    from doc_pages import everything

    block = next(b for b in everything().split("```") if b.lstrip("\n").startswith("m³₁₁ →"))
    text = WORKED.read_text(encoding="utf-8")
    out = _run(run_cli, write_config(tmp_path, text), "--optimizer", "adam", "--explain")
    written = {line.strip() for line in out.splitlines()}
    for line in block.strip().splitlines():
        assert line in written, line
