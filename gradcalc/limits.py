"""Bounds on what gradcalc accepts, shared by the config loader and the CLI (numpy-free)."""

MAX_BYTES = 20_000_000  # a config file
# Aliases let a few lines expand into a huge structure; refuse it before converting anything.
MAX_NODES = 2_000_000
MAX_DEPTH = 32
MAX_STEPS = 1_000_000
