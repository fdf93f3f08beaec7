"""The known-mistakes registry of `gradcalc check`, record by record.

Two routes. On generated networks (several shapes, activations, losses, batches), a student is
simulated who makes one mistake wherever it can happen and works everything else correctly from
their own numbers: each record must be named on the cells it changes, every other cell must be
right or carried, and a correct sheet must never name it. On the worked example (and variants of
it where a mistake cannot show on the sheet itself), each mistake is applied by hand, in numpy
written here, independent of gradcalc, and graded through the real command.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from gradcalc.check.answers import Answers
from gradcalc.check.cells import Shape
from gradcalc.check.grade import Options, grade
from gradcalc.check.mistakes import MISTAKES, REGISTRY, Mistake
from gradcalc.check.recompute import Context, carried
from gradcalc.step import config
from gradcalc.step.engine import run

# ---- generated networks ----------------------------------------------------------------------

NETWORKS = [
    # sizes, activations, loss, examples, reduction, η
    ((3, 2, 1), ("sigmoid", "sigmoid"), "quadratic", 1, "mean", 0.5),
    ((2, 3, 2), ("tanh", "sigmoid"), "mse", 3, "mean", 0.3),
    ((2, 2, 2), ("elu", "identity"), "huber", 2, "sum", 0.2),
    ((3, 3, 3), ("tanh", "softmax"), "cross_entropy", 3, "mean", 0.4),
    ((2, 3, 3), ("sigmoid", "softmax"), "mse", 2, "sum", 0.6),
    ((2, 2, 2, 1), ("silu", "tanh", "sigmoid"), "binary_cross_entropy", 1, "mean", 0.7),
    ((2, 2, 2), ("sigmoid", "sigmoid"), "quadratic", 1, "mean", 0.8),
    ((3, 3, 2, 2), ("leaky_relu", "softplus", "sigmoid"), "quadratic", 3, "sum", 0.25),
]


def make_spec(seed: int, sizes, activations, loss, examples, reduction, eta):
    rng = np.random.default_rng(seed)

    def r(*shape):
        return np.round(rng.uniform(-1, 1, shape), 2).tolist()

    x = r(examples, sizes[0])
    if loss in ("cross_entropy",):
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], examples)].tolist()
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (examples, sizes[-1])).astype(float).tolist()
    else:
        y = np.round(rng.uniform(0.1, 0.9, (examples, sizes[-1])), 2).tolist()
    doc = {
        "inputs" if examples > 1 else "input": x if examples > 1 else x[0],
        "targets" if examples > 1 else "target": y if examples > 1 else y[0],
        "loss": loss,
        "learning_rate": eta,
        "reduction": reduction,
        "layers": [
            {"weights": r(n, n_prev), "biases": r(n), "activation": act}
            for n_prev, n, act in zip(sizes[:-1], sizes[1:], activations, strict=True)
        ],
    }
    return config.load_text(yaml.safe_dump(doc), f"net{seed}.yaml")


def simulate(spec, mistake: Mistake | None, variant: int = 0, steps: int = 1):
    """A student's answers to every cell: correct from their own numbers, except that `mistake`
    is made wherever it can be. Returns the answers and {(step, key): (mistaken, right)}."""
    shape = Shape.of(spec)
    exact = run(spec, steps=steps)
    weights = [layer.weights for layer in spec.layers]
    biases = [layer.biases for layer in spec.layers]
    scale = 1 / shape.examples if spec.reduction == "mean" else 1.0
    fused = spec.loss.fused.get(spec.layers[-1].activation.name)
    sheet = Answers("simulated")
    changed = {}
    for s, st in enumerate(exact.steps, 1):
        answers: dict = {}
        ctx = Context(
            spec,
            shape,
            exact.learning_rate,
            scale,
            fused,
            weights,
            biases,
            [dict(lt.params_before) for lt in st.layers],
            st,
            answers,
        )
        # A mistake may use a quantity the tables list later (BP2 through the updated weights
        # needs w^(l+1) new before δ^l): work the sheet again until it no longer changes.
        for _ in range(3):
            for key in shape.step_keys():
                right = np.asarray(carried(ctx, key), dtype=float)
                value = right
                if mistake is not None and key[0] in mistake.quantities:
                    with np.errstate(all="ignore"):
                        candidates = mistake.values(ctx, key)
                    if candidates:
                        value = np.asarray(candidates[min(variant, len(candidates) - 1)])
                        changed[(s, key)] = (value, right)
                answers[key] = np.array(value, dtype=float)
        sheet.steps[s] = answers
        weights = [ctx.given("weights", l) for l in range(2, shape.L + 1)]
        biases = [ctx.given("biases", l) for l in range(2, shape.L + 1)]
    return sheet, changed


def _variants(mistake: Mistake) -> list[int]:
    return [0, 1] if mistake.id == "factor_of_two" else [0]


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.id)
def test_each_mistake_fires_on_its_own_mistake(mistake: Mistake) -> None:
    options = Options()
    fired_on = []
    for seed, net in enumerate(NETWORKS):
        spec = make_spec(seed, *net)
        for variant in _variants(mistake):
            sheet, changed = simulate(spec, mistake, variant, steps=2)
            report = grade(spec, sheet, 2, options)
            by_cell = {(c.step, c.quantity, c.layer, c.index): c for c in report.cells}
            named = [c for c in report.cells if c.mistake == mistake.id]
            for c in report.cells:
                # Every cell is right, right given the earlier answers (≈ where those are
                # right within the tolerance), or this mistake.
                assert c.verdict in ("correct", "rounding", "carried") or c.mistake == mistake.id, (
                    net,
                    c,
                )
            for (s, (q, l)), (value, right) in changed.items():
                differs = np.abs(value - right) > options.atol + options.rtol * np.abs(right)
                for c in report.cells:
                    if (c.step, c.quantity, c.layer) == (s, q, l):
                        pos = _position(c, spec)
                        if differs[pos]:
                            assert mistake.id in by_cell[(c.step, q, l, c.index)].matches, (net, c)
            if named:
                fired_on.append(net)
            fe = report.first_error
            assert fe is None or mistake.id in fe.cell.matches
    assert fired_on, f"{mistake.id} never fired on the generated networks"


def _position(cell, spec) -> tuple[int, ...]:
    if cell.quantity in ("z", "a", "delta") and not spec.batch:
        return (0, cell.index[0] - 1)
    return tuple(i - 1 for i in cell.index)


@pytest.mark.parametrize("net", NETWORKS, ids=lambda n: "-".join(map(str, n[0])) + "-" + n[2])
def test_no_mistake_is_named_on_a_correct_sheet(net) -> None:
    spec = make_spec(NETWORKS.index(net), *net)
    sheet, _ = simulate(spec, None, steps=2)
    report = grade(spec, sheet, 2, Options())
    assert report.cells and all(c.verdict == "correct" for c in report.cells)
    assert report.first_error is None and report.passed
    # The sheet is the engine's trace recomputed through recompute.carried: the two agree.
    from gradcalc.check.cells import expected

    exact = run(spec, steps=2)
    for s, st in enumerate(exact.steps, 1):
        for key, value in sheet.steps[s].items():
            assert np.allclose(value, expected(st, key), rtol=1e-12, atol=1e-14), key


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.id)
def test_each_record_is_complete(mistake: Mistake) -> None:
    assert REGISTRY[mistake.id] is mistake
    assert mistake.id.isidentifier() and mistake.id == mistake.id.lower()
    assert mistake.explanation and "\n" not in mistake.explanation
    from gradcalc.check.cells import GROUPS

    assert mistake.quantities and set(mistake.quantities) <= set(GROUPS)


def test_the_issue_lists_at_least_these_mistakes() -> None:
    wanted = {
        "missing_activation_derivative",
        "derivative_of_wrong_argument",
        "factor_of_two",
        "target_minus_output",
        "update_sign",
        "learning_rate_not_applied",
        "updated_weights_in_backprop",
        "transposed_weights",
        "bias_omitted",
        "z_instead_of_a",
        "biases_not_updated",
        "sum_instead_of_mean",
        "mean_instead_of_sum",
        "softmax_diagonal_only",
    }
    assert wanted <= set(REGISTRY)


# ---- the worked example, by hand -------------------------------------------------------------

SHEET = {
    "x": [[0.8, 0.7, 0.1]],
    "y": [[0.9]],
    "w2": [[0.2, 0.3, 0.4], [-0.2, 0.1, 0.5]],
    "b2": [-0.2, -0.2],
    "w3": [[-0.3, 0.1]],
    "b3": [-0.2],
    "eta": 1.0,
    "out": "sigmoid",
    "loss": "quadratic",
    "reduction": "mean",
}
# Where a mistake cannot show on the sheet itself, the smallest change of it that lets it show.
VARIANTS = {
    # η = 1 makes θ − g the right update.
    "learning_rate_not_applied": {"eta": 0.5},
    # Only a square matrix can be read transposed without a shape error.
    "transposed_weights": {
        "x": [[0.8, 0.7]],
        "y": [[0.9, 0.1]],
        "w2": [[0.2, 0.3], [-0.2, 0.1]],
        "w3": [[-0.3, 0.1], [0.4, -0.5]],
        "b3": [-0.2, 0.1],
    },
    # One example has no batch to sum or average.
    "sum_instead_of_mean": {"x": [[0.8, 0.7, 0.1], [0.2, 0.5, 0.9]], "y": [[0.9], [0.1]]},
    "mean_instead_of_sum": {
        "x": [[0.8, 0.7, 0.1], [0.2, 0.5, 0.9]],
        "y": [[0.9], [0.1]],
        "reduction": "sum",
    },
    # The sheet's output is a sigmoid.
    "softmax_diagonal_only": {
        "y": [[1.0, 0.0]],
        "w3": [[-0.3, 0.1], [0.4, -0.5]],
        "b3": [-0.2, 0.1],
        "out": "softmax",
        "loss": "cross_entropy",
    },
}


def _sig(z):
    return 1 / (1 + np.exp(-z))


def by_hand(sheet: dict, mistake: str | None) -> dict:
    """The sheet's step in plain numpy, with `mistake` made wherever it applies."""
    X, Y = np.array(sheet["x"]), np.array(sheet["y"])
    W2, b2 = np.array(sheet["w2"]), np.array(sheet["b2"])
    W3, b3 = np.array(sheet["w3"]), np.array(sheet["b3"])
    eta, m = sheet["eta"], X.shape[0]
    s = 1 / m if sheet["reduction"] == "mean" else 1.0
    if mistake == "sum_instead_of_mean":
        s = 1.0
    if mistake == "mean_instead_of_sum":
        s = 1 / m
    T = mistake == "transposed_weights"
    no_b = mistake == "bias_omitted"
    z2 = X @ (W2 if T else W2.T) + (0 if no_b else b2)
    a2 = _sig(z2)
    z3 = a2 @ (W3 if T else W3.T) + (0 if no_b else b3)
    if sheet["out"] == "sigmoid":
        a3 = _sig(z3)
    else:
        e = np.exp(z3 - z3.max(axis=1, keepdims=True))
        a3 = e / e.sum(axis=1, keepdims=True)
    if sheet["loss"] == "quadratic":
        Cx = 0.5 * ((Y - a3) ** 2).sum(axis=1)
        dCda = a3 - Y
    else:
        Cx = -(Y * np.log(a3)).sum(axis=1)
        dCda = -Y / a3
    if mistake == "factor_of_two":
        Cx, dCda = 2 * Cx, 2 * dCda
    if mistake == "target_minus_output":
        dCda = -dCda
    C = s * Cx.sum()

    def prime(a):
        if mistake == "missing_activation_derivative":
            return 1.0
        if mistake == "derivative_of_wrong_argument":
            return _sig(a) * (1 - _sig(a))
        return a * (1 - a)

    if sheet["out"] == "sigmoid":
        d3 = dCda * prime(a3)
    elif mistake == "softmax_diagonal_only":
        d3 = dCda * a3 * (1 - a3)
    else:
        d3 = a3 - Y  # softmax with cross-entropy
    gw3 = s * d3.T @ (z2 if mistake == "z_instead_of_a" else a2)
    if T:
        gw3 = gw3.T
    gb3 = s * d3.sum(axis=0)

    def update(theta, g, bias=False):
        if bias and mistake == "biases_not_updated":
            return theta
        if mistake == "update_sign":
            return theta + eta * g
        if mistake == "learning_rate_not_applied":
            return theta - g
        return theta - eta * g

    W3n, b3n = update(W3, gw3), update(b3, gb3, True)
    through = W3n if mistake == "updated_weights_in_backprop" else W3
    d2 = (d3 @ (through.T if T else through)) * prime(a2)
    gw2 = s * d2.T @ X
    if T:
        gw2 = gw2.T
    gb2 = s * d2.sum(axis=0)
    W2n, b2n = update(W2, gw2), update(b2, gb2, True)

    def rows(v):
        return v.tolist() if m > 1 else v[0].tolist()

    doc = {
        "z": {2: rows(z2), 3: rows(z3)},
        "a": {2: rows(a2), 3: rows(a3)},
        "loss": float(C),
        "delta": {3: rows(d3), 2: rows(d2)},
        "grad_weights": {3: gw3.tolist(), 2: gw2.tolist()},
        "grad_biases": {3: gb3.tolist(), 2: gb2.tolist()},
        "weights": {3: W3n.tolist(), 2: W2n.tolist()},
        "biases": {3: b3n.tolist(), 2: b2n.tolist()},
    }
    if m > 1:
        doc["losses"] = Cx.tolist()
    return doc


def sheet_config(sheet: dict) -> str:
    m = len(sheet["x"])
    doc = {
        ("inputs" if m > 1 else "input"): sheet["x"] if m > 1 else sheet["x"][0],
        ("targets" if m > 1 else "target"): sheet["y"] if m > 1 else sheet["y"][0],
        "loss": sheet["loss"],
        "learning_rate": sheet["eta"],
        "reduction": sheet["reduction"],
        "layers": [
            {"weights": sheet["w2"], "biases": sheet["b2"], "activation": "sigmoid"},
            {"weights": sheet["w3"], "biases": sheet["b3"], "activation": sheet["out"]},
        ],
    }
    return yaml.safe_dump(doc)


def test_the_hand_sheet_is_the_engines_step(tmp_path, run_cli) -> None:
    """The independent numpy of by_hand agrees with gradcalc on every variant sheet."""
    for sheet in [SHEET, *({**SHEET, **v} for v in VARIANTS.values())]:
        cfg = tmp_path / "net.yaml"
        cfg.write_text(sheet_config(sheet), encoding="utf-8")
        answers = tmp_path / "answers.json"
        answers.write_text(json.dumps(by_hand(sheet, None)), encoding="utf-8")
        result = run_cli(["check", str(cfg), str(answers), "--format", "json"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["score"] == doc["max_score"] > 20
        assert {c["verdict"] for c in doc["cells"]} == {"correct"}


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.id)
def test_each_mistake_by_hand_on_the_sheet(mistake: Mistake, tmp_path, run_cli) -> None:
    sheet = {**SHEET, **VARIANTS.get(mistake.id, {})}
    cfg = tmp_path / "net.yaml"
    cfg.write_text(sheet_config(sheet), encoding="utf-8")
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(by_hand(sheet, mistake.id)), encoding="utf-8")
    result = run_cli(["check", str(cfg), str(answers), "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    cells = doc["cells"]
    wrong = [c for c in cells if c["verdict"] == "wrong"]
    assert wrong, "the mistake changed no cell"
    # Named on every cell it affects, and only on the quantities it says it affects.
    assert all(c["mistake"] == mistake.id for c in wrong), wrong
    assert all(c["explanation"] == mistake.explanation for c in wrong)
    assert {c["quantity"] for c in wrong} <= set(mistake.quantities)
    # Every cell after the first error is the mistake again, carried, or right.
    first = cells.index(wrong[0])
    assert all(c["verdict"] in ("wrong", "carried", "correct") for c in cells[first:])
    assert doc["first_error"]["mistake"] == mistake.id
    assert doc["first_error"]["symbol"] == wrong[0]["symbol"]
    assert doc["first_error"]["later_wrong"] == len(wrong) - 1


def test_the_readme_lists_every_record_as_it_is() -> None:
    from doc_pages import section as doc_section

    section = doc_section("Known mistakes")
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) == len(MISTAKES)
    for row, mistake in zip(rows, MISTAKES, strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == f"`{mistake.id}`"
        assert cells[1].replace("\\|", "|") == mistake.explanation
        assert cells[2] == ", ".join(f"`{q}`" for q in mistake.quantities)
