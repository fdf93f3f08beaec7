"""The initializer registry: how `init:` draws a layer's weights (or biases) from a seed.

Every draw starts from U, uniform doubles in [0, 1) from numpy's Generator on a PCG64 bit
generator (`Generator.random`: the top 53 bits of each 64-bit output, times 2⁻⁵³), seeded with
SeedSequence([seed, l, 0]) for w^l and SeedSequence([seed, l, 1]) for b^l. A uniform value is
lo + (hi − lo)·U; a normal one comes from pairs (U₁, U₂) by Box–Muller,
√(−2 ln(1 − U₁))·cos(2π U₂) then √(−2 ln(1 − U₁))·sin(2π U₂), in that order. These are written
out here rather than taken from Generator.normal, whose algorithm numpy may change between
versions: the same seed gives the same numbers wherever numpy's PCG64 runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gradcalc.functions.registry import index
from gradcalc.records import record

Shape = tuple[int, ...]


def generator(seed: int, layer: int, which: int) -> np.random.Generator:
    """The stream of w^layer (which = 0) or b^layer (which = 1) for `seed`."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, layer, which])))


def uniform(rng: np.random.Generator, shape: Shape, lo: float, hi: float) -> np.ndarray:
    return lo + (hi - lo) * rng.random(shape)


def normal(rng: np.random.Generator, shape: Shape, mean: float, std: float) -> np.ndarray:
    n = math.prod(shape)
    u = rng.random(2 * ((n + 1) // 2))
    radius = np.sqrt(-2.0 * np.log1p(-u[0::2]))
    angle = 2.0 * np.pi * u[1::2]
    z = np.empty(2 * len(radius))
    z[0::2] = radius * np.cos(angle)
    z[1::2] = radius * np.sin(angle)
    return mean + std * z[:n].reshape(shape)


@record
class Initializer:
    """`draw(rng, shape, fan_in, fan_out, params)`; fan_in = n_{l−1}, fan_out = n_l."""

    name: str
    formula: str  # the distribution, as the README writes it
    draw: Callable[[np.random.Generator, Shape, int, int, tuple[float, ...]], np.ndarray]
    # What the entry takes after its name: uniform: [lo, hi]; normal: {mean, std}.
    params: tuple[str, ...] = ()
    mean: Callable[[int, int, tuple[float, ...]], float] = lambda fi, fo, p: 0.0
    std: Callable[[int, int, tuple[float, ...]], float] = lambda fi, fo, p: 0.0
    aliases: tuple[str, ...] = ()


def _glorot(fi: int, fo: int) -> float:
    return math.sqrt(6.0 / (fi + fo))


INITIALIZERS: list[Initializer] = [
    Initializer(
        "xavier_uniform",
        "U(−a, a), a = √(6 / (n_{l−1} + n_l))",
        lambda rng, s, fi, fo, p: uniform(rng, s, -_glorot(fi, fo), _glorot(fi, fo)),
        std=lambda fi, fo, p: _glorot(fi, fo) / math.sqrt(3.0),
    ),
    Initializer(
        "xavier_normal",
        "N(0, σ²), σ = √(2 / (n_{l−1} + n_l))",
        lambda rng, s, fi, fo, p: normal(rng, s, 0.0, math.sqrt(2.0 / (fi + fo))),
        std=lambda fi, fo, p: math.sqrt(2.0 / (fi + fo)),
    ),
    Initializer(
        "he_uniform",
        "U(−a, a), a = √(6 / n_{l−1})",
        lambda rng, s, fi, fo, p: uniform(rng, s, -math.sqrt(6.0 / fi), math.sqrt(6.0 / fi)),
        std=lambda fi, fo, p: math.sqrt(2.0 / fi),
    ),
    Initializer(
        "he_normal",
        "N(0, σ²), σ = √(2 / n_{l−1})",
        lambda rng, s, fi, fo, p: normal(rng, s, 0.0, math.sqrt(2.0 / fi)),
        std=lambda fi, fo, p: math.sqrt(2.0 / fi),
    ),
    Initializer(
        "uniform",
        "U(lo, hi)",
        lambda rng, s, fi, fo, p: uniform(rng, s, p[0], p[1]),
        params=("lo", "hi"),
        mean=lambda fi, fo, p: (p[0] + p[1]) / 2,
        std=lambda fi, fo, p: (p[1] - p[0]) / math.sqrt(12.0),
    ),
    Initializer(
        "normal",
        "N(mean, std²)",
        lambda rng, s, fi, fo, p: normal(rng, s, p[0], p[1]),
        params=("mean", "std"),
        mean=lambda fi, fo, p: p[0],
        std=lambda fi, fo, p: p[1],
    ),
    Initializer("zeros", "0", lambda rng, s, fi, fo, p: np.zeros(s)),
]

REGISTRY: dict[str, Initializer] = index(INITIALIZERS)
