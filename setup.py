"""Only for older pip (pip 23, for one), whose `pip show` prints Home-page from the old `url`
field and not from [project.urls]. Everything else is in pyproject.toml; a test in
tests/test_conventions.py keeps the two addresses the same."""

from setuptools import setup

setup(url="https://github.com/gradcalc/gradcalc")
