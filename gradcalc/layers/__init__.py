"""Layer types: each is one record (gradcalc/layers/record.py) in one module, its config keys,
forward and backward passes, tables and mistakes side by side. Adding a layer type is adding its
module here, with its tests and a section of docs/layers.md."""

from __future__ import annotations

from gradcalc.layers.attention import ATTENTION
from gradcalc.layers.conv import CONV1D, CONV2D
from gradcalc.layers.dense import DENSE
from gradcalc.layers.dropout import DROPOUT
from gradcalc.layers.embedding import EMBEDDING
from gradcalc.layers.flatten import FLATTEN
from gradcalc.layers.meanpool import MEANPOOL
from gradcalc.layers.norm import BATCHNORM, LAYERNORM
from gradcalc.layers.pool import AVGPOOL1D, AVGPOOL2D, MAXPOOL1D, MAXPOOL2D
from gradcalc.layers.record import Layer, LayerType
from gradcalc.layers.recurrent import GRU, LSTM, RNN

REGISTRY: dict[str, LayerType] = {
    t.name: t
    for t in (
        DENSE,
        CONV1D,
        CONV2D,
        MAXPOOL1D,
        MAXPOOL2D,
        AVGPOOL1D,
        AVGPOOL2D,
        FLATTEN,
        BATCHNORM,
        LAYERNORM,
        DROPOUT,
        RNN,
        LSTM,
        GRU,
        EMBEDDING,
        ATTENTION,
        MEANPOOL,
    )
}

__all__ = ["REGISTRY", "Layer", "LayerType"]
