"""gradcalc: see, check and explain a backpropagation step.

The Python API is the command line's engine without the printing::

    import gradcalc
    net = gradcalc.load("configs/worked-example.yaml")  # or from_dict({...}) / from_yaml(text)
    trace = gradcalc.run(net, steps=2)                  # the trace `gradcalc step` renders
    trace.to_dict()                                     # the --format json document
    trace.explain()                                     # the --explain worked solution
    gradcalc.derive("sigmoid", at=0.3).derivative       # 0.2444…
    gradcalc.check(net, "answers.yaml").score           # `gradcalc check`, cell by cell

Errors are the typed exceptions below; a ConfigError carries the file, key path and line.
The functions and types are loaded on first use (PEP 562), and numpy, PyYAML and rich with
them, so `import gradcalc` stays cheap. docs/api.md documents every name in __all__.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gradcalc.errors import ConfigError, GradcalcError, NumericError

if TYPE_CHECKING:
    from gradcalc.api import (
        CellGrade,
        Grade,
        Verdict,
        check,
        derive,
        from_dict,
        from_yaml,
        load,
        run,
    )
    from gradcalc.derivation.trace import Agreement, DeriveTrace, PointTrace
    from gradcalc.step.config import LayerSpec, NetworkSpec
    from gradcalc.step.trace import ForwardTrace, LayerState, LayerTrace, RunTrace, StepTrace

__version__ = "0.4.0"

# `gradcalc.check` is the grading function, and also the name of the subpackage that does the
# grading: importing the subpackage would bind its module to the name. Import the (empty)
# package now, while that costs nothing, and take the name back for the function, loaded on
# first use like the others. `from gradcalc.check.grade import ...` is unaffected.
importlib.import_module("gradcalc.check")
del globals()["check"]

# Each public name loaded on first use -> the module that defines it.
_LAZY = {
    **dict.fromkeys(
        ("load", "from_yaml", "from_dict", "run", "derive", "check", "Grade", "CellGrade"),
        "gradcalc.api",
    ),
    "Verdict": "gradcalc.api",
    "NetworkSpec": "gradcalc.step.config",
    "LayerSpec": "gradcalc.step.config",
    "RunTrace": "gradcalc.step.trace",
    "StepTrace": "gradcalc.step.trace",
    "LayerTrace": "gradcalc.step.trace",
    "ForwardTrace": "gradcalc.step.trace",
    "LayerState": "gradcalc.step.trace",
    "DeriveTrace": "gradcalc.derivation.trace",
    "PointTrace": "gradcalc.derivation.trace",
    "Agreement": "gradcalc.derivation.trace",
}

__all__ = [
    "Agreement",
    "CellGrade",
    "ConfigError",
    "DeriveTrace",
    "ForwardTrace",
    "GradcalcError",
    "Grade",
    "LayerSpec",
    "LayerState",
    "LayerTrace",
    "NetworkSpec",
    "NumericError",
    "PointTrace",
    "RunTrace",
    "StepTrace",
    "Verdict",
    "__version__",
    "check",
    "derive",
    "from_dict",
    "from_yaml",
    "load",
    "run",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcalc' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is an ordinary one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
