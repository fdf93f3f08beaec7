"""The bundled example configs: configs/ in a checkout, gradcalc/configs in an installed wheel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gradcalc.errors import GradcalcError, did_you_mean

if TYPE_CHECKING:
    from gradcalc.layers.config import LayeredSpec
    from gradcalc.step.config import NetworkSpec


def config_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "configs", package.parent / "configs"):
        if candidate.is_dir():
            return candidate
    raise GradcalcError("the bundled example configs are missing from this installation")


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(config_dir().glob("*.yaml"))}


def describe(path: Path) -> str:
    """The first comment line of a config is its one-line description."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#"):
                return line.lstrip("#").strip()
            if line.strip():
                break
    return ""


def find(name: str) -> Path:
    table = available()
    if name.endswith(".yaml"):
        name = name[: -len(".yaml")]
    if name not in table:
        raise GradcalcError(
            f"no example named '{name}' ({did_you_mean(name, table)}); "
            "'gradcalc examples' lists them"
        )
    return table[name]


def load(name: str) -> NetworkSpec | LayeredSpec:
    """The bundled example NAME, validated; files it names are found beside it."""
    from gradcalc.step import config

    path = find(name)
    return config.load_text(path.read_text(encoding="utf-8"), path.name, base=path.parent)


def answer_sheets() -> dict[str, Path]:
    """The bundled answer sheets, configs/answers/NAME.yaml. Each answers the bundled config
    whose name NAME is or begins with: worked-example-slip answers worked-example."""
    return {p.stem: p for p in sorted((config_dir() / "answers").glob("*.yaml"))}


def find_answers(name: str) -> tuple[str, Path]:
    """(the name of the config it answers, its path) for the bundled answer sheet NAME."""
    sheets = answer_sheets()
    name = name.removesuffix(".yaml")
    if name not in sheets:
        raise GradcalcError(
            f"no bundled answer sheet named '{name}' ({did_you_mean(name, sheets)}); "
            "give an ANSWERS file to grade, or --template for a blank one"
        )
    owners = [c for c in available() if name == c or name.startswith(f"{c}-")]
    if not owners:
        raise GradcalcError(f"the bundled answer sheet '{name}' names no bundled config")
    return max(owners, key=len), sheets[name]
