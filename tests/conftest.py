"""Shared helpers for the gradcalc tests: run the CLI in-process, write a config file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner


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

    runner = CliRunner()  # click >= 8.2 keeps stderr apart from stdout
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
