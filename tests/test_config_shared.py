"""The network-level keys (input/inputs, target/targets, loss and upstream, learning_rate, steps,
reduction, optimizer, weight_decay, loss_at, the layers list, {file:} arrays) are read once, in
gradcalc/step/config.py, for dense and layered networks alike: the same config is refused with the
same one line, key path and line, and accepted with the same numbers, whichever kind of network
its layers make.

Every case runs the real command `gradcalc step FILE` on each kind: the dense network of
tests/test_config_errors.py, and the same network as a layered config (a flatten first, a flatten
between the dense layers, or a 1×1 conv1d over the input as a (1, L) sequence first).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_config_errors import refused

TOP = {
    "input": "[0.8, 0.7, 0.1]",
    "target": "[0.9]",
    "loss": "quadratic",
    "learning_rate": "1.0",
    "steps": "1",
}
HIDDEN = """\
  - weights: [[0.2, 0.3, 0.4], [-0.2, 0.1, 0.5]]
    biases: [-0.2, -0.2]
    activation: sigmoid
"""
OUTPUT = """\
  - weights: [[-0.3, 0.1]]
    biases: [-0.2]
    activation: sigmoid
"""
FLATTEN = "  - type: flatten\n"
CONV = "  - {type: conv1d, kernels: [[[1.0]]], biases: [0.0]}\n"
# kind: (how its input is written, its layers); every kind is the same network.
KINDS: dict[str, tuple[Callable[[str], str], str]] = {
    "dense": (str, HIDDEN + OUTPUT),
    "flatten-first": (str, FLATTEN + HIDDEN + OUTPUT),
    "flatten-between": (str, HIDDEN + FLATTEN + OUTPUT),
    "conv1d-first": (lambda x: f"[{x}]", CONV + FLATTEN + HIDDEN + OUTPUT),
}
LOSS = 0.1150703  # the cost of the network with TOP's example (tests/test_config_errors.py)


def config(kind: str, top: dict[str, str | None] | None = None, layers: str | None = None) -> str:
    """The config of one kind with TOP's keys changed (None: removed); new keys go last."""
    as_input, kind_layers = KINDS[kind]
    keys: dict[str, str | None] = {**TOP, **(top or {})}
    lines = []
    for key, value in keys.items():
        if value is None:
            continue
        if key in ("input", "inputs") and as_input is not str:
            value = (
                as_input(value) if key == "input" else f"[{', '.join(map(as_input, _rows(value)))}]"
            )
        lines.append(f"{key}: {value}\n")
    return "".join(lines) + "layers:\n" + (kind_layers if layers is None else layers)


def _rows(value: str) -> list[str]:
    """'[[1, 2], [3, 4]]' -> ['[1, 2]', '[3, 4]']."""
    return ["[" + row.strip(" []") + "]" for row in value.strip()[1:-1].split("],")]


@pytest.fixture
def step(run_cli, write_config, tmp_path: Path):
    """step(kind, text) -> the parsed JSON of `gradcalc step --format json`."""

    def run(kind: str, text: str) -> dict:
        folder = tmp_path / kind
        folder.mkdir(exist_ok=True)
        result = run_cli(["step", str(write_config(folder, text)), "--format", "json"])
        assert result.exit_code == 0, (kind, result.output)
        return json.loads(result.stdout)

    return run


# ---- refusals: the same line for every kind ------------------------------------------------

# (case id, TOP's keys changed, fragments, key path): each refusal of a network-level key.
REFUSALS: list[tuple[str, dict[str, str | None], tuple[str, ...], tuple[str | int, ...]]] = [
    ("no-input", {"input": None}, ("missing key 'input' (or 'inputs' for a batch)",), ()),
    ("no-target", {"target": None}, ("missing key 'target'",), ()),
    ("no-loss", {"loss": None}, ("missing key 'loss'",), ()),
    ("no-learning-rate", {"learning_rate": None}, ("missing key 'learning_rate'",), ()),
    ("unknown-key", {"learnig_rate": "1"}, ("did you mean 'learning_rate'",), ("learnig_rate",)),
    ("unknown-loss", {"loss": "quadratc"}, ("did you mean 'quadratic'",), ("loss",)),
    ("loss-parameter", {"loss": "{name: huber, delt: 0.5}"}, ("'delta'",), ("loss", "delt")),
    ("rate-zero", {"learning_rate": "0"}, ("must be > 0",), ("learning_rate",)),
    ("rate-quoted", {"learning_rate": "'0.5'"}, ("remove the quotes",), ("learning_rate",)),
    ("rate-boolean", {"learning_rate": "true"}, ("boolean",), ("learning_rate",)),
    ("steps-negative", {"steps": "-1"}, ("between 0 and",), ("steps",)),
    ("steps-fraction", {"steps": "1.5"}, ("whole number", "1.5"), ("steps",)),
    ("steps-quoted", {"steps": "'2'"}, ("remove the quotes",), ("steps",)),
    ("reduction", {"reduction": "avg"}, ("expected 'mean' or 'sum'",), ("reduction",)),
    ("optimizer", {"optimizer": "adma"}, ("did you mean 'adam'",), ("optimizer",)),
    ("optimizer-no-name", {"optimizer": "{momentum: 0.9}"}, ("'name'",), ("optimizer",)),
    (
        "optimizer-parameter",
        {"optimizer": "{name: adam, beta1: 1}"},
        ("< 1",),
        ("optimizer", "beta1"),
    ),
    ("weight-decay", {"weight_decay": "-0.1"}, ("must be ≥ 0",), ("weight_decay",)),
    ("weight-decay-word", {"weight_decay": "lots"}, ("expected a number",), ("weight_decay",)),
    ("loss-at", {"loss_at": "last"}, ("'loss_at' is for a sequence input",), ("loss_at",)),
    (
        "upstream-without-its-loss",
        {"upstream": "[1.0]"},
        ("given ∂C/∂a of 'loss: upstream'",),
        ("upstream",),
    ),
    (
        "target-with-upstream-loss",
        {"loss": "upstream", "upstream": "[1.0]"},
        ("not a target",),
        ("target",),
    ),
    (
        "no-upstream",
        {"loss": "upstream", "target": None},
        ("missing key 'upstream' (∂C/∂a of the last layer's output)",),
        (),
    ),
    ("target-and-targets", {"targets": "[[0.9]]"}, ("not both",), ("targets",)),
    (
        "input-with-targets",
        {"target": None, "targets": "[[0.9]]"},
        ("'input' goes with 'target'", "rename 'targets'"),
        ("targets",),
    ),
    (
        "inputs-with-target",
        {"input": None, "inputs": "[[0.8, 0.7, 0.1]]"},
        ("'inputs' goes with 'targets'", "rename 'target'"),
        ("target",),
    ),
    (
        "input-and-inputs",
        {"inputs": "[[0.8, 0.7, 0.1]]"},
        ("give either 'input' (one example) or 'inputs' (a batch), not both",),
        ("inputs",),
    ),
    ("hinge-target", {"loss": "hinge"}, ("loss 'hinge'",), ("target",)),
    ("cross-entropy-target", {"loss": "cross_entropy", "target": "[-0.5]"}, ("y",), ("target",)),
]


@pytest.mark.parametrize(
    ("changes", "fragments", "key"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_a_network_level_refusal_is_the_same_for_every_kind(
    run_cli, tmp_path: Path, monkeypatch, changes, fragments, key
) -> None:
    monkeypatch.chdir(tmp_path)  # short file names: the message shortens a long one
    messages = {}
    for kind in KINDS:
        text = config(kind, changes)
        line = None
        if key:  # the line of the key the message names
            line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith(f"{key[0]}:"))
        path = Path(kind, "config.yaml")
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        body = refused(run_cli, path, *fragments, line=line, key=key or None)
        messages[kind] = body.replace(str(path), "FILE")
    assert len(set(messages.values())) == 1, messages


@pytest.mark.parametrize(
    "layers", ["[]", "5", "null", "{sizes: [1, 1], activation: tanh, init: zeros}"]
)
@pytest.mark.parametrize("data", ["sequence: [[1.0], [2.0]]", "tokens: [0, 1]"])
def test_a_sequence_network_whose_layers_are_not_a_list_is_refused(
    run_cli, write_config, tmp_path: Path, layers: str, data: str
) -> None:
    """A sequence (or tokens) input makes the network layered before its layers are read: a
    `layers:` that is not a list of layers was an IndexError or TypeError with a traceback."""
    text = f"{data}\ntargets: [[1.0], [2.0]]\nloss: quadratic\nlearning_rate: 1\nlayers: {layers}\n"
    refused(
        run_cli,
        write_config(tmp_path, text),
        "expected a list of layers",
        key=("layers",),
        line=5,
    )


# ---- acceptance: the same numbers for every kind ----------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"target": "0.9"},  # a single output written as a number
        {"loss": "upstream", "target": None, "upstream": "-0.5"},
    ],
    ids=["list", "target-number", "upstream-number"],
)
def test_a_single_output_may_be_written_as_a_number(step, kind: str, changes) -> None:
    loss = step(kind, config(kind, changes))["steps"][0]["loss"]
    if "upstream" in changes:
        a = step("dense", config("dense", {"target": "[0.9]"}))["steps"][0]["layers"][-1]["a"]
        assert loss == pytest.approx(-0.5 * a[0], rel=1e-12)
    else:
        assert loss == pytest.approx(LOSS, rel=1e-6)


ONE_INPUT = "  - {weights: [[0.5], [-1.0]], biases: [0.1, 0.2], activation: tanh}\n" + OUTPUT


@pytest.mark.parametrize(
    "layers",
    [ONE_INPUT, FLATTEN + ONE_INPUT, ONE_INPUT.replace("\n", "\n" + FLATTEN, 1)],
    ids=["dense", "flatten-first", "flatten-between"],
)
def test_single_value_examples_may_be_written_flat(step, layers: str) -> None:
    """A network taking one value: `input: 0.5` is `input: [0.5]`, and `inputs: [0.5, 0.1]`
    is `inputs: [[0.5], [0.1]]`, whatever its layers (a layered network whose first layer is
    dense refused both)."""

    def losses(top: dict[str, str | None]) -> list[float]:
        doc = step("x", config("dense", top, layers))
        return [s["loss"] for s in doc["steps"]]

    assert losses({"input": "0.5"}) == losses({"input": "[0.5]"})
    batch = {"input": None, "target": None, "targets": "[[0.9], [0.1]]"}
    flat = losses({**batch, "inputs": "[0.5, 0.1]"})
    assert flat == losses({**batch, "inputs": "[[0.5], [0.1]]"})
    # the cost, written independently: ½ Σ (a − y)², the mean over the two examples
    w2, b2 = np.array([[-0.3, 0.1]]), np.array([-0.2])
    costs = []
    for x, y in ((0.5, 0.9), (0.1, 0.1)):
        a1 = np.tanh(np.array([0.5, -1.0]) * x + np.array([0.1, 0.2]))
        a2 = 1 / (1 + np.exp(-(w2 @ a1 + b2)))
        costs.append(0.5 * float(np.sum((a2 - y) ** 2)))
    assert flat[0] == pytest.approx(np.mean(costs), rel=1e-12)


INIT_OUTPUT = (
    "  - {weights: {init: he_normal, seed: 0}, biases: {init: zeros}, activation: sigmoid}\n"
)


@pytest.mark.parametrize("kind", ["dense", "flatten-first", "flatten-between"])
@pytest.mark.parametrize(
    ("changes", "width"),
    [
        ({"target": "[0.9, 0.1]"}, 2),
        ({"target": "0.9"}, 1),
        ({"target": {"file": [0.9, 0.1, 0.5]}}, 3),
        ({"loss": "upstream", "target": None, "upstream": "[1.0, -1.0]"}, 2),
    ],
    ids=["target", "target-number", "target-file", "upstream"],
)
def test_an_initialized_output_layer_takes_its_width_from_what_it_is_compared_with(
    step, tmp_path: Path, kind: str, changes, width: int
) -> None:
    """An output layer drawn by an initializer without units: has as many units as the targets
    (or the given ∂C/∂a) have values; a layered network refused a number, a file, or upstream."""
    changes = dict(changes)
    if isinstance(changes.get("target"), dict):
        (tmp_path / kind).mkdir()
        np.save(tmp_path / kind / "y.npy", np.array(changes["target"]["file"]))
        changes["target"] = "{file: y.npy}"
    layers = KINDS[kind][1].replace(OUTPUT, INIT_OUTPUT)
    doc = step(kind, config(kind, changes, layers))
    assert doc["sizes"][-1] == width
    assert np.size(doc["steps"][0]["layers"][-1]["a"]) == width


@pytest.mark.parametrize("kind", ["dense", "flatten-between"])
@pytest.mark.parametrize("key", ["input", "target", "upstream"])
def test_an_array_file_of_the_wrong_shape_names_its_file_key(
    run_cli, tmp_path: Path, kind: str, key: str
) -> None:
    """A one-example key whose file holds a batch is refused at `input.file` / `target.file` /
    `upstream.file`, the key the array came from (a layered network named `input`), and a hint
    names a key that exists (a dense network's said "use '-' for a batch" for upstream)."""
    np.save(tmp_path / "a.npy", np.zeros((2, 3 if key == "input" else 1)))
    changes: dict[str, str | None] = {key: "{file: a.npy}"}
    if key == "upstream":
        changes.update(loss="upstream", target=None)
    text = config(kind, changes)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith(f"{key}:"))
    body = refused(run_cli, path, key=(key, "file"), line=line)
    assert "'-'" not in body


@pytest.mark.parametrize("kind", ["dense", "flatten-first", "flatten-between"])
def test_a_number_in_an_array_file_is_one_value(step, tmp_path: Path, kind: str) -> None:
    """A 0-d .npy file is a one-value example or target, as a number written in the config (a
    dense network refused it: 'the file holds shape []')."""
    (tmp_path / kind).mkdir()
    np.save(tmp_path / kind / "x.npy", np.array(0.5))
    np.save(tmp_path / kind / "y.npy", np.array(0.9))
    layers = {
        "dense": ONE_INPUT,
        "flatten-first": FLATTEN + ONE_INPUT,
        "flatten-between": ONE_INPUT.replace("\n", "\n" + FLATTEN, 1),
    }[kind]
    files = step(
        kind, config("dense", {"input": "{file: x.npy}", "target": "{file: y.npy}"}, layers)
    )
    inline = step(kind, config("dense", {"input": "0.5", "target": "0.9"}, layers))
    assert files["steps"][0]["loss"] == inline["steps"][0]["loss"]


@pytest.mark.parametrize("kind", ["dense", "flatten-first"])
@pytest.mark.parametrize(
    ("whole", "written"),
    [("seed: 3", "seed: 3.0"), ("units: 1", "units: 1.0"), ("seed: 20", "seed: 2E1")],
    ids=["seed", "units", "seed-exponent"],
)
def test_initializer_numbers_are_whole_however_written(
    step, kind: str, whole: str, written: str
) -> None:
    """`seed:` and `units:` take 3.0 and 2E1 as steps: and a conv layer's channels: do (they
    refused them: 'expected a whole number ≥ 0, got a number (3.0)')."""
    init = f"  - {{weights: {{init: he_normal, {whole}}}, biases: [0.0], activation: sigmoid}}\n"
    layers = KINDS[kind][1].replace(OUTPUT, init)
    if "units" not in whole:
        layers = layers.replace(", biases: [0.0]", ", biases: {init: zeros, seed: 1}")
    doc = step(kind, config(kind, {}, layers))
    again = step(kind + "-written", config(kind, {}, layers.replace(whole, written)))
    assert again["parameters"] == doc["parameters"]
    assert again["steps"][0]["loss"] == doc["steps"][0]["loss"]


def test_shorthand_sizes_are_whole_however_written(step) -> None:
    shorthand = "  {sizes: [3, 2, 1], activation: sigmoid, init: he_normal, seed: 1}\n"
    doc = step("ints", config("dense", {}, "").replace("layers:\n", "layers:\n" + shorthand))
    floats = shorthand.replace("[3, 2, 1]", "[3.0, 2E0, 1]")
    again = step("floats", config("dense", {}, "").replace("layers:\n", "layers:\n" + floats))
    assert again["sizes"] == doc["sizes"] == [3, 2, 1]
    assert again["steps"][0]["loss"] == doc["steps"][0]["loss"]
