"""The worked solution of a layered run, written out cell by cell: every output cell of a
convolution as its substituted sum, every kernel gradient as its sum over positions, ∂C/∂X as the
full convolution of δ with the flipped kernel, each max-pool output with the cell it came from.
`--max-terms` cuts a sum, `--max-rows` the cells written per channel."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from gradcalc.doc.numbers import Style
from gradcalc.layers.engine import LayeredRun, LayeredStepTrace, LayerStep
from gradcalc.layers.shapes import show
from gradcalc.layers.windows import pad

Num = Callable[[float], str]


def _par(num: Num, v: float) -> str:
    text = num(v).replace("-", "−")
    return f"({text})" if text.startswith("−") else text


def _sum(terms: list[str], max_terms: int) -> str:
    if len(terms) > max_terms:
        hidden = len(terms) - max_terms
        return " + ".join(terms[:max_terms]) + f" + … ({hidden} more terms)"
    return " + ".join(terms) if terms else "0"


def _cells(shape: tuple[int, ...], max_rows: int) -> Iterator[tuple[int, ...]]:
    for k, index in enumerate(np.ndindex(*shape)):
        if max_rows and k >= max_rows:
            return
        yield index


def _sub(*index: int) -> str:
    return "[" + ",".join(str(i) for i in index) + "]"


def _conv(ls: LayerStep, n: int, num: Num, max_terms: int, max_rows: int) -> list[str]:
    layer = ls.layer
    l = layer.number
    k = ls.params_before["kernels"] if ls.params_ahead is None else ls.params_ahead["kernels"]
    b = ls.params_before["biases"] if ls.params_ahead is None else ls.params_ahead["biases"]
    one_d = k.ndim == 3
    k4 = k[:, :, None, :] if one_d else k
    x = ls.x[n][:, None, :] if one_d else ls.x[n]
    xp = pad(x[None], layer.options["padding"])[0]
    sh, sw = layer.options["stride"]
    z = ls.z[n][:, None, :] if one_d else ls.z[n]
    delta = ls.delta[:, :, None, :] if one_d else ls.delta
    o_n, c_n, kh, kw = k4.shape
    lines = [
        f"Layer {l} ({layer.kind.name}): z[o,i,j] = Σ_c Σ_p Σ_q x̃[c, {sh}i+p, {sw}j+q] K[o,c,p,q]"
        " + b[o] (cross-correlation; x̃ is the input with its padding)"
    ]
    for o in range(o_n):
        for written, (i, j) in enumerate(np.ndindex(z.shape[1], z.shape[2])):
            if max_rows and written >= max_rows:
                lines.append(f"  … {z.shape[1] * z.shape[2] - written} more cells of channel {o}")
                break
            terms = [
                f"{_par(num, xp[c, sh * i + p, sw * j + q])}×{_par(num, k4[o, c, p, q])}"
                for c in range(c_n)
                for p in range(kh)
                for q in range(kw)
            ]
            cell = _sub(o, j) if one_d else _sub(o, i, j)
            lines.append(
                f"  z^{l}{cell} = {_sum(terms, max_terms)} + {_par(num, b[o])} = {num(z[o, i, j])}"
            )
    if not getattr(layer.activation, "bare", False):
        lines.append(f"  a^{l} = {layer.activation.name}(z^{l}) elementwise")
    # Backward.
    lines.append(
        f"Layer {l} backward: ∂C/∂K[o,c,p,q] = Σ_i Σ_j δ[o,i,j] x̃[c, {sh}i+p, {sw}j+q] "
        "(summed over the examples, times the reduction's scale)"
    )
    scale = _scale(ls)
    for o, c, p, q in _cells(k4.shape, max_rows):
        terms = []
        for m in range(ls.x.shape[0]):
            xm = ls.x[m][:, None, :] if one_d else ls.x[m]
            xpm = pad(xm[None], layer.options["padding"])[0]
            terms += [
                f"{_par(num, delta[m, o, i, j])}×{_par(num, xpm[c, sh * i + p, sw * j + q])}"
                for i in range(delta.shape[2])
                for j in range(delta.shape[3])
            ]
        g = ls.grads["kernels"][(o, c, q) if one_d else (o, c, p, q)]
        cell = _sub(o, c, q) if one_d else _sub(o, c, p, q)
        lead = "" if scale == 1 else f"{num(scale)}·"
        lines.append(f"  ∂C/∂K^{l}{cell} = {lead}[{_sum(terms, max_terms)}] = {num(g)}")
    for o in range(o_n):
        terms = [_par(num, v) for v in delta[:, o].ravel()]
        lead = "" if scale == 1 else f"{num(scale)}·"
        lines.append(
            f"  ∂C/∂b^{l}{_sub(o)} = {lead}[{_sum(terms, max_terms)}] = "
            f"{num(ls.grads['biases'][o])} (the sum of δ over every position, not one)"
        )
    lines.append(
        "  ∂C/∂x̃ is the full convolution of δ with the flipped kernel: ∂C/∂x̃[c,u,v] = "
        f"Σ_o Σ_(i,j) δ[o,i,j] K[o,c,u−{sh}i,v−{sw}j], each window's share added back where it "
        "came from; ∂C/∂x is ∂C/∂x̃ with the padding cut away"
    )
    ph, pw = layer.options["padding"]
    grad_x = ls.grad_x[n][:, None, :] if one_d else ls.grad_x[n]
    for c, u, v in _cells(grad_x.shape, max_rows):
        terms = []
        for o in range(o_n):
            for i in range(delta.shape[2]):
                for j in range(delta.shape[3]):
                    p, q = u + ph - sh * i, v + pw - sw * j
                    if 0 <= p < kh and 0 <= q < kw:
                        terms.append(f"{_par(num, delta[n, o, i, j])}×{_par(num, k4[o, c, p, q])}")
        cell = _sub(c, v) if one_d else _sub(c, u, v)
        lines.append(f"  ∂C/∂x^{l}{cell} = {_sum(terms, max_terms)} = {num(grad_x[c, u, v])}")
    return lines


def _scale(ls: LayerStep) -> float:
    """The reduction's factor, from the layer's own numbers: ∂C/∂b = scale Σ δ."""
    total = float(np.sum(ls.delta[:, 0])) if ls.delta.ndim > 1 else float(np.sum(ls.delta))
    g = float(ls.grads["biases"][0])
    if total == 0 or g == 0:
        return 1.0
    ratio = g / total
    n = ls.x.shape[0]
    return 1.0 / n if abs(ratio * n - 1) < 1e-9 else 1.0


def _pool(ls: LayerStep, n: int, num: Num, max_rows: int) -> list[str]:
    layer = ls.layer
    l = layer.number
    sources = layer.kind.extra(ls) if layer.kind.extra else []
    lines = [
        f"Layer {l} ({layer.kind.name}, windows {show(layer.options['size'])}, stride "
        f"{show(layer.options['stride'])})"
    ]
    z = ls.z[n]
    for index in _cells(z.shape, max_rows):
        if sources:
            src = sources[0][2][n][index]
            where = f"x{_sub(index[0], *np.atleast_1d(src).tolist())}"
            lines.append(
                f"  z^{l}{_sub(*index)} = max of its window = {num(z[index])}, from {where}; "
                f"∂C/∂{where} gets δ{_sub(*index)} = {num(ls.delta[n][index])}"
            )
        else:
            size = layer.options["window"]
            lines.append(
                f"  z^{l}{_sub(*index)} = mean of its window = {num(z[index])}; each of its cells "
                f"gets δ/{size} = {num(ls.delta[n][index] / size)}"
            )
    return lines


def _dense(ls: LayerStep, n: int, num: Num, max_terms: int, max_rows: int) -> list[str]:
    layer = ls.layer
    l = layer.number
    theta = ls.params_ahead or ls.params_before
    w, b = theta["weights"], theta["biases"]
    lines = [f"Layer {l} (dense): z_j = Σ_k w_jk a_k + b_j"]
    for (j,) in _cells((w.shape[0],), max_rows):
        terms = [f"{_par(num, w[j, k])}×{_par(num, ls.x[n, k])}" for k in range(w.shape[1])]
        lines.append(
            f"  z^{l}_{j} = {_sum(terms, max_terms)} + {_par(num, b[j])} = {num(ls.z[n, j])}"
        )
    lines.append(
        f"  a^{l} = {layer.activation.name}(z^{l}) = [{', '.join(num(v) for v in ls.a[n])}]"
    )
    lines.append(f"  δ^{l} = [{', '.join(num(v) for v in ls.delta[n])}]")
    lines.append(f"  ∂C/∂w^{l}_jk = δ_j a_k (summed over the examples); ∂C/∂b^{l}_j = δ_j")
    lines.append(
        f"  ∂C/∂a^{layer.number - 1} = (w^{l})ᵀ δ^{l} = [{', '.join(num(v) for v in ls.grad_x[n])}]"
    )
    return lines


def step_lines(
    trace: LayeredRun, st: LayeredStepTrace, num: Num, max_terms: int, max_rows: int
) -> list[str]:
    lines = [f"Step {st.step}", ""]
    for n in range(trace.x.shape[0] if trace.batch else 1):
        if max_rows and n >= max_rows:
            break
        if trace.batch:
            lines.append(f"Example {n + 1}")
        for ls in st.layers:
            kind = ls.layer.kind.name
            if kind.startswith("conv"):
                lines += _conv(ls, n, num, max_terms, max_rows)
            elif "pool" in kind:
                lines += _pool(ls, n, num, max_rows)
            elif kind == "dense":
                lines += _dense(ls, n, num, max_terms, max_rows)
            else:
                lines.append(
                    f"Layer {ls.layer.number} (flatten): {show(ls.layer.in_shape)} → "
                    f"{show(ls.layer.out_shape)} row-major; its gradient is reshaped back"
                )
            lines.append("")
    lines.append(f"C = {num(st.loss)} ({trace.loss})")
    lines.append(
        f"Update ({trace.optimizer}, η = {num(trace.learning_rate)}): θ ← the rule applied to "
        "every parameter of every layer"
    )
    return lines


def document(
    trace: LayeredRun,
    steps: tuple[LayeredStepTrace, ...],
    fmt: str,
    max_terms: int,
    max_rows: int,
    digits: int,
) -> str:
    num = Style(digits, rule="sheet", trim=True, exact_short=True)
    lines = [f"Worked solution: {trace.source}", ""]
    for st in steps:
        lines += step_lines(trace, st, num, max_terms, max_rows)
        lines.append("")
    lines.append(f"Final cost: C = {num(trace.final.loss)}")
    text = "\n".join(lines) + "\n"
    if fmt == "markdown":
        return "```\n" + text + "```\n"
    if fmt == "latex":
        return (
            "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\begin{document}\n"
            "\\begin{verbatim}\n" + text + "\\end{verbatim}\n\\end{document}\n"
        )
    return text
