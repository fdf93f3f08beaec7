"""How a layered run is shown: tables per layer and channel as matrices, JSON records with their
shapes, and the writers `gradcalc step` streams a run through (as gradcalc/step/writers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from gradcalc.doc.numbers import Style
from gradcalc.layers.engine import (
    LayeredRun,
    LayeredStepTrace,
    LayeredSummary,
    LayerStep,
    summarize,
)
from gradcalc.layers.shapes import show
from gradcalc.step import json
from gradcalc.step.json import as_json, by_example, trained

# -- text -------------------------------------------------------------------------------------


def _cells(values: np.ndarray, num: Callable[[float], str]) -> list[list[str]]:
    if _pairs(values):
        return [[f"({r},{c})" for r, c in row] for row in values.tolist()]
    if values.dtype.kind in "iu":
        return [[str(v) for v in row] for row in np.atleast_2d(values).tolist()]
    return [[num(v) for v in row] for row in np.atleast_2d(values).tolist()]


# The widest a matrix row is drawn: the columns beyond are counted, and JSON has them all.
LINE_WIDTH = 100


def matrix_lines(values: np.ndarray, num: Callable[[float], str], max_rows: int) -> list[str]:
    """A vector as one row, a matrix as right-justified columns; rows beyond max_rows and
    columns beyond LINE_WIDTH (with --max-rows set) counted."""
    rows = _cells(values, num)
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))] if rows else []
    shown = len(widths)
    if max_rows:
        total = 2
        for k, w in enumerate(widths):
            total += w + 2
            if total > LINE_WIDTH - 12:
                shown = max(k, 1)
                break
    more = f"  … {len(widths) - shown} more" if shown < len(widths) else ""
    lines = [
        "  " + "  ".join(c.rjust(w) for c, w in zip(r[:shown], widths[:shown], strict=True)) + more
        for r in rows
    ]
    if max_rows and len(lines) > max_rows:
        hidden = len(lines) - max_rows
        lines = [*lines[:max_rows], f"  … {hidden} more rows (--max-rows 0 shows all)"]
    return lines


def _pairs(values: np.ndarray) -> bool:
    """A max-pool's sources in 2-D: (row, column) pairs along the last axis."""
    return values.dtype.kind in "iu" and values.ndim >= 3 and values.shape[-1] == 2


def array_lines(
    label: str, values: np.ndarray, num: Callable[[float], str], max_rows: int
) -> list[str]:
    """One example's array as matrices: 1-D one row; (H, W) one matrix; (C, H, W) one per
    channel; (O, C, kH, kW) one per kernel and input channel."""
    if values.ndim <= 1:
        return [f"{label}:", *matrix_lines(np.atleast_1d(values)[None, :], num, max_rows)]
    lead = values.shape[: -3 if _pairs(values) else -2]
    if not lead:
        return [f"{label}:", *matrix_lines(values, num, max_rows)]
    names = ("channel",) if len(lead) == 1 else ("kernel", "channel")
    if "per head" in label:  # attention's (heads, T, T) arrays
        names = ("head",)
    lines: list[str] = []
    for shown, index in enumerate(np.ndindex(*lead)):
        if max_rows and shown >= max_rows:
            lines.append(f"  … {int(np.prod(lead)) - shown} more (--max-rows 0 shows all)")
            break
        where = ", ".join(f"{n} {i}" for n, i in zip(names, index, strict=True))
        if label.endswith(" at each t"):  # a recurrent parameter's contribution per step
            where = f"t = {index[0] + 1}"
        lines.append(f"{label}, {where}:")
        lines += matrix_lines(values[index], num, max_rows)
    return lines


def _label(ls: LayerStep) -> str:
    layer = ls.layer
    text = f"layer {layer.number} ({layer.kind.name}"
    if "activation" in layer.options:  # a recurrent cell's own, inside the layer
        text += f", {layer.options['activation']}"
    elif layer.params or not getattr(layer.activation, "bare", False):
        text += f", {layer.activation.name}"
    return text + f"), {show(layer.in_shape)} → {show(layer.out_shape)}"


def forward_lines(trace: LayeredRun, st: LayeredStepTrace, num: Any, max_rows: int) -> list[str]:
    lines = ["", "Forward pass"]
    for n in range(trace.x.shape[0]):
        if max_rows and n >= max_rows:
            lines.append(f"… {trace.x.shape[0] - n} more examples (--max-rows 0 shows all)")
            break
        if trace.batch:
            lines.append(f"-- example {n + 1}")
        for ls in st.layers:
            layer = ls.layer
            lines += ["", _label(ls)]
            if ls.layer.index == 0:
                lines += array_lines("input x", ls.x[n], num, max_rows)
            extras = layer.kind.extra(ls) if layer.kind.extra else []
            for label, _, values, per_example in extras:
                if label.startswith("input"):
                    lines += array_lines(label, values[n] if per_example else values, num, max_rows)
            lines += _unused(layer.options.get("unused", ()))
            lines += array_lines(f"z^{layer.number}", ls.z[n], num, max_rows)
            if not getattr(layer.activation, "bare", False) or layer.residual:
                label = f"a^{layer.number}" + (" = x + f(z) (residual)" if layer.residual else "")
                lines += array_lines(label, ls.a[n], num, max_rows)
            for label, _, values, per_example in extras:
                # One that is not per example (batch norm's μ) once, with the first.
                if label.startswith("input") or (not per_example and n):
                    continue
                lines += array_lines(label, values[n] if per_example else values, num, max_rows)
    return lines


def _unused(unused: tuple[int, ...]) -> list[str]:
    """What PyTorch's floor rule leaves out: the last rows or columns no window reaches."""
    if not any(unused):
        return []
    axes = ("row", "column") if len(unused) == 2 else ("position",)
    parts = [
        f"{u} {axis}{'s' if u != 1 else ''}" for u, axis in zip(unused, axes, strict=True) if u
    ]
    return [f"  (the windows leave the last {' and '.join(parts)} of the input unused)"]


def backward_lines(trace: LayeredRun, st: LayeredStepTrace, num: Any, max_rows: int) -> list[str]:
    lines = ["", "Backward pass (δ = ∂C/∂z; ∂C/∂x is the layer below's ∂C/∂a)"]
    for ls in reversed(st.layers):
        layer = ls.layer
        lines += ["", _label(ls)]
        backward = layer.kind.backward_extra(ls) if layer.kind.backward_extra else []
        for n in range(trace.x.shape[0]):
            if max_rows and n >= max_rows:
                break
            tag = f" (example {n + 1})" if trace.batch else ""
            lines += array_lines(f"δ^{layer.number}{tag}", ls.delta[n], num, max_rows)
            lines += array_lines(f"∂C/∂x at layer {layer.number}{tag}", ls.grad_x[n], num, max_rows)
            for label, _, values, per_example in backward:
                if per_example:
                    lines += array_lines(f"{label}{tag}", values[n], num, max_rows)
        for label, _, values, per_example in backward:
            if not per_example:
                lines += array_lines(label, np.asarray(values), num, max_rows)
        symbols = layer.kind.symbols
        for name, g in ls.grads.items():
            lines += array_lines(f"∂C/∂{symbols.get(name, name)}^{layer.number}", g, num, max_rows)
        if layer.kind.notes is not None:
            lines += ["", *layer.kind.notes(ls, num)]
    return lines


def update_lines(trace: LayeredRun, st: LayeredStepTrace, num: Any, max_rows: int) -> list[str]:
    lines = ["", f"Update ({trace.optimizer}, η = {num(trace.learning_rate)})"]
    for ls in st.layers:
        symbols = ls.layer.kind.symbols
        for name, value in ls.params.items():
            lines += array_lines(
                f"{symbols.get(name, name)}^{ls.layer.number} after the step", value, num, max_rows
            )
        for name, number in ls.activation_params.items():
            if name in ls.grad_activation_params:
                lines.append(f"{name} of layer {ls.layer.number} after the step: {num(number)}")
        for name, value in ls.state.items():  # not trained: carried (batch norm's statistics)
            lines += array_lines(
                f"{name}^{ls.layer.number} before the step", ls.state_before[name], num, max_rows
            )
            lines += array_lines(f"{name}^{ls.layer.number} after", value, num, max_rows)
    return lines


def header(trace: LayeredRun, num: Any) -> str:
    chain = " → ".join(
        [f"input {show(trace.shapes[0])}"]
        + [f"{layer.kind.name} {show(layer.out_shape)}" for layer in trace.layers]
    )
    examples = trace.x.shape[0]
    text = (
        f"{trace.source}: {chain}, {examples} example{'s' if examples != 1 else ''}, loss "
        f"{trace.loss}, η = {num(trace.learning_rate)}, {trace.n_steps} step"
        f"{'s' if trace.n_steps != 1 else ''}"
    )
    if trace.optimizer != "sgd":
        hyper = ", ".join(f"{k} = {num(v)}" for k, v in trace.optimizer_params.items())
        text += f", optimizer {trace.optimizer}" + (f" ({hyper})" if hyper else "")
    if trace.weight_decay:
        text += f", L2 weight decay λ = {num(trace.weight_decay)}"
    if trace.round_to is not None:
        text += f", every quantity rounded to {trace.round_to} decimals"
    return text


def step_text(trace: LayeredRun, st: LayeredStepTrace, max_rows: int, digits: int) -> str:
    num = Style(digits)
    lines = ["", f"Step {st.step} of {trace.n_steps}"]
    lines += forward_lines(trace, st, num, max_rows)
    cost = st.ahead or st
    lines += [
        "",
        f"Cost: C = {num(cost.loss)} ({trace.loss}, "
        f"{trace.reduction if trace.batch else 'one example'})",
    ]
    lines += backward_lines(trace, st, num, max_rows)
    lines += update_lines(trace, st, num, max_rows)
    return "\n".join(lines)


def summary_text(trace: LayeredRun, digits: int) -> str:
    """The output and the cost before training and after the last step, beside the target."""
    num = Style(digits)
    after = f"after step {trace.n_steps}" if trace.n_steps else "(no steps run)"

    def flat(values: np.ndarray) -> str:
        items = [num(v) for v in np.ravel(values)[:8]]
        return "[" + ", ".join(items) + (", …" if np.size(values) > 8 else "") + "]"

    given = "∂C/∂a given" if trace.loss == "upstream" else "target y"
    lines = ["", "Summary"]
    n = trace.x.shape[0]
    for k in range(min(n, 10)):
        label = f"output (example {k + 1})" if trace.batch else "output"
        if trace.initial.a:
            lines.append(f"  {label} before training: {flat(trace.initial.output[k])}")
        if trace.final.a:
            lines.append(f"  {label} {after}: {flat(trace.final.output[k])}")
        lines.append(f"  {given}: {flat(trace.y[k])}")
    if n > 10:
        lines.append(f"  … {n - 10} more examples")
    lines.append(
        f"  loss C ({trace.loss}): before training {num(trace.initial.loss)}, {after} "
        f"{num(trace.final.loss)}"
    )
    return "\n".join(lines)


# -- JSON: the dense run's document (gradcalc/step/json.py) with layer records of every type --


def layer_record(ls: LayerStep, batch: bool) -> dict[str, Any]:
    layer = ls.layer
    doc: dict[str, Any] = {
        "layer": layer.number,
        "type": layer.kind.name,
        "activation": layer.activation.name,
        "input_shape": list(layer.in_shape),
        "output_shape": list(layer.out_shape),
        "options": _options(layer.options),
        **({"residual": True} if layer.residual else {}),
        "z": by_example(ls.z, batch),
        "a": by_example(ls.a, batch),
        "delta": by_example(ls.delta, batch),
        "grad_input": by_example(ls.grad_x, batch),
        "grads": {k: as_json(v) for k, v in ls.grads.items()},
        "params": {k: as_json(v) for k, v in ls.params.items()},
        "shapes": {k: list(v.shape) for k, v in ls.params.items()},
    }
    for _, key, values, per_example in layer.kind.extra(ls) if layer.kind.extra else []:
        doc[key] = by_example(values, batch) if per_example else as_json(values)
    if layer.kind.backward_extra is not None:
        for _, key, values, per_example in layer.kind.backward_extra(ls):
            doc[key] = by_example(values, batch) if per_example else as_json(values)
    doc.update(trained(ls.activation_params, ls.grad_activation_params, ls.optimizer_state))
    if ls.params_ahead is not None:
        doc["params_lookahead"] = {k: as_json(v) for k, v in ls.params_ahead.items()}
        ahead = {k: ls.activation_params_pass[k] for k in ls.grad_activation_params}
        if ahead:  # a learnable activation parameter's ã (PReLU's slope) at θ̃
            doc["activation_params_lookahead"] = ahead
    if ls.state:
        doc["state_before"] = {k: as_json(v) for k, v in ls.state_before.items()}
        doc["state"] = {k: as_json(v) for k, v in ls.state.items()}
    return doc


def _options(options: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items() if k != "window"}


def step_record(st: LayeredStepTrace, batch: bool) -> dict[str, Any]:
    return json.step_record(st, batch, layer_record)


def summary_record(st: LayeredStepTrace | LayeredSummary, batch: bool = False) -> dict[str, Any]:
    summary = summarize(st) if isinstance(st, LayeredStepTrace) else st
    return {
        "step": st.step,
        "loss": st.loss,
        "layers": [
            {"layer": l, "grad_norm": g, "update_norm": d}
            for l, (g, d) in enumerate(summary.norms.tolist(), 2)
        ],
    }


def head(trace: LayeredRun, show_: str = "all") -> dict[str, Any]:
    layers = {
        "shapes": [list(s) for s in trace.shapes],
        "layer_types": [layer.kind.name for layer in trace.layers],
        # A sequence input's: the cost at every step or at the last.
        **({"loss_at": trace.loss_at} if trace.loss_at is not None else {}),
    }
    return json.head(trace, show_, layers)


def tail(trace: LayeredRun) -> dict[str, Any]:
    parameters = []
    states = trace.states or tuple({} for _ in trace.layers)
    for layer, theta, act, state in zip(
        trace.layers, trace.parameters, trace.activation_params, states, strict=True
    ):
        record: dict[str, Any] = {
            "layer": layer.number,
            "type": layer.kind.name,
            "activation": layer.activation.name,
            "params": {k: as_json(v) for k, v in theta.items()},
        }
        if act:
            record["activation_params"] = dict(act)
        if state:
            record["state"] = {k: as_json(v) for k, v in state.items()}
        parameters.append(record)
    return json.ends(trace, parameters)


# -- writers ----------------------------------------------------------------------------------


class JsonWriter(json.Writer):
    """--format json and jsonl of a layered run, written as a dense run's."""

    records: ClassVar[dict[str, Callable[[Any, bool], dict[str, Any]] | None]] = {
        "all": step_record,
        "summary": summary_record,
        "final": None,
    }

    def document_head(self, trace: LayeredRun) -> dict[str, Any]:
        return head(trace, self.show)

    def document_tail(self, trace: LayeredRun) -> dict[str, Any]:
        return tail(trace)


class TableWriter:
    def __init__(
        self, write: Callable[[str], None], shown: Callable[[int], bool], max_rows: int, digits: int
    ) -> None:
        self.write, self.shown, self.max_rows, self.digits = write, shown, max_rows, digits
        self.head: LayeredRun | None = None

    def full(self, step: int) -> bool:
        return self.shown(step)

    def start(self, trace: LayeredRun) -> None:
        self.head = trace
        self.write(header(trace, Style(self.digits)) + "\n")

    def step(self, st: LayeredStepTrace | LayeredSummary) -> None:
        if isinstance(st, LayeredStepTrace) and self.shown(st.step):
            assert self.head is not None
            self.write(step_text(self.head, st, self.max_rows, self.digits) + "\n")

    def finish(self, trace: LayeredRun) -> None:
        self.write(summary_text(trace, self.digits) + "\n")


class SummaryLines:
    """--show summary: one line per step, the cost and per layer ‖∂C/∂θ‖ and ‖Δθ‖."""

    def __init__(self, write: Callable[[str], None], digits: int) -> None:
        self.write, self.digits = write, digits
        self.widths: list[int] = []

    def full(self, step: int) -> bool:
        return False

    def start(self, trace: LayeredRun) -> None:
        columns = ["step", "C"]
        for layer in trace.layers:
            if layer.params:
                columns += [f"‖∂C/∂θ^{layer.number}‖", f"‖Δθ^{layer.number}‖"]
        self.widths = [max(len(c), 8 if i == 0 else 12) for i, c in enumerate(columns)]
        self.write(header(trace, Style(self.digits)) + "\n\n" + self._line(columns))
        self.keep = [bool(layer.params) for layer in trace.layers]

    def _line(self, cells: Iterable[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, self.widths, strict=True)) + "\n"

    def step(self, st: LayeredStepTrace | LayeredSummary) -> None:
        num = Style(self.digits)
        summary = summarize(st) if isinstance(st, LayeredStepTrace) else st
        cells = [str(st.step), num(st.loss)]
        for keep, (g, d) in zip(self.keep, summary.norms.tolist(), strict=True):
            if keep:
                cells += [num(g), num(d)]
        self.write(self._line(cells))

    def finish(self, trace: LayeredRun) -> None:
        self.write(summary_text(trace, self.digits) + "\n")


def writer(name: str, write: Callable[[Any], None], layout: Any) -> Any:
    """The writer of --format `name` (or "explain")."""
    digits = layout.digits
    if name in ("json", "jsonl"):
        return JsonWriter(write, lines=name == "jsonl", show=layout.show, shown=layout.shown)
    if name == "table":
        if layout.show == "summary":
            return SummaryLines(write, digits or 6)
        return TableWriter(write, layout.shown, layout.max_rows, digits or 6)
    from gradcalc.layers.solution import SolutionWriter

    return SolutionWriter(name, layout.shown, layout.max_terms, layout.max_rows, digits or 3)


def params_npz(trace: LayeredRun) -> bytes:
    """The trained parameters as .npz: each parameter's symbol and layer number (K2, b2, w5…)."""
    import io

    arrays = {}
    states = trace.states or tuple({} for _ in trace.layers)
    for layer, theta, state in zip(trace.layers, trace.parameters, states, strict=True):
        for name, value in theta.items():
            arrays[f"{layer.kind.symbols.get(name, name)}{layer.number}"] = value
        for name, value in state.items():  # batch norm's running statistics: running_mean2
            arrays[f"{name}{layer.number}"] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()
