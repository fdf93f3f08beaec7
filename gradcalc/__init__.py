"""gradcalc: see, check and explain a backpropagation step.

The Python API is the command line's engine without the printing::

    import gradcalc
    net = gradcalc.load("configs/worked-example.yaml")  # or from_dict({...}) / from_yaml(text)
    trace = gradcalc.run(net, steps=2)                  # the trace `gradcalc step` renders
    trace.to_dict()                                     # the --format json document
    gradcalc.derive("sigmoid", at=0.3).derivative       # 0.2444…

Errors are the typed exceptions below; a ConfigError carries the file, key path and line.
numpy, PyYAML and rich are imported on first use, so `import gradcalc` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gradcalc.errors import ConfigError, GradcalcError, NumericError

if TYPE_CHECKING:
    from gradcalc.derivation.engine import DeriveTrace
    from gradcalc.layers.config import LayeredSpec
    from gradcalc.layers.engine import LayeredRun
    from gradcalc.step.config import NetworkSpec
    from gradcalc.step.trace import RunTrace

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "GradcalcError",
    "NumericError",
    "__version__",
    "derive",
    "from_dict",
    "from_yaml",
    "load",
    "run",
]


def load(path: str | os.PathLike[str]) -> NetworkSpec | LayeredSpec:
    """Read and validate a YAML config file ('-' reads standard input)."""
    from gradcalc.step import config

    return config.load(os.fspath(path))


def from_yaml(text: str, name: str = "<yaml>") -> NetworkSpec | LayeredSpec:
    """Validate a config given as YAML text; `name` is what error messages call it."""
    from gradcalc.step import config

    return config.load_text(text, name)


def from_dict(data: Mapping[str, Any], name: str = "<dict>") -> NetworkSpec | LayeredSpec:
    """Validate a config given as a mapping with the YAML file's keys (lists or numpy arrays)."""
    from gradcalc.step import config

    return config.load_data(data, name)


def run(
    net: NetworkSpec | LayeredSpec,
    *,
    steps: int | None = None,
    learning_rate: float | None = None,
    round_to: int | None = None,
) -> RunTrace | LayeredRun:
    """Run the config's steps (or `steps`) and return the whole trace; with `round_to`, every
    quantity is rounded to that many decimals as it is produced and `trace.exact` holds the
    unrounded run (a network of layer records other than dense: its LayeredRun, without it)."""
    from gradcalc.step.config import NetworkSpec
    from gradcalc.step.engine import run as run_steps

    if learning_rate is not None and not 0 < learning_rate < float("inf"):
        raise GradcalcError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise GradcalcError(f"steps must be a whole number ≥ 0, got {steps!r}")
    if not isinstance(net, NetworkSpec):
        from gradcalc.layers.engine import run as run_layers

        return run_layers(net, steps=steps, learning_rate=learning_rate, round_to=round_to)
    return run_steps(net, steps=steps, learning_rate=learning_rate, round_to=round_to, exact=True)


def derive(
    name: str,
    at: float | Iterable[float],
    *,
    target: float | Iterable[float] | None = None,
    params: Mapping[str, float] | None = None,
) -> DeriveTrace:
    """Work NAME (an activation, a loss or a formula in x) at a point, as `gradcalc derive`."""
    from gradcalc.derivation.engine import derive as derive_at

    def text(values: float | Iterable[float]) -> str:
        items = [values] if isinstance(values, int | float) else list(values)
        return ",".join(repr(float(v)) for v in items)

    options = [f"{k}={float(v)!r}" for k, v in (params or {}).items()]
    return derive_at(name, text(at), None if target is None else text(target), options)
