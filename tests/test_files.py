"""Weights, biases and examples from files; initializers; the layers shorthand; --save-weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gradcalc.functions.initializers import INITIALIZERS, REGISTRY, generator
from gradcalc.step import config

HEAD = "inputs: {file: x.npy}\ntargets: {file: y.npy}\nloss: mse\nlearning_rate: 0.1\n"
PARAMS = {"uniform": (-0.3, 0.7), "normal": (0.5, 2.0)}


def _data(folder: Path, m: int = 4, n_in: int = 3, n_out: int = 2) -> None:
    rng = np.random.default_rng(5)
    np.save(folder / "x.npy", rng.random((m, n_in)))
    np.save(folder / "y.npy", rng.random((m, n_out)))


# ---- initializers ----------------------------------------------------------------------------


@pytest.mark.parametrize("init", INITIALIZERS, ids=lambda i: i.name)
def test_initializer_distribution_shape_and_seed(init) -> None:
    fan_in, fan_out = 400, 500
    params = PARAMS.get(init.name, ())
    draw = init.draw(generator(7, 2, 0), (fan_out, fan_in), fan_in, fan_out, params)
    assert draw.shape == (fan_out, fan_in) and draw.dtype == np.float64
    mean, std = init.mean(fan_in, fan_out, params), init.std(fan_in, fan_out, params)
    n = draw.size
    # 200,000 draws: the sample mean is within 5 standard errors, the std within 2 %.
    assert abs(draw.mean() - mean) <= 5 * max(std, 1e-300) / math.sqrt(n)
    assert draw.std() == pytest.approx(std, rel=0.02, abs=1e-300)
    if init.name in ("xavier_uniform", "he_uniform", "uniform"):
        half = math.sqrt(3) * std
        assert draw.min() >= mean - half and draw.max() < mean + half
    again = init.draw(generator(7, 2, 0), (fan_out, fan_in), fan_in, fan_out, params)
    assert np.array_equal(draw, again)
    if init.name != "zeros":
        other = init.draw(generator(8, 2, 0), (fan_out, fan_in), fan_in, fan_out, params)
        assert not np.array_equal(draw, other)
        assert not np.array_equal(
            draw, init.draw(generator(7, 3, 0), (fan_out, fan_in), fan_in, fan_out, params)
        )


def test_the_documented_algorithm_gives_the_numbers() -> None:
    """Box–Muller and the uniform map recomputed in plain Python from the same uniforms."""
    u = np.random.Generator(np.random.PCG64(np.random.SeedSequence([3, 2, 0]))).random(6)
    expected = []
    for u1, u2 in zip(u[0::2], u[1::2], strict=True):
        r = math.sqrt(-2.0 * math.log(1.0 - u1))
        expected += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
    got = REGISTRY["normal"].draw(generator(3, 2, 0), (5,), 1, 1, (0.0, 1.0))
    assert got == pytest.approx(expected[:5], rel=1e-14)
    he = REGISTRY["he_uniform"].draw(generator(3, 2, 0), (2, 3), 3, 2, ())
    a = math.sqrt(6 / 3)
    assert he.ravel() == pytest.approx([-a + 2 * a * v for v in u], rel=1e-14)


def test_shorthand_equals_the_layer_by_layer_form(write_config, tmp_path) -> None:
    _data(tmp_path, n_in=3, n_out=2)
    short = write_config(
        tmp_path,
        HEAD + "layers: {sizes: [3, 5, 2], activation: tanh, output: sigmoid, "
        "init: he_normal, seed: 4, bias_init: {uniform: [-0.1, 0.1]}}\n",
        "short.yaml",
    )
    long = write_config(
        tmp_path,
        HEAD + "layers:\n"
        "  - weights: {init: he_normal, seed: 4, units: 5}\n"
        "    biases: {init: {uniform: [-0.1, 0.1]}, seed: 4}\n"
        "    activation: tanh\n"
        "  - weights: {init: he_normal, seed: 4}\n"
        "    biases: {init: {uniform: [-0.1, 0.1]}, seed: 4}\n"
        "    activation: sigmoid\n",
        "long.yaml",
    )
    a, b = config.load(str(short)), config.load(str(long))
    assert [layer.activation.name for layer in a.layers] == ["tanh", "sigmoid"]
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert np.array_equal(la.weights, lb.weights)
        assert np.array_equal(la.biases, lb.biases)
    assert a.layers[0].weights.shape == (5, 3) and a.layers[1].weights.shape == (2, 5)
    assert a.layers[0].weights.std() > 0 and np.all(np.abs(a.layers[0].biases) <= 0.1)
    zeros = config.load(
        str(
            write_config(
                tmp_path,
                HEAD + "layers: {sizes: [3, 2], activation: sigmoid, init: xavier_uniform}\n",
            )
        )
    )
    assert np.array_equal(zeros.layers[0].biases, np.zeros(2))  # biases default to zeros


# ---- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".txt"])
def test_weights_from_each_file_kind(write_config, tmp_path, suffix: str) -> None:
    _data(tmp_path)
    w = np.random.default_rng(1).standard_normal((2, 3))
    b = np.array([0.25, -0.5])
    ref = ""
    if suffix == ".npy":
        np.save(tmp_path / "w.npy", w)
        np.save(tmp_path / "b.npy", b)
        ref = "{file: w.npy}", "{file: b.npy}"
    elif suffix == ".npz":
        np.savez(tmp_path / "p.npz", w=w, b=b)
        ref = "{file: p.npz, key: w}", "{file: p.npz, key: b}"
    else:
        delimiter = "," if suffix == ".csv" else " "
        np.savetxt(tmp_path / f"w{suffix}", w, delimiter=delimiter, fmt="%.17g")
        np.savetxt(tmp_path / f"b{suffix}", b, delimiter=delimiter, fmt="%.17g")
        ref = f"{{file: w{suffix}}}", f"{{file: b{suffix}}}"
    sub = tmp_path / "sub"
    sub.mkdir()
    path = write_config(
        tmp_path,
        HEAD + f"layers:\n  - weights: {ref[0]}\n    biases: {ref[1]}\n    activation: sigmoid\n",
    )
    spec = config.load(str(path))
    assert np.array_equal(spec.layers[0].weights, w)
    assert np.array_equal(spec.layers[0].biases, b)
    assert np.array_equal(spec.x, np.load(tmp_path / "x.npy"))


LAYER = "layers:\n  - weights: {weights}\n    biases: [0.0, 0.0]\n    activation: sigmoid\n"


def _error(run_cli, write_config, tmp_path, weights: str) -> str:
    path = write_config(tmp_path, HEAD + LAYER.format(weights=weights))
    result = run_cli(["step", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1
    return result.stderr


@pytest.mark.parametrize(
    ("make", "weights", "mentions"),
    [
        (None, "{file: nothere.npy}", ["layers[0].weights.file", "no such file 'nothere.npy'"]),
        (None, "{file: w.json}", ["layers[0].weights.file", ".npy, .npz, .csv or .txt"]),
        ("pickle", "{file: w.npy}", ["layers[0].weights.file", "pickle", "allow_pickle"]),
        ("garbage", "{file: w.npy}", ["layers[0].weights.file", "cannot read"]),
        ("nan", "{file: w.npy}", ["layers[0].weights.file", "non-finite", "[1, 2]"]),
        ("shape", "{file: w.npy}", ["layers[0].weights", "rows have 4 weights", "3 units"]),
        ("vector", "{file: w.npy}", ["layers[0].weights.file", "2-D array"]),
        ("npz", "{file: p.npz, key: wieghts}", ["layers[0].weights.key", "did you mean"]),
        ("npz", "{file: p.npz}", ["layers[0].weights", "say which with 'key:'"]),
        ("csv", "{file: w.csv}", ["layers[0].weights.file", "cannot read 'w.csv'"]),
        ("strings", "{file: w.npy}", ["layers[0].weights.file", "not numbers"]),
        (None, "{file: w.npy, size: 3}", ["layers[0].weights.size", "unknown key"]),
        (None, "{init: he_nromal}", ["layers[0].weights.init", "did you mean 'he_normal'"]),
        (None, "{init: uniform}", ["layers[0].weights", "needs lo and hi"]),
        (None, "{init: {uniform: [1, 0]}}", ["layers[0].weights.init.uniform", "lo < hi"]),
        (None, "{init: he_normal, seed: -1}", ["layers[0].weights.seed", "≥ 0"]),
    ],
)
def test_file_and_init_errors_name_the_key_path(
    run_cli, write_config, tmp_path, make: str | None, weights: str, mentions: list[str]
) -> None:
    _data(tmp_path, n_out=2)
    if make == "pickle":
        np.save(tmp_path / "w.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif make == "garbage":
        (tmp_path / "w.npy").write_bytes(b"\x93NUMPY not really")
    elif make == "nan":
        w = np.ones((2, 3))
        w[1, 2] = np.nan
        np.save(tmp_path / "w.npy", w)
    elif make == "shape":
        np.save(tmp_path / "w.npy", np.ones((2, 4)))
    elif make == "vector":
        np.save(tmp_path / "w.npy", np.ones(3))
    elif make == "npz":
        np.savez(tmp_path / "p.npz", weights=np.ones((2, 3)), biases=np.zeros(2))
    elif make == "csv":
        (tmp_path / "w.csv").write_text("1,2,3\n4,x,6\n")
    elif make == "strings":
        np.save(tmp_path / "w.npy", np.array([["a", "b", "c"]] * 2))
    message = _error(run_cli, write_config, tmp_path, weights)
    assert "config.yaml" in message
    for text in mentions:
        assert text in message, message


def test_inputs_file_errors(run_cli, write_config, tmp_path) -> None:
    _data(tmp_path)
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    path = write_config(
        tmp_path,
        "inputs: {file: cube.npy}\ntargets: {file: y.npy}\nloss: mse\nlearning_rate: 0.1\n"
        "layers: {sizes: [3, 2], activation: sigmoid, init: zeros}\n",
    )
    result = run_cli(["step", str(path)])
    assert result.exit_code == 2 and "inputs.file" in result.stderr and "2-D" in result.stderr
    short = write_config(
        tmp_path,
        HEAD + "layers: {sizes: [4, 2], activation: sigmoid, init: zeros}\n",
    )
    result = run_cli(["step", str(short)])
    assert result.exit_code == 2 and "layers.sizes[0]" in result.stderr


# ---- --save-weights --------------------------------------------------------------------------


def test_save_weights_round_trip(run_cli, write_config, tmp_path) -> None:
    _data(tmp_path, n_in=3, n_out=2)
    path = write_config(
        tmp_path,
        HEAD + "steps: 7\nlayers: {sizes: [3, 4, 2], activation: tanh, output: sigmoid, "
        "init: xavier_normal, seed: 1}\n",
    )
    out = tmp_path / "trained.npz"
    result = run_cli(["step", str(path), "--format", "json", "--save-weights", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    saved = np.load(out)
    assert sorted(saved.files) == ["b2", "b3", "w2", "w3"]
    for p in doc["parameters"]:
        assert np.array_equal(saved[f"w{p['layer']}"], np.array(p["weights"]))
        assert np.array_equal(saved[f"b{p['layer']}"], np.array(p["biases"]))
    # Loading them back starts where the run ended.
    again = write_config(
        tmp_path,
        HEAD
        + "steps: 0\nlayers:\n"
        + "".join(
            f"  - weights: {{file: trained.npz, key: w{l}}}\n"
            f"    biases: {{file: trained.npz, key: b{l}}}\n"
            f"    activation: {act}\n"
            for l, act in ((2, "tanh"), (3, "sigmoid"))
        ),
        "again.yaml",
    )
    resumed = json.loads(run_cli(["step", str(again), "--format", "json"]).stdout)
    assert resumed["initial"] == doc["final"]


def test_save_weights_refuses_a_bad_path_before_running(run_cli) -> None:
    result = run_cli(["step", "--example", "tanh-mse", "--save-weights", "/nonexistent/dir/w.npz"])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert result.stdout == ""


# ---- big inline YAML -------------------------------------------------------------------------


def test_too_many_values_are_refused_before_composing(run_cli, write_config, tmp_path) -> None:
    from gradcalc.limits import MAX_NODES

    row = "[" + "0," * MAX_NODES + "0]"
    path = write_config(tmp_path, f"input: {row}\n")
    result = run_cli(["step", str(path)])
    assert result.exit_code == 2 and f"more than {MAX_NODES:,} values" in result.stderr
    assert ".npy" in result.stderr


def test_deep_nesting_without_anchors_is_refused(run_cli, write_config, tmp_path) -> None:
    path = write_config(tmp_path, "input: " + "[" * 40 + "1" + "]" * 40 + "\n")
    result = run_cli(["step", str(path)])
    assert result.exit_code == 2 and "nested more than" in result.stderr


def test_a_bad_number_in_a_fast_row_names_its_element_and_line(
    run_cli, write_config, tmp_path
) -> None:
    path = write_config(
        tmp_path,
        "input: [0.5, 0.5]\ntarget: [0.1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
        "  - weights:\n      - [0.1, 1e999]\n    biases: [0.0]\n    activation: sigmoid\n",
    )
    result = run_cli(["step", str(path)])
    assert result.exit_code == 2
    # one rule for a number past float64, in a fast row as anywhere (issue 10)
    assert "line 7: layers[0].weights[0][1]: the number 1e999 is too large" in result.stderr


# ---- issue 15: array files that are not what their name says ---------------------------------


def _npy_header(shape: tuple[int, ...]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def _make_bad(folder: Path, kind: str) -> str:
    """Write a faulty array file; return the name the config gives it."""
    import zipfile

    if kind == "npz named npy":  # what `--save-weights w.npy` used to write
        np.savez(folder / "w.npz", w=np.ones((2, 3)))
        (folder / "w.npz").rename(folder / "w.npy")
        return "w.npy"
    if kind == "npy named npz":
        np.save(folder / "w.npy", np.ones((2, 3)))
        (folder / "w.npy").rename(folder / "w.npz")
        return "w.npz"
    if kind == "member not npy":
        with zipfile.ZipFile(folder / "w.npz", "w") as zf:
            zf.writestr("w.npy", b"not an array")
        return "w.npz"
    if kind == "huge header":
        (folder / "w.npy").write_bytes(_npy_header((100_000, 100_000)) + bytes(64))
        return "w.npy"
    if kind == "huge member":
        with zipfile.ZipFile(folder / "w.npz", "w") as zf:
            zf.writestr("w.npy", _npy_header((100_000, 100_000)) + bytes(64))
        return "w.npz"
    if kind == "truncated":
        (folder / "w.npy").write_bytes(_npy_header((2, 3)) + bytes(16))
        return "w.npy"
    if kind == "long name":
        return "w" * 5000 + ".npy"
    if kind == "empty csv":
        (folder / "w.csv").write_text("")
        return "w.csv"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "mentions"),
    [
        ("npz named npy", ["is an .npz archive", "rename it to w.npz"]),
        ("npy named npz", ["is an .npy file, not an .npz archive", "rename it to w.npy"]),
        ("member not npy", ["'w' in 'w.npz' is not an .npy array"]),
        ("huge header", ["shape [100000, 100000]", "10,000,000,000 numbers"]),
        ("huge member", ["'w' in 'w.npz'", "shape [100000, 100000]"]),
        ("truncated", ["cannot read 'w.npy'"]),
        ("long name", ["cannot read 'wwww", "File name too long"]),
        ("empty csv", ["'w.csv' holds no numbers"]),
    ],
)
def test_a_faulty_array_file_is_one_line_with_the_key_path(
    run_cli, write_config, tmp_path, kind: str, mentions: list[str]
) -> None:
    """Issue 15: each of these was a traceback (AttributeError, TypeError, _ArrayMemoryError,
    OSError) or a numpy warning on stderr."""
    import warnings

    _data(tmp_path, n_out=2)
    name = _make_bad(tmp_path, kind)
    with warnings.catch_warnings():  # a warning would reach the user's terminal unformatted
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        message = _error(run_cli, write_config, tmp_path, f"{{file: {name}}}")
    assert "config.yaml, line 6: layers[0].weights.file:" in message
    assert len(message) < 400 and "Warning" not in message
    for text in mentions:
        assert text in message, message


def test_an_npz_member_is_named_at_its_key(run_cli, write_config, tmp_path) -> None:
    _data(tmp_path, n_out=2)
    _make_bad(tmp_path, "huge member")
    message = _error(run_cli, write_config, tmp_path, "{file: w.npz, key: w}")
    assert "layers[0].weights.key:" in message and "10,000,000,000 numbers" in message


def _trained(run_cli, tmp_path: Path, *args: str):
    _data(tmp_path, n_in=3, n_out=2)
    (tmp_path / "config.yaml").write_text(
        HEAD + "layers: {sizes: [3, 2], activation: sigmoid, init: zeros}\n", encoding="utf-8"
    )
    return run_cli(["step", str(tmp_path / "config.yaml"), *args])


@pytest.mark.parametrize("name", ["w.npy", "w", "weights.json"])
def test_save_weights_writes_npz_only_under_an_npz_name(run_cli, tmp_path, name: str) -> None:
    result = _trained(run_cli, tmp_path, "--save-weights", str(tmp_path / name))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "--save-weights" in result.stderr and "ending in .npz" in result.stderr
    assert not (tmp_path / name).exists() and result.stdout == ""
    upper = _trained(run_cli, tmp_path, "--save-weights", str(tmp_path / "w.NPZ"))
    assert upper.exit_code == 0 and set(np.load(tmp_path / "w.NPZ")) == {"w2", "b2"}


def test_save_weights_dash_is_standard_output(tmp_path) -> None:
    """`--save-weights -` made a file named '-': it is standard output (npz bytes) when -o
    takes the output, and refused when the output is on standard output too."""
    import io

    from click.testing import CliRunner

    from gradcalc.cli import cli

    _data(tmp_path, n_in=3, n_out=2)
    path = tmp_path / "config.yaml"
    path.write_text(HEAD + "layers: {sizes: [3, 2], activation: sigmoid, init: zeros}\n")
    out = tmp_path / "trace.json"
    result = CliRunner().invoke(
        cli, ["step", str(path), "--format", "json", "-o", str(out), "--save-weights", "-"]
    )
    assert result.exit_code == 0, result.output
    saved = np.load(io.BytesIO(result.stdout_bytes))
    final = json.loads(out.read_text())["parameters"][0]
    assert np.array_equal(saved["w2"], np.array(final["weights"]))
    assert not Path("-").exists()
    both = CliRunner().invoke(cli, ["step", str(path), "--save-weights", "-"])
    assert both.exit_code == 2 and "standard output already carries" in both.stderr
    assert both.stdout_bytes == b"" and not Path("-").exists()


@pytest.mark.parametrize("option", ["-o", "--save-weights"])
@pytest.mark.parametrize("data", ["w.npy", "p.npz"])
def test_no_output_replaces_a_file_the_config_reads(
    run_cli, write_config, tmp_path, option: str, data: str
) -> None:
    """Issue 15: `weights: {file: w2.npy}` then `-o w2.npy` replaced the weights with a table."""
    _data(tmp_path, n_out=2)
    if data == "w.npy":
        np.save(tmp_path / "w.npy", np.ones((2, 3)))
        weights = "{file: w.npy}"
    else:
        np.savez(tmp_path / "p.npz", w=np.ones((2, 3)))
        weights = "{file: p.npz, key: w}"
    if option == "--save-weights" and data == "w.npy":
        weights = "{file: w.npy}"
    path = write_config(tmp_path, HEAD + LAYER.format(weights=weights))
    before = (tmp_path / data).read_bytes()
    result = run_cli(["step", str(path), option, str(tmp_path / data)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    if not (option == "--save-weights" and data == "w.npy"):  # that one: not an .npz name
        assert "is the file of layers[0].weights being read" in result.stderr
    assert (tmp_path / data).read_bytes() == before
    # inputs and targets are data files too
    result = run_cli(["step", str(path), "-o", str(tmp_path / "x.npy")])
    assert result.exit_code == 2 and "the file of inputs being read" in result.stderr


def test_output_and_save_weights_must_differ(run_cli, tmp_path) -> None:
    target = tmp_path / "both.npz"
    result = _trained(run_cli, tmp_path, "-o", str(target), "--save-weights", str(target))
    assert result.exit_code == 2 and "also the --output file" in result.stderr
    assert not target.exists()
