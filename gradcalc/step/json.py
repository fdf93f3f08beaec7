"""The JSON contract of `gradcalc step --format json` and `--format jsonl`: full float precision,
written step by step as the run produces them.

`--format json` is one document {settings…, "steps": [records], "initial", "final"};
`--format jsonl` writes the same step records one per line, then the document without "steps".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcalc.contract import versioned
from gradcalc.step.engine import summarize
from gradcalc.step.trace import ForwardTrace, LayerTrace, RunTrace, StepSummary, StepTrace

try:
    # orjson writes a float64 array in C with the shortest repr that round-trips (Ryu): about
    # 20× faster than float.__repr__ per element, which is what json.dumps pays.
    import orjson

    def _contiguous(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return np.ascontiguousarray(value, dtype=float)
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    def encode(obj: Any) -> bytes:
        return orjson.dumps(obj, default=_contiguous, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover - exercised by tests that hide orjson

    def _plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    def encode(obj: Any) -> bytes:
        return json.dumps(obj, default=_plain, ensure_ascii=False, separators=(",", ":")).encode()


def _rows(array: np.ndarray, batch: bool) -> np.ndarray:
    # One example shows as a vector; a batch keeps one row per example.
    return np.ascontiguousarray(array if batch else array[0])


def _c(array: np.ndarray) -> np.ndarray | float:
    # A 0-d array is a number in JSON, not a one-element list.
    return float(array) if np.ndim(array) == 0 else np.ascontiguousarray(array)


def _layer(lt: LayerTrace, batch: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "layer": lt.layer,
        "activation": lt.activation,
        "z": _rows(lt.z, batch),
        "a": _rows(lt.a, batch),
        "delta": _rows(lt.delta, batch),
        "grad_weights": _c(lt.grad_weights),
        "grad_biases": _c(lt.grad_biases),
        "weights": _c(lt.weights),
        "biases": _c(lt.biases),
    }
    if lt.params:
        doc["activation_params"] = dict(lt.params)
    if lt.grad_params:
        doc["grad_activation_params"] = dict(lt.grad_params)
    # The update rule's state after the step, by parameter ("weights", "biases", "a") and name.
    doc["optimizer_state"] = {
        kind: {name: _c(array) for name, array in arrays.items()}
        for kind, arrays in lt.optimizer_state.items()
    }
    if lt.weights_ahead is not None and lt.biases_ahead is not None:
        doc["weights_lookahead"] = _c(lt.weights_ahead)
        doc["biases_lookahead"] = _c(lt.biases_ahead)
        if lt.params_ahead:
            doc["activation_params_lookahead"] = dict(lt.params_ahead)
    return doc


def _costs(data_loss: float | None, loss: float, penalty: float) -> dict[str, float]:
    return {"data_loss": loss if data_loss is None else data_loss, "penalty": penalty}


def step_record(st: StepTrace, batch: bool) -> dict[str, Any]:
    """Everything a step computed (--show all)."""
    doc: dict[str, Any] = {
        "step": st.step,
        "loss": st.loss,
        **_costs(st.data_loss, st.loss, st.penalty),
        **({"losses": _c(st.losses)} if batch else {}),
    }
    if st.ahead is not None:
        doc["lookahead"] = {
            "loss": st.ahead.loss,
            **_costs(st.ahead.data_loss, st.ahead.loss, st.ahead.penalty),
            **({"losses": _c(st.ahead.losses)} if batch else {}),
        }
    doc["layers"] = [_layer(lt, batch) for lt in st.layers]
    return doc


def summary_record(st: StepTrace | StepSummary, batch: bool = False) -> dict[str, Any]:
    """The step in a line (--show summary): the cost, and per layer the norms of the gradients
    and of the updates the rule made."""
    norms = summarize(st).norms
    assert norms is not None
    return {
        "step": st.step,
        "loss": st.loss,
        "layers": [
            {
                "layer": l,
                "grad_weights_norm": g_w,
                "grad_biases_norm": g_b,
                "update_weights_norm": d_w,
                "update_biases_norm": d_b,
            }
            for l, (g_w, g_b, d_w, d_b) in enumerate(norms.tolist(), 2)
        ],
    }


RECORDS: dict[str, Callable[[Any, bool], dict[str, Any]] | None] = {
    "all": step_record,
    "summary": summary_record,
    "final": None,
}


def head(trace: RunTrace, show: str = "all") -> dict[str, Any]:
    """The settings, known before the first step."""
    return versioned(
        {
            "config": trace.source,
            "loss_function": trace.loss,
            "loss_params": trace.loss_params,
            "learning_rate": trace.learning_rate,
            "reduction": trace.reduction if trace.batch else None,
            "examples": int(trace.x.shape[0]),
            "sizes": list(trace.sizes),
            "round": trace.round_to,
            "optimizer": {"name": trace.optimizer, **trace.optimizer_params},
            "weight_decay": trace.weight_decay,
            "steps_run": trace.n_steps,
            "show": show,
        }
    )


def _forward(ft: ForwardTrace, batch: bool) -> dict[str, Any]:
    return {
        "loss": ft.loss,
        **_costs(ft.data_loss, ft.loss, ft.penalty),
        "output": _rows(ft.output, batch),
    }


def tail(trace: RunTrace) -> dict[str, Any]:
    """What is known once the last step has run."""
    batch = trace.batch
    parameters = []
    for p in trace.parameters:
        record: dict[str, Any] = {
            "layer": p.layer,
            "activation": p.activation,
            "weights": _c(p.weights),
            "biases": _c(p.biases),
        }
        if p.params:
            record["activation_params"] = dict(p.params)
        parameters.append(record)
    return {
        "initial": _forward(trace.initial, batch),
        "final": _forward(trace.final, batch),
        "parameters": parameters,  # after the last step: what --save-weights writes
    }


class Writer:
    """Writes each step's record as it arrives and keeps none: `write` takes bytes."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        *,
        lines: bool = False,
        show: str = "all",
        shown: Callable[[int], bool] = lambda s: True,
    ) -> None:
        self.write = write
        self.lines = lines
        self.show = show
        self.record = RECORDS[show]
        self.shown = shown
        self.batch = False
        self.first = True
        self.norms = show == "summary"  # what the engine computes for the steps not shown in full

    def full(self, step: int) -> bool:
        return self.show == "all" and self.shown(step)

    def start(self, trace: RunTrace) -> None:
        self.batch = trace.batch
        if not self.lines:
            # The settings, then the steps as they come: '{…,"steps":[' … ']' + the tail.
            self.write(encode(head(trace, self.show))[:-1] + b',"steps":[')

    def step(self, st: StepTrace | StepSummary) -> None:
        if self.record is None or (self.show == "all" and not self.shown(st.step)):
            return
        data = encode(self.record(st, self.batch))
        if self.lines:
            self.write(data + b"\n")
        else:
            self.write(data if self.first else b"," + data)
        self.first = False

    def finish(self, trace: RunTrace) -> None:
        if self.lines:
            self.write(encode({**head(trace, self.show), **tail(trace)}) + b"\n")
        else:
            self.write(b"]," + encode(tail(trace))[1:] + b"\n")


def document(trace: RunTrace, show: str = "all") -> dict[str, Any]:
    """The whole document as data (the steps the trace kept)."""
    return json.loads(render(trace, show))


def render(trace: RunTrace, show: str = "all") -> str:
    chunks: list[bytes] = []
    writer = Writer(chunks.append, show=show)
    writer.start(trace)
    for st in trace.steps:
        writer.step(st)
    writer.finish(trace)
    return b"".join(chunks).decode()
