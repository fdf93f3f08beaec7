"""attention's worked solution (--explain, Markdown, LaTeX): every stage of the forward and
backward passes cell by cell with its numbers substituted; `--max-terms` cuts each sum,
`--max-rows` the cells written of each array. The softmax backward is written with each row's
full Jacobian diag(p) − p pᵀ, and ∂C/∂x as its paths side by side, one column each."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcalc.doc.blocks import Eqs, Para, Table
from gradcalc.layers.attention import PROJECTIONS, _heads, step_back
from gradcalc.layers.written import eq


def _theta(ls: Any) -> Any:
    return ls.params_ahead or ls.params_before


def _index(heads: int, h: int, *rest: int) -> tuple[int, ...]:
    """A per-head cell: (head, i, j) with several heads, (i, j) with one."""
    return (h, *rest) if heads > 1 else rest


def _sum(
    sheet: Any, pairs: list[tuple[float, float]], given: tuple[bool, bool] = (False, False)
) -> str:
    nt = sheet.nt
    terms = [nt.prod((a, given[0]), (b, given[1]), lead=k == 0) for k, (a, b) in enumerate(pairs)]
    return sheet.total(terms) if terms else "0"


def write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    nt, layer = sheet.nt, ls.layer
    l, opts = layer.number, layer.options
    heads, scale, causal = opts["heads"], opts["scale"], opts["causal"]
    theta, cache = _theta(ls), ls.cache
    x = ls.x[n]
    T, d = x.shape
    first, given = layer.index == 0, sheet.given()
    blocks: list[Any] = [
        Para(
            nt.text(
                "Q = x wqᵀ + bq, K = x wkᵀ + bk, V = x wvᵀ + bv: row t is position t"
                + (f"; head h holds columns h·{opts['d_k']} onward" if heads > 1 else "")
                + ":"
            )
        )
    ]
    for p in PROJECTIONS:
        w, b, out = theta[f"w{p}"], theta.get(f"b{p}"), cache[p][n]
        items = []
        for t, j in sheet.cells(out.shape):
            rhs = sheet.total(
                [nt.prod((x[t, k], first), (w[j, k], given), lead=k == 0) for k in range(d)]
            )
            if b is not None:
                rhs += f" + {nt.par(b[j], given)}"
            items.append(eq(nt.sym(p.upper(), l, t, j), rhs, nt.num(out[t, j])))
        blocks += [Eqs(tuple(items)), *sheet.more(out.shape, nt.sym(p.upper(), l))]

    q, k, v = (_heads(cache[p][n : n + 1], heads)[0] for p in PROJECTIONS)
    scores, weights, mask = cache["scores"][n], cache["weights"][n], cache["mask"]
    root = f"1/√{opts['d_k']}" if np.isclose(scale, 1 / np.sqrt(opts["d_k"])) else f"{scale:g}"
    blocks.append(
        Para(
            nt.text(
                f"Scores S = Q Kᵀ × scale (scale = {root})"
                + (
                    "; causal: a position attends to itself and those before it, the rest "
                    "masked (−∞, weight 0)"
                    if causal
                    else ""
                )
                + ":"
            )
        )
    )
    items = []
    for h, i, j in sheet.cells(scores.shape):
        lhs = nt.sym("S", l, *_index(heads, h, i, j))
        dot = _sum(sheet, [(q[h, i, c], k[h, j, c]) for c in range(q.shape[2])])
        if not mask[i, j]:
            items.append(eq(lhs, nt.words("masked"), r"-\infty" if nt.tex else "−∞"))
            continue
        items.append(eq(lhs, f"{nt.num(scale)}{nt.ttimes}({dot})", nt.num(scores[h, i, j])))
    blocks += [Eqs(tuple(items)), *sheet.more(scores.shape, nt.sym("S", l))]

    blocks.append(
        Para(
            nt.text(
                "Softmax of each row: P[i,j] = exp(S[i,j] − m)/Σ exp(S[i,·] − m), m the row's "
                "maximum:"
            )
        )
    )
    items = []
    for h, i, j in sheet.cells(weights.shape):
        lhs = nt.sym("P", l, *_index(heads, h, i, j))
        if not mask[i, j]:
            items.append(eq(lhs, "0"))
            continue
        seen = np.flatnonzero(mask[i])
        top = scores[h, i, seen].max()
        terms = [_exp(nt, scores[h, i, m] - top) for m in seen]
        rhs = f"{_exp(nt, scores[h, i, j] - top)}/({sheet.total(terms)})"
        items.append(eq(lhs, rhs, nt.num(weights[h, i, j])))
    blocks += [Eqs(tuple(items)), *sheet.more(weights.shape, nt.sym("P", l))]

    heads_out = cache["heads_out"][n]
    dv = v.shape[2]
    blocks.append(Para(nt.text("Head outputs H = P V, each head's side by side:")))
    items = []
    for t, c in sheet.cells(heads_out.shape):
        h, cc = divmod(c, dv)
        rhs = _sum(sheet, [(weights[h, t, j], v[h, j, cc]) for j in range(T)])
        items.append(eq(nt.sym("H", l, t, c), rhs, nt.num(heads_out[t, c])))
    blocks += [Eqs(tuple(items)), *sheet.more(heads_out.shape, nt.sym("H", l))]

    if "wo" in theta:
        wo, bo = theta["wo"], theta.get("bo")
        blocks.append(Para(nt.text("Output z = H woᵀ + bo:")))
        items = []
        for t, j in sheet.cells(ls.z[n].shape):
            rhs = sheet.total(
                [
                    nt.prod((heads_out[t, c], False), (wo[j, c], given), lead=c == 0)
                    for c in range(wo.shape[1])
                ]
            )
            if bo is not None:
                rhs += f" + {nt.par(bo[j], given)}"
            items.append(eq(nt.sym("z", l, t, j), rhs, nt.num(ls.z[n, t, j])))
        blocks += [Eqs(tuple(items)), *sheet.more(ls.z[n].shape, nt.sym("z", l))]
    else:
        blocks.append(Para(nt.text("No output projection: z = H.")))
    return blocks


def _exp(nt: Any, value: float) -> str:
    return rf"e^{{{nt.num(value)}}}" if nt.tex else f"exp({nt.num(value)})"


def write_backward(sheet: Any, ls: Any) -> list[Any]:
    nt, layer = sheet.nt, ls.layer
    l, opts = layer.number, layer.options
    heads, scale = opts["heads"], opts["scale"]
    theta, cache, back = _theta(ls), ls.cache, step_back(ls)
    m = ls.x.shape[0]
    T = ls.x.shape[1]
    ex = " (example 1)" if m > 1 else ""
    delta = ls.delta[0]
    blocks: list[Any] = []
    grad_h = back["grad_heads"][0]
    heads_out = cache["heads_out"]
    if "wo" in theta:
        wo = theta["wo"]
        blocks.append(
            Para(
                nt.text(
                    "∂C/∂wo[j,c] = Σ over positions t (and examples) of δ[t,j] H[t,c]; "
                    "∂C/∂bo[j] = Σ δ[t,j]; ∂C/∂H = δ wo" + ex + ":"
                )
            )
        )
        items = []
        for j, c in sheet.cells(wo.shape):
            pairs = [(ls.delta[e, t, j], heads_out[e, t, c]) for e in range(m) for t in range(T)]
            items.append(
                eq(
                    nt.sym(nt.d("wo"), l, j, c),
                    sheet.scaled(_sum(sheet, pairs)),
                    nt.num(ls.grads["wo"][j, c]),
                )
            )
        for t, c in sheet.cells(grad_h.shape):
            pairs = [(delta[t, j], wo[j, c]) for j in range(wo.shape[0])]
            items.append(eq(nt.sym(nt.d("H"), l, t, c), _sum(sheet, pairs), nt.num(grad_h[t, c])))
        blocks += [Eqs(tuple(items)), *sheet.more(wo.shape, nt.d("wo"))]
    else:
        blocks.append(Para(nt.text("No output projection: ∂C/∂H = δ.")))

    q, k, v = (_heads(cache[p][:1], heads)[0] for p in PROJECTIONS)
    weights = cache["weights"][0]
    gh = _heads(back["grad_heads"][:1], heads)[0]
    grad_p, grad_s = back["grad_weights"][0], back["grad_scores"][0]
    blocks.append(
        Para(
            nt.text(
                "∂C/∂P[i,j] = Σ_c ∂C/∂H[i,c] V[j,c] and ∂C/∂V[j,c] = Σ_i P[i,j] ∂C/∂H[i,c], "
                "per head" + ex + ":"
            )
        )
    )
    items = []
    for h, i, j in sheet.cells(grad_p.shape):
        pairs = [(gh[h, i, c], v[h, j, c]) for c in range(v.shape[2])]
        items.append(
            eq(
                nt.sym(nt.d("P"), l, *_index(heads, h, i, j)),
                _sum(sheet, pairs),
                nt.num(grad_p[h, i, j]),
            )
        )
    grad_v = back["grad_v"][0]
    dv = v.shape[2]
    for j, c in sheet.cells(grad_v.shape):
        h, cc = divmod(c, dv)
        pairs = [(weights[h, i, j], gh[h, i, cc]) for i in range(T)]
        items.append(eq(nt.sym(nt.d("V"), l, j, c), _sum(sheet, pairs), nt.num(grad_v[j, c])))
    blocks += [Eqs(tuple(items)), *sheet.more(grad_p.shape, nt.d("P"))]

    blocks.append(
        Para(
            nt.text(
                "The softmax backward, row by row with its full Jacobian: ∂C/∂S[i,·] = "
                "(diag(p) − p pᵀ) ∂C/∂P[i,·], p the row's weights"
                + (
                    "; a masked entry has p = 0, so its row and column of the Jacobian are 0"
                    if opts["causal"]
                    else ""
                )
                + ex
                + ":"
            )
        )
    )
    items = []
    shown = 0
    for h in range(weights.shape[0]):
        for i in range(T):
            if sheet.max_rows and shown >= sheet.max_rows:
                break
            shown += 1
            p = weights[h, i]
            jac = np.diag(p) - np.outer(p, p)
            where = _index(heads, h, i)
            items.append(eq(nt.sym("J", l, *where), nt.matrix(jac, limit=sheet.max_terms)))
            for j in range(T):
                pairs = [(jac[j, c], grad_p[h, i, c]) for c in range(T)]
                items.append(
                    eq(
                        nt.sym(nt.d("S"), l, *_index(heads, h, i, j)),
                        _sum(sheet, pairs),
                        nt.num(grad_s[h, i, j]),
                    )
                )
    blocks += [Eqs(tuple(items)), *sheet.more(weights.shape[:2], nt.words("rows"))]

    grad_q, grad_k = back["grad_q"][0], back["grad_k"][0]
    dk = q.shape[2]
    blocks.append(
        Para(
            nt.text(
                f"∂C/∂Q[i,c] = {scale:.6g} × Σ_j ∂C/∂S[i,j] K[j,c] and ∂C/∂K[j,c] = {scale:.6g} × "
                "Σ_i ∂C/∂S[i,j] Q[i,c], the scale carried back" + ex + ":"
            )
        )
    )
    items = []
    for i, c in sheet.cells(grad_q.shape):
        h, cc = divmod(c, dk)
        pairs = [(grad_s[h, i, j], k[h, j, cc]) for j in range(T)]
        items.append(
            eq(
                nt.sym(nt.d("Q"), l, i, c),
                f"{nt.num(scale)}{nt.ttimes}({_sum(sheet, pairs)})",
                nt.num(grad_q[i, c]),
            )
        )
    for j, c in sheet.cells(grad_k.shape):
        h, cc = divmod(c, dk)
        pairs = [(grad_s[h, i, j], q[h, i, cc]) for i in range(T)]
        items.append(
            eq(
                nt.sym(nt.d("K"), l, j, c),
                f"{nt.num(scale)}{nt.ttimes}({_sum(sheet, pairs)})",
                nt.num(grad_k[j, c]),
            )
        )
    blocks += [Eqs(tuple(items)), *sheet.more(grad_q.shape, nt.d("Q"))]

    blocks.append(
        Para(
            nt.text(
                "∂C/∂wq[j,k] = Σ over positions (and examples) of ∂C/∂Q[t,j] x[t,k], and so for "
                "wk and wv; each bias gets Σ_t of its column:"
            )
        )
    )
    items = []
    for p in PROJECTIONS:
        g = back[f"grad_{p}"]
        w = theta[f"w{p}"]
        for j, kk in sheet.cells(w.shape):
            pairs = [(g[e, t, j], ls.x[e, t, kk]) for e in range(m) for t in range(T)]
            items.append(
                eq(
                    nt.sym(nt.d(f"w{p}"), l, j, kk),
                    sheet.scaled(_sum(sheet, pairs)),
                    nt.num(ls.grads[f"w{p}"][j, kk]),
                )
            )
        if f"b{p}" in theta:
            for (j,) in sheet.cells((w.shape[0],)):
                terms = [
                    nt.num(g[e, t, j]) if e == t == 0 else nt.par(g[e, t, j])
                    for e in range(m)
                    for t in range(T)
                ]
                items.append(
                    eq(
                        nt.sym(nt.d(f"b{p}"), l, j),
                        sheet.scaled(sheet.total(terms)),
                        nt.num(ls.grads[f"b{p}"][j]),
                    )
                )
    blocks.append(Eqs(tuple(items)))
    if "bk" in theta:
        blocks.append(
            Para(
                nt.text(
                    "∂C/∂bk is 0 up to rounding: bk adds q_i·bk to every score of row i, which the "
                    "softmax cancels."
                )
            )
        )

    blocks += _paths(sheet, ls, ex)
    return blocks


def _paths(sheet: Any, ls: Any, ex: str) -> list[Any]:
    """∂C/∂x as the sum of its paths, one column each: x feeds Q, K and V (and the residual)."""
    nt, layer = sheet.nt, ls.layer
    l = layer.number
    back = step_back(ls)
    columns = [
        ("through Q", back["via_q"][0]),
        ("through K", back["via_k"][0]),
        ("through V", back["via_v"][0]),
    ]
    if layer.residual:
        columns.append(("residual", ls.grad_a[0]))
    header = (nt.text("cell"), *(nt.text(c) for c, _ in columns), nt.text("∂C/∂x"))
    rows = []
    items = []
    for t, kk in sheet.cells(ls.grad_x[0].shape):
        cell = nt.math(nt.sym(nt.d("x"), l, t, kk))
        rows.append(
            (
                cell,
                *(nt.math(nt.num(a[t, kk])) for _, a in columns),
                nt.math(nt.num(ls.grad_x[0, t, kk])),
            )
        )
        terms = [
            nt.num(a[t, kk]) if c == 0 else nt.par(a[t, kk]) for c, (_, a) in enumerate(columns)
        ]
        items.append(
            eq(nt.sym(nt.d("x"), l, t, kk), " + ".join(terms), nt.num(ls.grad_x[0, t, kk]))
        )
    text = (
        "∂C/∂x = ∂C/∂Q wq + ∂C/∂K wk + ∂C/∂V wv"
        + (" + ∂C/∂a (the residual)" if layer.residual else "")
        + ": x feeds Q, K and V, so its gradient is the sum of the paths"
        + ex
        + ":"
    )
    return [
        Para(nt.text(text)),
        Table(header, tuple(rows)),
        Eqs(tuple(items)),
        *sheet.more(ls.grad_x[0].shape, nt.d("x")),
    ]
