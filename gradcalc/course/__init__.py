"""The course kit: per-student variants of a template config (`gradcalc generate`), their
problem sheets and keys, course-platform exports, and grading a whole class in one run
(`gradcalc check --class`). Nothing here is imported by `step`, `derive` or a plain `check`."""
