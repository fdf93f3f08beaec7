"""Rewrite the golden files of tests/test_explain.py and tests/test_derive_documents.py from the
real command.

    python tests/regen_golden.py

Run it after an intended change of the worked solutions, then read `git diff tests/golden`:
every changed line there is a change users will see.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
CONFIG = "configs/worked-example.yaml"

# golden file -> the arguments of `gradcalc` that produce it (run from the repository root)
CASES: dict[str, list[str]] = {
    "worked-example.explain.txt": ["step", CONFIG, "--explain", "--no-color"],
    "worked-example.round3.explain.txt": [
        "step",
        CONFIG,
        "--explain",
        "--no-color",
        "--round",
        "3",
    ],
    "worked-example.md": ["step", CONFIG, "--format", "markdown"],
    "worked-example.tex": ["step", CONFIG, "--format", "latex"],
    # Layer records (gradcalc/layers/): the convolution worked by hand.
    "conv-worked-example.explain.txt": [
        "step",
        "configs/conv-worked-example.yaml",
        "--explain",
        "--no-color",
    ],
    "conv-worked-example.md": ["step", "configs/conv-worked-example.yaml", "--format", "markdown"],
    # Self-attention with an embedding and a residual, worked by hand.
    "attention-worked-example.explain.txt": [
        "step",
        "configs/attention-worked-example.yaml",
        "--explain",
        "--no-color",
    ],
    "attention-worked-example.md": [
        "step",
        "configs/attention-worked-example.yaml",
        "--format",
        "markdown",
    ],
}

# The worked derivation of `gradcalc derive` (tests/test_derive_documents.py).
DERIVE_CASES: dict[str, list[str]] = {
    "derive-sigmoid-0.3.md": ["derive", "sigmoid", "--at", "0.3", "--format", "markdown"],
    "derive-sigmoid-0.3.tex": ["derive", "sigmoid", "--at", "0.3", "--format", "latex"],
}


def produce(args: list[str]) -> str:
    """Standard output of `gradcalc ARGS`, run from the repository root as a user would."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from click.testing import CliRunner

    from gradcalc.cli import cli

    before = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(cli, args, env={"NO_COLOR": "1", "COLUMNS": "100"})
    finally:
        os.chdir(before)
    if result.exit_code != 0:
        raise RuntimeError(
            f"gradcalc {' '.join(args)} exited {result.exit_code}: "
            f"{result.output}{result.exception!r}"
        )
    return result.stdout


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, args in {**CASES, **DERIVE_CASES}.items():
        (GOLDEN / name).write_text(produce(args), encoding="utf-8", newline="")
        print(f"wrote {(GOLDEN / name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
