"""The course kit for batch norm and recurrent layers: `gradcalc generate` of the bundled
batchnorm-worked-example and rnn-bptt templates (their keys against `step` and an independent
float64 reference, the min_variance constraint, sheets, LaTeX), check --class naming each
layer's planted mistake, templates of the other new types (layernorm, dropout, lstm, gru with
`sequences:` and settings drawn by `choice`), and the exports that take them."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

N_VARIANTS = 30
DECIMALS = 3
TEMPLATES = ["batchnorm-worked-example", "rnn-bptt"]
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module", params=TEMPLATES)
def course(request, tmp_path_factory) -> tuple[str, Path]:
    from conftest import _run_cli

    out = tmp_path_factory.mktemp(request.param) / "hw"
    args = ["generate", "--example", request.param, "--count", str(N_VARIANTS), "--seed", "11"]
    result = _run_cli([*args, "-o", str(out), "--no-pdf"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return request.param, out


def _folders(out: Path) -> list[Path]:
    manifest = json.loads((out / "course.json").read_text())
    return [out / v["folder"] for v in manifest["variants"]]


def _close(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= 1e-12 + 1e-9 * np.abs(b)))


# ---- independent float64 references, written from the textbook formulas ---------------------


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _bn_reference(cfg: dict) -> dict:
    """Batch norm (training, ÷m variance) then a dense sigmoid layer, mse averaged over the
    batch; ∂C/∂x by the closed form (1/m)·γ/√(σ²+ε)·(m·g − Σg − x̂·Σ(g·x̂)), g = ∂C/∂x̂/γ·γ."""
    x, y = np.array(cfg["inputs"], float), np.array(cfg["targets"], float)
    bn, dense = cfg["layers"]
    eps, mom, eta = bn["eps"], bn["momentum"], cfg["learning_rate"]
    m = x.shape[0]

    def forward(g, b, w, c):
        mu = x.mean(axis=0)
        var = ((x - mu) ** 2).mean(axis=0)
        xh = (x - mu) / np.sqrt(var + eps)
        z2 = g * xh + b
        a3 = _sigmoid(z2 @ w.T + c)
        return mu, var, xh, z2, a3, float(((a3 - y) ** 2).mean())

    g0, b0 = np.array(bn["gamma"], float), np.array(bn["beta"], float)
    w0, c0 = np.array(dense["weights"], float), np.array(dense["biases"], float)
    mu, var, xh, z2, a3, loss = forward(g0, b0, w0, c0)
    d3 = 2 * (a3 - y) / y.size * a3 * (1 - a3)  # ∂C/∂z³ of the batch's cost
    gw, gc = d3.T @ z2, d3.sum(axis=0)
    d2 = d3 @ w0
    gg, gb = (d2 * xh).sum(axis=0), d2.sum(axis=0)
    dxh = d2 * g0
    dx = (m * dxh - dxh.sum(axis=0) - xh * (dxh * xh).sum(axis=0)) / (m * np.sqrt(var + eps))
    new = (g0 - eta * gg, b0 - eta * gb, w0 - eta * gw, c0 - eta * gc)
    rm = (1 - mom) * np.array(bn["running_mean"], float) + mom * mu
    rv = (1 - mom) * np.array(bn["running_var"], float) + mom * var * m / (m - 1)
    return {
        "forward": lambda g, b, w, c: forward(g, b, w, c)[-1],
        "params": (g0, b0, w0, c0),
        "loss": loss,
        "loss_after": forward(*new)[-1],
        "mean": mu,
        "var": var,
        "x_hat": xh,
        "z": [z2, z2 @ w0.T + c0],
        "grads": [{"gamma": gg, "beta": gb}, {"weights": gw, "biases": gc}],
        "grad_input_batch": dx,  # ∂C/∂x of the batch's cost
        "running": (rm, rv),
    }


def _rnn_reference(cfg: dict) -> dict:
    """h_t = tanh(W_ih x_t + b + W_hh h_(t−1)), h_(−1) = 0, C = (1/T) Σ_t (h_t − y_t)²; BPTT
    with a Python loop back over t."""
    x = np.array(cfg["sequence"], float).reshape(-1, 1)
    y = np.array(cfg["targets"], float).reshape(-1, 1)
    (rnn,) = cfg["layers"]
    eta = cfg["learning_rate"]

    def forward(wi, wh, b):
        hs, h = [], np.zeros(wh.shape[0])
        for t in range(x.shape[0]):
            h = np.tanh(wi @ x[t] + b + wh @ h)
            hs.append(h)
        h = np.array(hs)
        return h, float(((h - y) ** 2).mean())

    wi0, wh0 = np.array(rnn["weights_input"], float), np.array(rnn["weights_hidden"], float)
    b0 = np.array(rnn["biases"], float)
    h, loss = forward(wi0, wh0, b0)
    T = x.shape[0]
    direct = 2 * (h - y) / y.size
    gwi, gwh, gb = np.zeros_like(wi0), np.zeros_like(wh0), np.zeros_like(b0)
    carry = np.zeros(h.shape[1])
    last = {}
    for t in reversed(range(T)):
        dpre = (direct[t] + carry) * (1 - h[t] ** 2)
        before = h[t - 1] if t > 0 else np.zeros(h.shape[1])
        gwi += np.outer(dpre, x[t])
        gwh += np.outer(dpre, before)
        gb += dpre
        if t == T - 1:
            last = {
                "weight_ih": np.outer(dpre, x[t]),
                "weight_hh": np.outer(dpre, before),
                "biases": dpre.copy(),
            }
        carry = wh0.T @ dpre
    after = forward(wi0 - eta * gwi, wh0 - eta * gwh, b0 - eta * gb)[1]
    return {
        "forward": lambda wi, wh, b: forward(wi, wh, b)[1],
        "params": (wi0, wh0, b0),
        "loss": loss,
        "loss_after": after,
        "h": h,
        "grads": {"weight_ih": gwi, "weight_hh": gwh, "biases": gb},
        "last_step_only": last,
    }


def _central_differences(ref: dict, h: float = 1e-6) -> list[np.ndarray]:
    params = [np.array(p, float) for p in ref["params"]]
    out = []
    for i, p in enumerate(params):
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            up = [q.copy() for q in params]
            down = [q.copy() for q in params]
            up[i][idx] += h
            down[i][idx] -= h
            g[idx] = (ref["forward"](*up) - ref["forward"](*down)) / (2 * h)
        out.append(g)
    return out


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_references_agree_with_central_differences(name):
    """The references' hand-written backward passes are themselves proven: every parameter's
    gradient equals the central difference of their forward pass, relatively."""
    cfg = yaml.safe_load((ROOT / f"configs/{name}.yaml").read_text())
    if name == "batchnorm-worked-example":
        ref = _bn_reference(cfg)
        analytic = [*ref["grads"][0].values(), *ref["grads"][1].values()]
    else:
        ref = _rnn_reference(cfg)
        analytic = list(ref["grads"].values())
    for g, fd in zip(analytic, _central_differences(ref), strict=True):
        assert np.all(np.abs(g - fd) <= 1e-7 * np.abs(g) + 1e-9), (g, fd)


def test_every_key_is_step_and_the_reference_and_every_constraint_holds(course, run_cli):
    name, out = course
    seen = set()
    template = yaml.safe_load((ROOT / f"configs/templates/{name}.template.yaml").read_text())
    for folder in _folders(out):
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        seen.add(json.dumps(cfg, sort_keys=True))
        key = json.loads((folder / "key.json").read_text())
        result = run_cli(["step", str(folder / "config.yaml"), "--format", "json"])
        assert result.exit_code == 0, result.output
        step = json.loads(result.stdout)
        assert key.pop("config") == "config.yaml" and step.pop("config").endswith("config.yaml")
        assert key == step, folder
        layers = key["steps"][0]["layers"]
        if name == "batchnorm-worked-example":
            ref = _bn_reference(cfg)
            bound = template["constraints"]["min_variance"]
            assert ref["var"].min() >= bound, folder  # min_variance
            assert all(np.abs(z).max() <= 4 for z in ref["z"])  # max_abs_z
            assert _close(layers[0]["mean"], ref["mean"]) and _close(layers[0]["var"], ref["var"])
            assert _close(layers[0]["x_hat"], ref["x_hat"])
            for i, grads in enumerate(ref["grads"]):
                for k, g in grads.items():
                    assert _close(layers[i]["grads"][k], g), (folder, i, k)
            # each example's ∂C_x/∂x is m times its share of the batch's ∂C/∂x
            m = ref["grad_input_batch"].shape[0]
            assert _close(np.array(layers[0]["grad_input"]) / m, ref["grad_input_batch"])
            assert _close(layers[0]["state"]["running_mean"], ref["running"][0])
            assert _close(layers[0]["state"]["running_var"], ref["running"][1])
            assert np.all(np.isin(np.array(cfg["inputs"]), [0, 1, 2, 3]))
        else:
            ref = _rnn_reference(cfg)
            assert np.abs(np.array(layers[0]["preactivations"])).max() <= 2  # max_abs_z
            assert len(set(cfg["sequence"])) == 3 and 0 not in cfg["sequence"]  # distinct
            assert _close(layers[0]["hidden"], ref["h"])
            for k, g in ref["grads"].items():
                assert _close(layers[0]["grads"][k], g), (folder, k)
                assert np.abs(g).min() >= 0.5 * 10.0**-DECIMALS  # nonzero_gradients
        assert _close(key["steps"][0]["loss"], ref["loss"])
        assert _close(key["final"]["loss"], ref["loss_after"])
        assert ref["loss_after"] < ref["loss"]  # loss_decreases
    assert len(seen) == N_VARIANTS


def test_every_folder_holds_a_sheet_answers_key_and_solution(course, run_cli, monkeypatch):
    name, out = course
    folder = _folders(out)[0]
    monkeypatch.chdir(folder)
    sheet = (folder / "sheet.md").read_text()
    assert f"rounded to {DECIMALS} decimals" in sheet
    wanted = {
        "batchnorm-worked-example": (
            "μ²[0]",
            "x̂²[1] (x = 3)",
            "∂C/∂x via μ²[0] (x = 1)",
            "∂C/∂γ²[1]",
            "γ²[0] new",
            "running_var new²[1]",
            "mode train",
            "eps 1e-05",
            "momentum 0.",
            "running_var (1, 1)",
        ),
        "rnn-bptt": (
            "a row per step t",
            "∂C/∂h²[2,0]",
            "∂C/∂h²[0,0] from t+1",
            "∂C/∂W_ih²[0,0]",
            "W_hh²[0,0] new",
            "activation tanh",
            "return sequence",
        ),
    }[name]
    for text in wanted:
        assert text in sheet, text
    template = run_cli(["check", str(folder / "config.yaml"), "--template"])
    assert (folder / "answers.yaml").read_text().split("\n")[4:] == template.stdout.split("\n")[4:]
    graded = run_cli(
        ["check", str(folder / "config.yaml"), str(folder / "key.json"), "--format", "json"]
    )
    assert graded.exit_code == 0, graded.output
    report = json.loads(graded.stdout)
    assert report["score"] == report["max_score"] > 20
    assert (folder / "solution.md").read_text() == run_cli(
        ["step", "config.yaml", "--format", "markdown"]
    ).stdout
    assert (folder / "solution.tex").read_text() == run_cli(
        ["step", "config.yaml", "--format", "latex"]
    ).stdout


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_the_latex_sheets_compile(course, tmp_path):
    _, out = course
    for folder in _folders(out)[:2]:
        tex = (folder / "sheet.tex").read_text()
        assert not any(ord(ch) > 127 for ch in tex), [ch for ch in tex if ord(ch) > 127]
        for name in ("sheet.tex", "solution.tex"):
            done = subprocess.run(
                [
                    "pdflatex",
                    "-interaction=nonstopmode",
                    "-halt-on-error",
                    "-output-directory",
                    str(tmp_path),
                    str(folder / name),
                ],
                capture_output=True,
                check=False,
                timeout=120,
            )
            assert done.returncode == 0, (folder, name, done.stdout[-2000:])


def test_tex_of_writes_the_new_layers_cells_as_math():
    from gradcalc.course.sheet import tex_of

    assert tex_of("x̂²[0] (x = 1)") == "\\hat{x}^{2}[0] (x = 1)"
    assert tex_of("∂C/∂W_ih²[1,0]") == "\\partial C/\\partial W_{\\mathrm{ih}}^{2}[1,0]"
    assert tex_of("∂C/∂h²[1,0] from t+1") == "\\partial C/\\partial h^{2}[1,0]\\ \\text{from}\\ t+1"
    assert tex_of("running_mean new²[0]") == "\\text{running\\_mean}\\ \\text{new}^{2}[0]"
    assert tex_of("K²[0,0,0,0] new") == "K^{2}[0,0,0,0]\\ \\text{new}"


# ---- the class ---------------------------------------------------------------------------------


def _plant(name: str, doc: dict, cfg: dict) -> tuple[str, str] | None:
    """A named mistake of the layer, worked to the sheet's places: (its first cell, its name),
    or None where the mistaken value rounds to the right one."""
    layer = doc["steps"][0]["layers"][0]
    if name == "batchnorm-worked-example":  # ∂C/∂x without its path through μ
        right = np.array(layer["grad_input"], float)
        wrong = np.round(right - np.array(layer["grad_input_via_mean"], float), DECIMALS)
        if np.allclose(wrong, right):
            return None
        layer["grad_input"] = wrong.tolist()
        return "∂C/∂x²", "bn_missing_mean_path"
    last = _rnn_reference(cfg)["last_step_only"]  # the last step's contribution alone
    changed = []
    for k, symbol in (("weight_ih", "W_ih"), ("weight_hh", "W_hh"), ("biases", "b")):
        wrong = np.round(last[k], DECIMALS)
        # 10 units of the last place: well past what check's rounding bound accepts
        if np.abs(wrong - np.array(layer["grads"][k])).max() > 10 * 10.0**-DECIMALS:
            changed.append(symbol)
        layer["grads"][k] = wrong.tolist()
    return (f"∂C/∂{changed[0]}²", "bptt_not_summed_over_time") if changed else None


def test_check_class_gives_full_marks_and_names_the_planted_mistake(course, run_cli, tmp_path):
    name, out = course
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    planted = {}
    for i, folder in enumerate(_folders(out)):
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        result = run_cli(
            ["step", str(folder / "config.yaml"), "--round", str(DECIMALS), "--format", "json"]
        )
        doc = json.loads(result.stdout)
        planted[folder.name] = _plant(name, doc, cfg) if i % 2 else None
        (sheets / f"{folder.name}.json").write_text(json.dumps(doc))
    result = run_cli(["check", str(out), "--class", str(sheets)])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert len(rows) == N_VARIANTS and {r["status"] for r in rows.values()} == {"graded"}
    assert sum(p is not None for p in planted.values()) >= N_VARIANTS // 3
    for sid, row in rows.items():
        if planted[sid] is not None:
            cell, mistake = planted[sid]
            assert row["first_error"].startswith(cell), row
            assert mistake in row["first_error"], row
            assert int(row["score"]) < int(row["max"])
        else:
            assert row["score"] == row["max"] != "" and row["first_error"] == "", row


# ---- templates of the other new layer types --------------------------------------------------

OTHER_TEMPLATES = {
    "layernorm-dropout": """
inputs: {uniform: [-1, 1], decimals: 1, shape: [2, 3]}
targets: {uniform: [0, 1], decimals: 1, shape: [2, 2]}
loss: mse
learning_rate: 0.5
layers:
  - type: layernorm
    gamma: {uniform: [0.5, 1.5], decimals: 1, shape: 3}
    beta: [0, 0, 0]
    eps: {choice: [1.0e-5, 1.0e-3]}
  - type: dropout
    p: {choice: [0.25, 0.5]}
    mask: {choice: [[[1, 0, 1], [1, 1, 0]], [[0, 1, 1], [1, 0, 1]]]}
    mode: train
  - weights: {uniform: [-0.9, 0.9], decimals: 1, shape: [2, 3]}
    biases: [0, 0]
    activation: sigmoid
constraints: {min_variance: 0.05, max_abs_z: 4}
""",
    "lstm-sequences": """
sequences: {uniform: [-1, 1], decimals: 1, shape: [2, 3, 2]}
targets: {uniform: [0, 1], decimals: 1, shape: [2, 1]}
loss: mse
loss_at: last
learning_rate: {choice: [0.1, 0.2]}
layers:
  - type: lstm
    weights_input: {uniform: [-0.5, 0.5], decimals: 1, shape: [8, 2]}
    weights_hidden: {uniform: [-0.5, 0.5], decimals: 1, shape: [8, 2]}
    biases: {uniform: [-0.2, 0.2], decimals: 1, shape: 8}
    truncate: {choice: [1, 2, 3]}
    return: last
  - weights: {uniform: [-0.9, 0.9], decimals: 1, shape: [1, 2]}
    biases: [0]
    activation: sigmoid
constraints: {max_abs_z: 4}
""",
    "gru-batchnorm-eval": """
sequence: [{choice: [0.5, -0.5]}, {uniform: [-1, 1], decimals: 1}]
targets: [{uniform: [0, 1], decimals: 1}]
loss: mse
learning_rate: 0.1
layers:
  - type: gru
    weights_input: {uniform: [-0.5, 0.5], decimals: 1, shape: [3, 1]}
    weights_hidden: {uniform: [-0.5, 0.5], decimals: 1, shape: [3, 1]}
    bias_ih: {uniform: [-0.2, 0.2], decimals: 1, shape: 3}
    bias_hh: {uniform: [-0.2, 0.2], decimals: 1, shape: 3}
    truncate: {choice: [1, 2]}
    return: last
  - type: batchnorm
    gamma: [{uniform: [0.5, 1.5], decimals: 1}]
    beta: [0]
    mode: eval
    running_mean: [{uniform: [-0.2, 0.2], decimals: 1}]
    running_var: [{choice: [0.5, 1.0]}]
  - weights: [[{uniform: [-0.9, 0.9], decimals: 1}]]
    biases: [0]
    activation: sigmoid
""",
}


@pytest.mark.parametrize("name", sorted(OTHER_TEMPLATES))
def test_templates_of_the_other_new_layer_types_are_courses_check_class_grades(
    name, tmp_path, run_cli
):
    """Settings that are not arrays (eps, p, truncate) and a whole dropout mask drawn by
    `choice`, a batch of sequences drawn by a rule: each variant's key is step's,
    its sheet compiles to cells, and the class of sheets worked as asked gets full marks."""
    text = OTHER_TEMPLATES[name]
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "o"
    result = run_cli(
        ["generate", str(path), "--count", "8", "--seed", "2", "--no-pdf", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    drawn: dict[str, set] = {}
    for folder in _folders(out):
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        for i, layer in enumerate(cfg["layers"]):
            for k in ("eps", "p", "truncate"):
                if k in layer:
                    drawn.setdefault(f"{i}.{k}", set()).add(layer[k])
        key = json.loads((folder / "key.json").read_text())
        step = json.loads(run_cli(["step", str(folder / "config.yaml"), "--format", "json"]).stdout)
        key.pop("config"), step.pop("config")
        assert key == step
        rounded = run_cli(["step", str(folder / "config.yaml"), "--round", "3", "--format", "json"])
        (sheets / f"{folder.name}.json").write_text(rounded.stdout)
    assert all(len(v) > 1 for v in drawn.values()) and drawn, drawn
    rows = list(
        csv.DictReader(io.StringIO(run_cli(["check", str(out), "--class", str(sheets)]).stdout))
    )
    assert len(rows) == 8 and all(r["score"] == r["max"] != "" for r in rows), rows


def test_min_variance_redraws_a_constant_feature_and_names_itself_when_it_cannot(tmp_path, run_cli):
    base = (ROOT / "configs/templates/batchnorm-worked-example.template.yaml").read_text()
    loose = tmp_path / "loose.yaml"
    loose.write_text(re.sub(r"  min_variance: .*\n", "", base), "utf-8")
    args = ["--count", "40", "--seed", "4", "--no-pdf"]
    assert run_cli(["generate", str(loose), *args, "-o", str(tmp_path / "a")]).exit_code == 0
    variances = [
        _bn_reference(yaml.safe_load((f / "config.yaml").read_text()))["var"].min()
        for f in _folders(tmp_path / "a")
    ]
    assert min(variances) == 0  # without the bound some batch has a constant feature
    tight = tmp_path / "tight.yaml"
    tight.write_text(base.replace("  min_variance: 0.2", "  min_variance: 50"), "utf-8")
    result = run_cli(["generate", str(tight), *args, "-o", str(tmp_path / "b")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "constraints.min_variance: no variant met it" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(base.replace("  min_variance: 0.2", "  min_variance: -1"), "utf-8")
    result = run_cli(["generate", str(bad), *args, "-o", str(tmp_path / "c")])
    assert result.exit_code == 2 and "constraints.min_variance: expected a number > 0" in (
        result.stderr
    )


# ---- exports -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES)
def test_exports_of_batchnorm_and_recurrent_courses(name, tmp_path, run_cli):
    """prairielearn writes a question of every cell (its server.py grades with gradcalc check:
    tests/test_course_prairielearn.py); moodle-xml and canvas-qti ask for every cell with its
    key value and tolerance."""
    import xml.etree.ElementTree as ET

    from test_course_exports import canvas_package

    args = ["generate", "--example", name, "--count", "3", "--seed", "1", "--no-pdf"]
    exported = run_cli([*args, "-o", str(tmp_path / "p"), "--format", "prairielearn"])
    assert exported.exit_code == 0, exported.output
    question = next((tmp_path / "p" / "exports" / "prairielearn").iterdir()) / "question.html"
    assert question.read_text().count("<pl-number-input") > 0
    layer = "batchnorm" if name.startswith("batchnorm") else "rnn"
    out = tmp_path / "o"
    formats = ["--format", "moodle-xml", "--format", "canvas-qti", "--format", "gradescope"]
    result = run_cli([*args, "-o", str(out), *formats])
    assert result.exit_code == 0, result.output
    quiz = ET.fromstring((out / "exports" / "moodle.xml").read_text(encoding="utf-8"))
    questions = [q for q in quiz.iter("question") if q.get("type") == "cloze"]
    tests = canvas_package(out / "exports" / "canvas-qti.zip")
    assert len(questions) == len(tests) == 3
    for folder, question, cells in zip(_folders(out), questions, tests.values(), strict=True):
        key = json.loads((folder / "key.json").read_text())
        layer0 = key["steps"][0]["layers"][0]
        text = question.find("questiontext/text").text or ""
        answers = [float(v) for v in re.findall(r"\{1:NUMERICAL:=([^:]+):", text)]
        assert len(answers) == len(cells) > 20
        assert sorted(answers) == pytest.approx(sorted(v for v, _, _ in cells.values()))
        loss = key["steps"][0]["loss"]
        assert cells["loss"][1] < loss < cells["loss"][2]
        if layer == "batchnorm":
            assert "\\hat{x}" in text and "\\partial C/\\partial \\mu" in text
            value, lo, hi = cells["grad_mean_2_0"]
            assert value == pytest.approx(layer0["grad_mean"][0], rel=1e-12)
            assert "mode train" in text and "running_var" in text
        else:
            assert "W_{\\mathrm{ih}}" in text and "\\text{from}" in text
            value, lo, hi = cells["grad_weight_ih_2_0_0"]
            assert value == pytest.approx(layer0["grads"]["weight_ih"][0][0], rel=1e-12)
            assert "return sequence" in text and "activation tanh" in text
            assert "identity" not in text  # the rnn's own tanh, not its bare "activation"
        assert lo < value < hi


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_gradescope_autograder_grades_and_names_the_layers_mistake(name, tmp_path, run_cli):
    from test_course_exports import _autograder, _valid_results

    out = tmp_path / "c"
    args = ["generate", "--example", name, "--count", "4", "--seed", "1", "--no-pdf"]
    assert run_cli([*args, "-o", str(out), "--format", "gradescope"]).exit_code == 0
    folder = next(
        f
        for f in _folders(out)
        if _plant(
            name,
            json.loads(
                run_cli(["step", str(f / "config.yaml"), "--round", "3", "--format", "json"]).stdout
            ),
            yaml.safe_load((f / "config.yaml").read_text()),
        )
    )
    config = str(folder / "config.yaml")
    sheet = json.loads(run_cli(["step", config, "--round", "3", "--format", "json"]).stdout)
    user = {"email": "a@b.org", "sid": folder.name, "name": "A"}
    results = _autograder(out, tmp_path / "full", user, sheet)
    _valid_results(results)
    full = json.loads(
        run_cli(["check", config, str(folder / "key.json"), "--format", "json"]).stdout
    )["max_score"]
    assert results["score"] == full
    _, mistake = _plant(name, sheet, yaml.safe_load((folder / "config.yaml").read_text()))
    results = _autograder(out, tmp_path / "slip", user, sheet)
    _valid_results(results)
    assert results["score"] < full and mistake in json.dumps(results)


def test_a_misspelt_setting_in_a_choice_is_refused_before_any_student_draws_it(tmp_path, run_cli):
    base = (ROOT / "configs/templates/batchnorm-worked-example.template.yaml").read_text()
    path = tmp_path / "t.yaml"
    path.write_text(base.replace("mode: train", "mode: {choice: [train, evl]}"), "utf-8")
    result = run_cli(["generate", str(path), "--count", "2", "--no-pdf", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert (
        "layers[0].mode" in result.stderr
        and "t.yaml, line 17: layers[0].mode: expected" in result.stderr
    )
    assert not (tmp_path / "o").exists()


def test_generate_help_names_every_bundled_template(run_cli):
    text = re.sub(r"-\s+", "-", run_cli(["generate", "--help"]).stdout)  # click wraps at a -
    for path in sorted((ROOT / "configs/templates").glob("*.template.yaml")):
        name = path.name.removesuffix(".template.yaml")
        assert name in text, name
