"""`gradcalc step`: config → network → trace, then the views of a trace.

config.py parses and validates the YAML into a NetworkSpec; engine.py runs feedforward,
backpropagation and the update rule; trace.py holds the frozen records a run returns;
table.py, json.py and solution.py (the worked solution as doc blocks) are its views.
"""
