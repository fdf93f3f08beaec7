"""The PrairieLearn server.py grades with gradcalc's own check, for every layer type.

Each course is exported, and its server.py run as PrairieLearn runs it (tests/pl_server.py: a
fresh `python -I -S` that can import numpy and nothing of gradcalc, PyYAML, click, rich or
orjson): generate(), then grade() with the exact answers, a planted mistake whose later cells
are worked from it, and blank or garbage inputs. Every cell's score must be what `gradcalc
check --decimals d --format json` gives the same answers written on the course's blank sheet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pl_server import load_variants, run

import gradcalc

# A dense course outside the worked example's subset: a batch of two, softmax with the
# cross-entropy, Adam, two steps.
DENSE = """\
inputs: {uniform: [0.1, 0.9], decimals: 1, shape: [2, 2]}
targets: [[1, 0], [0, 1]]
loss: cross_entropy
reduction: mean
learning_rate: {choice: [0.1, 0.5]}
steps: 2
optimizer: {name: adam, beta1: 0.9, beta2: 0.999, eps: 1.0e-8}
layers:
  - weights: {uniform: [-0.9, 0.9], decimals: 1, shape: [2, 2]}
    biases: {uniform: [-0.5, 0.5], decimals: 1, shape: 2}
    activation: tanh
  - weights: {uniform: [-0.9, 0.9], decimals: 1, shape: [2, 2]}
    biases: [0, 0]
    activation: softmax
sheet:
  decimals: 3
"""
TEMPLATES = [
    "worked-example",
    "conv-worked-example",
    "batchnorm-worked-example",
    "rnn-bptt",
    "attention-worked-example",
    "dense-adam-softmax",
]
GARBAGE: list[Any] = ["abc", "", None, "1e999", {"_type": "complex", "_value": [1, 2]}]


def _export(name: str, root: Path, run_cli) -> Path:
    source = ["--example", name]
    if name == "dense-adam-softmax":
        (root / "dense.template.yaml").write_text(DENSE)
        source = [str(root / "dense.template.yaml")]
    out = root / "course"
    args = ["generate", *source, "--count", "2", "--seed", "1", "--no-pdf", "-o", str(out)]
    result = run_cli([*args, "--format", "prairielearn"])
    assert result.exit_code == 0, result.output
    return out


def _leaves(blank: Any, values: Iterator[Any]) -> Any:
    if isinstance(blank, list):
        return [_leaves(b, values) for b in blank]
    if isinstance(blank, dict):
        return {k: _leaves(v, values) for k, v in blank.items()}
    return next(values)


def _sheet(blank: dict[str, Any], cells: list[dict[str, Any]], answers: dict[str, Any]) -> dict:
    """The course's blank sheet (check --template --format json) with each cell's answer, its
    nulls filled in row-major order (the order of the variant's cells)."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for c in cells:
        groups.setdefault((c["step"], c["quantity"], c["layer"]), []).append(answers.get(c["name"]))
    sheet = json.loads(json.dumps(blank))
    for (step, q, l), values in groups.items():
        block = sheet["steps"][step - 1]
        holder, key = (block, q) if l is None else (block[q], str(l))
        taken = iter(values)
        holder[key] = _leaves(holder[key], taken)
        assert next(taken, "done") == "done", (step, q, l)
    return sheet


def _by_check(run_cli, config: Path, sheet: dict, decimals: int, tmp: Path) -> dict:
    """(step, quantity, layer, index) -> the verdict of gradcalc check on the sheet."""
    path = tmp / "answers.json"
    path.write_text(json.dumps(sheet))
    result = run_cli(
        ["check", str(config), str(path), "--decimals", str(decimals), "--format", "json"]
    )
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.stdout)
    return {(c["step"], c["quantity"], c["layer"], tuple(c["index"])): c for c in doc["cells"]}


def _nudged(value: Any, by: float) -> tuple[Any, bool]:
    """`value` with its first number moved by `by` (and whether there was one)."""
    if isinstance(value, list):
        out, done = [], False
        for item in value:
            if not done:
                item, done = _nudged(item, by)
            out.append(item)
        return out, done
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value + by, True
    return value, False


def _worked(variant: dict, nudge: float = 0.0) -> list[Any]:
    """The variant's cells worked from its config (with its first target number moved by
    `nudge`): each with its exact value and the value of the sheet worked as it asks (hand)."""
    from gradcalc.course.answers import answer_cells
    from gradcalc.course.variants import Problem, Student

    config = json.loads(json.dumps(variant["config"]))
    key = "target" if "target" in config else "targets"
    config[key], done = _nudged(config[key], nudge)
    assert done, config
    spec = gradcalc.from_dict(config)
    problem = Problem(Student("x", {}), 0, 0, config, spec, gradcalc.run(spec))
    return answer_cells(problem, variant["decimals"])


def _planted(variant: dict) -> dict[str, Any]:
    """A student who misread the first target number (by 0.3) and worked every cell from it,
    rounded to the sheet's decimals. The cost the misreading reaches first is wrong; what is
    worked from it is right given those answers (carried)."""
    d = variant["decimals"]
    return {c.name: round(c.value, d) for c in _worked(variant, 0.3)}


@pytest.mark.parametrize("name", TEMPLATES)
def test_server_grades_as_check_does(name, tmp_path, run_cli):
    course = _export(name, tmp_path, run_cli)
    folder = next((course / "exports" / "prairielearn").iterdir())
    server = folder / "server.py"
    variants = load_variants(server)
    manifest = json.loads((course / "course.json").read_text())
    assert [v["id"] for v in variants] == [v["id"] for v in manifest["variants"]]

    first = variants[0]
    config = course / manifest["variants"][0]["folder"] / "config.yaml"
    blank = json.loads(run_cli(["check", str(config), "--template", "--format", "json"]).stdout)
    exact = {c["name"]: c["value"] for c in first["cells"]}
    hand = {c.name: c.hand for c in _worked(first)}
    assert set(hand) == set(exact)
    planted = _planted(first)
    garbage = dict(exact)
    for cell, value in zip(first["cells"], GARBAGE, strict=False):
        garbage[cell["name"]] = value
    cases = [
        {"seed": 0, "submitted": exact},
        {"seed": 1, "submitted": {c["name"]: c["value"] for c in variants[1]["cells"]}},
        {"seed": 2, "submitted": hand},
        {"seed": 2, "submitted": planted},
        {"seed": 0, "submitted": garbage},
        {"seed": 0, "submitted": {}},
    ]
    report = run(server, cases, tmp_path)

    # Nothing but numpy and the standard library was reachable, and gradcalc came from the zip.
    assert report["reachable"] == [] and report["outside"] == []
    assert "gradcalc.check.grade" in report["loaded"]

    results = report["results"]
    for i, r in enumerate(results):
        generated = r["generated"]
        variant = variants[cases[i]["seed"] % len(variants)]
        assert generated["params"]["variant"] == cases[i]["seed"] % len(variants)
        assert generated["correct_answers"] == {c["name"]: c["value"] for c in variant["cells"]}
    # (a) the exact answers earn every point, in both variants, and so does the sheet worked
    # as it asks (every number rounded to its decimals, each from the rounded ones before it)
    for r in results[:2]:
        graded = r["graded"]
        assert graded["score"] == 1.0
        assert {p["feedback"] for p in graded["partial_scores"].values()} == {"correct"}
    assert results[2]["graded"]["score"] == 1.0

    keys = {(c["step"], c["quantity"], c["layer"], tuple(c["index"])): c for c in first["cells"]}
    for case, r in zip(cases[2:], results[2:], strict=True):
        graded = r["graded"]
        partial = graded["partial_scores"]
        assert set(partial) == {c["name"] for c in first["cells"]}
        assert all(p["weight"] == 1 and p["score"] in (0.0, 1.0) for p in partial.values())
        submitted = {
            k: v for k, v in case["submitted"].items() if isinstance(v, int | float) and v != 1e999
        }
        verdicts = _by_check(run_cli, config, _sheet(blank, first["cells"], submitted), 3, tmp_path)
        by_check = {
            keys[k]["name"]: 1.0 if c["verdict"] in ("correct", "rounding", "carried") else 0.0
            for k, c in verdicts.items()
        }
        mine = {n: p["score"] for n, p in partial.items()}
        assert mine == {n: by_check.get(n, 0.0) for n in mine}
        assert graded["score"] == pytest.approx(sum(mine.values()) / len(mine))
        for k, c in verdicts.items():
            feedback = partial[keys[k]["name"]]["feedback"]
            assert feedback.startswith(c["verdict"])
            if c["mistake"]:
                assert c["mistake"] in feedback

    # (b) the cells the misread target reaches first (a cost) lose their points; the cells
    # worked from those keep theirs, as carried
    planted_scores = results[3]["graded"]["partial_scores"]
    wrong = [n for n, p in planted_scores.items() if p["feedback"].startswith("wrong")]
    assert wrong and "loss" in wrong[0], wrong
    assert all(planted_scores[n]["score"] == 0.0 for n in wrong)
    carried = [n for n, p in planted_scores.items() if p["feedback"].startswith("carried")]
    assert len(carried) >= 2, planted_scores
    assert all(planted_scores[n]["score"] == 1.0 for n in carried)
    assert 0 < results[3]["graded"]["score"] < 1
    # (c) blank and garbage inputs score 0 with a word, the rest as answered
    scores = results[4]["graded"]["partial_scores"]
    words = [scores[c["name"]]["feedback"] for c in first["cells"][: len(GARBAGE)]]
    assert words == ["not a number", "not answered", "not answered", "not a number", "not a number"]
    assert all(scores[c["name"]]["score"] == 0.0 for c in first["cells"][: len(GARBAGE)])
    rest = [scores[c["name"]]["score"] for c in first["cells"][len(GARBAGE) :]]
    assert results[4]["graded"]["score"] == pytest.approx(sum(rest) / len(first["cells"]))
    nothing = results[5]["graded"]
    assert nothing["score"] == 0
    assert {p["feedback"] for p in nothing["partial_scores"].values()} == {"not answered"}
