"""The JSON contract of `gradcalc step --format json`: full float precision, one document."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from gradcalc.contract import versioned
from gradcalc.step.trace import ForwardTrace, LayerTrace, RunTrace, StepTrace


def _rows(array: np.ndarray, batch: bool) -> list[Any]:
    # One example shows as a vector; a batch keeps one row per example.
    return array.tolist() if batch else array[0].tolist()


def _layer(lt: LayerTrace, batch: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "layer": lt.layer,
        "activation": lt.activation,
        "z": _rows(lt.z, batch),
        "a": _rows(lt.a, batch),
        "delta": _rows(lt.delta, batch),
        "grad_weights": lt.grad_weights.tolist(),
        "grad_biases": lt.grad_biases.tolist(),
        "weights": lt.weights.tolist(),
        "biases": lt.biases.tolist(),
    }
    if lt.params:
        doc["activation_params"] = dict(lt.params)
    if lt.grad_params:
        doc["grad_activation_params"] = dict(lt.grad_params)
    # The update rule's state after the step, by parameter ("weights", "biases", "a") and name.
    doc["optimizer_state"] = {
        kind: {name: array.tolist() for name, array in arrays.items()}
        for kind, arrays in lt.optimizer_state.items()
    }
    if lt.weights_ahead is not None and lt.biases_ahead is not None:
        doc["weights_lookahead"] = lt.weights_ahead.tolist()
        doc["biases_lookahead"] = lt.biases_ahead.tolist()
        if lt.params_ahead:
            doc["activation_params_lookahead"] = dict(lt.params_ahead)
    return doc


def _costs(data_loss: float | None, loss: float, penalty: float) -> dict[str, float]:
    return {"data_loss": loss if data_loss is None else data_loss, "penalty": penalty}


def _step(st: StepTrace, batch: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "step": st.step,
        "loss": st.loss,
        **_costs(st.data_loss, st.loss, st.penalty),
        **({"losses": st.losses.tolist()} if batch else {}),
    }
    if st.ahead is not None:
        doc["lookahead"] = {
            "loss": st.ahead.loss,
            **_costs(st.ahead.data_loss, st.ahead.loss, st.ahead.penalty),
            **({"losses": st.ahead.losses.tolist()} if batch else {}),
        }
    doc["layers"] = [_layer(lt, batch) for lt in st.layers]
    return doc


def document(trace: RunTrace) -> dict[str, Any]:
    batch = trace.batch
    final = trace.final
    doc = {
        "config": trace.source,
        "loss_function": trace.loss,
        "loss_params": trace.loss_params,
        "learning_rate": trace.learning_rate,
        "reduction": trace.reduction if batch else None,
        "examples": int(trace.x.shape[0]),
        "sizes": list(trace.sizes),
        "round": trace.round_to,
        "optimizer": {"name": trace.optimizer, **trace.optimizer_params},
        "weight_decay": trace.weight_decay,
        "steps": [_step(st, batch) for st in trace.steps],
        "initial": _forward(trace.initial, batch),
        "final": _forward(final, batch),
    }
    return versioned(doc)


def _forward(ft: ForwardTrace, batch: bool) -> dict[str, Any]:
    return {
        "loss": ft.loss,
        **_costs(ft.data_loss, ft.loss, ft.penalty),
        "output": _rows(ft.output, batch),
    }


def render(trace: RunTrace) -> str:
    # No indent: the C encoder only runs without it, and a wide network's trace has millions of
    # numbers. `jq .` pretty-prints.
    return json.dumps(document(trace), ensure_ascii=False) + "\n"
