"""Config helpers the layer types share: arrays of any rank, sizes given as an int or a pair,
a train/eval mode, and how a shape is written in messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gradcalc.yamldoc import whole

if TYPE_CHECKING:
    from gradcalc.errors import KeyPath
    from gradcalc.layers.record import Layer
    from gradcalc.yamldoc import Doc


def feeding(index: int) -> str:
    """What feeds layers[index], as messages name it: the input, or the layer before."""
    return "the input" if index == 0 else f"layers[{index - 1}]"


def show(shape: tuple[int, ...]) -> str:
    """(1, 4, 4) -> "1×4×4"."""
    return "×".join(str(n) for n in shape) if shape else "a number"


def cell(layer: Layer, *index: int) -> tuple[int, ...]:
    """A 2-D index as written: a 1-D layer (input (C, L)) computes with a height of one and
    drops that row from the indices it writes."""
    if len(layer.in_shape) == 2:
        return (*index[:-2], index[-1])
    return index


def check_rank(
    doc: Doc, path: KeyPath, name: str, axes: int, in_shape: tuple[int, ...], index: int
) -> None:
    """Refuse an input of the wrong rank for a layer over windows (convolution, pooling):
    (C, H, W) for 2 axes, (C, L) for 1."""
    if len(in_shape) != axes + 1:
        want = "(C, H, W)" if axes == 2 else "(C, L)"
        before = feeding(index)
        raise doc.error(
            path,
            f"{name} takes one example of shape {want}, but {before} gives shape {show(in_shape)}",
        )


def tensor(doc: Doc, value: Any, path: KeyPath, what: str, rank: int | None = None) -> np.ndarray:
    """Nested lists of numbers (or {file: …}) as a float64 array; `rank`: the number of axes
    it must have."""
    if isinstance(value, dict):
        from gradcalc.step.config import _from_file

        array = _from_file(doc, value, path)
        where: KeyPath = (*path, "file")
    else:
        array = _nested(doc, value, path, what)
        where = path
    if rank is not None and array.ndim != rank:
        raise doc.error(
            where, f"{what} needs {rank} axes, got shape {show(array.shape)} ({array.ndim} axes)"
        )
    return array


def _nested(doc: Doc, value: Any, path: KeyPath, what: str) -> np.ndarray:
    from gradcalc.yamldoc import Numbers, number, type_name

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.array(number(doc, value, path))
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else type_name(value)
        raise doc.error(path, f"expected {what}: nested lists of numbers, got {got}")
    if type(value) is Numbers:
        array = np.array(value, dtype=float)
        if np.isfinite(array).all():
            return array
    parts = [_nested(doc, v, (*path, i), what) for i, v in enumerate(value)]
    for i, part in enumerate(parts):
        if part.shape != parts[0].shape:
            raise doc.error(
                (*path, i),
                f"ragged array: item {i} has shape {show(part.shape)}, item 0 has "
                f"{show(parts[0].shape)}",
            )
    return np.stack(parts).astype(float)


def pair(doc: Doc, value: Any, path: KeyPath, axes: int, low: int) -> tuple[int, ...]:
    """An int for every axis, or one per axis ([sH, sW])."""
    if isinstance(value, list):
        if len(value) != axes:
            raise doc.error(path, f"expected {axes} whole numbers (one per axis), got {len(value)}")
        return tuple(whole(doc, v, (*path, i), low) for i, v in enumerate(value))
    return (whole(doc, value, path, low),) * axes


MODES = ("train", "eval")


def mode(doc: Doc, raw: dict[str, Any], path: KeyPath) -> str:
    """A layer's `mode:` (batch norm's, dropout's): train, the default, or eval."""
    from gradcalc.errors import did_you_mean

    value = raw.get("mode", "train")
    if value not in MODES:
        raise doc.error(
            (*path, "mode"),
            f"expected 'train' or 'eval', got {value!r}",
            did_you_mean(str(value), MODES),
        )
    return str(value)
