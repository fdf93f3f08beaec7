"""Renderers: siblings that each turn one trace into one output format."""
