"""Recurrent layers, rnn, lstm and gru, with PyTorch's equations and weight layouts (gate rows
i, f, g, o for an LSTM, r, z, n for a GRU), and backpropagation through time.

One example's input is a sequence x of shape (T, input); the layer gives every hidden state,
(T, H) (`return: sequence`), or the last, (H,) (`return: last`). Its own activation is the
identity: z is h, and δ = ∂C/∂h is the part of the gradient that reaches h_t from the layers
above at t (the direct term). The backward sweep adds the part coming back from t + 1,

    ∂C/∂h_t = δ_t + (∂h_(t+1)/∂h_t)ᵀ ∂C/∂h_(t+1),

and sums each shared parameter's contribution over t. `truncate: k` cuts the sequence into
chunks of k steps: the state is carried across a cut, its gradient is not (PyTorch's
`h = h.detach()` every k steps).

The backward sweep keeps its per-step quantities in the forward pass's cache, so the tables,
JSON records and check read them without a second pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.functions.registry import ElementwiseActivation, Written
from gradcalc.layers.record import (
    Array,
    Cache,
    Layer,
    LayerType,
    Mistake,
    Quantity,
    Shape,
    WrittenCells,
)
from gradcalc.layers.shapes import feeding, show, tensor, whole

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.yamldoc import Doc

# The gates of one cell, in PyTorch's row order of weight_ih and weight_hh.
GATES = {"rnn": ("",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
# Spellings the config may use for the two weight matrices (the issue's, then PyTorch's).
ALIASES = {
    "weight_ih": ("weights_input", "weight_ih"),
    "weight_hh": ("weights_hidden", "weight_hh"),
}
KEYS = (
    "weights_input",
    "weights_hidden",
    "weight_ih",
    "weight_hh",
    "biases",
    "bias_ih",
    "bias_hh",
    "initial_state",
    "return",
    "truncate",
)
RETURNS = ("sequence", "last")
SYMBOLS = {
    "weight_ih": "W_ih",
    "weight_hh": "W_hh",
    "biases": "b",
    "bias_ih": "b_ih",
    "bias_hh": "b_hh",
}
# A product of the recurrent Jacobians' norms below this says the gradient vanishes, above the
# other that it may explode (the product bounds ‖∂h_T/∂h_1‖ from above).
VANISH, EXPLODE = 1e-2, 1e2


def _sigmoid(z: Array) -> Array:
    # exp of a non-positive number only: no overflow warning for a large |z|.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# -- config -------------------------------------------------------------------------------------


def _parse(kind: str) -> Any:
    def parse(
        doc: Doc,
        raw: dict[str, Any],
        path: KeyPath,
        in_shape: Shape,
        index: int,
        outputs: int | None,
    ) -> Layer:
        from gradcalc.step import config as c

        if len(in_shape) != 2:
            before = feeding(index)
            raise doc.error(
                path,
                f"{kind} takes a sequence of shape (T, input), but {before} gives shape "
                f"{show(in_shape)}",
                "give the input as 'sequence:' (T, input) or 'sequences:' (N, T, input)",
            )
        steps, width = in_shape
        gates = len(GATES[kind])
        number = index + 2
        raw_w = {}
        for name, spellings in ALIASES.items():
            given = [s for s in spellings if s in raw]
            if len(given) > 1:
                raise doc.error((*path, given[1]), f"'{given[0]}' and '{given[1]}' are one matrix")
            if not given:
                raise doc.error(path, f"missing key '{spellings[0]}' ({SYMBOLS[name]})")
            raw_w[name] = (given[0], raw[given[0]])
        hidden = _hidden(doc, raw_w, path, gates)
        params: dict[str, Array] = {}
        for which, (name, (key, value)) in enumerate(raw_w.items()):
            cols = width if name == "weight_ih" else hidden
            shape = (gates * hidden, cols)
            where: KeyPath = (*path, key)
            if c._is_init(value):
                # `units: H` may be written on each matrix (the docs' form); it must agree.
                units = c._units(doc, value, where)
                if units is not None and units != hidden:
                    raise doc.error(
                        (*where, "units"),
                        f"{units} units, but the layer has H = {hidden}",
                        "give every matrix the same units, or write units on one",
                    )
                drawn = {k: v for k, v in value.items() if k != "units"}
                params[name] = c._initialized(doc, drawn, where, shape, number, which)
                continue
            w = tensor(doc, value, where, f"'{key}'", 2)
            if w.shape != shape:
                rows = f"{gates}·H = {gates * hidden}" if gates > 1 else f"H = {hidden}"
                what = f"the input width {width}" if name == "weight_ih" else f"H = {hidden}"
                raise doc.error(
                    where,
                    f"shape {show(w.shape)}, but {SYMBOLS[name]} must be ({rows}, {what}), "
                    f"i.e. {show(shape)}",
                    f"one row per {'gate and ' if gates > 1 else ''}unit, one column per "
                    f"{'input value' if name == 'weight_ih' else 'hidden unit'}",
                )
            params[name] = w
        params.update(_biases(doc, raw, path, kind, gates * hidden, number))
        initial = _initial(doc, raw, path, "initial_state", hidden)
        options: dict[str, Any] = {"hidden": hidden}
        if initial is not None:
            options["initial_state"] = initial
        if kind == "lstm":
            options["activation"] = "sigmoid/tanh"
            cell = _initial(doc, raw, path, "initial_cell", hidden)
            if cell is not None:
                options["initial_cell"] = cell
        else:
            record, act_params = c._named(
                doc,
                raw.get("activation", "tanh"),
                (*path, "activation"),
                c.ACTIVATIONS,
                "activation",
            )
            if not record.elementwise or any(p.learnable for p in record.params):
                raise doc.error(
                    (*path, "activation"),
                    f"'{record.name}' cannot be a recurrent cell's activation: it "
                    + (
                        "acts on a vector"
                        if not record.elementwise
                        else "has a learnable parameter"
                    ),
                    "use an elementwise activation such as tanh, relu or leaky_relu",
                )
            if kind == "gru" and record.name != "tanh":
                raise doc.error(
                    (*path, "activation"),
                    "a GRU's candidate n is tanh, as PyTorch's: the key is for an rnn",
                    "leave 'activation' out",
                )
            options["activation"] = record.name
            if kind == "rnn" and act_params:
                options["activation_params"] = dict(act_params)
        returns = raw.get("return", "sequence")
        if returns not in RETURNS:
            from gradcalc.errors import did_you_mean

            raise doc.error(
                (*path, "return"),
                f"expected 'sequence' or 'last', got {returns!r}",
                did_you_mean(str(returns), RETURNS),
            )
        options["return"] = returns
        options["positions"] = returns == "sequence"
        truncate = raw.get("truncate")
        if truncate is not None:
            number = isinstance(truncate, (int, float)) and not isinstance(truncate, bool)
            if number and truncate <= 0:
                raise doc.error(
                    (*path, "truncate"),
                    f"must be ≥ 1 (steps the gradient goes back), got {truncate:g}",
                    "leave it out (or null) for full backpropagation through time",
                )
            options["truncate"] = whole(doc, truncate, (*path, "truncate"), 1)
        from gradcalc.functions.activations import REGISTRY as ACTIVATIONS

        out = (steps, hidden) if returns == "sequence" else (hidden,)
        return Layer(
            TYPES[kind], index, in_shape, out, params, ACTIVATIONS["identity"], {}, options
        )

    return parse


def _hidden(doc: Doc, raw_w: dict[str, tuple[str, Any]], path: KeyPath, gates: int) -> int:
    """H, from the first matrix given as numbers, or an initializer's `units`."""
    from gradcalc.step import config as c

    for name, (key, value) in raw_w.items():
        if c._is_init(value):
            units = c._units(doc, value, (*path, key))
            if units is not None:
                return units
            continue
        w = tensor(doc, value, (*path, key), f"'{key}'", 2)
        rows = w.shape[0]
        if rows % gates:
            raise doc.error(
                (*path, key),
                f"{rows} rows, not a multiple of the {gates} gates "
                f"({', '.join(g for g in GATES_OF[gates])})",
                f"stack the gates' rows: ({gates}·H, …)",
            )
        if name == "weight_hh" and w.shape[1] * gates != rows:
            raise doc.error(
                (*path, key),
                f"shape {show(w.shape)}: W_hh must be ({gates}·H, H) for H = {rows // gates}",
            )
        return rows // gates
    raise doc.error(
        (*path, raw_w["weight_ih"][0]), "initialized weights need the hidden size", "add units: H"
    )


GATES_OF = {1: ("h",), 3: GATES["gru"], 4: GATES["lstm"]}


def _biases(
    doc: Doc, raw: dict[str, Any], path: KeyPath, kind: str, rows: int, number: int
) -> dict[str, Array]:
    from gradcalc.step import config as c

    split = "bias_ih" in raw or "bias_hh" in raw
    if "biases" in raw and split:
        raise doc.error(
            (*path, "biases"), "give either 'biases' or 'bias_ih' and 'bias_hh', not both"
        )
    if kind == "gru" and "biases" in raw:
        raise doc.error(
            (*path, "biases"),
            "a GRU keeps b_hn inside r ⊙ (W_hn h + b_hn): give 'bias_ih' and 'bias_hh'",
        )
    names = ("bias_ih", "bias_hh") if split or kind == "gru" else ("biases",)
    out: dict[str, Array] = {}
    for which, name in enumerate(names, 2):
        if name not in raw:
            hint = (
                "add 'bias_ih' and 'bias_hh' (zeros: [0, …])"
                if kind == "gru" or split
                else ("add 'biases' (or 'bias_ih' and 'bias_hh')")
            )
            raise doc.error(path, f"missing key '{name}'", hint)
        where: KeyPath = (*path, name)
        if c._is_init(raw[name]):
            out[name] = c._initialized(doc, raw[name], where, (rows,), number, which, rows)
            continue
        b = tensor(doc, raw[name], where, f"'{name}'", 1)
        if b.shape != (rows,):
            raise doc.error(
                where,
                f"{b.shape[0]} biases, but the layer has {rows} rows of weights",
                "give one bias per row of weight_ih",
            )
        out[name] = b
    return out


def _initial(doc: Doc, raw: dict[str, Any], path: KeyPath, key: str, hidden: int) -> Any:
    if raw.get(key) is None:
        return None
    where: KeyPath = (*path, key)
    h0 = tensor(doc, raw[key], where, f"'{key}'")
    if h0.shape != (hidden,):
        raise doc.error(
            where,
            f"shape {show(h0.shape)}, but the layer has H = {hidden} units",
            f"give {hidden} values, the state every example starts from",
        )
    return h0.tolist()


def _start(layer: Layer, key: str, n: int) -> Array:
    hidden = layer.options["hidden"]
    given = layer.options.get(key)
    if given is None:
        return np.zeros((n, hidden))
    return np.broadcast_to(np.asarray(given, dtype=float), (n, hidden)).copy()


def _split(theta: Mapping[str, Array]) -> tuple[Array, Array]:
    """(b_ih, b_hh) as PyTorch adds them; one `biases` is b_ih with b_hh = 0."""
    if "biases" in theta:
        return theta["biases"], np.zeros_like(theta["biases"])
    return theta["bias_ih"], theta["bias_hh"]


def _cut(layer: Layer, t: int) -> bool:
    """Whether the gradient stops between steps t and t + 1 (0-based t)."""
    k = layer.options.get("truncate")
    return k is not None and (t + 1) % k == 0


def _activation(layer: Layer) -> ElementwiseActivation:
    """An rnn's own activation f and its parameters' record (elementwise: parse refuses any
    other)."""
    from gradcalc.functions.activations import REGISTRY as ACTIVATIONS

    f = ACTIVATIONS[layer.options["activation"]]
    assert isinstance(f, ElementwiseActivation)
    return f


# -- forward ------------------------------------------------------------------------------------


def forward(layer: Layer, theta: Mapping[str, Array], x: Array) -> tuple[Array, Cache]:
    kind = layer.kind.name
    n, steps, _ = x.shape
    hidden = layer.options["hidden"]
    w_ih, w_hh = theta["weight_ih"], theta["weight_hh"]
    b_ih, b_hh = _split(theta)
    # Every step's input term at once: only the recurrent term needs the loop over time.
    inputs = x @ w_ih.T
    inputs += b_ih
    h = np.empty((n, steps + 1, hidden))
    h[:, 0] = _start(layer, "initial_state", n)
    cache: Cache = {"h": h}
    if kind == "rnn":
        f = _activation(layer)
        p = layer.options.get("activation_params", {})
        s = np.empty((n, steps, hidden))
        for t in range(steps):
            s[:, t] = inputs[:, t] + h[:, t] @ w_hh.T + b_hh
            h[:, t + 1] = f.forward(s[:, t], p)
        cache["s"] = s
    elif kind == "lstm":
        c = np.empty((n, steps + 1, hidden))
        c[:, 0] = _start(layer, "initial_cell", n)
        gates = np.empty((n, steps, 4 * hidden))  # i, f, g, o after their functions
        tanh_c = np.empty((n, steps, hidden))
        for t in range(steps):
            pre = inputs[:, t] + h[:, t] @ w_hh.T + b_hh
            act = gates[:, t]
            act[:, : 2 * hidden] = _sigmoid(pre[:, : 2 * hidden])
            act[:, 2 * hidden : 3 * hidden] = np.tanh(pre[:, 2 * hidden : 3 * hidden])
            act[:, 3 * hidden :] = _sigmoid(pre[:, 3 * hidden :])
            i, fg, g, o = np.split(act, 4, axis=1)
            c[:, t + 1] = fg * c[:, t] + i * g
            tanh_c[:, t] = np.tanh(c[:, t + 1])
            h[:, t + 1] = o * tanh_c[:, t]
        cache.update(c=c, gates=gates, tanh_c=tanh_c)
    else:
        gates = np.empty((n, steps, 3 * hidden))  # r, z, n
        hn = np.empty((n, steps, hidden))  # W_hn h + b_hn, what r multiplies
        two = 2 * hidden
        for t in range(steps):
            rec = h[:, t] @ w_hh.T + b_hh
            act = gates[:, t]
            act[:, :two] = _sigmoid(inputs[:, t, :two] + rec[:, :two])
            hn[:, t] = rec[:, two:]
            act[:, two:] = np.tanh(inputs[:, t, two:] + act[:, :hidden] * rec[:, two:])
            z, cand = act[:, hidden:two], act[:, two:]
            h[:, t + 1] = (1.0 - z) * cand + z * h[:, t]
        cache.update(gates=gates, hn=hn)
    out = h[:, 1:] if layer.options["return"] == "sequence" else h[:, -1]
    return out.copy(), cache


# -- backward -----------------------------------------------------------------------------------


def backward(
    layer: Layer, theta: Mapping[str, Array], cache: Cache, delta: Array, scale: float, x: Array
) -> tuple[Array, dict[str, Array]]:
    grad_x, grads, parts = bptt(layer, theta, cache, delta, scale, x)
    cache["bptt"] = parts
    cache["scale"] = scale
    return grad_x, grads


def bptt(
    layer: Layer,
    theta: Mapping[str, Array],
    cache: Cache,
    delta: Array,
    scale: float,
    x: Array,
    mistake: str | None = None,
) -> tuple[Array, dict[str, Array], dict[str, Array]]:
    """∂C/∂x, ∂C/∂θ and the per-step parts: each h_t's gradient from the output at t and from
    t + 1, and the pre-activations' gradients (the sum over t of each parameter's
    contribution reads them). `mistake` computes a named mistake's version instead."""
    kind = layer.kind.name
    n, steps, _ = x.shape
    hidden = layer.options["hidden"]
    w_hh = theta["weight_hh"]
    h = cache["h"]
    direct = np.zeros((n, steps, hidden))
    if layer.options["return"] == "sequence":
        direct[:] = delta
    else:
        direct[:, -1] = delta
    if mistake == "bptt_missing_direct_term":
        direct[:, :-1] = 0.0
    recurrent = np.zeros((n, steps, hidden))  # the part of ∂C/∂h_t coming back from t + 1
    grad_h = np.empty((n, steps, hidden))
    keep_recurrent = mistake != "bptt_missing_recurrent_term"
    back_h = np.zeros((n, hidden))
    parts: dict[str, Array] = {}
    if kind == "rnn":
        f = _activation(layer)
        p = layer.options.get("activation_params", {})
        s = cache["s"]
        prime = f.prime(s, h[:, 1:], p)
        pre = np.empty((n, steps, hidden))  # ∂C/∂s_t
        for t in range(steps - 1, -1, -1):
            if t < steps - 1 and keep_recurrent and not _cut(layer, t):
                recurrent[:, t] = back_h
            grad_h[:, t] = direct[:, t] + recurrent[:, t]
            pre[:, t] = grad_h[:, t] * prime[:, t]
            back_h = pre[:, t] @ w_hh
        grad_in = grad_rec = pre
    elif kind == "lstm":
        c, gates, tanh_c = cache["c"], cache["gates"], cache["tanh_c"]
        i, fg, g, o = (gates[..., k * hidden : (k + 1) * hidden] for k in range(4))
        pre = np.empty((n, steps, 4 * hidden))  # ∂C/∂(i, f, g, o) before their functions
        grad_c = np.empty((n, steps, hidden))
        from_h = np.empty((n, steps, hidden))  # the part of ∂C/∂c_t through h_t
        cell_back = np.zeros((n, steps, hidden))  # the part through c_(t+1): f_(t+1) ⊙ ∂C/∂c_(t+1)
        back_c = np.zeros((n, hidden))
        for t in range(steps - 1, -1, -1):
            if t < steps - 1 and not _cut(layer, t):
                if keep_recurrent:
                    recurrent[:, t] = back_h
                if mistake != "lstm_cell_path_missing":
                    cell_back[:, t] = back_c
            grad_h[:, t] = direct[:, t] + recurrent[:, t]
            from_h[:, t] = grad_h[:, t] * o[:, t] * (1.0 - tanh_c[:, t] ** 2)
            grad_c[:, t] = from_h[:, t] + cell_back[:, t]
            d = pre[:, t]
            it, ft, gt, ot = i[:, t], fg[:, t], g[:, t], o[:, t]
            d[:, :hidden] = grad_c[:, t] * gt * it * (1.0 - it)
            d[:, hidden : 2 * hidden] = grad_c[:, t] * c[:, t] * ft * (1.0 - ft)
            d[:, 2 * hidden : 3 * hidden] = grad_c[:, t] * it * (1.0 - gt**2)
            d[:, 3 * hidden :] = grad_h[:, t] * tanh_c[:, t] * ot * (1.0 - ot)
            back_h = d @ w_hh
            back_c = grad_c[:, t] * ft
        grad_in = grad_rec = pre
        parts.update(grad_c=grad_c, grad_c_from_h=from_h, grad_c_from_next=cell_back)
    else:
        gates, hn = cache["gates"], cache["hn"]
        r, z, cand = (gates[..., k * hidden : (k + 1) * hidden] for k in range(3))
        grad_in = np.empty((n, steps, 3 * hidden))  # the input side's pre-activations
        grad_rec = np.empty((n, steps, 3 * hidden))  # the hidden side's: r ⊙ on n's rows
        for t in range(steps - 1, -1, -1):
            if t < steps - 1 and keep_recurrent and not _cut(layer, t):
                recurrent[:, t] = back_h
            gh = grad_h[:, t] = direct[:, t] + recurrent[:, t]
            rt, zt, nt = r[:, t], z[:, t], cand[:, t]
            d_n = gh * (1.0 - zt) * (1.0 - nt**2)
            d_z = gh * (h[:, t] - nt) * zt * (1.0 - zt)
            d_r = d_n * hn[:, t] * rt * (1.0 - rt)
            gi, gr = grad_in[:, t], grad_rec[:, t]
            gi[:, :hidden] = gr[:, :hidden] = d_r
            gi[:, hidden : 2 * hidden] = gr[:, hidden : 2 * hidden] = d_z
            gi[:, 2 * hidden :] = d_n
            gr[:, 2 * hidden :] = d_n * rt
            back_h = gh * zt + gr @ w_hh
    grads = _sums(theta, grad_in, grad_rec, x, h, scale, steps, mistake)
    grad_x = grad_in @ theta["weight_ih"]
    parts.update(grad_h=grad_h, grad_h_direct=direct, grad_h_from_next=recurrent)
    parts["grad_pre_input"] = grad_in
    parts["grad_pre_hidden"] = grad_rec
    return grad_x, grads, parts


def _sums(
    theta: Mapping[str, Array],
    grad_in: Array,
    grad_rec: Array,
    x: Array,
    h: Array,
    scale: float,
    steps: int,
    mistake: str | None,
) -> dict[str, Array]:
    """Each shared parameter's gradient: its contribution at every t, summed over t (and the
    examples), as one matrix product over all (example, t) rows."""
    before = h[:, :-1] if mistake != "wrong_time_index" else h[:, 1:]
    if mistake == "bptt_not_summed_over_time":  # the last step's contribution alone
        grad_in, grad_rec, x, before = (a[:, -1:] for a in (grad_in, grad_rec, x, before))
    rows_in = grad_in.reshape(-1, grad_in.shape[-1])
    rows_rec = grad_rec.reshape(-1, grad_rec.shape[-1])
    grads = {
        "weight_ih": scale * (rows_in.T @ x.reshape(-1, x.shape[-1])),
        "weight_hh": scale * (rows_rec.T @ before.reshape(-1, before.shape[-1])),
    }
    if "biases" in theta:
        grads["biases"] = scale * rows_in.sum(axis=0)
    else:
        grads["bias_ih"] = scale * rows_in.sum(axis=0)
        grads["bias_hh"] = scale * rows_rec.sum(axis=0)
    return grads


def contributions(ls: Any) -> dict[str, Array]:
    """Each shared parameter's contribution at every t, (T, *its shape): summed over t they
    are its gradient (without an L2 penalty's λθ)."""
    parts = ls.cache["bptt"]
    scale = ls.cache["scale"]
    grad_in, grad_rec = parts["grad_pre_input"], parts["grad_pre_hidden"]
    h = ls.cache["h"]
    out = {
        "weight_ih": scale * np.einsum("nti,ntk->tik", grad_in, ls.x),
        "weight_hh": scale * np.einsum("nti,ntk->tik", grad_rec, h[:, :-1]),
    }
    if "biases" in ls.grads:
        out["biases"] = scale * grad_in.sum(axis=0)
    else:
        out["bias_ih"] = scale * grad_in.sum(axis=0)
        out["bias_hh"] = scale * grad_rec.sum(axis=0)
    return out


# -- gradient flow ------------------------------------------------------------------------------


def jacobians(ls: Any, example: int = 0) -> Array:
    """‖∂s_t/∂s_(t−1)‖₂ for t = 2..T of one example, s being the state carried (h; an LSTM's
    (h, c)): the factors the gradient is multiplied by on its way back."""
    layer, cache = ls.layer, ls.cache
    kind = layer.kind.name
    theta = ls.params_ahead or ls.params_before
    w_hh = theta["weight_hh"]
    hidden = layer.options["hidden"]
    steps = ls.x.shape[1]
    norms = np.empty(max(steps - 1, 0))
    for t in range(1, steps):
        if kind == "rnn":
            f = _activation(layer)
            p = layer.options.get("activation_params", {})
            s = cache["s"][example, t]
            j = f.prime(s, cache["h"][example, t + 1], p)[:, None] * w_hh
        elif kind == "lstm":
            i, fg, g, o = np.split(cache["gates"][example, t], 4)
            c_prev, tc = cache["c"][example, t], cache["tanh_c"][example, t]
            w = np.split(w_hh, 4)
            dc_dh = (
                (c_prev * fg * (1 - fg))[:, None] * w[1]
                + (g * i * (1 - i))[:, None] * w[0]
                + (i * (1 - g**2))[:, None] * w[2]
            )
            dh_dh = (o * (1 - tc**2))[:, None] * dc_dh + (tc * o * (1 - o))[:, None] * w[3]
            dh_dc = np.diag(o * (1 - tc**2) * fg)
            j = np.block([[dh_dh, dh_dc], [dc_dh, np.diag(fg)]])
        else:
            r, z, cand = np.split(cache["gates"][example, t], 3)
            hn, h_prev = cache["hn"][example, t], cache["h"][example, t]
            w = np.split(w_hh, 3)
            d_n = (1 - cand**2)[:, None] * (r[:, None] * w[2] + (hn * r * (1 - r))[:, None] * w[0])
            d_z = (z * (1 - z))[:, None] * w[1]
            j = np.diag(z) + (1 - z)[:, None] * d_n + (h_prev - cand)[:, None] * d_z
        norms[t - 1] = np.linalg.norm(j, 2) if hidden > 1 or kind == "lstm" else abs(j[0, 0])
    return norms


def flow(ls: Any) -> tuple[Array, float, str]:
    """The Jacobians' norms of example 1, their product and what it says: 'vanishes',
    'explodes' or 'stable'."""
    norms = jacobians(ls)
    product = float(np.prod(norms)) if norms.size else 1.0
    verdict = "vanishes" if product < VANISH else "explodes" if product > EXPLODE else "stable"
    return norms, product, verdict


def sentence(ls: Any, num: Any = str) -> str:
    _norms, product, verdict = flow(ls)
    steps = ls.x.shape[1]
    if steps < 2:
        return "One step: no gradient goes back through time."
    state = "(h, c)" if ls.layer.kind.name == "lstm" else "h"
    bound = (
        f"The recurrent Jacobians ∂{state}_t/∂{state}_(t−1) of example 1 have norms whose product "
        f"over t = 2..{steps} is {num(product)}: it bounds ‖∂{state}_{steps}/∂{state}_1‖."
    )
    if verdict == "vanishes":
        return (
            bound + f" The gradient vanishes over the sequence: what the cost at step {steps} "
            f"sends back to step 1 is at most {num(product)} times its size."
        )
    if verdict == "explodes":
        return (
            bound + " The gradient may explode over the sequence: the bound grows beyond "
            f"{num(EXPLODE)} (clip it, or shrink W_hh)."
        )
    return bound + " The gradient neither vanishes nor explodes over this sequence."


# -- what tables and JSON show ------------------------------------------------------------------


def _extra(ls: Any) -> list[tuple[str, str, Any, bool]]:
    """Forward: the per-step pre-activations or gates and cells."""
    cache, kind = ls.cache, ls.layer.kind.name
    h = cache["h"][:, 1:]
    out: list[tuple[str, str, Any, bool]] = []
    if kind == "rnn":
        out.append(
            (
                "pre-activations s_t = W_ih x_t + b_ih + W_hh h_(t−1) + b_hh",
                "preactivations",
                cache["s"],
                True,
            )
        )
    elif kind == "lstm":
        out.append(("gates i, f, g, o (one row per t)", "gates", cache["gates"], True))
        out.append(("cell states c_t", "cells", cache["c"][:, 1:], True))
    else:
        out.append(("gates r, z, n (one row per t)", "gates", cache["gates"], True))
    out.append(("hidden states h_t", "hidden", h, True))
    return out


def _backward_extra(ls: Any) -> list[tuple[str, str, Any, bool]]:
    """Backward: ∂C/∂h_t and its two parts, for an LSTM ∂C/∂c_t's, the norms per t, the
    Jacobians' norms and each parameter's contribution at every t."""
    parts = ls.cache.get("bptt")
    if parts is None:
        return []
    out: list[tuple[str, str, Any, bool]] = [
        ("∂C/∂h_t from the output at t", "grad_h_direct", parts["grad_h_direct"], True),
        ("∂C/∂h_t from t+1", "grad_h_from_next", parts["grad_h_from_next"], True),
        ("∂C/∂h_t", "grad_h", parts["grad_h"], True),
    ]
    if "grad_c" in parts:
        out += [
            ("∂C/∂c_t through h_t", "grad_c_from_h", parts["grad_c_from_h"], True),
            (
                "∂C/∂c_t from t+1 (f_(t+1) ⊙ ∂C/∂c_(t+1))",
                "grad_c_from_next",
                parts["grad_c_from_next"],
                True,
            ),
            ("∂C/∂c_t", "grad_c", parts["grad_c"], True),
        ]
    out.append(
        ("‖∂C/∂h_t‖ (t = 1..T)", "grad_h_norms", np.linalg.norm(parts["grad_h"], axis=2), True)
    )
    norms, product, _verdict = flow(ls)
    out.append(("‖∂h_t/∂h_(t−1)‖ of example 1 (t = 2..T)", "jacobian_norms", norms, False))
    out.append(("their product", "jacobian_product", np.asarray(product), False))
    symbols = SYMBOLS
    for name, values in contributions(ls).items():
        out.append((f"∂C/∂{symbols[name]} at each t", f"grad_{name}_by_step", values, False))
    return out


def _notes(ls: Any, num: Any) -> list[str]:
    from gradcalc.doc.notation import sparkline

    parts = ls.cache.get("bptt")
    if parts is None:
        return []
    norms = np.linalg.norm(parts["grad_h"][0], axis=1)
    return [
        f"‖∂C/∂h_t‖ for t = 1..{norms.size} (example 1): {sparkline(norms)}",
        sentence(ls, num),
    ]


# -- how --diagram draws it --------------------------------------------------------------------

_CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def _block(layer: Layer) -> tuple[str, tuple[str, ...]]:
    """Its title lines: the cell, H and what it returns (its diagram draws it unrolled)."""
    kind = layer.kind.name
    cell = f"{layer.options['activation']} RNN" if kind == "rnn" else _CELLS[kind]
    returns = "every h_t" if layer.options["return"] == "sequence" else "h_T only"
    lines = [f"{cell} cell, H = {layer.options['hidden']}", f"returns {returns}"]
    k = layer.options.get("truncate")
    if k is not None:
        lines.append(f"gradient truncated every {k} step{'s' if k != 1 else ''}")
    return kind, tuple(lines)


def _unrolled(ls: Any) -> dict[str, Any]:
    """The arrays its unrolled drawing shows (LayerType.unrolled)."""
    cache = ls.cache
    out: dict[str, Any] = {"x": ls.x, "h": cache["h"]}
    if "c" in cache:
        out["c"] = cache["c"]
    parts = cache.get("bptt")
    if parts is not None:
        out["grad_h"] = parts["grad_h"]
    steps = ls.x.shape[1]
    out["cuts"] = tuple(t + 1 for t in range(steps - 1) if _cut(ls.layer, t))
    return out


# -- named mistakes -----------------------------------------------------------------------------


def _mistaken(name: str) -> Any:
    def values(ctx: Any, l: int) -> dict[str, Array]:
        layer = ctx.shape.layer(l)
        theta, x = ctx.theta_pass(l), ctx.x(l)
        if name == "lstm_cell_path_missing" and layer.kind.name != "lstm":
            return {}
        if x.shape[1] < 2:
            return {}
        cache = layer.kind.forward(layer, theta, x)[1]
        grad_x, grads, parts = bptt(
            layer, theta, cache, ctx.given("delta", l), ctx.net.scale, x, mistake=name
        )
        lam = ctx.spec.weight_decay
        out = {
            f"grad_{k}": g + (lam * theta[k] if lam and k in layer.kind.decays else 0.0)
            for k, g in grads.items()
        }
        if name not in ("bptt_not_summed_over_time", "wrong_time_index"):
            out["grad_input"] = grad_x
            out.update({q.name: parts[q.name] for q in layer.kind.quantities})
        return out

    return values


MISTAKES = (
    Mistake(
        "bptt_missing_recurrent_term",
        "∂C/∂h_t taken as the part from the output at t alone, without the part coming back "
        "from t + 1 (W_hhᵀ times the next step's gradient)",
        _mistaken("bptt_missing_recurrent_term"),
    ),
    Mistake(
        "bptt_missing_direct_term",
        "∂C/∂h_t taken as the part coming back from t + 1 alone, without the output's own part "
        "at t (kept at the last step, where nothing comes back)",
        _mistaken("bptt_missing_direct_term"),
    ),
    Mistake(
        "bptt_not_summed_over_time",
        "a shared weight's gradient taken from one step (the last) instead of summed over t",
        _mistaken("bptt_not_summed_over_time"),
    ),
    Mistake(
        "wrong_time_index",
        "h_t used where h_(t−1) belongs: ∂C/∂W_hh summed from δ_t h_tᵀ instead of δ_t h_(t−1)ᵀ",
        _mistaken("wrong_time_index"),
    ),
    Mistake(
        "lstm_cell_path_missing",
        "an LSTM's ∂C/∂c_t taken through h_t alone, without the forget-gate path "
        "f_(t+1) ⊙ ∂C/∂c_(t+1) from t + 1",
        _mistaken("lstm_cell_path_missing"),
    ),
)


# -- the worked solution ------------------------------------------------------------------------


def _write_forward(sheet: Any, ls: Any, n: int) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    kind = layer.kind.name
    cache = ls.cache
    theta = ls.params_ahead or ls.params_before
    steps, hidden = ls.x.shape[1], layer.options["hidden"]
    h = cache["h"][n]
    blocks: list[Any] = [Para(nt.text(_FORWARD_TEXT[kind]))]
    items = []
    if kind == "rnn" and hidden == 1 and ls.x.shape[2] == 1:
        b_ih, b_hh = _split(theta)
        b = float(b_ih[0] + b_hh[0])
        name = layer.options["activation"]
        for t in range(steps):
            if sheet.max_rows and t >= sheet.max_rows:
                break
            terms = [
                nt.prod(
                    (theta["weight_ih"][0, 0], sheet.given()), (ls.x[n, t, 0], True), lead=True
                ),
                nt.prod((theta["weight_hh"][0, 0], sheet.given()), (h[t, 0], t == 0)),
                nt.par(b, sheet.given()),
            ]
            s = cache["s"][n, t, 0]
            items.append(eq(nt.sym("s", None, t + 1), sheet.total(terms), nt.num(s)))
            items.append(eq(nt.sym("h", None, t + 1), f"{name}({nt.num(s)})", nt.num(h[t + 1, 0])))
    else:
        for t in range(steps):
            if sheet.max_rows and t >= sheet.max_rows:
                blocks.append(Para(nt.text(f"… {steps - t} more steps (--max-rows 0 shows all)")))
                break
            if kind == "rnn":
                items.append(eq(nt.sym("s", None, t + 1), _vec(nt, cache["s"][n, t], sheet)))
            else:
                for k, gate in enumerate(GATES[kind]):
                    values = cache["gates"][n, t, k * hidden : (k + 1) * hidden]
                    items.append(eq(nt.sym(gate, None, t + 1), _vec(nt, values, sheet)))
                if kind == "lstm":
                    items.append(
                        eq(nt.sym("c", None, t + 1), _vec(nt, cache["c"][n, t + 1], sheet))
                    )
            items.append(eq(nt.sym("h", None, t + 1), _vec(nt, h[t + 1], sheet)))
    blocks.insert(1, Eqs(tuple(items)))
    return blocks


def _vec(nt: Any, values: Array, sheet: Any) -> str:
    """One unit's value as a number, more as a vector cut at --max-terms."""
    if values.size == 1:
        return nt.num(float(values[0]))
    return nt.vec(values, limit=sheet.max_terms)


_FORWARD_TEXT = {
    "rnn": "s_t = W_ih x_t + b_ih + W_hh h_(t−1) + b_hh, h_t = f(s_t), from h_0:",
    "lstm": "i, f, g, o = σ, σ, tanh, σ of W_ih x_t + b_ih + W_hh h_(t−1) + b_hh; "
    "c_t = f ⊙ c_(t−1) + i ⊙ g; h_t = o ⊙ tanh(c_t):",
    "gru": "r, z = σ(W_i x_t + b_i + W_h h_(t−1) + b_h); n = tanh(W_in x_t + b_in + r ⊙ (W_hn "
    "h_(t−1) + b_hn)); h_t = (1 − z) ⊙ n + z ⊙ h_(t−1):",
}


def _write_backward(sheet: Any, ls: Any) -> list[Any]:
    from gradcalc.doc.blocks import Eqs, Para
    from gradcalc.layers.written import eq

    nt, layer = sheet.nt, ls.layer
    kind = layer.kind.name
    parts = ls.cache["bptt"]
    theta = ls.params_ahead or ls.params_before
    steps, hidden = ls.x.shape[1], layer.options["hidden"]
    blocks: list[Any] = [
        Para(
            nt.text(
                "Backward through time (example 1), from t = T down: ∂C/∂h_t = the part from "
                "the output at t + the part coming back from t + 1"
                + (", cut every truncate steps" if layer.options.get("truncate") else "")
                + ":"
            )
        )
    ]
    items = []
    one = kind == "rnn" and hidden == 1 and ls.x.shape[2] == 1
    prime = None
    if kind == "rnn":
        f = _activation(layer)
        prime = f.prime(
            ls.cache["s"][0], ls.cache["h"][0, 1:], layer.options.get("activation_params", {})
        )
    w = float(theta["weight_hh"][0, 0]) if one else 0.0
    for t in range(steps - 1, -1, -1):
        if sheet.max_rows and steps - 1 - t >= sheet.max_rows:
            blocks.append(Para(nt.text(f"… {t + 1} more steps (--max-rows 0 shows all)")))
            break
        direct, back, total = (
            parts[k][0, t] for k in ("grad_h_direct", "grad_h_from_next", "grad_h")
        )
        lhs = nt.sym(nt.d("h"), None, t + 1)
        if one:
            assert prime is not None
            if t < steps - 1 and back[0] != 0:
                nxt = parts["grad_pre_input"][0, t + 1, 0]
                via = f"{nt.num(w, sheet.given())}{nt.ttimes}{nt.par(nxt)}"
                items.append(eq(lhs, f"{nt.num(direct[0])} + {via}", nt.num(total[0])))
            else:
                items.append(eq(lhs, nt.num(direct[0]), nt.num(total[0])))
            items.append(
                eq(
                    nt.sym(nt.d("s"), None, t + 1),
                    f"{nt.num(total[0])}{nt.ttimes}{nt.par(prime[t, 0])}",
                    nt.num(parts["grad_pre_input"][0, t, 0]),
                )
            )
        else:
            items.append(
                eq(
                    lhs,
                    f"{_vec(nt, direct, sheet)} + {_vec(nt, back, sheet)}",
                    _vec(nt, total, sheet),
                )
            )
            if kind == "lstm" and hidden == 1:  # every factor substituted
                cache = ls.cache
                o = cache["gates"][0, t, 3]
                rhs = (
                    f"{nt.num(total[0])}{nt.ttimes}{nt.par(o)}{nt.ttimes}(1 {nt.minus} "
                    f"{nt.squared(nt.par(cache['tanh_c'][0, t, 0]))})"
                )
                if t < steps - 1 and parts["grad_c_from_next"][0, t, 0] != 0:
                    f_next = cache["gates"][0, t + 1, 1]
                    rhs += f" + {nt.num(f_next)}{nt.ttimes}{nt.par(parts['grad_c'][0, t + 1, 0])}"
                items.append(
                    eq(nt.sym(nt.d("c"), None, t + 1), rhs, nt.num(parts["grad_c"][0, t, 0]))
                )
            elif kind == "lstm":
                cparts = [parts[k][0, t] for k in ("grad_c_from_h", "grad_c_from_next", "grad_c")]
                items.append(
                    eq(
                        nt.sym(nt.d("c"), None, t + 1),
                        f"{_vec(nt, cparts[0], sheet)} + {_vec(nt, cparts[1], sheet)}",
                        _vec(nt, cparts[2], sheet),
                    )
                )
    blocks.append(Eqs(tuple(items)))
    blocks.append(
        Para(
            nt.text(
                "Each shared parameter's gradient is its contribution at each t, summed over t:"
            )
        )
    )
    items = []
    pre, h = parts["grad_pre_input"][0, :, 0], ls.cache["h"][0, :, 0]
    factors = {"weight_ih": (ls.x[0, :, 0], layer.index == 0), "weight_hh": (h[:-1], False)}
    for name, values in contributions(ls).items():
        symbol = SYMBOLS[name]
        grad = ls.grads[name]
        for index in sheet.cells(grad.shape):
            if one and ls.x.shape[0] == 1 and name in factors:  # ∂C/∂s_t × its input
                by, given = factors[name]
                terms = [
                    nt.prod((pre[t], False), (by[t], given), lead=t == 0) for t in range(steps)
                ]
            else:
                terms = [
                    nt.num(values[t][index]) if t == 0 else nt.par(values[t][index])
                    for t in range(steps)
                ]
            items.append(
                eq(nt.sym(nt.d(symbol), None, *index), sheet.total(terms), nt.num(grad[index]))
            )
    blocks.append(Eqs(tuple(items)))
    blocks.append(Para(nt.text(sentence(ls, nt.num))))
    return blocks


# -- the records --------------------------------------------------------------------------------

_WRITTEN = WrittenCells(
    lambda sheet, ls, n: _write_forward(sheet, ls, n),
    lambda sheet, ls: _write_backward(sheet, ls),
)

_EQUATIONS = {
    "rnn": (
        Written(
            "h_t = f(W_ih x_t + b_ih + W_hh h_(t−1) + b_hh)",
            r"h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})",
        ),
        Written(
            "∂C/∂h_t = δ_t + W_hhᵀ (∂C/∂h_(t+1) ⊙ f′(s_(t+1))),  ∂C/∂W_hh = Σ_t (∂C/∂h_t ⊙ "
            "f′(s_t)) h_(t−1)ᵀ",
            r"\partial C/\partial h_t = \delta _t + W_{hh}^T (\partial C/\partial h_{t+1} "
            r"\odot f'(s_{t+1})),\ \partial C/\partial W_{hh} = \sum _t (\partial C/\partial "
            r"h_t \odot f'(s_t)) h_{t-1}^T",
        ),
    ),
    "lstm": (
        Written(
            "c_t = f ⊙ c_(t−1) + i ⊙ g,  h_t = o ⊙ tanh(c_t)",
            r"c_t = f \odot c_{t-1} + i \odot g,\ h_t = o \odot \tanh (c_t)",
        ),
        Written(
            "∂C/∂c_t = ∂C/∂h_t ⊙ o ⊙ (1 − tanh²c_t) + f_(t+1) ⊙ ∂C/∂c_(t+1)",
            r"\partial C/\partial c_t = \partial C/\partial h_t \odot o \odot (1 - \tanh ^2 "
            r"c_t) + f_{t+1} \odot \partial C/\partial c_{t+1}",
        ),
    ),
    "gru": (
        Written(
            "n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h′ = (1 − z) ⊙ n + z ⊙ h",
            r"n = \tanh (W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})),\ h' = (1 - z) "
            r"\odot n + z \odot h",
        ),
        Written(
            "∂C/∂h_(t−1) = ∂C/∂h_t ⊙ z + W_hᵀ (∂C/∂ of the gates' pre-activations)",
            r"\partial C/\partial h_{t-1} = \partial C/\partial h_t \odot z + W_h^T "
            r"(\partial C/\partial \text{pre-activations})",
        ),
    ),
}
_TITLES = {
    "rnn": "recurrent layer (Elman RNN, as torch.nn.RNN)",
    "lstm": "long short-term memory (as torch.nn.LSTM)",
    "gru": "gated recurrent unit (as torch.nn.GRU)",
}


def _cell_shape(layer: Layer, n: int) -> Shape:
    return (n, layer.in_shape[0], layer.options["hidden"])


def _compute(name: str) -> Any:
    """Check's value of a cell of backpropagation through time, from x and the given δ."""

    def compute(
        layer: Layer, theta: Mapping[str, Array], x: Array, delta: Array, state: Any
    ) -> Array:
        cache = forward(layer, theta, x)[1]
        return bptt(layer, theta, cache, delta, 1.0, x)[2][name]

    return compute


def _quantities(kind: str) -> tuple[Quantity, ...]:
    """∂C/∂h_t, its part from t + 1 and an LSTM's ∂C/∂c_t, (T, H) per example."""
    out = [
        Quantity("grad_h", "∂C/∂h", "backward", True, _cell_shape, _compute("grad_h")),
        Quantity(
            "grad_h_from_next",
            "∂C/∂h",
            "backward",
            True,
            _cell_shape,
            _compute("grad_h_from_next"),
            suffix=" from t+1",
        ),
    ]
    if kind == "lstm":
        out.append(Quantity("grad_c", "∂C/∂c", "backward", True, _cell_shape, _compute("grad_c")))
    return tuple(out)


# The keys of its JSON record besides every layer's (_extra's and _backward_extra's).
RECORD_KEYS = (
    "preactivations",
    "gates",
    "cells",
    "hidden",
    "grad_h_direct",
    "grad_h_from_next",
    "grad_h",
    "grad_c_from_h",
    "grad_c_from_next",
    "grad_c",
    "grad_h_norms",
    "jacobian_norms",
    "jacobian_product",
    "grad_weight_ih_by_step",
    "grad_weight_hh_by_step",
    "grad_biases_by_step",
    "grad_bias_ih_by_step",
    "grad_bias_hh_by_step",
)


def _type(kind: str) -> LayerType:
    keys = (*KEYS, "initial_cell") if kind == "lstm" else (*KEYS, "activation")
    mistakes = tuple(m for m in MISTAKES if kind == "lstm" or m.name != "lstm_cell_path_missing")
    return LayerType(
        name=kind,
        title=_TITLES[kind],
        equations=_EQUATIONS[kind],
        keys=keys,
        rank=2,
        parse=_parse(kind),
        forward=forward,
        backward=backward,
        decays=("weight_ih", "weight_hh"),
        symbols=SYMBOLS,
        mistakes=mistakes,
        extra=_extra,
        backward_extra=_backward_extra,
        notes=_notes,
        linear=False,
        record_keys=RECORD_KEYS,
        quantities=_quantities(kind),
        written=_WRITTEN,
        block=_block,
        unrolled=_unrolled,
    )


RNN, LSTM, GRU = _type("rnn"), _type("lstm"), _type("gru")
TYPES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
