"""Every document format in gradcalc.doc.DOCUMENTS is offered by both commands and writes a
document there, so a new format is its writer and one line in that mapping."""

from __future__ import annotations

import pytest

from gradcalc.cli.derive import WRITERS as DERIVE_WRITERS
from gradcalc.cli.step import WRITERS as STEP_WRITERS
from gradcalc.doc import DOCUMENTS


@pytest.mark.parametrize("fmt", list(DOCUMENTS))
def test_both_commands_write_every_document_format(run_cli, fmt: str) -> None:
    assert fmt in STEP_WRITERS and fmt in DERIVE_WRITERS
    step = run_cli(["step", "--example", "worked-example", "--format", fmt])
    derive = run_cli(["derive", "sigmoid", "--at", "0.3", "--format", fmt])
    assert step.exit_code == 0 and derive.exit_code == 0, step.output + derive.output
    # the solution's numbers are in both: z²₁ = 0.210 and σ'(0.3) = 0.244458
    assert "0.210" in step.stdout and "0.244458" in derive.stdout
    assert "Written(" not in step.stdout + derive.stdout
