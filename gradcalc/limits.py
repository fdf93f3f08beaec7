"""Bounds on what gradcalc accepts, shared by the config loader and the CLI (numpy-free)."""

MAX_BYTES = 32_000_000  # a config file: 10⁶ parameters at full precision (≈ 21 MB) fit
# Aliases let a few lines expand into a huge structure; refuse it before converting anything.
MAX_NODES = 2_000_000
MAX_DEPTH = 32
MAX_STEPS = 1_000_000
# What one run may write (JSON, streamed) or hold until it is drawn (tables, worked solutions):
# refused up front with the size and how to ask for less.
MAX_OUTPUT_BYTES = 10_000_000_000
MAX_HELD_BYTES = 1_000_000_000
# A network's parameters, and the numbers one forward pass holds (examples × units): within
# both, a step needs well under 2 GB.
MAX_PARAMETERS = 10_000_000
MAX_ACTIVATIONS = 10_000_000
