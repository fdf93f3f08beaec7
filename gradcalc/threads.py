"""How many threads numpy's BLAS may use: one, unless the user says otherwise.

gradcalc's matrices are small next to what a BLAS thread pool pays off for, and graders run side
by side in a course's CI: with every process starting a thread per core they fight over the cores
and a run takes several times as long (benchmarks/bench_threads.py measures it). The libraries
read these variables once, when numpy loads, so the command line sets them before that.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# OpenMP, OpenBLAS, MKL, Apple's Accelerate, numexpr and BLIS each read their own.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


def user_has_chosen(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when any thread variable is set (and not empty): the user's choice stands."""
    env = os.environ if environ is None else environ
    return any(env.get(name, "").strip() for name in THREAD_VARIABLES)


def default_to_one(environ: MutableMapping[str, str] | None = None) -> None:
    """One thread for every library, unless the user has set any of the variables."""
    env = os.environ if environ is None else environ
    if not user_has_chosen(env):
        use(1, env)


def use(n: int, environ: MutableMapping[str, str] | None = None) -> None:
    """`--threads N`: N threads for every library, over whatever the environment says."""
    env = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        env[name] = str(n)
