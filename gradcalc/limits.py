"""Bounds on what gradcalc accepts, shared by the config loader and the CLI (numpy-free)."""

MAX_BYTES = 32_000_000  # a config file: 10⁶ parameters at full precision (≈ 21 MB) fit
# Aliases let a few lines expand into a huge structure; refuse it before converting anything.
MAX_NODES = 2_000_000
MAX_DEPTH = 32
# A network's layers, and a run's work: steps × (examples + 8) × (parameters + 500 per layer),
# about the numbers a step touches (a layer costs as much as 500 parameters in Python's
# overhead, and the update rule's passes as much as 8 examples). 2×10¹⁰ is a few minutes.
MAX_LAYERS = 1_000
MAX_WORK = 20_000_000_000
MAX_STEPS = 1_000_000
# What one run may write (JSON, streamed) or hold until it is drawn (tables, worked solutions):
# refused up front with the size and how to ask for less.
MAX_OUTPUT_BYTES = 10_000_000_000
MAX_HELD_BYTES = 1_000_000_000
# A network's parameters, and the numbers one forward pass holds (examples × units): within
# both, a step needs well under 2 GB.
MAX_PARAMETERS = 10_000_000
MAX_ACTIVATIONS = 10_000_000
