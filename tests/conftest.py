"""Shared helpers for the gradcalc tests: run the CLI in-process, write a config file."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

# click >= 8.2 keeps stderr apart from stdout in every CliRunner; click 8.1 (the lowest that
# pyproject.toml allows, run by .ci/run) is asked to, for the tests that make their own runner too.
if "mix_stderr" in inspect.signature(CliRunner).parameters:
    _init = CliRunner.__init__

    def _apart(self: CliRunner, *args: Any, mix_stderr: bool = False, **kwargs: Any) -> None:
        _init(self, *args, mix_stderr=mix_stderr, **kwargs)

    CliRunner.__init__ = _apart  # type: ignore[method-assign]
    # ... and its output is both streams, as click 8.2's is.
    Result.output = property(lambda self: self.stdout + self.stderr)  # type: ignore[method-assign,assignment]


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _run_cli(
    args: Sequence[str],
    input: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> CliResult:
    from gradcalc.cli import cli

    runner = CliRunner()  # stderr apart from stdout (see above)
    result = runner.invoke(cli, list(args), input=input, env=dict(env or {}), prog_name="gradcalc")
    return CliResult(result.exit_code, result.stdout, result.stderr, result.exception)


@pytest.fixture
def run_cli():
    """run_cli(["step", path, "--format", "json"], input=..., env=...) -> CliResult."""
    return _run_cli


def _write_config(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def write_config():
    """write_config(tmp_path, yaml_text[, name]) -> the path of the written file."""
    return _write_config


@pytest.fixture
def pdflatex() -> Callable[[Path], str]:
    """Compile a .tex file with pdflatex in its own folder; return the log. Skips the test where
    pdflatex is not installed (e.g. on a machine without TeX Live)."""
    import shutil
    import subprocess

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")

    def compile_tex(tex: Path) -> str:
        run = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
            cwd=tex.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-3000:]
        assert tex.with_suffix(".pdf").stat().st_size > 0
        return tex.with_suffix(".log").read_text(encoding="latin-1")

    return compile_tex
