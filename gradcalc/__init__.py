"""gradcalc: see, check and explain a backpropagation step."""

__version__ = "0.1.0"
