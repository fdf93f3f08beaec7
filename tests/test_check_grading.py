"""How `gradcalc check` grades a hand-worked sheet: rounding, carried errors and named mistakes.

A student is simulated here in numpy, independent of gradcalc: a small network worked by hand,
every cell rounded to d decimals and computed from the cells already written (rounded), f′ taken
as a(1 − a) from the written a or as σ′(z) from the written z. Such a sheet must get no ✗; with
one wrong cell and everything after it worked from it, that cell alone is ✗.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SHEET = str(ROOT / "configs" / "worked-example.yaml")


def _json(result) -> dict:
    return json.loads(result.stdout)


def _verdicts(result) -> dict[str, str]:
    return {f"{c['step']} {c['symbol']}": c["verdict"] for c in _json(result)["cells"]}


# ---- the hand-worked sheet -------------------------------------------------------------------


def hand_round(v, d: int):
    """Half away from zero, as on paper (the nudge keeps 0.0045, stored as 0.00449…, going up)."""
    v = np.asarray(v, dtype=float)
    return np.sign(v) * np.floor(np.abs(v) * 10.0**d + 0.5 + 1e-9) / 10.0**d + 0.0


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


FORWARD = {"sigmoid": _sigmoid, "tanh": np.tanh}
PRIME_FROM_A = {"sigmoid": lambda a: a * (1 - a), "tanh": lambda a: 1 - a * a}
PRIME_FROM_Z = {
    "sigmoid": lambda z: _sigmoid(z) * (1 - _sigmoid(z)),
    "tanh": lambda z: 1 - np.tanh(z) ** 2,
}


@dataclass
class Net:
    x: np.ndarray  # (m, n1)
    y: np.ndarray  # (m, nL)
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activations: list[str]  # the output's "softmax" goes with cross-entropy
    eta: float
    reduction: str = "mean"
    steps: int = 1

    @property
    def m(self) -> int:
        return self.x.shape[0]

    def config(self) -> str:
        one = self.m == 1
        doc = {
            "input" if one else "inputs": self.x[0].tolist() if one else self.x.tolist(),
            "target" if one else "targets": self.y[0].tolist() if one else self.y.tolist(),
            "loss": "cross_entropy" if self.activations[-1] == "softmax" else "quadratic",
            "reduction": self.reduction,
            "learning_rate": self.eta,
            "steps": self.steps,
            "layers": [
                {"weights": w.tolist(), "biases": b.tolist(), "activation": f}
                for w, b, f in zip(self.weights, self.biases, self.activations, strict=True)
            ],
        }
        return yaml.safe_dump(doc)


@dataclass
class Sheet:
    """A hand-worked sheet: its cells in the order they are written, and each quantity's values."""

    cells: list[tuple[int, str, int | None, float]] = field(default_factory=list)
    quantities: dict[tuple[int, str, int | None], np.ndarray] = field(default_factory=dict)

    def answers(self, d: int, m: int, strip_zeros: bool = False) -> str:
        """The sheet as YAML, each number written to d decimals (or without its trailing zeros,
        as many people and programs write 0.5 for 0.500)."""

        def text(v: float) -> str:
            t = f"{v:.{d}f}"
            if strip_zeros:
                t = t.rstrip("0").rstrip(".")
            return "0" if float(t) == 0 else t

        def flow(values: np.ndarray) -> str:
            if values.ndim == 0:
                return text(float(values))
            return "[" + ", ".join(flow(v) for v in values) + "]"

        lines = ["steps:"]
        for s in sorted({s for s, _, _ in self.quantities}):
            lines.append(f"  - step: {s}")
            by_q: dict[str, list[str]] = {}
            for (step, q, l), values in self.quantities.items():
                if step != s:
                    continue
                if q in ("z", "a", "delta") and m == 1:
                    values = values[0]
                if l is None:
                    lines.append(f"    {q}: {flow(values)}")
                else:
                    by_q.setdefault(q, []).append(f"      {l}: {flow(values)}")
            for q, rows in by_q.items():
                lines += [f"    {q}:", *rows]
        return "\n".join(lines) + "\n"


def work(
    net: Net,
    d: int,
    from_z: list[bool],
    slip: int | None = None,
    transposed: bool = False,
) -> tuple[Sheet, int | None]:
    """Work the sheet by hand to d decimals. from_z[l]: f′ of layer l from z (σ′(z)) rather than
    from a (a(1 − a)). `slip`: the number of the cell (in the order written) that is wrong;
    every later cell is worked from it. `transposed`: BP2 through w^(l+1) transposed (the known
    mistake; square layers). Returns the sheet and the slipped cell's position."""
    sheet = Sheet()
    count = [0]
    r = lambda v: hand_round(v, d)  # noqa: E731

    def write(s: int, q: str, l: int | None, values: np.ndarray) -> np.ndarray:
        values = np.array(values, dtype=float)
        for pos in np.ndindex(*values.shape):
            if count[0] == slip:
                values[pos] = r(values[pos] + 0.4 + 0.5 * abs(values[pos]))
            sheet.cells.append((s, q, l, float(values[pos])))
            count[0] += 1
        sheet.quantities[(s, q, l)] = values
        return values

    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    L = len(weights) + 1
    scale = 1 / net.m if net.reduction == "mean" else 1.0
    for s in range(1, net.steps + 1):
        a_prev = net.x
        zs, acts = [], []
        for i, (w, b, f) in enumerate(zip(weights, biases, net.activations, strict=True)):
            z = write(s, "z", i + 2, r(a_prev @ w.T + b))
            if f == "softmax":
                e = np.exp(z - z.max(axis=1, keepdims=True))
                a = e / e.sum(axis=1, keepdims=True)
            else:
                a = FORWARD[f](z)
            a = write(s, "a", i + 2, r(a))
            zs.append(z)
            acts.append(a)
            a_prev = a
        out = acts[-1]
        if net.activations[-1] == "softmax":
            costs = -np.sum(np.where(net.y > 0, net.y * np.log(np.abs(out)), 0.0), axis=1)
        else:
            costs = 0.5 * np.sum((out - net.y) ** 2, axis=1)
        if net.m > 1:
            costs = write(s, "losses", None, r(costs))
        write(s, "loss", None, r(scale * costs.sum()))
        deltas: list[np.ndarray] = [np.zeros(0)] * len(weights)
        for i in range(len(weights) - 1, -1, -1):
            f = net.activations[i]
            if i == len(weights) - 1:
                if f == "softmax":
                    delta = write(s, "delta", L, r(out - net.y))
                    deltas[i] = delta
                    continue
                grad_a = r(out - net.y)
            else:
                w_next = weights[i + 1].T if transposed else weights[i + 1]
                grad_a = r(deltas[i + 1] @ w_next)
            prime = PRIME_FROM_Z[f](zs[i]) if from_z[i] else PRIME_FROM_A[f](acts[i])
            deltas[i] = write(s, "delta", i + 2, r(grad_a * r(prime)))
        grads_w, grads_b = [], []
        for i in range(len(weights) - 1, -1, -1):
            a_in = net.x if i == 0 else acts[i - 1]
            gw = write(s, "grad_weights", i + 2, r(scale * deltas[i].T @ a_in))
            gb = write(s, "grad_biases", i + 2, r(scale * deltas[i].sum(axis=0)))
            grads_w.insert(0, gw)
            grads_b.insert(0, gb)
        for i in range(len(weights) - 1, -1, -1):
            weights[i] = write(s, "weights", i + 2, r(weights[i] - net.eta * grads_w[i]))
            biases[i] = write(s, "biases", i + 2, r(biases[i] - net.eta * grads_b[i]))
    return sheet, slip


@st.composite
def networks(draw) -> Net:
    hidden = draw(st.lists(st.sampled_from(["sigmoid", "tanh"]), min_size=0, max_size=2))
    output = draw(st.sampled_from(["sigmoid", "tanh", "softmax"]))
    activations = [*hidden, output]
    sizes = [draw(st.integers(1, 3)) for _ in range(len(activations) + 1)]
    if output == "softmax":
        sizes[-1] = max(sizes[-1], 2)
    m = draw(st.sampled_from([1, 1, 2]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    def uniform(*shape):
        return np.round(rng.uniform(-1, 1, shape), 1)

    if output == "softmax":
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    else:
        y = np.round(rng.uniform(0.1, 0.9, (m, sizes[-1])), 1)
    return Net(
        x=uniform(m, sizes[0]),
        y=y,
        weights=[uniform(n, n_prev) for n_prev, n in itertools.pairwise(sizes)],
        biases=[uniform(n) for n in sizes[1:]],
        activations=activations,
        eta=draw(st.sampled_from([0.1, 0.5, 1.0])),
        reduction=draw(st.sampled_from(["mean", "sum"])),
        steps=draw(st.sampled_from([1, 1, 2])),
    )


def _grade(run_cli, tmp: Path, net: Net, answers: str, *options: str):
    cfg = tmp / "net.yaml"
    cfg.write_text(net.config(), encoding="utf-8")
    sheet = tmp / "answers.yaml"
    sheet.write_text(answers, encoding="utf-8")
    return run_cli(["check", str(cfg), str(sheet), "--format", "json", *options])


PROPERTY = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@PROPERTY
@given(net=networks(), d=st.sampled_from([2, 3, 4]), data=st.data())
def test_a_sheet_worked_by_hand_rounding_every_cell_gets_no_wrong_mark(
    run_cli, tmp_path, net: Net, d: int, data
) -> None:
    from_z = [data.draw(st.booleans()) for _ in net.activations]
    strip = data.draw(st.booleans())
    sheet, _ = work(net, d, from_z)
    text = sheet.answers(d, net.m, strip_zeros=strip)
    for options in ((), ("--decimals", str(d))):
        result = _grade(run_cli, tmp_path, net, text, *options)
        wrong = [c for c in _json(result)["cells"] if c["verdict"] != "correct"]
        assert result.exit_code == 0, (options, net, text, wrong)
        # Every cell follows from cells judged right: nothing is carried.
        assert {c["verdict"] for c in _json(result)["cells"]} <= {"correct", "rounding"}


@PROPERTY
@given(net=networks(), d=st.sampled_from([2, 3, 4]), data=st.data())
def test_one_wrong_cell_worked_on_from_is_the_only_wrong_mark(
    run_cli, tmp_path, net: Net, d: int, data
) -> None:
    from_z = [data.draw(st.booleans()) for _ in net.activations]
    total = len(work(net, d, from_z)[0].cells)
    slip = data.draw(st.integers(0, total - 1))
    sheet, _ = work(net, d, from_z, slip=slip)
    text = sheet.answers(d, net.m)
    for options in ((), ("--decimals", str(d))):
        result = _grade(run_cli, tmp_path, net, text, *options)
        cells = _json(result)["cells"]
        assert result.exit_code == 1
        wrong = [i for i, c in enumerate(cells) if c["verdict"] == "wrong"]
        assert wrong == [slip], (options, net, text, [cells[i] for i in wrong])
        # Nothing before it is carried; after it, each cell is right (✓, ≈) or carried (↳).
        assert all(c["verdict"] in ("correct", "rounding") for c in cells[:slip])
        assert _json(result)["first_error"]["symbol"] == cells[slip]["symbol"]
        assert _json(result)["first_error"]["later_wrong"] == 0
        # Without carrying, exactly the ↳ cells turn ✗, each said to follow from the answers.
        strict = _json(_grade(run_cli, tmp_path, net, text, *options, "--no-carry"))
        carried = {i for i, c in enumerate(cells) if c["verdict"] == "carried"}
        assert {i for i, c in enumerate(strict["cells"]) if c["verdict"] == "wrong"} == {
            slip,
            *carried,
        }
        assert strict["first_error"]["follows"] is True


# ---- the defects of issue 15, one by one -----------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_delta_worked_from_the_students_own_z_is_carried(run_cli, tmp_path) -> None:
    # a²₁ is wrong, z²₁ right: δ²₁ = −0.3 δ³ σ′(0.21) uses f′ from z, not a(1 − a) from a²₁.
    answers = _write(
        tmp_path,
        "a.yaml",
        "z: {2: [0.21, -0.24], 3: [-0.3359713649267193]}\n"
        "a: {2: [0.6, 0.44028635073280703], 3: [0.4167884113936294]}\n"
        "delta: {3: [-0.11745705870136885], 2: [0.008712866511840764, -0.002894544570270103]}\n",
    )
    result = run_cli(["check", SHEET, answers, "--format", "json"])
    verdicts = _verdicts(result)
    assert verdicts["1 a²₁"] == "wrong"
    assert verdicts["1 δ²₁"] == "carried" and verdicts["1 δ²₂"] == "carried"
    # The other order, σ′ = a(1 − a) from the wrong a²₁, is carried too.
    a = 0.6
    from_a = -0.3 * -0.11745705870136885 * a * (1 - a)
    answers = _write(
        tmp_path,
        "b.yaml",
        "z: {2: [0.21, -0.24], 3: [-0.3359713649267193]}\n"
        "a: {2: [0.6, 0.44028635073280703], 3: [0.4167884113936294]}\n"
        f"delta: {{3: [-0.11745705870136885], 2: [{from_a!r}, -0.002894544570270103]}}\n",
    )
    assert _verdicts(run_cli(["check", SHEET, answers, "--format", "json"]))["1 δ²₁"] == "carried"
    # A δ from neither order is wrong.
    answers = _write(
        tmp_path,
        "c.yaml",
        "z: {2: [0.21, -0.24], 3: [-0.3359713649267193]}\n"
        "a: {2: [0.6, 0.44028635073280703], 3: [0.4167884113936294]}\n"
        "delta: {3: [-0.11745705870136885], 2: [0.0080, -0.002894544570270103]}\n",
    )
    assert _verdicts(run_cli(["check", SHEET, answers, "--format", "json"]))["1 δ²₁"] == "wrong"


def test_tanh_delta_from_z_is_carried_on_a_generated_sheet(run_cli, tmp_path) -> None:
    net = Net(
        x=np.array([[-0.4]]),
        y=np.array([[0.3]]),
        weights=[np.array([[0.6], [-0.8]]), np.array([[0.2, 0.5]])],
        biases=[np.array([-0.6, -0.9]), np.array([-0.5])],
        activations=["sigmoid", "tanh"],
        eta=0.5,
    )
    # a²₁ slips (cell 2); f′ of layer 2 is taken from z: δ²₁ follows from it.
    sheet, _ = work(net, 3, [True, False], slip=2)
    result = _grade(run_cli, tmp_path, net, sheet.answers(3, 1), "--decimals", "3")
    verdicts = _verdicts(result)
    assert [k for k, v in verdicts.items() if v == "wrong"] == ["1 a²₁"]
    assert verdicts["1 δ²₁"] in ("carried", "rounding")


def test_a_cost_from_a_rounded_softmax_output_is_right_to_the_rounding(run_cli, tmp_path) -> None:
    # C_x = −ln a³ from the written (rounded) a: no cell is wrong, so none is carried, and
    # --no-carry does not fail the sheet.
    net = Net(
        x=np.array([[0.9], [-0.9]]),
        y=np.array([[1.0, 0.0], [0.0, 1.0]]),
        weights=[np.array([[-0.9], [0.5]])],
        biases=[np.array([-0.5, 0.8])],
        activations=["softmax"],
        eta=0.5,
        reduction="sum",
        steps=2,
    )
    sheet, _ = work(net, 3, [False])
    text = sheet.answers(3, net.m)
    for options in (("--decimals", "3"), ("--decimals", "3", "--no-carry"), ()):
        result = _grade(run_cli, tmp_path, net, text, *options)
        assert result.exit_code == 0, (options, result.output)
        assert {c["verdict"] for c in _json(result)["cells"]} <= {"correct", "rounding"}


def test_the_softmax_classifier_worked_to_two_decimals(run_cli, tmp_path) -> None:
    # The bundled classifier worked to 2 decimals, each cost −Σ y ln a from its rounded a.
    cfg = str(ROOT / "configs" / "softmax-classifier.yaml")
    net = Net(
        x=np.array([[0.5, -1.2], [1.5, 0.3], [-0.7, 0.8], [0.1, 0.1]]),
        y=np.eye(3)[[0, 1, 2, 0]],
        weights=[
            np.array([[0.4, -0.3], [0.2, 0.6], [-0.5, 0.1]]),
            np.array([[0.3, -0.2, 0.5], [-0.4, 0.6, 0.1], [0.2, 0.1, -0.3]]),
        ],
        biases=[np.array([0.0, 0.1, -0.1]), np.zeros(3)],
        activations=["tanh", "softmax"],
        eta=0.5,
        steps=2,
    )
    sheet, _ = work(net, 2, [False, False])
    answers = _write(tmp_path, "a.yaml", sheet.answers(2, net.m))
    for options in (("--decimals", "2"), ("--decimals", "2", "--no-carry"), ()):
        result = run_cli(["check", cfg, answers, "--format", "json", *options])
        assert result.exit_code == 0, (options, result.output)
        assert {c["verdict"] for c in _json(result)["cells"]} <= {"correct", "rounding"}


def test_a_correctly_rounded_product_of_carried_inputs_is_carried(run_cli, tmp_path) -> None:
    # z²₁ slips; ∂C/∂w³₃₃ = δ³₃ a²₃ from the carried numbers, rounded to 3 places, is 0.002.
    net = Net(
        x=np.array([[0.9]]),
        y=np.array([[0.5, 0.9, 0.2]]),
        weights=[
            np.array([[-0.4], [-0.2], [0.7]]),
            np.array([[-0.2, 0.1, -0.9], [0.5, 0.1, -0.3], [0.6, -0.4, -0.1]]),
        ],
        biases=[np.array([-0.7, -0.2, -0.6]), np.array([-0.5, 0.5, -0.4])],
        activations=["tanh", "sigmoid"],
        eta=0.1,
    )
    sheet, _ = work(net, 3, [False, False], slip=0)
    for options in (("--decimals", "3"), ()):
        result = _grade(run_cli, tmp_path, net, sheet.answers(3, 1), *options)
        verdicts = _verdicts(result)
        assert [k for k, v in verdicts.items() if v == "wrong"] == ["1 z²₁"], options
        assert verdicts["1 ∂C/∂w³₃₃"] in ("carried", "rounding")


def test_a_carried_product_to_three_places(run_cli, tmp_path) -> None:
    # δ³ without σ′ (wrong); δ²₃ = −0.017 carried from it; input 0.03: ∂C/∂w²₃₁ = −0.00051,
    # written −0.001.
    cfg = _write(
        tmp_path,
        "net.yaml",
        "input: [0.03]\ntarget: [0.9]\nloss: quadratic\nlearning_rate: 1.0\nlayers:\n"
        "  - {weights: [[0.5], [-0.5], [0.4]], biases: [0.1, 0.2, 0.3], activation: sigmoid}\n"
        "  - {weights: [[0.3, -0.2, 0.21]], biases: [0.1], activation: sigmoid}\n",
    )
    answers = _write(
        tmp_path,
        "a.yaml",
        "z: {2: [0.115, 0.185, 0.312], 3: [0.271]}\n"
        "a: {2: [0.529, 0.546, 0.577], 3: [0.567]}\n"
        "delta: {3: [-0.333], 2: [-0.025, 0.017, -0.017]}\n"
        "grad_weights: {2: [[-0.001], [0.001], [-0.001]]}\n",
    )
    for options in (("--decimals", "3"), ()):
        result = run_cli(["check", cfg, answers, "--format", "json", *options])
        verdicts = _verdicts(result)
        assert [k for k, v in verdicts.items() if v == "wrong"] == ["1 δ³₁"], options
        assert verdicts["1 δ²₃"] == "carried"
        assert verdicts["1 ∂C/∂w²₃₁"] in ("carried", "rounding")


def test_a_three_decimal_sheet_is_right_by_default(run_cli) -> None:
    answers = str(ROOT / "configs" / "answers" / "worked-example.yaml")
    result = run_cli(["check", SHEET, answers, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = _json(result)
    assert doc["score"] == doc["max_score"] == 32
    assert doc["options"]["written_places"] == 3 and doc["options"]["decimals"] is None
    table = run_cli(["check", SHEET, answers], env={"COLUMNS": "120"})
    assert table.exit_code == 0
    assert (
        "each answer judged to the decimals it is written with, at least 3 (0.552 means ± 0.0005)"
        in table.stdout
    )
    # --decimals still forces one precision: to 1 place the sheet's 3-place numbers are fine,
    # held to 12 they are not.
    assert run_cli(["check", SHEET, answers, "--decimals", "12"]).exit_code == 1
    forced = run_cli(["check", SHEET, answers, "--decimals", "3"])
    assert "worked to 3 decimals" in forced.stdout and "judged to the decimals" not in forced.stdout


def test_the_written_decimals_come_from_the_text(run_cli, tmp_path) -> None:
    # 0.550 (3 places) for a²₁ = 0.5523 is wrong; 0.55 (2 places) is right to its rounding.
    # YAML reads both as the float 0.55.
    for text, verdict in (("0.550", "wrong"), ("0.55", "rounding"), ("5.5e-1", "rounding")):
        answers = _write(tmp_path, "a.yaml", f"a: {{2: [{text}, null]}}\n")
        result = run_cli(["check", SHEET, answers, "--format", "json"])
        assert _verdicts(result)["1 a²₁"] == verdict, text
        # A number alone on its line, not in a row of numbers, is read the same way.
        answers = _write(tmp_path, "b.yaml", f"a:\n  2:\n    - {text}\n    - null\n")
        result = run_cli(["check", SHEET, answers, "--format", "json"])
        assert _verdicts(result)["1 a²₁"] == verdict, text
    # --decimals 2 reads 0.550 to 2 places.
    answers = _write(tmp_path, "a.yaml", "a: {2: [0.550, null]}\n")
    result = run_cli(["check", SHEET, answers, "--format", "json", "--decimals", "2"])
    assert _verdicts(result)["1 a²₁"] == "rounding"


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("0.552", 3),
        ("0.550", 3),
        ("-0.240", 3),
        ("\u22120.240", 3),
        ("12", 0),
        ("2.5e-3", 4),
        ("2.5E+2", -1),
        ("1.2\u00d710\u207b\u2075", 6),
        ("1_000.25", 2),
        (".5", 1),
    ],
)
def test_written_decimals(text: str, places: int) -> None:
    from gradcalc.check.answers import written_decimals

    assert written_decimals(text) == places


def test_written_decimals_of_what_is_not_a_number() -> None:
    from gradcalc.check.answers import written_decimals

    for text in ("abc", ".inf", "", "1.2.3", "１２"):
        assert np.isnan(written_decimals(text)), text


def test_a_transposed_weights_sheet_names_transposed_weights(run_cli, tmp_path) -> None:
    # BP2 through w³ transposed, on a 2-decimal sheet: δ²₁ = 0.01. The updated w³ gives 0.02,
    # outside the allowance: only transposed_weights is named.
    net = Net(
        x=np.array([[0.9, 0.2]]),
        y=np.array([[0.3, 0.4]]),
        weights=[np.array([[0.5, 0.7], [0.0, 0.2]]), np.array([[0.9, 0.3], [-0.1, -0.8]])],
        biases=[np.array([0.5, 0.8]), np.array([-0.2, -0.4])],
        activations=["sigmoid", "tanh"],
        eta=0.5,
    )
    sheet, _ = work(net, 2, [False, False], transposed=True)
    for options in (("--decimals", "2"), ()):
        result = _grade(run_cli, tmp_path, net, sheet.answers(2, 1), *options)
        cells = {c["symbol"]: c for c in _json(result)["cells"]}
        assert cells["δ²₁"]["verdict"] == "wrong"
        assert cells["δ²₁"]["mistake"] == "transposed_weights", options
        assert cells["δ²₁"]["mistakes"] == ["transposed_weights"]


def test_two_mistakes_that_fit_equally_are_both_named(run_cli, tmp_path) -> None:
    # Here w³ transposed and w³ after the update are the same to 2 places: δ²₂ is what both
    # give, and the table and the JSON say both.
    net = Net(
        x=np.array([[0.9, 0.7]]),
        y=np.array([[0.7, 0.7]]),
        weights=[np.array([[0.6, -0.8], [-0.3, 0.7]]), np.array([[0.5, 0.9], [0.7, 0.3]])],
        biases=[np.array([0.1, -0.8]), np.array([-0.1, 0.9])],
        activations=["tanh", "tanh"],
        eta=0.5,
    )
    sheet, _ = work(net, 2, [False, False], transposed=True)
    result = _grade(run_cli, tmp_path, net, sheet.answers(2, 1), "--decimals", "2")
    named = {c["symbol"]: c for c in _json(result)["cells"]}["δ²₂"]
    assert named["verdict"] == "wrong"
    assert set(named["mistakes"]) == {"transposed_weights", "updated_weights_in_backprop"}
    assert named["mistake"] == named["mistakes"][0]
    table = run_cli(
        ["check", str(tmp_path / "net.yaml"), str(tmp_path / "answers.yaml"), "--decimals", "2"],
        env={"COLUMNS": "200"},
    )
    assert " or ".join(named["mistakes"]) in table.stdout
    for mistake in named["mistakes"]:  # each explained under the table
        assert mistake in table.stdout.split("known mistake")[1]


def test_only_the_mistake_that_fits_is_named(run_cli, tmp_path) -> None:
    # Only δ answered: the updated weights are not on the sheet, and the exact update gives
    # δ²₁ = 0.023, outside the allowance of 0.01; w³ transposed gives 0.006, inside it.
    cfg = _write(
        tmp_path,
        "net.yaml",
        "input: [0.9, 0.2]\ntarget: [0.3, 0.4]\nloss: quadratic\nlearning_rate: 0.5\nlayers:\n"
        "  - {weights: [[0.5, 0.7], [0.0, 0.2]], biases: [0.5, 0.8], activation: sigmoid}\n"
        "  - {weights: [[0.9, 0.3], [-0.1, -0.8]], biases: [-0.2, -0.4], activation: tanh}\n",
    )
    answers = _write(
        tmp_path,
        "a.yaml",
        "z: {2: [1.09, 0.84], 3: [0.69, -1.04]}\na: {2: [0.75, 0.70], 3: [0.60, -0.78]}\n"
        "loss: 0.74\ndelta: {3: [0.19, -0.46], 2: [0.01, 0.07]}\n",
    )
    for options in (("--decimals", "2"), ()):
        cells = {
            c["symbol"]: c
            for c in _json(run_cli(["check", cfg, answers, "--format", "json", *options]))["cells"]
        }
        assert cells["δ²₁"]["verdict"] == "wrong"
        assert cells["δ²₁"]["mistakes"] == ["transposed_weights"], options
        # Halfway between the right value and every mistake's, it is wrong and names none.
    answers = _write(
        tmp_path,
        "b.yaml",
        "z: {2: [1.09, 0.84], 3: [0.69, -1.04]}\na: {2: [0.75, 0.70], 3: [0.60, -0.78]}\n"
        "loss: 0.74\ndelta: {3: [0.19, -0.46], 2: [0.14, 0.07]}\n",
    )
    cells = {
        c["symbol"]: c for c in _json(run_cli(["check", cfg, answers, "--format", "json"]))["cells"]
    }
    assert cells["δ²₁"]["verdict"] == "wrong"
    assert cells["δ²₁"]["mistake"] is None and cells["δ²₁"]["mistakes"] == []


def test_a_cross_entropy_cost_from_a_wrong_output_is_carried(run_cli, tmp_path) -> None:
    # C_x = −ln a³₁ from the written (wrong) a³₁ = 0.001 is 6.908: carried; 3.0 is wrong.
    cfg = str(ROOT / "configs" / "softmax-classifier.yaml")
    for cost, verdict in (("3.0", "wrong"), ("6.908", "carried")):
        answers = _write(
            tmp_path,
            "a.yaml",
            "a: {3: [[0.001, 0.500, 0.499], null, null, null]}\n"
            f"losses: [{cost}, null, null, null]\n",
        )
        verdicts = _verdicts(run_cli(["check", cfg, answers, "--format", "json"]))
        assert verdicts["1 a³₁ (x = 1)"] == "wrong"
        assert verdicts["1 C_x (x = 1)"] == verdict, cost
