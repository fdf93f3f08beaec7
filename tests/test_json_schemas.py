"""The versioned JSON contract: every document carries format_version and gradcalc_version, and
the tool's real output validates against the published schemas in schemas/.

The tests validate against a stricter copy of each schema that refuses keys the schema does not
describe: the published schemas let consumers meet new keys (adding a key does not bump
format_version), but a key added to the output must be added to its schema too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

jsonschema = pytest.importorskip("jsonschema")

from gradcalc import __version__  # noqa: E402
from gradcalc.contract import FORMAT_VERSION  # noqa: E402
from gradcalc.functions.activations import ACTIVATIONS  # noqa: E402
from gradcalc.functions.losses import LOSSES  # noqa: E402
from gradcalc.step.examples import available  # noqa: E402

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
DOCUMENTS = ("step", "derive", "list", "check", "gradebook")


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def strict(node: Any) -> Any:
    """The schema with additionalProperties false wherever it lists properties and says nothing
    about others."""
    node = copy.deepcopy(node)

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            if "properties" in n and "additionalProperties" not in n:
                n["additionalProperties"] = False
            for k, v in n.items():
                if k != "if":  # a condition on some keys, not a description of the object
                    walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    return node


def validate(doc: Any, name: str) -> None:
    validator = jsonschema.Draft202012Validator(strict(schema(name)))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}" for e in errors[:5]
    )


def output(run_cli: Any, *args: str, input: str | None = None) -> Any:
    result = run_cli(list(args), input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_schema_is_draft_2020_12(name: str) -> None:
    doc = schema(name)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["properties"]["format_version"] == {
        "const": FORMAT_VERSION,
        "description": doc["properties"]["format_version"]["description"],
    }
    assert {"format_version", "gradcalc_version"} <= set(doc["required"])


# ---- step ------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", sorted(available()))
@pytest.mark.parametrize("extra", [(), ("--steps", "0"), ("--steps", "2", "--round", "3")])
def test_step_output_of_every_example_validates(run_cli, example: str, extra: tuple) -> None:
    doc = output(run_cli, "step", "--example", example, "--format", "json", *extra)
    validate(doc, "step")
    assert doc["format_version"] == FORMAT_VERSION == 1
    assert doc["gradcalc_version"] == __version__
    assert list(doc)[:2] == ["format_version", "gradcalc_version"]


@pytest.mark.parametrize(
    "extra",
    [
        ("--show", "summary"),
        ("--show", "final"),
        ("--every", "2"),
        ("--explain-steps", "1,4"),
        ("--optimizer", "nesterov", "--show", "summary"),
    ],
)
def test_step_long_run_output_validates(run_cli, extra: tuple) -> None:
    doc = output(run_cli, "step", "--example", "tanh-mse", "--format", "json", *extra)
    validate(doc, "step")
    result = run_cli(["step", "--example", "tanh-mse", "--format", "jsonl", *extra])
    *records, last = [json.loads(line) for line in result.stdout.splitlines()]
    validate({**last, "steps": records}, "step")


def test_step_from_standard_input_validates(run_cli) -> None:
    text = available()["worked-example"].read_text(encoding="utf-8")
    doc = output(run_cli, "step", "-", "--format", "json", input=text)
    validate(doc, "step")
    assert doc["config"] == "<stdin>"


# ---- derive ----------------------------------------------------------------------------------


def _derive_subjects() -> list[tuple[str, ...]]:
    subjects: list[tuple[str, ...]] = []
    for a in ACTIVATIONS:
        if a.elementwise:
            subjects += [(a.name, "--at", "0.3"), (a.name, "--at", "-0.5,0,0.8")]
        else:
            subjects.append((a.name, "--at", "1,2,3"))
    for loss in LOSSES:
        target = "1,-1,1" if loss.name == "hinge" else "0,1,0"
        subjects.append((loss.name, "--at", "0.2,0.7,0.1", "--target", target))
    return [
        *subjects,
        ("prelu", "--at", "-0.5", "--param", "a=0.1"),  # parameter_gradients
        ("relu", "--at", "0"),  # a kink: one-sided differences
        ("l1", "--at", "0.5,0.2", "--target", "0.5,0.1"),  # a loss's kink: null in numeric
        ("hinge", "--at", "1", "--target", "1"),
        ("huber", "--at", "0.5,3", "--target", "0,1", "--param", "delta=0.5"),
        ("sigmoid", "--at", "-800"),  # the graph leaves float64: nulls
        ("x*tanh(x)", "--at", "0.7"),  # a formula: no closed form
        ("leaky_relu(x)", "--at", "-1", "--param", "alpha=0.2"),
        ("max(0, x)**2", "--at", "-1,0,1.5"),
    ]


@pytest.mark.parametrize("args", _derive_subjects(), ids=lambda a: " ".join(a)[:40])
def test_derive_output_validates(run_cli, args: tuple[str, ...]) -> None:
    doc = output(run_cli, "derive", *args, "--format", "json")
    validate(doc, "derive")
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["gradcalc_version"] == __version__


# ---- list ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [None, "activations", "losses", "layers", "optimizers"])
def test_list_output_validates(run_cli, kind: str | None) -> None:
    doc = output(run_cli, "list", *([kind] if kind else []), "--format", "json")
    validate(doc, "list")
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["gradcalc_version"] == __version__
    sections = {"activations", "losses", "layers", "optimizers"} if kind is None else {kind}
    assert set(doc) - {"format_version", "gradcalc_version"} == sections
    if kind is None:
        assert [r["name"] for r in doc["activations"]] == [a.name for a in ACTIVATIONS]
        assert [r["name"] for r in doc["losses"]] == [x.name for x in LOSSES]


# ---- gradebook (check COURSE --class … --format json) --------------------------------------


def _class(run_cli: Any, tmp_path: Path) -> tuple[Path, Path]:
    """A course of four students from a roster: two sheets (one with a planted mistake), one
    unreadable, one sheet no variant has; the fourth student has no sheet."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from course_sheets import write_sheets

    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\na1,Ann,ann@x.org\nb2,Bo,bo@x.org\nc3,Cy,\nd4,Di,di@x.org\n")
    course = tmp_path / "hw"
    result = run_cli(
        ["generate", "--example", "worked-example", "--roster", str(roster), "-o", str(course)]
    )
    assert result.exit_code == 0, result.output
    sheets = tmp_path / "sheets"
    write_sheets(course, sheets)
    for name in sorted(sheets.iterdir()):
        if json.loads(name.read_text()).get("id") in ("c3", "d4") or name.stem in ("c3", "d4"):
            name.unlink()
    (sheets / "zz.yaml").write_text("loss: 0.1\n")  # no variant has the id zz
    (sheets / "c3.yaml").write_text("z: {2: [0.1, x]}\n")
    return course, sheets


def test_the_gradebook_validates(run_cli, tmp_path) -> None:
    course, sheets = _class(run_cli, tmp_path)
    result = run_cli(["check", str(course), "--class", str(sheets), "--format", "json"])
    assert result.exit_code == 2  # two sheets could not be graded; the gradebook is written
    doc = json.loads(result.stdout)
    validate(doc, "gradebook")
    rows = {r["id"]: r for r in doc["sheets"]}
    assert rows["a1"]["score"] == rows["a1"]["max"] == 34 and rows["a1"]["error"] is None
    assert rows["a1"]["name"] == "Ann" and rows["c3"]["email"] == ""
    assert rows["b2"]["score"] == 33 and rows["b2"]["wrong"] == 1
    assert rows["d4"]["status"] == "no sheet" and rows["d4"]["score"] is None
    assert rows["zz"]["status"] == "unknown id" and "zz" in rows["zz"]["error"]
    assert {r["status"] for r in doc["sheets"]} == {
        "graded",
        "no sheet",
        "unknown id",
        "unreadable",
    }
    assert doc["mistakes"] == {"missing_activation_derivative": 1}
    cells = {c["cell"]: c for c in doc["cells"]}
    assert cells["δ³₁"]["mistakes"] == {"missing_activation_derivative": 1}
    # Each edit breaks a consumer: the schema refuses it.
    for edit in (
        lambda d: d["sheets"][0].update(score="34"),
        lambda d: d["sheets"][0].pop("status"),
        lambda d: d["cells"][0].update(wrong=-1),
        lambda d: d.update(mistakes={"update_sign": "1"}),
        lambda d: d["sheets"][0].update(name=3),
    ):
        broken = copy.deepcopy(doc)
        edit(broken)
        assert not jsonschema.Draft202012Validator(strict(schema("gradebook"))).is_valid(broken)


# ---- the schemas refuse what breaks the contract ---------------------------------------------


def test_schemas_refuse_a_broken_document(run_cli) -> None:
    """Each of these edits breaks a consumer, so validation must fail (the tests above could)."""
    step = output(run_cli, "step", "--example", "worked-example", "--format", "json")
    derive = output(run_cli, "derive", "sigmoid", "--at", "0.3", "--format", "json")
    listing = output(run_cli, "list", "--format", "json")
    broken: list[tuple[str, Any]] = []
    for name, doc in (("step", step), ("derive", derive), ("list", listing)):
        for edit in (
            lambda d: d.pop("format_version"),
            lambda d: d.update(format_version=2),
            lambda d: d.pop("gradcalc_version"),
            lambda d: d.update(unknown_key=1),
        ):
            copy_ = copy.deepcopy(doc)
            edit(copy_)
            broken.append((name, copy_))
    renamed = copy.deepcopy(step)
    renamed["steps"][0]["layers"][0]["deltas"] = renamed["steps"][0]["layers"][0].pop("delta")
    wrong_type = copy.deepcopy(derive)
    wrong_type["derivative"] = "0.24"
    no_gradient = output(run_cli, "derive", "mse", "--at", "0.5", "--target", "1", "--format=json")
    no_gradient.pop("gradient")
    broken += [("step", renamed), ("derive", wrong_type), ("derive", no_gradient)]
    for name, doc in broken:
        validator = jsonschema.Draft202012Validator(strict(schema(name)))
        assert not validator.is_valid(doc), (name, sorted(doc))
