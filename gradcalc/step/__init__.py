"""`gradcalc step`: config → network → trace, then the views of a trace.

config.py parses and validates the YAML into a NetworkSpec; chain.py is one step of any
network of layer records (feedforward, backpropagation and the update rule), which engine.py
runs for a dense-only network (and gradcalc/layers/engine.py for others); trace.py holds the
frozen records a run returns;
table.py, json.py and solution.py (the worked solution as doc blocks) are its views.
"""
