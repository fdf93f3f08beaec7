"""`gradcalc derive`: a function at a point, worked through its computational graph.

engine.py builds the subject's graph, sweeps it, and checks the result against the closed form
and central differences; table.py, json.py, dot.py and solution.py (doc blocks) are its views.
"""
