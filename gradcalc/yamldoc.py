"""A user's YAML, read safely and kept with its lines: the input layer of every command.

The text is composed into nodes with a safe loader and converted node by node, so that every
value keeps its line and every refusal can name the file, the key path, the line and a likely
fix. Size, depth and alias expansion are bounded before anything is converted; plain scalars are
read as YAML 1.2 reads them.
"""

from __future__ import annotations

import gc
import math
import re
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcalc.errors import ConfigError, KeyPath, shorten
from gradcalc.limits import MAX_BYTES, MAX_DEPTH, MAX_NODES
from gradcalc.records import mutable_record

if TYPE_CHECKING:
    import yaml

_Loader: Any = None  # the loader class, made with PyYAML on first use (see _load_yaml)


def _load_yaml() -> None:
    """Import PyYAML and make the loader class on the first parse: a module that only uses Doc
    (the Python API's from_dict, a PrairieLearn server.py grading) never needs PyYAML."""
    global yaml, _Loader
    if _Loader is not None:
        return
    import yaml

    # libyaml's parser when PyYAML was built with it: composing a 1 MB config takes a second,
    # not ten.
    base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):
        """A safe loader that reads plain scalars as YAML 1.2's core schema does, not as YAML 1.1.

        YAML 1.1 (PyYAML's default) reads 1:30 as 90 (base 60), 010 as 8 (octal), 0x1F as 31 and
        yes/no/on/off as booleans; YAML 1.2 reads all of them as text, and so does gradcalc, so a
        number is always written in decimal: 12, -0.5, 1e-3, 2E5, 1_000. Where a number is
        expected, such text is refused with a hint (see number_hint).
        """

        yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
            |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
            |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
        list("-+0123456789."),
    )
    Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
    _Loader = Loader


# Text that YAML 1.1 would have read as a number (patterns compiled when a hint is asked for: an
# error's path), and what to write instead.
_YAML11_NUMBERS: tuple[tuple[str, str], ...] = (
    (
        r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$",
        "YAML 1.1 would read it as a base-60 number; gradcalc reads YAML 1.2, where it is "
        "text: write the number in decimal",
    ),
    (
        r"^[-+]?0[0-9_]+$",
        "a leading zero is ambiguous: YAML 1.1 reads 010 as octal 8, YAML 1.2 as 10; "
        "write it without the zero",
    ),
    (
        r"^[-+]?0[xXoObB][0-9a-fA-F_]+$",
        "hexadecimal, octal and binary numbers are not read: write the number in decimal",
    ),
    (
        r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$",
        "YAML 1.1 read this word as a boolean; it is text here",
    ),
)
# An integer literal: float64 has at most 309 integer digits; Python's int() refuses more than
# 4,300 anyway.
_MAX_DIGITS = 400
# What a config may not contain: anything but YAML's printable characters (tab, newline and CR
# among controls: \x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff).
# Written as the few ranges left out: the class of what is allowed takes ~3 ms to compile.
_NOT_PRINTABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
)

_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
}


@mutable_record
class Doc:
    """The converted YAML plus the line of every key path."""

    source: str
    data: Any
    lines: dict[KeyPath, int]
    base: Path = field(default_factory=Path)  # the folder file paths are relative to
    # The array files read for it, with the key path that names each (weights: {file: w.npy}).
    files: list[tuple[KeyPath, Path]] = field(default_factory=list)
    # The text of every number read on its own (a row of plain numbers keeps its `texts`):
    # how many decimals it was written with, which 0.550 → 0.55 loses.
    texts: dict[KeyPath, str] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(self, path: KeyPath, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, source=self.source, path=path, line=self.line(path), hint=hint)


CONFIG_HINT = "check the path, or run 'gradcalc examples' for bundled configs"
EMPTY_HINT = "see 'gradcalc step --example worked-example' for a complete config"


def read_text(source: str, missing_hint: str = CONFIG_HINT) -> tuple[str, str]:
    """Return (display name, text) for a path or '-' (standard input)."""
    if source == "-":
        import sys

        # Bytes, decoded here as a file is: the locale (LC_ALL=C) must not decide, and bad
        # bytes must not raise from inside the text layer.
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            return "<stdin>", sys.stdin.read(MAX_BYTES + 1)
        return "<stdin>", _decode(stream.read(MAX_BYTES + 1), "<stdin>")
    path = Path(source)
    source = shorten(source)  # as messages show it
    try:
        if not path.exists():
            raise ConfigError(
                "no such file",
                source=source,
                hint=missing_hint,
            )
        if path.is_dir():
            raise ConfigError("is a directory, not a file", source=source)
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:  # unreadable, a name too long for the file system, …
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=source) from None
    return source, _decode(raw, source)


def _decode(raw: bytes, source: str) -> str:
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            f"larger than {MAX_BYTES // 1_000_000} MB; refusing to read it", source=source
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        hint = None
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = "it looks like UTF-16: convert it, e.g. iconv -f UTF-16 -t UTF-8"
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError("is not UTF-8 text", source=source, line=line, hint=hint) from None


def parse_yaml(text: str, source: str, empty_hint: str = EMPTY_HINT) -> Doc:
    """Compose YAML (or JSON) safely into data plus the line of every key path; any YAML file
    gradcalc reads (configs, answer sheets, points) goes through here."""
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"larger than {MAX_BYTES // 1_000_000} MB; refusing to read it", source=source
        )
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise ConfigError(
            f"a control character (U+{ord(bad.group()):04X}) at column {column}; a config is "
            "plain text",
            source=source,
            line=line,
        )
    separators = sum(text.count(mark) for mark in (",", "\n", ": ", "- ", "[", "{"))
    if separators > MAX_NODES:
        # Every value but the first follows one of these: more values than the limit would
        # need gigabytes of nodes, so refuse before composing them.
        raise ConfigError(
            f"holds more than {MAX_NODES:,} values; put large arrays in a .npy or .npz file "
            "(weights: {file: w.npy})",
            source=source,
        )
    # No cyclic garbage is made while loading, and a million nodes would make the collector
    # walk them again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, source, empty_hint)
    finally:
        if collecting:
            gc.enable()


def _parse(text: str, source: str, empty_hint: str) -> Doc:
    _load_yaml()
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", source=source) from None
    if node is None:
        raise ConfigError(
            "the file is empty",
            source=source,
            hint=empty_hint,
        )
    if "&" in text:
        # Only an anchor lets a node appear twice (an alias): then walk the graph for the
        # expanded size and cycles. Without one, the node count is bounded above, and depth is
        # checked while converting.
        _check_size(node, source)
    lines: dict[KeyPath, int] = {}
    texts: dict[KeyPath, str] = {}
    data = _convert(node, (), lines, _Loader(""), source, texts)
    return Doc(source, data, lines, texts=texts)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class Numbers(list):
    """A YAML sequence of plain decimal numbers, converted in one go (its items keep no line
    of their own: an error in one names the sequence's line), with the text of each."""

    texts: list[str] = []  # noqa: RUF012


_FLOAT_TAG = "tag:yaml.org,2002:float"
_INT_TAG = "tag:yaml.org,2002:int"
_DECIMAL = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?"
_PLAIN_ROW = re.compile(rf"{_DECIMAL}(?:,{_DECIMAL})*")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


def _plain_numbers(node: yaml.SequenceNode) -> Numbers | None:
    """The numbers of a row such as [0.1, -2.5e-3, 1], or None when any item is not a plain
    decimal (those go the careful way, item by item)."""
    items = node.value
    if not items or len(items) > 1_000_000:
        return None
    try:
        tags = {item.tag for item in items}
        values = [item.value for item in items]
    except AttributeError:
        return None
    if not tags <= {_FLOAT_TAG, _INT_TAG} or any(type(i) is not yaml.ScalarNode for i in items):
        return None
    # One regex pass over the joined row rather than one per number.
    if not _PLAIN_ROW.fullmatch(",".join(values)):
        return None
    if max(map(len, values)) > 300:
        return None  # a number too long for float64 (or for int()): refused the careful way
    if tags == {_FLOAT_TAG}:
        numbers = Numbers(map(float, values))
    else:
        pairs = list(zip(values, items, strict=True))
        if any(item.tag == _INT_TAG and not _INTEGER.fullmatch(v) for v, item in pairs):
            return None  # `!!int -0.2`: a tag that does not fit its value, said the careful way
        numbers = Numbers(float(v) if item.tag == _FLOAT_TAG else int(v) for v, item in pairs)
    if any(map(math.isinf, numbers)):
        return None  # 1e400: said the careful way
    numbers.texts = values
    return numbers


def _check_size(root: yaml.Node, source: str) -> None:
    """Refuse, before converting anything, a document that nests too deeply, refers to itself
    or expands through aliases into more than MAX_NODES values.

    An alias is the same node object in several places, so sizes are memoized per node: the
    check costs one visit per distinct node however large the expansion.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # the nodes on the path from the root to the current one
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_NODES:
                raise ConfigError(
                    f"the document expands to more than {MAX_NODES:,} values (through "
                    "aliases?); refusing it",
                    source=source,
                    line=node.start_mark.line + 1,
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ConfigError(
                "an alias refers to a structure that contains it (a recursive alias)",
                source=source,
                line=node.start_mark.line + 1,
            )
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"nested more than {MAX_DEPTH} levels deep; a config needs at most a few",
                source=source,
                line=node.start_mark.line + 1,
            )
        open_nodes.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))


def _convert(
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    loader: Any,
    source: str,
    texts: dict[KeyPath, str],
) -> Any:
    line = node.start_mark.line + 1
    lines.setdefault(path, line)
    if len(path) > MAX_DEPTH:
        raise ConfigError(
            f"nested more than {MAX_DEPTH} levels deep; a config needs at most a few",
            source=source,
            line=line,
        )
    if isinstance(node, yaml.MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise ConfigError(
                f"unsupported YAML tag {node.tag!r}", source=source, path=path, line=line
            )
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(
                    "YAML merge keys ('<<') are not supported",
                    source=source,
                    path=path,
                    line=key_node.start_mark.line + 1,
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "a key must be a plain name",
                    source=source,
                    path=path,
                    line=key_node.start_mark.line + 1,
                )
            key = str(key_node.value)
            key_line = key_node.start_mark.line + 1
            here = (*path, key)
            if key in out:
                raise ConfigError(
                    f"duplicate key '{key}' (first on line {lines[here]})",
                    source=source,
                    path=path,
                    line=key_line,
                )
            lines[here] = key_line
            out[key] = _convert(value_node, here, lines, loader, source, texts)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise ConfigError(
                f"unsupported YAML tag {node.tag!r}", source=source, path=path, line=line
            )
        numbers = _plain_numbers(node)
        if numbers is not None:
            return numbers
        return [
            _convert(item, (*path, i), lines, loader, source, texts)
            for i, item in enumerate(node.value)
        ]
    if node.tag not in _SCALAR_TAGS:
        raise ConfigError(
            f"unsupported YAML tag {node.tag!r} (configs hold plain numbers, "
            "names, lists and mappings)",
            source=source,
            path=path,
            line=line,
        )
    if node.tag != "tag:yaml.org,2002:str":
        # An explicit tag (!!int 0x1F, !!bool 1, !!float 1:30) must fit the value as YAML 1.2
        # reads it plain; otherwise it would bring back the YAML 1.1 forms, or crash the
        # constructor.
        plain = loader.resolve(yaml.ScalarNode, node.value, (True, False))
        widened = plain == "tag:yaml.org,2002:int" and node.tag == "tag:yaml.org,2002:float"
        if plain != node.tag and not widened:
            short = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(
                f"the tag {short} does not fit {node.value!r}; write the value without a tag",
                source=source,
                path=path,
                line=line,
            )
    if node.tag in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:int"):
        assert isinstance(node, yaml.ScalarNode)  # mappings and sequences are done above
        texts[path] = node.value
        return _plain_number(node, path, line, source)
    try:
        return loader.construct_object(node)
    except (ValueError, TypeError, KeyError, yaml.YAMLError) as exc:  # a safety net: one line
        raise ConfigError(
            f"cannot read the value {node.value[:30]!r} ({exc})",
            source=source,
            path=path,
            line=line,
        ) from None


def _plain_number(node: yaml.ScalarNode, path: KeyPath, line: int, source: str) -> float | int:
    text = node.value.replace("_", "")
    if node.tag == "tag:yaml.org,2002:int":
        # No leading zeros in a YAML 1.2 integer: past 400 digits it is past float64 (and
        # Python's int() refuses more than 4,300).
        digits = len(text.lstrip("+-"))
        if digits > _MAX_DIGITS:
            raise ConfigError(
                f"the number {text[:12]}… ({digits:,} digits) is too large "
                "(float64 ends near 1.8e308)",
                source=source,
                path=path,
                line=line,
            )
        return int(text)
    lowered = text.lower()
    if lowered.endswith((".inf", ".nan")):
        return float(lowered.replace(".", ""))
    # float() reads a decimal of any length correctly rounded (0.000…01 with 5,000 zeros is
    # the nearest float64, 0), in linear time.
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 20 else f"{text[:12]}… ({len(text):,} characters)"
        raise ConfigError(
            f"the number {shown} is too large (float64 ends near 1.8e308)",
            source=source,
            path=path,
            line=line,
        )
    return value


def type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ('{value}')" if len(value) < 30 else "a string"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def whole(doc: Doc, value: Any, path: KeyPath, low: int) -> int:
    """A whole number ≥ low however it is written (2, 2.0, 2E1), for steps:, sizes, strides,
    units and the like; refused at its key path otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise doc.error(path, f"expected a whole number ≥ {low}, got {type_name(value)}")
    return value


def number_hint(text: str) -> str | None:
    for pattern, hint in _YAML11_NUMBERS:
        if re.match(pattern, text):
            return hint
    try:
        float(text)
    except ValueError:
        return None
    return "remove the quotes"


def number(doc: Doc, value: Any, path: KeyPath) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = number_hint(value) if isinstance(value, str) else None
        raise doc.error(path, f"expected a number, got {type_name(value)}", hint)
    try:
        number = float(value)
    except OverflowError:
        raise doc.error(path, f"the number {str(value)[:20]}… is too large") from None
    if not math.isfinite(number):
        raise doc.error(path, f"expected a finite number, got {value}")
    return number
