"""What convolution and pooling share (gradcalc/layers/shapes.py, gradcalc/layers/written.py):
the rank their input must have, and the written ∂C/∂x, cell by cell, of a 1-D layer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcalc.layers import REGISTRY

WINDOWED = [name for name in REGISTRY if name.startswith(("conv", "maxpool", "avgpool"))]


def test_every_layer_over_windows_is_listed() -> None:
    assert len(WINDOWED) == 6


@pytest.mark.parametrize("name", WINDOWED)
def test_an_input_of_the_wrong_rank_is_one_line(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str
) -> None:
    """After a flatten (one example is a vector of 4), a layer over windows is refused: exit 2,
    one line with its key path, the shape it takes and the shape it was given."""
    text = (
        "input: [[[1, 2], [3, 4]]]\ntarget: [1]\nloss: mse\nlearning_rate: 0.1\nlayers:\n"
        f"  - type: flatten\n  - type: {name}\n"
    )
    result = run_cli(["step", str(write_config(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    want = "(C, H, W)" if name.endswith("2d") else "(C, L)"
    assert "layers[1]" in result.stderr
    assert f"{name} takes one example of shape {want}, but layers[0] gives shape 4" in (
        result.stderr
    )


ONE_D = """\
input: [[1, 3, 3, 0, 2]]
target: [0.5, -1]
loss: mse
learning_rate: 0.1
layers:
  - type: {name}
{keys}  - type: flatten
"""


@pytest.mark.parametrize("name", [n for n in WINDOWED if n.endswith("1d")])
def test_a_1d_layer_writes_each_input_gradient_without_a_row(
    run_cli: Any, write_config: Any, tmp_path: Path, name: str
) -> None:
    """--explain writes ∂C/∂x of a 1-D layer as ∂C/∂x²_c,u (no row index), one line per input
    cell, each with the value the JSON has; a cell no window reaches is 0."""
    keys = (
        "    kernels: [[[1, -0.5, 0.25]]]\n    stride: 2\n"
        if name.startswith("conv")
        else "    size: 3\n    stride: 2\n"
    )
    path = write_config(tmp_path, ONE_D.format(name=name, keys=keys))
    explain = run_cli(["step", str(path), "--explain", "--digits", "6"])
    assert explain.exit_code == 0, explain.stderr
    doc = run_cli(["step", str(path), "--format", "json"])
    grad_x = np.asarray(json.loads(doc.stdout)["steps"][0]["layers"][0]["grad_input"])
    assert grad_x.shape == (1, 5)
    lines = [line for line in explain.stdout.splitlines() if line.strip().startswith("∂C/∂x²")]
    cells = [re.match(r"\s*∂C/∂x²₀(\S) = ", line) for line in lines]
    assert [m.group(1) if m else None for m in cells] == list("₀₁₂₃₄"), lines
    for line, want in zip(lines, grad_x[0], strict=True):
        got = float(line.rsplit("= ", 1)[1].replace("−", "-"))
        assert got == pytest.approx(want, rel=1e-5, abs=1e-12), line
