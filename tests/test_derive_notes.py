"""derive's notes are data (kind, node, values, words) that the views write as sentences."""

from __future__ import annotations

import json

import pytest

from gradcalc.derivation.engine import derive
from gradcalc.derivation.notes import TEMPLATES, write
from gradcalc.derivation.trace import Note

CASES = [
    (("sigmoid", "50,0.3"), "numeric_floor"),
    (("(exp(x) - 1)/x", "1e-9"), "graph_rounding"),  # e^x − 1 has cancelled: none trusted
    (("softmax", "1000,1"), "graph_non_finite"),  # sigmoid switches to e^x/(1 + e^x) there
    (("sigmoid", "-400"), "out_of_range"),
    (("relu(x) + x", "0"), "formula_kink"),
    (("relu", "0"), "kink"),
    (("sqrt(x)", "0"), "formula_kink"),
    (("cosine", "0.2,0.6", "1,0"), "record"),
    (("x*x", "0.5", None, ["alpha=0.2"]), "param_unused"),
    (("x*x", "0.5"), "formula"),
]


@pytest.mark.parametrize(("args", "kind"), CASES, ids=[k for _, k in CASES])
def test_notes_are_data_each_written_by_its_template(args: tuple, kind: str) -> None:
    trace = derive(*args)
    assert all(isinstance(note, Note) and note.kind in TEMPLATES for note in trace.notes)
    found = [note for note in trace.notes if note.kind == kind]
    assert found, [n.kind for n in trace.notes]
    for note in trace.notes:
        text = write(note)
        assert text and "{" not in text and "}" not in text
        # Numbers are values, not text: none of the words carries a formatted number of its own.
        for key, value in note.values.items():
            assert isinstance(value, float | int | tuple | type(None)), (key, value)


def test_huber_branch_note_carries_its_slopes() -> None:
    trace = derive("huber", "0.5", "1.5")
    (note,) = [n for n in trace.notes if n.kind == "branch"]
    # both one-sided slopes of huber at y − a = δ = 1 with n = 1: −δ/n = −1
    assert note.node == "huber" and note.values["left"] == -1.0
    assert note.words["where"] == "y₁ − a₁ = δ"


def test_notes_follow_digits_in_the_views_and_keep_six_in_json(run_cli) -> None:
    trace = derive("sigmoid", "50")
    (note,) = [n for n in trace.notes if n.kind == "numeric_floor"]
    point = note.values["point"]
    assert point == (50.0,)
    doc = json.loads(run_cli(["derive", "sigmoid", "--at", "50", "--format", "json"]).stdout)
    assert write(note) in doc["notes"]
    # sqrt at 0: the right-hand difference quotient is 525.399…, written to the digits asked for.
    default = run_cli(["derive", "sqrt(x)", "--at", "0", "--format", "markdown"]).stdout
    three = run_cli(["derive", "sqrt(x)", "--at", "0", "--format", "markdown", "--digits", "3"])
    assert "and 525.399 (right)" in default and "and 525 (right)" in three.stdout
