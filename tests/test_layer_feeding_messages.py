"""What feeds a layer, in the messages of every layer type that refuses its input's shape:
"the input" for the first layer, "layers[i]" for the others (gradcalc.layers.shapes.feeding)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gradcalc.layers.shapes import feeding

VECTOR = "input: [1, 2, 3]\ntarget: [1]\nloss: quadratic\nlearning_rate: 0.1\nlayers:\n"
FLAT = VECTOR + "  - type: flatten\n"
DENSE = "    biases: [0]\n    activation: linear\n"
CASES = [
    (
        FLAT + "  - type: conv1d\n    kernels: [[[1]]]\n",
        "line 7: layers[1]: conv1d takes one example of shape (C, L), but layers[0] gives shape 3",
    ),
    (
        VECTOR.replace("[1, 2, 3]", "[[[1, 2, 0], [0, 1, 3], [2, 1, 0]]]")
        + "  - type: conv2d\n    kernels: [[[[1]]]]\n  - weights: [[1, 2, 3]]\n",
        "line 8: layers[1]: a dense layer takes a vector, but layers[0] gives shape 1×3×3 "
        "(add a layer {type: flatten} before it)",
    ),
    (
        FLAT + "  - type: rnn\n    weights_input: [[1]]\n    weights_hidden: [[1]]\n",
        "line 7: layers[1]: rnn takes a sequence of shape (T, input), but layers[0] gives shape 3 "
        "(give the input as 'sequence:' (T, input) or 'sequences:' (N, T, input))",
    ),
    (
        FLAT + "  - type: attention\n",
        "line 7: layers[1]: attention takes a sequence (T, d), but layers[0] gives shape 3 (start "
        "with an embedding layer, or give the vectors as input: [[…], …] (T, d))",
    ),
    (
        FLAT + "  - type: meanpool\n",
        "line 7: layers[1]: meanpool takes a sequence (T, d), but layers[0] gives shape 3",
    ),
    (
        "inputs: [[[[[1, 2], [3, 4]]]]]\ntargets: [[1]]\nloss: quadratic\nlearning_rate: 0.1\n"
        "layers:\n  - type: batchnorm\n",
        "line 6: layers[0]: batchnorm takes a vector, (C, L) or (C, H, W), but the input gives "
        "shape 1×1×2×2",
    ),
    (
        VECTOR + "  - weights: [[1, 2]]\n" + DENSE,
        "line 6: layers[0].weights: rows have 2 weights but the input has 3 units "
        "(each row needs 3 numbers)",
    ),
    (
        VECTOR
        + "  - weights: [[1, 2, 3], [1, 1, 1]]\n"
        + DENSE.replace("[0]", "[0, 0]")
        + "  - weights: [[1, 2, 3]]\n"
        + DENSE,
        "line 9: layers[1].weights: rows have 3 weights but layers[0] has 2 units "
        "(each row needs 2 numbers)",
    ),
]


def test_feeding_names_the_input_and_the_layer_before() -> None:
    assert [feeding(i) for i in range(3)] == ["the input", "layers[0]", "layers[1]"]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_a_shape_refused_names_what_feeds_the_layer(
    run_cli: Any, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_cli(["step", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}, {message}\n"
