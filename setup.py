"""Only for pip before 24.1, whose `pip show` prints Home-page from the old `url` field and not
from [project.urls]; everything else is in pyproject.toml (tests/test_conventions.py keeps the two
addresses the same)."""

from setuptools import setup

setup(url="https://github.com/gradcalc/gradcalc")
