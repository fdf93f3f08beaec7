"""`gradcalc check`: answers -> a verdict per cell, over the step engine.

answers.py reads an answer sheet (or a `step --format json` document) into arrays with the key
path and line of every refusal, and writes the blank sheet; recompute.py recomputes each quantity
from the student's own earlier answers; bounds.py bounds the drift of a hand calculation that
rounds; mistakes.py is the known-mistakes registry; grade.py judges each cell in the issue's
order (correct, rounding, carried, named mistake, wrong); views.py writes the table, the JSON
contract and Gradescope's results.json.
"""
