"""The dense registry's named mistakes (gradcalc/check/mistakes.py) on networks of layer records:
a dense head after a convolution, an RNN, a batch norm and an attention layer.

Each case is one mistake on one network: the `gradcalc step --format json` document of the
network is the student's sheet, with the cells the mistake changes replaced by what a student
who made it writes, worked here in numpy from the equations and the config's numbers (never by
the mistake's own function). Graded through the real command, every changed cell is ✗ with
this mistake named, and no cell anywhere names another; the unchanged document names none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcalc.check.mistakes import MISTAKES, REGISTRY

M = 3  # examples in every batch: a mean then differs from a sum by 3, not by the ½ of C
ETA = 0.5
TARGETS = [[0.2, 0.7], [0.6, 0.1], [0.4, 0.4]]
# The head every network ends with: a square tanh layer, then a square sigmoid output layer.
HEAD = [
    {"weights": [[0.6, -0.4], [0.3, 0.9]], "biases": [0.1, 0.2], "activation": "tanh"},
    {"weights": [[0.7, -0.5], [0.4, 0.8]], "biases": [-0.1, 0.3], "activation": "sigmoid"},
]

BODIES: dict[str, dict[str, Any]] = {
    "conv": {
        "inputs": np.round(np.random.default_rng(1).uniform(-1, 1, (M, 1, 4, 4)), 2).tolist(),
        "layers": [
            {
                "type": "conv2d",
                "kernels": np.round(
                    np.random.default_rng(2).uniform(-1, 1, (2, 1, 3, 3)), 2
                ).tolist(),
                "biases": [0.1, -0.2],
                "activation": "tanh",
            },
            {"type": "maxpool2d", "size": 2},
            {"type": "flatten"},
        ],
    },
    "rnn": {
        "sequences": [
            [[0.5, -0.2], [0.1, 0.4], [-0.3, 0.2]],
            [[0.2, 0.1], [-0.4, 0.3], [0.5, 0.5]],
            [[-0.1, -0.3], [0.3, -0.2], [0.2, 0.1]],
        ],
        "layers": [
            {
                "type": "rnn",
                "weights_input": [[0.5, -0.3], [0.2, 0.8]],
                "weights_hidden": [[0.1, 0.4], [-0.5, 0.3]],
                "biases": [0.1, -0.2],
                "activation": "tanh",
                "return": "last",
            }
        ],
        # a = x + tanh(z) in the hidden layer: ∂C/∂x gains ∂C/∂a, f′ is taken at z alone
        "residual": True,
    },
    "batchnorm": {
        "inputs": [[1.0, 2.0, -1.0], [3.0, 0.0, 0.5], [2.0, 1.0, 1.5]],
        "layers": [
            {
                "weights": [[0.5, -0.5, 0.2], [0.25, 1.0, -0.3]],
                "biases": [0.0, 0.1],
                "activation": "linear",
            },
            {"type": "batchnorm", "gamma": [1.0, 0.5], "beta": [0.0, 0.1], "activation": "linear"},
        ],
    },
    "attention": {
        "tokens": [[1, 2], [0, 3], [2, 2]],
        "layers": [
            {
                "type": "embedding",
                "table": [[0.5, -0.5], [1.0, 0.0], [0.0, 1.0], [0.3, 0.6]],
                "activation": "linear",
            },
            {
                "type": "attention",
                "heads": 1,
                "wq": [[1.0, 0.0], [1.0, 1.0]],
                "wk": [[1.0, 0.0], [0.0, -1.0]],
                "wv": [[1.0, 2.0], [0.0, 1.0]],
                "bq": [0.1, 0.0],
                "bv": [0.0, -0.2],
                "activation": "linear",
            },
            {"type": "meanpool"},
        ],
    },
}

# What each mistake needs to show: a softmax output for the Jacobian's diagonal, a summed
# cost for a mean in its place.
VARIANTS: dict[str, dict[str, Any]] = {
    "softmax_diagonal_only": {"output": "softmax"},
    "mean_instead_of_sum": {"reduction": "sum"},
}


def config(body: str, output: str = "sigmoid", reduction: str = "mean") -> dict[str, Any]:
    net = {k: v for k, v in BODIES[body].items() if k not in ("layers", "residual")}
    head = [dict(layer) for layer in HEAD]
    head[-1]["activation"] = output
    if BODIES[body].get("residual"):
        head[0]["residual"] = True
    return {
        **net,
        "targets": TARGETS,
        "loss": "quadratic",
        "learning_rate": ETA,
        "reduction": reduction,
        "layers": [*BODIES[body]["layers"], *head],
    }


def _step(run_cli: Any, path: Path) -> dict[str, Any]:
    result = run_cli(["step", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _check(run_cli: Any, path: Path, sheet: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    result = run_cli(["check", str(path), "-", "--format", "json"], input=json.dumps(sheet))
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)["cells"]


# ---- the mistaken values, from the equations ------------------------------------------------


def sigmoid(u: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-u))


class Sheet:
    """The exact step document, read as the student's own numbers, and the config's."""

    def __init__(self, cfg: dict[str, Any], doc: dict[str, Any]) -> None:
        self.cfg, self.doc = cfg, doc
        self.step = doc["steps"][0]
        self.records = self.step["layers"]
        self.y = np.array(TARGETS)

    def get(self, i: int, q: str) -> np.ndarray:
        record = self.records[i]
        if q.startswith("grad_") and q != "grad_input":
            return np.array(record["grads"][q[5:]])
        return np.array(record[q])

    def before(self, i: int, name: str) -> np.ndarray:
        """A parameter as the config gives it (before the step)."""
        key = {"weight_ih": "weights_input", "weight_hh": "weights_hidden"}.get(name, name)
        return np.array(self.cfg["layers"][i][key], dtype=float)

    def after(self, i: int, name: str) -> np.ndarray:
        return np.array(self.records[i]["params"][name])

    def dense(self) -> list[int]:
        return [i for i, r in enumerate(self.records) if r["type"] == "dense"]

    def x(self, i: int) -> np.ndarray:
        """The input of record i: the output of the one before (a, which is z without f)."""
        return self.get(i - 1, "a")

    def residual(self, i: int) -> bool:
        return bool(self.cfg["layers"][i].get("residual"))

    def f(self, i: int) -> np.ndarray:
        """f(z) of record i: its a, less its input where a residual adds it."""
        return self.get(i, "a") - self.x(i) if self.residual(i) else self.get(i, "a")

    def bp2(self, i: int, w: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """∂C/∂x of dense record i through the weights w from its δ, with the residual path
        (its ∂C/∂a, as the sheet gives it)."""
        grad_x = self.get(i, "delta") @ w
        return grad_x + grad_a if self.residual(i) else grad_x


def _prime(activation: str, u: np.ndarray) -> np.ndarray:
    if activation == "tanh":
        return 1 - np.tanh(u) ** 2
    assert activation == "sigmoid"
    return sigmoid(u) * (1 - sigmoid(u))


def _activated(s: Sheet) -> list[int]:
    """The records with an elementwise f other than the identity (conv's tanh, the head's)."""
    return [i for i, r in enumerate(s.records) if r["activation"] in ("tanh", "sigmoid")]


def _grad_a(s: Sheet, i: int) -> np.ndarray:
    """∂C_x/∂a of record i: a − y (quadratic cost) at the output, else the next ∂C/∂x."""
    if i == len(s.records) - 1:
        return s.get(i, "a") - s.y
    return s.get(i + 1, "grad_input").reshape(s.get(i, "a").shape)


Cells = dict[tuple[int | None, str], np.ndarray]  # (record index or None, quantity) -> value
Make = Callable[[Sheet], Cells]


def missing_activation_derivative(s: Sheet) -> Cells:
    return {(i, "delta"): _grad_a(s, i) for i in _activated(s)}


def derivative_of_wrong_argument(s: Sheet) -> Cells:
    return {
        (i, "delta"): _grad_a(s, i) * _prime(s.records[i]["activation"], s.f(i))
        for i in _activated(s)
    }


def factor_of_two(s: Sheet) -> Cells:
    out = len(s.records) - 1
    return {
        (None, "loss"): 2 * np.array(s.step["loss"]),
        (None, "losses"): 2 * np.array(s.step["losses"]),
        (out, "delta"): 2 * s.get(out, "delta"),
    }


def target_minus_output(s: Sheet) -> Cells:
    out = len(s.records) - 1
    a = s.get(out, "a")
    return {(out, "delta"): (s.y - a) * a * (1 - a)}


def softmax_diagonal_only(s: Sheet) -> Cells:
    out = len(s.records) - 1
    a = s.get(out, "a")
    return {(out, "delta"): (a - s.y) * a * (1 - a)}


def _every_gradient(s: Sheet, factor: float) -> Cells:
    cells: Cells = {}
    for i, record in enumerate(s.records):
        for name in record["grads"]:
            cells[(i, f"grad_{name}")] = factor * s.get(i, f"grad_{name}")
    return cells


def sum_instead_of_mean(s: Sheet) -> Cells:
    return {(None, "loss"): np.sum(s.step["losses"]), **_every_gradient(s, M)}


def mean_instead_of_sum(s: Sheet) -> Cells:
    return {(None, "loss"): np.mean(s.step["losses"]), **_every_gradient(s, 1 / M)}


def _every_update(s: Sheet, step: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Cells:
    cells: Cells = {}
    for i, record in enumerate(s.records):
        for name in record["params"]:
            cells[(i, name)] = step(s.before(i, name), s.get(i, f"grad_{name}"))
    return cells


def update_sign(s: Sheet) -> Cells:
    return _every_update(s, lambda theta, g: theta + ETA * g)


def learning_rate_not_applied(s: Sheet) -> Cells:
    return _every_update(s, lambda theta, g: theta - g)


BIASES = ("biases", "beta", "bq", "bk", "bv", "bo")


def biases_not_updated(s: Sheet) -> Cells:
    return {
        (i, name): s.before(i, name)
        for i, record in enumerate(s.records)
        for name in record["params"]
        if name in BIASES
    }


def updated_weights_in_backprop(s: Sheet) -> Cells:
    """∂C/∂x of the output layer through its updated w; δ of the body's last layer (f = the
    identity) through the hidden layer's updated w (its ∂C/∂x left as it was)."""
    out, hidden = len(s.records) - 1, len(s.records) - 2
    grad_input = s.bp2(out, s.after(out, "weights"), _grad_a(s, out))
    return {
        (out, "grad_input"): grad_input,
        (hidden - 1, "delta"): s.bp2(hidden, s.after(hidden, "weights"), grad_input),
    }


def transposed_weights(s: Sheet) -> Cells:
    out, hidden = len(s.records) - 1, len(s.records) - 2
    w = s.before(out, "weights")
    grad_input = s.bp2(out, w.T, _grad_a(s, out))
    return {
        (out, "z"): s.x(out) @ w + s.before(out, "biases"),
        (out, "grad_weights"): s.get(out, "grad_weights").T,
        (out, "grad_input"): grad_input,
        (hidden - 1, "delta"): s.bp2(hidden, s.before(hidden, "weights").T, grad_input),
    }


def bias_omitted(s: Sheet) -> Cells:
    return {
        (i, "z"): (s.x(i) if i else np.array(s.cfg["inputs"])) @ s.before(i, "weights").T
        for i in s.dense()
    }


def z_instead_of_a(s: Sheet) -> Cells:
    out, hidden = len(s.records) - 1, len(s.records) - 2
    return {(out, "grad_weights"): s.get(out, "delta").T @ s.get(hidden, "z") / M}


BY_HAND: dict[str, Make] = {
    f.__name__: f
    for f in (
        softmax_diagonal_only,
        sum_instead_of_mean,
        mean_instead_of_sum,
        missing_activation_derivative,
        derivative_of_wrong_argument,
        factor_of_two,
        target_minus_output,
        update_sign,
        learning_rate_not_applied,
        updated_weights_in_backprop,
        transposed_weights,
        bias_omitted,
        z_instead_of_a,
        biases_not_updated,
    )
}


def test_every_registry_mistake_has_a_layered_form_worked_here() -> None:
    assert set(BY_HAND) == {m.id for m in MISTAKES if m.layered is not None} == set(REGISTRY)


def _put(doc: dict[str, Any], cells: Cells) -> None:
    step = doc["steps"][0]
    for (i, q), value in cells.items():
        if i is None:
            step[q] = value.tolist()
        elif q.startswith("grad_") and q != "grad_input":
            step["layers"][i]["grads"][q[5:]] = value.tolist()
        elif q in step["layers"][i]["params"]:
            step["layers"][i]["params"][q] = value.tolist()
        else:
            step["layers"][i][q] = value.tolist()


def _changed(s: Sheet, cells: Cells) -> int:
    """How many numbers the mistake moves beyond check's tolerance of a right answer (its
    defaults, --rtol 1e-4 and --atol 1e-6)."""
    count = 0
    for (i, q), value in cells.items():
        if i is None:
            right = np.array(s.step[q])
        elif q in s.records[i]["params"]:
            right = s.after(i, q)
        else:
            right = s.get(i, q)
        count += int(np.sum(np.abs(value - right) > 1e-6 + 1e-4 * np.abs(right)))
    return count


CASES = [(body, name) for body in BODIES for name in BY_HAND]


@pytest.mark.parametrize(("body", "name"), CASES, ids=[f"{b}-{n}" for b, n in CASES])
def test_each_mistake_is_named_on_a_layered_network_and_nothing_else(
    run_cli: Any, tmp_path: Path, body: str, name: str
) -> None:
    variant = VARIANTS.get(name, {})
    cfg = config(body, **variant)
    text = json.dumps(cfg)
    path = tmp_path / "net.json"
    path.write_text(text, encoding="utf-8")
    doc = _step(run_cli, path)
    sheet = Sheet(cfg, doc)
    cells = BY_HAND[name](sheet)
    changed = _changed(sheet, cells)
    assert changed, "the mistake changed no cell"
    _put(doc, cells)
    status, graded = _check(run_cli, path, doc)
    assert status == 1
    wrong = [c for c in graded if c["verdict"] == "wrong"]
    # C worked from the doubled C_x follows from them: ↳, as on a dense network.
    carried = ["C"] if name == "factor_of_two" else []
    assert [c["symbol"] for c in graded if c["verdict"] == "carried"] == carried
    assert len(wrong) == changed - len(carried), [
        (c["symbol"], c["answer"], c["expected"]) for c in wrong
    ]
    assert all(c["mistake"] == name for c in wrong), {c["symbol"]: c["mistakes"] for c in wrong}
    assert all(c["mistakes"] == [name] for c in wrong), {c["symbol"]: c["mistakes"] for c in wrong}
    assert all(c["explanation"] == REGISTRY[name].explanation for c in wrong)
    assert {c["mistake"] for c in graded if c["mistake"]} == {name}


@pytest.mark.parametrize(
    ("body", "variant"),
    [(b, v) for b in BODIES for v in ({}, *VARIANTS.values())],
)
def test_the_right_answers_name_no_mistake(
    run_cli: Any, tmp_path: Path, body: str, variant: dict[str, Any]
) -> None:
    text = json.dumps(config(body, **variant))
    path = tmp_path / "net.json"
    path.write_text(text, encoding="utf-8")
    status, graded = _check(run_cli, path, _step(run_cli, path))
    assert status == 0
    assert graded and all(c["verdict"] == "correct" for c in graded)
    assert not any(c["mistake"] for c in graded)


@pytest.mark.parametrize("factor", [-1.0, 2.0])
def test_the_output_mistakes_need_a_target(run_cli: Any, tmp_path: Path, factor: float) -> None:
    """With `loss: upstream` (∂C/∂a given, no target, no ½) δ^L negated or doubled is wrong, and
    neither target_minus_output nor factor_of_two is named."""
    cfg = {**config("conv"), "loss": "upstream", "upstream": TARGETS}
    del cfg["targets"]
    path = tmp_path / "net.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    doc = _step(run_cli, path)
    out = doc["steps"][0]["layers"][-1]
    out["delta"] = (factor * np.array(out["delta"])).tolist()
    status, graded = _check(run_cli, path, doc)
    assert status == 1
    wrong = [c for c in graded if c["verdict"] == "wrong"]
    assert len(wrong) == M * 2 and not any(c["mistakes"] for c in graded)


# attention.py's own record of the softmax's diagonal (its scores' softmax, its own text), which
# came before this registry's record reached layered networks: the two are to be made one.
TWO_TEXTS: set[str] = set()


def test_each_id_has_one_text_and_dense_lists_its_own(run_cli: Any) -> None:
    """`gradcalc list layers` shows the dense type's mistakes as the registry's records say them,
    and no other id is defined twice with two texts."""
    from gradcalc.check.mistakes import DENSE_LAYER

    rows = json.loads(run_cli(["list", "layers", "--format", "json"]).stdout)["layers"]
    dense = next(r for r in rows if r["name"] == "dense")
    assert [m["name"] for m in dense["mistakes"]] == list(DENSE_LAYER)
    assert [m["description"] for m in dense["mistakes"]] == [
        REGISTRY[i].explanation for i in DENSE_LAYER
    ]
    texts: dict[str, set[str]] = {m.id: {m.explanation} for m in MISTAKES}
    for row in rows:
        for m in row["mistakes"]:
            texts.setdefault(m["name"], set()).add(m["description"])
    assert {name for name, t in texts.items() if len(t) > 1} == TWO_TEXTS


def test_the_docs_say_where_each_applies_in_a_layered_network() -> None:
    from doc_pages import section

    rows = [line for line in section("Known mistakes").splitlines() if line.startswith("| `")]
    cells = {row.split("`")[1]: row.strip("|").split(" | ") for row in rows}
    assert set(cells) == set(REGISTRY)
    assert all(len(c) == 4 and c[3].strip() for c in cells.values())
