"""The JSON contract of `gradcalc step --format json` and `--format jsonl`: full float precision,
written step by step as the run produces them.

`--format json` is one document {settings…, "steps": [records], "initial", "final"};
`--format jsonl` writes the same step records one per line, then the document without "steps".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

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


def by_example(array: np.ndarray, batch: bool) -> np.ndarray:
    # One example shows as a vector; a batch keeps one row per example.
    return np.ascontiguousarray(array if batch else array[0])


def as_json(value: Any) -> Any:
    # A 0-d array is a number in JSON, not a one-element list; what is not an array (a layer's
    # option, a count) stays as it is.
    if isinstance(value, np.ndarray):
        return float(value) if value.ndim == 0 else np.ascontiguousarray(value)
    return value


def _layer(lt: LayerTrace, batch: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "layer": lt.layer,
        "activation": lt.activation,
        "z": by_example(lt.z, batch),
        "a": by_example(lt.a, batch),
        "delta": by_example(lt.delta, batch),
        "grad_weights": as_json(lt.grad_weights),
        "grad_biases": as_json(lt.grad_biases),
        "weights": as_json(lt.weights),
        "biases": as_json(lt.biases),
        **trained(lt.params, lt.grad_params, lt.optimizer_state),
    }
    if lt.weights_ahead is not None and lt.biases_ahead is not None:
        doc["weights_lookahead"] = as_json(lt.weights_ahead)
        doc["biases_lookahead"] = as_json(lt.biases_ahead)
        if lt.params_ahead:
            doc["activation_params_lookahead"] = dict(lt.params_ahead)
    return doc


def trained(
    params: dict[str, float], grads: dict[str, float], state: dict[str, dict[str, np.ndarray]]
) -> dict[str, Any]:
    """A layer's activation parameters after the step and their gradients (where it has any),
    and the update rule's state after the step, by parameter ("weights", "biases", "a") and
    name: the same keys in a dense and a layered run's layer records."""
    doc: dict[str, Any] = {}
    if params:
        doc["activation_params"] = dict(params)
    if grads:
        doc["grad_activation_params"] = dict(grads)
    doc["optimizer_state"] = {
        kind: {name: as_json(array) for name, array in arrays.items()}
        for kind, arrays in state.items()
    }
    return doc


def _costs(ft: Any) -> dict[str, float]:
    return {
        "loss": ft.loss,
        "data_loss": ft.loss if ft.data_loss is None else ft.data_loss,
        "penalty": ft.penalty,
    }


def costs(ft: Any, batch: bool) -> dict[str, Any]:
    """The cost of a pass (a step's, or its look-ahead's): C, its data part and its penalty,
    and with a batch each example's."""
    return {**_costs(ft), **({"losses": as_json(ft.losses)} if batch else {})}


def step_record(
    st: Any, batch: bool, layer: Callable[[Any, bool], dict[str, Any]] = _layer
) -> dict[str, Any]:
    """Everything a step computed (--show all); `layer`: a layered run's record of a layer."""
    doc: dict[str, Any] = {"step": st.step, **costs(st, batch)}
    if st.ahead is not None:
        doc["lookahead"] = costs(st.ahead, batch)
    doc["layers"] = [layer(lt, batch) for lt in st.layers]
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


def head(trace: Any, show: str = "all", layers: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings, known before the first step; `layers`: what a layered run adds after the
    sizes (its shapes and layer types)."""
    return versioned(
        {
            "config": trace.source,
            "loss_function": trace.loss,
            "loss_params": trace.loss_params,
            "learning_rate": trace.learning_rate,
            "reduction": trace.reduction if trace.batch else None,
            "examples": int(trace.x.shape[0]),
            "sizes": list(trace.sizes),
            **(layers or {}),
            "round": trace.round_to,
            "optimizer": {"name": trace.optimizer, **trace.optimizer_params},
            "weight_decay": trace.weight_decay,
            "steps_run": trace.n_steps,
            "show": show,
        }
    )


def pass_record(ft: ForwardTrace, batch: bool) -> dict[str, Any]:
    """A forward pass's cost and output: the run's before the first step and after the last."""
    return {**_costs(ft), "output": by_example(ft.output, batch)}


def ends(trace: Any, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """The tail of a run's document: the passes before the first step and after the last, and
    the parameters after the last step (what --save-weights writes)."""
    return {
        "initial": pass_record(trace.initial, trace.batch),
        "final": pass_record(trace.final, trace.batch),
        "parameters": parameters,
    }


def tail(trace: RunTrace) -> dict[str, Any]:
    """What is known once the last step has run."""
    parameters = []
    for p in trace.parameters:
        record: dict[str, Any] = {
            "layer": p.layer,
            "activation": p.activation,
            "weights": as_json(p.weights),
            "biases": as_json(p.biases),
        }
        if p.params:
            record["activation_params"] = dict(p.params)
        parameters.append(record)
    return ends(trace, parameters)


class Writer:
    """Writes each step's record as it arrives and keeps none: `write` takes bytes. A layered
    run's writer (gradcalc/layers/views.py) is this one with its own records, head and tail."""

    records: ClassVar[dict[str, Callable[[Any, bool], dict[str, Any]] | None]] = RECORDS

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
        self.record = self.records[show]
        self.shown = shown
        self.batch = False
        self.first = True
        self.norms = show == "summary"  # what the engine computes for the steps not shown in full

    def document_head(self, trace: Any) -> dict[str, Any]:
        return head(trace, self.show)

    def document_tail(self, trace: Any) -> dict[str, Any]:
        return tail(trace)

    def full(self, step: int) -> bool:
        return self.show == "all" and self.shown(step)

    def start(self, trace: Any) -> None:
        self.batch = trace.batch
        if not self.lines:
            # The settings, then the steps as they come: '{…,"steps":[' … ']' + the tail.
            self.write(encode(self.document_head(trace))[:-1] + b',"steps":[')

    def step(self, st: Any) -> None:
        if self.record is None or (self.show == "all" and not self.shown(st.step)):
            return
        data = encode(self.record(st, self.batch))
        if self.lines:
            self.write(data + b"\n")
        else:
            self.write(data if self.first else b"," + data)
        self.first = False

    def finish(self, trace: Any) -> None:
        if self.lines:
            self.write(encode({**self.document_head(trace), **self.document_tail(trace)}) + b"\n")
        else:
            self.write(b"]," + encode(self.document_tail(trace))[1:] + b"\n")


def document(trace: RunTrace, show: str = "all") -> dict[str, Any]:
    """The whole document as data (the steps the trace kept)."""
    return json.loads(render(trace, show))


def render(trace: Any, show: str = "all", writer_class: type[Writer] = Writer) -> str:
    """The document of a run, by `writer_class` (a layered run's: gradcalc.layers.views's)."""
    chunks: list[bytes] = []
    writer = writer_class(chunks.append, show=show)
    writer.start(trace)
    for st in trace.steps:
        writer.step(st)
    writer.finish(trace)
    return b"".join(chunks).decode()
