"""Errors a user can cause. The CLI turns each into one line on stderr and an exit status."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

KeyPath = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """('layers', 1, 'weights') -> 'layers[1].weights'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def nearest(name: str, choices: Iterable[str]) -> str | None:
    import difflib  # only for a mistyped name: not on every command's start-up

    # A weak match must at least start alike: 'hinj' is 'hinge', but 'dilation' is not
    # 'activation' for sharing an ending.
    for match in difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5):
        strong = difflib.SequenceMatcher(None, name, match).ratio() >= 0.7
        if strong or match[:1].lower() == name[:1].lower():
            return match
    return None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    choices = sorted(choices)
    guess = nearest(name, choices)
    if guess:
        return f"did you mean '{guess}'?"
    return "expected one of: " + ", ".join(choices)


def shorten(name: str) -> str:
    """A file name as a message shows it: one longer than 80 characters cut in the middle (a
    5,000-character name must not fill the terminal)."""
    return name if len(name) <= 80 else f"{name[:40]}…{name[-30:]}"


class GradcalcError(Exception):
    """A problem with the user's input; exit status 2."""

    exit_code = 2


class ConfigError(GradcalcError):
    """Bad input in a config or an answer file: `source` (the file), `path` (the key path, such
    as ('layers', 1, 'weights')) and `line` (None for a dict) say where; exit status 2."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        path: Sequence[str | int] = (),
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.path = tuple(path)
        self.line = line
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source or "<config>"
        if self.line is not None:
            where += f", line {self.line}"
        key = format_path(self.path)
        text = f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class NumericError(GradcalcError):
    """A value became non-finite during the computation (a diverging run); exit status 1."""

    exit_code = 1


class SuspectResult(GradcalcError):
    """The answer was printed, but its independent checks disagree; exit status 3."""

    exit_code = 3
