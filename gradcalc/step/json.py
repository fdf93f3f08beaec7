"""The JSON contract of `gradcalc step --format json`: full float precision, one document."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from gradcalc.contract import versioned
from gradcalc.step.trace import LayerTrace, RunTrace


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
        "steps": [
            {
                "step": st.step,
                "loss": st.loss,
                **({"losses": st.losses.tolist()} if batch else {}),
                "layers": [_layer(lt, batch) for lt in st.layers],
            }
            for st in trace.steps
        ],
        "initial": {"loss": trace.initial.loss, "output": _rows(trace.initial.output, batch)},
        "final": {"loss": final.loss, "output": _rows(final.output, batch)},
    }
    return versioned(doc)


def render(trace: RunTrace) -> str:
    # No indent: the C encoder only runs without it, and a wide network's trace has millions of
    # numbers. `jq .` pretty-prints.
    return json.dumps(document(trace), ensure_ascii=False) + "\n"
