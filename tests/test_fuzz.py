"""Property-based fuzzing of every command through the real CLI (click's runner).

Generated inputs: valid configs, nearly valid ones (one mutation of a valid config), corrupted
YAML text and bytes, and argument lists for step, derive, list and examples. Whatever comes in:
no exception escapes, the exit status is one the README's table gives for that command, an
error is one non-empty line on stderr, a success writes nothing on stderr and its JSON parses
without NaN or Infinity; and for valid smooth configs the gradients equal central differences of
a cost written independently here in numpy.

A fixed seed and a few hundred examples by default; GRADCALC_FUZZ_EXAMPLES=20000 for a long run
(each test gets that many).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gradcalc.cli import cli
from gradcalc.functions.activations import REGISTRY as ACTIVATIONS
from gradcalc.functions.losses import REGISTRY as LOSSES

EXAMPLES = int(os.environ.get("GRADCALC_FUZZ_EXAMPLES", "0")) or None
ROOT = Path(__file__).resolve().parent.parent
WORKED = ROOT / "configs" / "worked-example.yaml"

# The README's table: the statuses each command may end with (130 and 128+N need a signal).
STATUSES = {
    "step": {0, 1, 2},
    "derive": {0, 2, 3},
    "list": {0, 2},
    "examples": {0, 2},
    "completion": {0, 2},
    "check": {0, 1, 2},
}


def fuzz_settings(default: int) -> settings:
    return settings(
        max_examples=EXAMPLES or default,
        derandomize=True,  # a fixed seed: the same examples on every run
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def invoke(args: list[str], input: bytes | str | None = None):
    return CliRunner().invoke(cli, args, input=input, env={"COLUMNS": "100"})


def _format(args: list[str]) -> str | None:
    """The format a successful run printed on stdout: click takes the last --format given."""
    if {"-h", "--help", "-o", "--template"} & set(args):
        return None  # help, a file, or check's blank sheet (YAML)
    given = [args[i + 1] for i in range(len(args) - 1) if args[i] == "--format"]
    return given[-1] if given else None


def check_result(command: str, args: list[str], result) -> dict | None:
    """The invariants every run must keep; returns the parsed JSON of a successful JSON run."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        pytest.fail(f"exception escaped for {args!r}:\n{trace}")
    with contextlib.suppress(Exception):  # outside a hypothesis run there is no statistics
        event(f"{command} exit {result.exit_code}")
    assert result.exit_code in STATUSES[command], (args, result.exit_code, result.output[-500:])
    if command == "check" and result.exit_code == 1:
        # A wrong cell is a verdict, not an error: the report is the output, as diff's is.
        assert result.stdout and "Traceback" not in result.output, (args, result.output)
        return None
    if result.exit_code != 0:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].strip(), (args, result.stderr)
        assert "Traceback" not in result.stderr
        if result.exit_code != 3:
            return None
    else:
        assert result.stderr == "", (args, result.stderr)
    if _format(args) == "json" and result.exit_code == 0:
        return json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c}: {args!r}"))
    return None


# ---- configs -----------------------------------------------------------------------------

SMOOTH_HIDDEN = ["identity", "sigmoid", "tanh", "softplus", "silu"]
ALL_HIDDEN = [name for name, rec in ACTIVATIONS.items() if rec.elementwise and name == rec.name]
SMOOTH_PAIRS = [  # (output activation, loss): smooth, and the loss's domain holds
    (act, loss) for act in SMOOTH_HIDDEN for loss in ("quadratic", "mse")
] + [
    ("sigmoid", "binary_cross_entropy"),
    ("sigmoid", "cross_entropy"),
    ("softmax", "cross_entropy"),
    ("softmax", "binary_cross_entropy"),
    ("softmax", "quadratic"),
    ("tanh", "cosine"),
    ("sigmoid", "cosine"),
]
OTHER_PAIRS = [(act, loss) for act in ALL_HIDDEN for loss in ("l1", "huber", "hinge", "quadratic")]

numbers = st.floats(-2.0, 2.0, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def configs(draw, smooth: bool = True) -> dict:
    sizes = [draw(st.integers(1, 3)) for _ in range(draw(st.integers(2, 4)))]
    out_act, loss = draw(st.sampled_from(SMOOTH_PAIRS if smooth else SMOOTH_PAIRS + OTHER_PAIRS))
    if out_act == "softmax" and sizes[-1] < 2:
        sizes[-1] = 2
    examples = draw(st.integers(1, 3))
    hidden = SMOOTH_HIDDEN if smooth else ALL_HIDDEN

    def target() -> list[float]:
        n = sizes[-1]
        if loss == "cross_entropy" and out_act == "softmax":
            return [1.0 if j == draw(st.integers(0, n - 1)) else 0.0 for j in range(n)][:n]
        if loss in ("cross_entropy", "binary_cross_entropy"):
            return [draw(st.sampled_from([0.0, 0.25, 1.0])) for _ in range(n)]
        if loss == "hinge":
            return [draw(st.sampled_from([-1.0, 1.0])) for _ in range(n)]
        if loss == "cosine":
            return [draw(st.sampled_from([0.5, 1.0])) for _ in range(n)]
        return [draw(numbers) for _ in range(n)]

    def row(n: int) -> list[float]:
        return [draw(numbers) for _ in range(n)]

    xs = [row(sizes[0]) for _ in range(examples)]
    ys = [target() for _ in range(examples)]
    config: dict = {}
    if examples == 1 and draw(st.booleans()):
        config |= {"input": xs[0], "target": ys[0]}
    else:
        config |= {"inputs": xs, "targets": ys}
        if draw(st.booleans()):
            config["reduction"] = draw(st.sampled_from(["mean", "sum"]))
    config["loss"] = loss if loss != "huber" else {"name": "huber", "delta": 0.5}
    config["learning_rate"] = draw(st.sampled_from([0.01, 0.1, 0.5, 1.0]))
    config["steps"] = draw(st.integers(0, 3))
    layers = []
    for l in range(1, len(sizes)):
        act = out_act if l == len(sizes) - 1 else draw(st.sampled_from(hidden))
        layers.append(
            {
                "weights": [row(sizes[l - 1]) for _ in range(sizes[l])],
                "biases": row(sizes[l]),
                "activation": act,
            }
        )
    config["layers"] = layers
    return config


def to_yaml(config: dict, block: bool) -> str:
    if not block:
        return json.dumps(config)  # JSON is YAML (flow style)
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


# An independent cost, written here: feedforward in numpy and each loss from its formula.
def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    s = 1 / (1 + np.exp(-z))
    return {
        "identity": z,
        "sigmoid": s,
        "tanh": np.tanh(z),
        "softplus": np.log1p(np.exp(z)),
        "silu": z * s,
    }[name]


def _loss(name: str, a: np.ndarray, y: np.ndarray, z: np.ndarray, out: str) -> np.ndarray:
    # The log losses from z (ln σ(z) = −ln(1 + e^(−z))): 1 − σ(12) in float64 keeps 11 digits,
    # too few for a difference quotient.
    if name == "binary_cross_entropy" and out == "sigmoid":
        return (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)).sum(-1)
    if name == "cross_entropy" and out == "sigmoid":
        return (y * np.logaddexp(0, -z)).sum(-1)
    if name == "cross_entropy" and out == "softmax":
        lse = np.logaddexp.reduce(z, axis=-1, keepdims=True)
        return (y * (lse - z)).sum(-1)
    if name == "binary_cross_entropy" and out == "softmax":
        # ln(1 − s_j) = ln Σ_{k≠j} e^(z_k) − ln Σ_k e^(z_k): no 1 − s_j that rounds to 0.
        lse = np.logaddexp.reduce(z, axis=-1, keepdims=True)
        rest = np.stack(
            [np.logaddexp.reduce(np.delete(z, j, axis=-1), axis=-1) for j in range(z.shape[-1])],
            axis=-1,
        )
        return -(y * (z - lse) + (1 - y) * (rest - lse)).sum(-1)
    if name == "quadratic":
        return 0.5 * ((y - a) ** 2).sum(-1)
    if name == "mse":
        return ((y - a) ** 2).mean(-1)
    if name == "cross_entropy":
        return -(np.where(y > 0, y * np.log(np.where(y > 0, a, 1)), 0)).sum(-1)
    if name == "binary_cross_entropy":
        return -(y * np.log(a) + (1 - y) * np.log(1 - a)).sum(-1)
    if name == "cosine":
        return 1 - (y * a).sum(-1) / (np.linalg.norm(y, axis=-1) * np.linalg.norm(a, axis=-1))
    raise AssertionError(name)


def _cost(config: dict, weights: list[np.ndarray], biases: list[np.ndarray]) -> float:
    x = np.array(config.get("inputs", [config.get("input")]), dtype=float)
    y = np.array(config.get("targets", [config.get("target")]), dtype=float)
    a = z = x
    for layer, w, b in zip(config["layers"], weights, biases, strict=True):
        z = a @ w.T + b
        a = _act(layer["activation"], z)
    losses = _loss(config["loss"], a, y, z, config["layers"][-1]["activation"])
    return float(losses.sum() if config.get("reduction") == "sum" else losses.mean())


def check_gradients(config: dict, doc: dict) -> None:
    weights = [np.array(layer["weights"], dtype=float) for layer in config["layers"]]
    biases = [np.array(layer["biases"], dtype=float) for layer in config["layers"]]
    step = doc["steps"][0]
    for i, layer in enumerate(step["layers"]):
        for params, key in ((weights, "grad_weights"), (biases, "grad_biases")):
            reported = np.array(layer[key], dtype=float).reshape(params[i].shape)
            numeric = np.zeros_like(params[i])
            for index in np.ndindex(params[i].shape):
                h = 1e-6
                saved = params[i][index]
                params[i][index] = saved + h
                up = _cost(config, weights, biases)
                params[i][index] = saved - h
                down = _cost(config, weights, biases)
                params[i][index] = saved
                numeric[index] = (up - down) / (2 * h)
            assert np.allclose(reported, numeric, rtol=1e-5, atol=1e-7), (
                f"layer {i}, {key}: analytic {reported.tolist()} numeric {numeric.tolist()}",
                config,
            )


@fuzz_settings(150)
@given(configs(), st.booleans(), st.booleans())
def test_valid_smooth_configs_give_gradients_equal_to_central_differences(
    config: dict, block: bool, stdin: bool
) -> None:
    text = to_yaml(config, block)
    args = ["step", "-", "--format", "json"]
    result = invoke(args, input=text.encode())
    doc = check_result("step", args, result)
    if result.exit_code == 2 and "zero vector" in result.stderr:
        return  # tanh(0) = 0: a cosine loss on a zero output is refused, rightly
    if result.exit_code == 1:
        # η = 1 on a deep linear net of weights 2 does diverge (to inf within 3 steps): after
        # an update, and said so.
        assert config["steps"] >= 1 and "diverged" in result.stderr, result.stderr
        return
    assert result.exit_code == 0, (result.stderr, text)
    assert doc is not None
    if config["steps"] > 0:
        check_gradients(config, doc)


@fuzz_settings(100)
@given(
    configs(smooth=False),
    st.sampled_from(
        [
            ["--format", "json"],
            [],
            ["--explain"],
            ["--format", "markdown"],
            ["--format", "latex"],
            ["--round", "3"],
            ["--explain", "--round", "2", "--max-terms", "1"],
            ["--max-rows", "1"],
            ["--learning-rate", "1e10", "--steps", "3", "--format", "json"],
        ]
    ),
)
def test_valid_configs_in_every_format_end_cleanly(config: dict, extra: list[str]) -> None:
    args = ["step", "-", *extra]
    check_result("step", args, invoke(args, input=to_yaml(config, False)))


# ---- nearly valid configs: one mutation ---------------------------------------------------

ODD_VALUES = [
    None,
    True,
    "yes",
    "1:30",
    "010",
    "0x1F",
    ".inf",
    float("nan"),
    float("inf"),
    -1,
    0,
    1e308,
    -1e308,
    1e-320,
    10**30,
    [],
    [[]],
    {},
    "sigmod",
    "",
    "\u00e9",
    [1, [2]],
    {"name": "huber", "delta": -1},
    {"name": "leaky_relu", "alpha": "x"},
    {"name": "prelu", "b": 1},
    # array files and initialisers in place of a list
    {"file": "missing.npy"},
    {"file": "/dev/null"},
    {"file": ""},
    {"file": 5},
    {"file": "../x.csv", "key": "w"},
    {"init": "he_normal", "seed": 0},
    {"init": "bogus"},
    {"init": "he_normal", "seed": -1},
]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw) -> str:
    config = draw(configs(smooth=False))
    paths = [p for p in _paths(config) if p]
    path = draw(st.sampled_from(paths))
    parent = config
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    kind = draw(st.sampled_from(["replace", "delete", "rename", "append", "wrap"]))
    if kind == "replace":
        parent[last] = draw(st.sampled_from(ODD_VALUES) | numbers | st.text(max_size=8))
    elif kind == "delete":
        del parent[last]
    elif kind == "rename" and isinstance(last, str):
        parent[last + draw(st.sampled_from(["s", "_", "x"]))] = parent.pop(last)
    elif kind == "append" and isinstance(parent[last], list):
        parent[last].append(draw(numbers))
    else:
        parent[last] = [parent[last]]
    import yaml

    if draw(st.booleans()):
        return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    return json.dumps(config, allow_nan=True).replace("NaN", ".nan").replace("Infinity", ".inf")


@fuzz_settings(150)
@given(mutated(), st.sampled_from([[], ["--format", "json"], ["--explain"], ["--round", "2"]]))
def test_nearly_valid_configs_end_cleanly(text: str, extra: list[str]) -> None:
    args = ["step", "-", *extra]
    check_result("step", args, invoke(args, input=text.encode()))


# ---- corrupted YAML ----------------------------------------------------------------------

WORKED_TEXT = WORKED.read_text(encoding="utf-8")
NOISE = st.sampled_from(
    [
        *":-[]{},&*!|>'\"#%@`?\t\n \\",
        *("\x00", "\x07", "\x1b", "\ufeff", "\ud800", "é", "…", "<<", "---", "...", "&a", "*a"),
        *("!!int ", "!!float ", "!!bool ", "!!null ", "!!str ", "!!binary ", "!!timestamp "),
        *(
            "!!set ",
            "!!omap ",
            "!tag ",
            "%YAML 1.1\n---\n",
            "? ",
            "!!python/object",
            "1:30",
            "0x",
            "1e999",
            "9" * 50,
            ".nan",
            "yes",
            "~",
            "null",
        ),
    ]
)


@st.composite
def corrupted(draw) -> bytes:
    text = draw(st.sampled_from([WORKED_TEXT, to_yaml(draw(configs(smooth=False)), True)]))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate", "truncate"]))
        if action == "insert":
            text = text[:at] + draw(NOISE | st.text(max_size=4)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 10)) :]
        elif action == "duplicate":
            text = text[:at] + text[at : at + 30] + text[at:]
        else:
            text = text[:at]
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data = draw(
            st.sampled_from([data.decode("utf-8", "replace").encode("utf-16"), data + b"\xff\xfe"])
        )
    return data


@fuzz_settings(150)
@given(corrupted(), st.booleans())
def test_corrupted_yaml_ends_cleanly(data: bytes, as_file: bool) -> None:
    if as_file:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "c.yaml"
            path.write_bytes(data)
            args = ["step", str(path), "--format", "json"]
            check_result("step", args, invoke(args))
    else:
        args = ["step", "-", "--format", "json"]
        check_result("step", args, invoke(args, input=data))


# ---- array files that are not what they say ----------------------------------------------


@st.composite
def array_files(draw) -> tuple[str, bytes]:
    """(name, content): a valid array, or one corrupted the ways a file goes wrong (an .npz
    named .npy, a header claiming any shape, a cut-off file, a zip of anything, other dtypes)."""
    import io
    import zipfile

    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    dtype = draw(st.sampled_from(["<f8", "<i4", "|b1", "<c16", "<U2", "|O", "<f2", ">f8"]))
    buffer = io.BytesIO()
    if dtype == "|O":
        np.save(buffer, np.empty(shape, dtype=object), allow_pickle=True)
    else:
        np.save(buffer, np.zeros(shape, dtype=dtype))
    npy = buffer.getvalue()
    kind = draw(st.sampled_from(["npy", "npz", "header", "cut", "zip", "bytes", "text"]))
    if kind == "npz":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for member in draw(
                st.lists(st.sampled_from(["w", "b", "c.npy", "x/"]), max_size=3, unique=True)
            ):
                zf.writestr(
                    member if "." in member or member.endswith("/") else member + ".npy", npy
                )
        content = buffer.getvalue()
    elif kind == "header":
        claimed = tuple(draw(st.lists(st.integers(0, 10**12), min_size=1, max_size=3)))
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": dtype, "fortran_order": draw(st.booleans()), "shape": claimed}
        )
        content = buffer.getvalue() + draw(st.binary(max_size=64))
    elif kind == "cut":
        content = npy[: draw(st.integers(0, len(npy)))]
    elif kind == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("w.npy", draw(st.binary(max_size=80)))
        content = buffer.getvalue()
    elif kind == "bytes":
        content = draw(st.binary(max_size=200))
    elif kind == "text":
        content = draw(st.sampled_from(["", "1,2\n3,4\n", "1 2 3", "x,y", "1,,2", "nan", "1e999"]))
        content = content.encode()
    else:
        content = npy
    suffix = draw(st.sampled_from([".npy", ".npz", ".csv", ".txt"]))
    return "w" * draw(st.sampled_from([1, 1, 1, 300])) + suffix, content


@fuzz_settings(120)
@given(array_files(), st.sampled_from(["weights", "biases", "inputs"]), st.booleans())
def test_faulty_array_files_end_cleanly(file: tuple[str, bytes], key: str, named: bool) -> None:
    import tempfile

    name, content = file
    reference = f"{{file: {name}{', key: w' if named else ''}}}"
    layer = {"weights": "[[0.1, 0.2]]", "biases": "[0.0]", key: reference}
    x = reference if key == "inputs" else "[[0.5, 0.5]]"
    text = (
        f"inputs: {x}\ntargets: [[0.5]]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
        f"  - weights: {layer['weights']}\n    biases: {layer['biases']}\n"
        "    activation: sigmoid\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with contextlib.suppress(OSError):  # a name too long to create: read as missing
            (folder / name).write_bytes(content)
        (folder / "c.yaml").write_text(text, encoding="utf-8")
        args = ["step", str(folder / "c.yaml"), "--format", "json", "-o", str(folder / "out.json")]
        result = invoke(args)
        check_result("step", args, result)
        if result.exit_code == 2:
            assert "Warning" not in result.stderr and len(result.stderr) < 600, result.stderr


# ---- argument lists for every command ---------------------------------------------------

TOKENS = st.sampled_from(
    [
        "-1",
        "0",
        "1",
        "2",
        "13",
        "99999999999999999999",
        "1e308",
        "nan",
        "inf",
        "-inf",
        "x",
        "",
        " ",
        "--",
        "-",
    ]
)
FLOATS = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e300, -1e300, 354.9, 400.0, 709.8, 800.0, -800.0]),
)
NUMBER_TEXT = FLOATS.map(repr) | TOKENS


def csv(values) -> st.SearchStrategy[str]:
    return st.lists(values, min_size=1, max_size=4).map(",".join)


@st.composite
def formulas(draw, depth: int = 0) -> str:
    leaves = ["x", "e", "pi", "1", "0", "2.5", "1e308", "-3"]
    if depth > 2 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves))
    fn = draw(
        st.sampled_from([*ACTIVATIONS, "exp", "log", "abs", "sqrt", "max0", "op", "op", "op"])
    )
    a = draw(formulas(depth + 1))
    if fn == "op":
        op = draw(st.sampled_from(["+", "-", "*", "/", "**"]))
        return f"({a}){op}({draw(formulas(depth + 1))})"
    if fn == "max0":
        return f"max(0, {a})"
    if fn == "softmax":
        return f"softmax({a})"
    return f"{fn}({a})"


@st.composite
def derive_args(draw) -> list[str]:
    name = draw(
        st.sampled_from([*ACTIVATIONS, *LOSSES])
        | st.sampled_from([*ACTIVATIONS, *LOSSES])
        | formulas()
        | formulas()
        | st.text(max_size=12)
        | st.sampled_from(["x", "", "tanh(", "__import__('os')"])
    )
    args = ["derive", name]
    if draw(st.integers(0, 9)):
        args += ["--at", draw(csv(NUMBER_TEXT) if draw(st.booleans()) else csv(FLOATS.map(repr)))]
    if name in LOSSES or draw(st.integers(0, 5)) == 0:
        args += [
            "--target",
            draw(csv(st.sampled_from(["0", "1", "-1", "0.5", "1e200", "2"]) | NUMBER_TEXT)),
        ]
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["alpha", "a", "delta", "beta", ""]))
        args += ["--param", f"{key}={draw(NUMBER_TEXT)}"]
    args += [
        "--format",
        draw(st.sampled_from(["json", "json", "table", "dot", "markdown", "latex"])),
    ]
    return args


@fuzz_settings(200)
@given(derive_args())
def test_derive_arguments_end_cleanly(args: list[str]) -> None:
    doc = check_result("derive", args, invoke(args))
    if doc is not None:
        assert doc["agreement"]["ok"] is True  # exit 0 means the routes agree


@st.composite
def step_args(draw) -> list[str]:
    args = ["step"]
    source = draw(st.sampled_from(["file", "example", "none", "both", "missing"]))
    if source in ("file", "both"):
        args.append(str(WORKED))
    if source in ("example", "both"):
        args += [
            "--example",
            draw(st.sampled_from(["worked-example", "tanh-mse", "prelu", "relu-huber", "nope"])),
        ]
    if source == "missing":
        args.append("/nonexistent/config.yaml")
    options = {
        "--steps": TOKENS,
        "--learning-rate": NUMBER_TEXT,
        "--round": TOKENS,
        "--max-terms": TOKENS,
        "--max-rows": TOKENS,
        "--format": st.sampled_from(["table", "json", "markdown", "latex", "csv"]),
    }
    for option in draw(
        st.lists(st.sampled_from([*options, "--explain", "--no-color", "--bogus"]), max_size=4)
    ):
        args.append(option)
        if option in options:
            args.append(draw(options[option]))
    return args


@fuzz_settings(150)
@given(step_args())
def test_step_arguments_end_cleanly(args: list[str]) -> None:
    check_result("step", args, invoke(args))


@fuzz_settings(60)
@given(
    st.sampled_from(["list", "examples", "completion"]),
    st.lists(
        st.sampled_from(
            [
                *("--format", "json", "table", "yaml", "--no-color", "--color", "always", "-h"),
                *("x", "--bogus", "activations", "losses", "bash", "zsh", "fish", "tcsh"),
            ]
        ),
        max_size=3,
    ),
)
def test_list_and_examples_arguments_end_cleanly(command: str, extra: list[str]) -> None:
    args = [command, *extra]
    check_result(command, args, invoke(args))


@fuzz_settings(60)
@given(
    st.sampled_from(["step", "derive"]),
    st.sampled_from(["out.md", "-", "", "dir", "missing/out.md", "ro.md"]),
)
def test_output_targets_end_cleanly(command: str, target: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "dir").mkdir()
        (base / "ro.md").write_text("keep", encoding="utf-8")
        (base / "ro.md").chmod(0o444)
        out = target if target in ("-", "") else str(base / target)
        head = ["step", str(WORKED)] if command == "step" else ["derive", "tanh", "--at", "1"]
        args = [*head, "--format", "markdown", "-o", out]
        result = invoke(args)
        check_result(command, args, result)
        assert not [p for p in base.iterdir() if p.name.endswith(".tmp")]
        if target == "ro.md":
            assert (base / "ro.md").read_text(encoding="utf-8") == "keep"
        if result.exit_code == 0 and target not in ("-", ""):
            assert Path(out).read_text(encoding="utf-8").startswith("#")


ANSWERS = ROOT / "configs" / "answers"


@st.composite
def check_args(draw) -> tuple[list[str], bytes | None]:
    args = ["check", str(WORKED)]
    stdin = None
    answers = draw(st.sampled_from(["good", "slip", "stdin-corrupted", "stdin-mutated", "none"]))
    if answers == "good":
        args.append(str(ANSWERS / "worked-example.yaml"))
    elif answers == "slip":
        args.append(str(ANSWERS / "worked-example-slip.yaml"))
    elif answers != "none":
        args.append("-")
        text = (ANSWERS / "worked-example.yaml").read_bytes()
        if answers == "stdin-corrupted":
            at = draw(st.integers(0, len(text)))
            stdin = text[:at] + draw(NOISE).encode("utf-8", "surrogatepass") + text[at:]
        else:
            stdin = text.replace(
                b"0.", draw(st.sampled_from([b"1:3", b"x", b"0x", b"9e999", b"-"])), 1
            )
    options = {
        "--decimals": TOKENS,
        "--sig-figs": TOKENS,
        "--rtol": NUMBER_TEXT,
        "--atol": NUMBER_TEXT,
        "--steps": TOKENS,
        "--format": st.sampled_from(["table", "json", "gradescope", "csv"]),
    }
    flags = ["--no-carry", "--require-all", "--template", "--no-color"]
    for option in draw(st.lists(st.sampled_from([*options, *flags]), max_size=4)):
        args.append(option)
        if option in options:
            args.append(draw(options[option]))
    return args, stdin


@fuzz_settings(100)
@given(check_args())
def test_check_arguments_end_cleanly(case: tuple[list[str], bytes | None]) -> None:
    args, stdin = case
    check_result("check", args, invoke(args, input=stdin))


def test_fuzz_is_not_vacuous() -> None:
    """The invariants can fail: a run that escapes with an exception is caught."""
    bad = CliRunner().invoke(cli, ["derive", "tanh", "--at", "1"], catch_exceptions=True)
    assert bad.exit_code == 0
    with pytest.raises(AssertionError):
        check_result(
            "list",
            ["list"],
            type(
                "R",
                (),
                {"exception": None, "exit_code": 3, "stderr": "", "stdout": "", "output": ""},
            )(),
        )
    assert math.isfinite(
        _cost(
            {
                "input": [1.0],
                "target": [0.5],
                "loss": "quadratic",
                "layers": [{"weights": [[1.0]], "biases": [0.0], "activation": "sigmoid"}],
            },
            [np.array([[1.0]])],
            [np.array([0.0])],
        )
    )
