"""ASCII forms of gradcalc's symbols, for a terminal whose encoding cannot write them (a Windows
code page such as cp1252, or PYTHONIOENCODING=ascii).

`to_ascii` rewrites a string (σ′(z²₂) → sigma'(z^2_2)); `ascii_renderable` rewrites what is handed
to rich before rich lays it out, so columns are measured in the characters actually printed.
"""

from __future__ import annotations

import dataclasses
import io
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from gradcalc.doc.notation import BREAK

# The symbols Nielsen's notation and the views use; other Greek letters go by their names.
SYMBOLS = {
    "−": "-",
    "δ": "d",
    "∂": "d",
    "′": "'",
    "Δ": "Delta",
    "Σ": "sum",
    "∇": "grad",
    "⊙": "(.)",
    "×": "*",
    "·": "*",
    "√": "sqrt",
    "∞": "inf",
    "½": "1/2",
    "±": "+/-",
    "¬": "not",
    "≈": "~",
    "≠": "!=",
    "≤": "<=",
    "≥": ">=",
    "≪": "<<",
    "←": "<-",
    "→": "->",
    "↳": "->",
    "✓": "ok",
    "✗": "X",
    "‖": "||",
    "–": "-",
    "—": "--",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "•": "*",
    "…": "...",
    "⋯": "...",
    "⋮": ":",
    "ŷ": "yhat",
    "\u0302": "hat",  # combining circumflex: m̂ → mhat
    "\u0303": "~",  # combining tilde
    # Box drawing that gradcalc writes itself (rich's own boxes have an ASCII style of their own).
    **dict.fromkeys("─━╌┄", "-"),
    **dict.fromkeys("═", "="),
    **dict.fromkeys("│┃", "|"),
    **dict.fromkeys("┏┓┗┛┌┐└┘├┤┬┴┼┡┩┳┻╇╋", "+"),
    # A sparkline's eight heights.
    **dict(zip("▁▂▃▄▅▆▇█", "_.,-=+*#", strict=True)),
}

_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿˡʲᴸᵀᵇᵏᵗⁱ", "0123456789+-=()nljLTbkti", strict=True))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₓₖₗₘₙᵢⱼₐₑₒₚₛₜ", "0123456789+-=()xklmnijaeopst", strict=True))
_SCRIPT_RUN = re.compile(f"[{''.join(_SUPERSCRIPTS)}]+|[{''.join(_SUBSCRIPTS)}]+")
_NON_ASCII = re.compile(f"[^\x00-\x7f{BREAK}]+")


class _Note:
    """Whether any text has been written in ASCII forms (the CLI says so once, at the end)."""

    rewritten = False


NOTE = _Note()

# What a stream must be able to write for gradcalc to write its symbols as they are.
PROBE = "σ′δ−²₂─✓"


def cannot_write(encoding: str | None) -> bool:
    """Whether text in `encoding` cannot hold gradcalc's symbols."""
    try:
        PROBE.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return True
    return False


def _script(run: str) -> str:
    if run[0] in _SUPERSCRIPTS:
        mark, body = "^", "".join(_SUPERSCRIPTS[c] for c in run)
    else:
        mark, body = "_", "".join(_SUBSCRIPTS[c] for c in run)
    # aˡ⁻¹ → a^(l-1): an index that is an expression keeps its parts together.
    return mark + (f"({body})" if len(body) > 1 and set(body) & set("+-=") else body)


def _char(c: str) -> str:
    if c in SYMBOLS:
        return SYMBOLS[c]
    name = unicodedata.name(c, "")
    if name.startswith("GREEK SMALL LETTER "):
        return name.split()[-1].lower().replace("lamda", "lambda")
    if name.startswith("GREEK CAPITAL LETTER "):
        return name.split()[-1].capitalize().replace("Lamda", "Lambda")
    plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
    return plain or "?"


def _run(run: str, after: str = "") -> str:
    """A run of non-ASCII characters in ASCII; `after` is the character that follows it. A name
    (sigma) or an index (^2_1) followed by a letter or digit gets a space: w²₁₁a¹₁ → w^2_11 a^1_1.
    """
    pieces: list[tuple[str, bool]] = []  # (text, whether a letter after it needs a space)
    last = 0
    for m in _SCRIPT_RUN.finditer(run):
        pieces += [_piece(c) for c in run[last : m.start()]]
        pieces.append((_script(m.group()), True))
        last = m.end()
    pieces += [_piece(c) for c in run[last:]]
    out = ""
    for (text, spaced), following in zip(pieces, [p[0] for p in pieces[1:]] + [after], strict=True):
        out += text + (" " if spaced and following[:1].isalnum() else "")
    return out


def _piece(c: str) -> tuple[str, bool]:
    text = _char(c)
    return text, len(text) > 1 and text.isalpha()


def to_ascii(text: str, note: bool = True) -> str:
    """`text` with every non-ASCII character in an ASCII form: δ²₃ → d^2_3, σ′ → sigma'.
    With `note`, NOTE remembers that something was rewritten."""
    if text.isascii() or text == BREAK:
        return text
    if note:
        NOTE.rewritten = True
    return _NON_ASCII.sub(lambda m: _run(m.group(), text[m.end() : m.end() + 1]), text)


def ascii_renderable(obj: Any) -> Any:
    """A rich renderable (str, Text, Table, Group, Padding, a gradcalc Fit) with its text in
    ASCII, made before rich measures it. Anything else is left to the stream's own fallback."""
    from rich.box import ASCII
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from gradcalc.doc.fit import Fit

    if isinstance(obj, str):
        return to_ascii(obj)
    if isinstance(obj, Text):
        return _ascii_text(obj)
    if isinstance(obj, Fit):
        return Fit(ascii_renderable(obj.table), obj.keys, to_ascii(obj.caption))
    if isinstance(obj, Table):
        if obj.box is not None:
            obj.box = ASCII
        for attribute in ("title", "caption"):
            value = getattr(obj, attribute)
            if value is not None:
                setattr(obj, attribute, ascii_renderable(value))
        for column in obj.columns:
            column.header = ascii_renderable(column.header)
            column.footer = ascii_renderable(column.footer)
            column._cells = [ascii_renderable(c) for c in column._cells]
        return obj
    if isinstance(obj, Group):
        return Group(*(ascii_renderable(r) for r in obj.renderables), fit=obj.fit)
    if isinstance(obj, Padding):
        obj.renderable = ascii_renderable(obj.renderable)
        return obj
    return obj


def _ascii_text(text: Any) -> Any:
    """A rich Text in ASCII, its styled spans moved with the characters they cover."""
    plain = text.plain
    if plain.isascii():
        return text
    pieces: list[str] = []
    start = list(range(len(plain) + 1))  # old offset -> new offset of a span's start
    end = list(start)  # ... and of a span's end (one inside a rewritten run: the run's end)
    old = new = 0
    for m in _NON_ASCII.finditer(plain):
        for i in range(old, m.start() + 1):
            start[i] = end[i] = new + i - old
        new += m.start() - old
        piece = _run(m.group(), plain[m.end() : m.end() + 1])
        for i in range(m.start() + 1, m.end() + 1):
            start[i], end[i] = new + len(piece) if i == m.end() else new, new + len(piece)
        pieces += [plain[old : m.start()], piece]
        new += len(piece)
        old = m.end()
    for i in range(old, len(plain) + 1):
        start[i] = end[i] = new + i - old
    pieces.append(plain[old:])
    NOTE.rewritten = True
    copy = text.copy()
    copy.plain = "".join(pieces)
    copy.spans = [s._replace(start=start[s.start], end=end[s.end]) for s in text.spans]
    return copy


def ascii_blocks(blocks: Sequence[Any]) -> list[Any]:
    """Document blocks (gradcalc.doc.blocks) with all their text in ASCII forms."""
    return [_ascii_fields(block) for block in blocks]


def _ascii_fields(value: Any) -> Any:
    if isinstance(value, str):
        return to_ascii(value)
    if isinstance(value, tuple | list):
        return type(value)(_ascii_fields(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _ascii_fields(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


class AsciiStream(io.TextIOWrapper):
    """A text stream over `buffer` that writes everything in ASCII forms (so it calls itself
    UTF-8, which ASCII is, and which keeps click from rewrapping it). `replaced`: the stream
    it stands in for, whose line buffering it keeps."""

    ascii_forms = True

    def __init__(self, buffer: Any, replaced: Any, note: bool) -> None:
        super().__init__(
            buffer,
            encoding="utf-8",
            errors="replace",
            line_buffering=bool(getattr(replaced, "line_buffering", False)),
        )
        self._note = note

    def write(self, text: str) -> int:
        super().write(to_ascii(text, note=self._note).replace(BREAK, ""))
        return len(text)


def wants_ascii(console: Any) -> bool:
    """Whether a rich console writes to a stream that cannot hold gradcalc's symbols."""
    return bool(getattr(console.file, "ascii_forms", False)) or cannot_write(console.encoding)


def ascii_hook() -> Any:
    """A rich render hook: everything a console prints, in ASCII (see ascii_renderable)."""
    from rich.console import RenderHook

    class AsciiHook(RenderHook):
        def process_renderables(self, renderables: list[Any]) -> list[Any]:
            return [ascii_renderable(r) for r in renderables]

    return AsciiHook()
