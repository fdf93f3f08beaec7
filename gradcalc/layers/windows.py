"""Sliding windows over the last two axes, vectorized: the im2col view of a padded input and its
transpose, the scatter-add of each window's gradient back onto the input (col2im)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray


def out_size(n: int, k: int, s: int, p: int) -> int:
    """PyTorch's floor rule: ⌊(n + 2p − k)/s⌋ + 1."""
    return (n + 2 * p - k) // s + 1


def pad(x: Array, padding: tuple[int, int]) -> Array:
    """(N, C, H, W) with pH zero rows above and below and pW zero columns left and right."""
    ph, pw = padding
    if not ph and not pw:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def windows(x: Array, size: tuple[int, int], stride: tuple[int, int]) -> Array:
    """(N, C, H, W) -> the view (N, C, Ho, Wo, kH, kW): window (i, j) starts at (sH·i, sW·j)."""
    view = sliding_window_view(x, size, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1]]


def scatter(
    parts: Array, shape: tuple[int, ...], size: tuple[int, int], stride: tuple[int, int]
) -> Array:
    """The transpose of `windows`: parts (N, C, Ho, Wo, kH, kW) added back where each window
    took them from, into zeros of `shape` (N, C, H, W). One vectorized add per kernel offset."""
    out = np.zeros(shape)
    ho, wo = parts.shape[2], parts.shape[3]
    sh, sw = stride
    for i in range(size[0]):
        for j in range(size[1]):
            out[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += parts[
                :, :, :, :, i, j
            ]
    return out
