"""The documentation the tests hold to the tool: README.md and every page of docs/.

Tests import these helpers instead of reading README.md, so a section can move between the pages
without its test losing sight of it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HEADING = re.compile(r"^(#{1,6}) (.+)$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def everything() -> str:
    return "\n".join(text(p) for p in PAGES)


def section(title: str) -> str:
    """The text under the heading `title` (at any level, on any page) up to the next heading of
    the same or a higher level; headings inside code blocks do not count."""
    for page in PAGES:
        body = text(page)
        prose = FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), body)
        for match in HEADING.finditer(prose):
            if match.group(2).strip() != title:
                continue
            level, start = len(match.group(1)), match.end()
            end = len(body)
            for later in HEADING.finditer(prose, start):
                if len(later.group(1)) <= level:
                    end = later.start()
                    break
            return body[start:end]
    raise AssertionError(f"no page has a heading '{title}'")


def console_blocks() -> list[tuple[Path, str]]:
    return [
        (page, block)
        for page in PAGES
        for block in re.findall(r"```console\n(.*?)```", text(page), flags=re.S)
    ]


def console_commands() -> list[tuple[Path, str, str | None]]:
    """(page, command, expected output or None) for each `$ gradcalc ...` line of a console
    block; the output is the lines up to the next `$ `, None when there are none."""
    found = []
    for page, block in console_blocks():
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ gradcalc"):
                continue
            output = []
            for follower in lines[i + 1 :]:
                if follower.startswith("$ "):
                    break
                output.append(follower)
            found.append((page, line[2:], "\n".join(output) if output else None))
    return found


# ---- running a documented command ------------------------------------------------------------

STATUS = re.compile(r"#\s*exit status (\d+)\s*$")


def parse(command: str) -> tuple[list[str], list[list[str]], int]:
    """A documented command line -> (gradcalc's arguments, the pipe stages after it, the exit
    status the line states with `# exit status N`, else 0). Stops at `&&`, `;` or `>`."""
    import shlex

    status = STATUS.search(command)
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|&;>")
    lexer.whitespace_split = True
    stages: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", ";", ">", ">>"):
            break
        if token == "|":
            stages.append([])
        else:
            stages[-1].append(token)
    assert stages[0][0] == "gradcalc", command
    return stages[0][1:], stages[1:], int(status.group(1)) if status else 0


def pipe(output: str, stages: list[list[str]]) -> str:
    """Apply the few filters the documentation pipes into, as the shell would."""
    for program, *args in stages:
        if program == "jq":
            output = jq(output, args)
        elif program == "grep":
            output = "".join(line for line in output.splitlines(True) if re.search(args[-1], line))
        elif program in ("head", "tail") and args[:1] == ["-n"]:
            lines = output.splitlines(True)
            n = int(args[1])
            output = "".join(lines[:n] if program == "head" else lines[-n:])
        else:
            raise AssertionError(f"the documentation tests do not know `{program}`: {args}")
    return output if not output or output.endswith("\n") else output + "\n"


def jq(document: str, args: list[str]) -> str:
    """The jq programs the pages use: a path of .keys and [n] indices, or `keys`; -c, -r."""
    import json

    program, raw = args[-1], "-r" in args
    value = json.loads(document)
    if program == "keys":
        value = sorted(value)
    else:
        for key, index in re.findall(r"\.(\w+)|\[(\d+)\]", program):
            value = value[key] if key else value[int(index)]
    if raw and isinstance(value, str):
        return value + "\n"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"


def same_data(a: object, b: object) -> bool:
    """Equal as data; floats to 12 digits (the last bit may differ between numpy builds)."""
    import math

    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-12)
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_data(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_data(a[k], b[k]) for k in a)
    return a == b
