"""The documentation as a whole: a short README that leads to one page per command and topic,
links between the pages that resolve (files and #anchors), and the sheet the project grew from
shown with its real numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from doc_pages import FENCE, HEADING, PAGES, ROOT, name, section, text

from gradcalc.cli import COMMANDS

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


# Pages another branch is writing: a link to one is checked once the page exists.
def prose(page: Path) -> str:
    """The page without code blocks and inline code, where brackets are not links."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text(page)))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"`", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", text(page))):
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links() -> list[tuple[Path, str]]:
    return [(page, target) for page in PAGES for target in LINK.findall(prose(page))]


def test_slugs_are_githubs() -> None:
    assert slug("Long runs: `--show`, `--every`, `--last`, `--explain-steps`, JSON lines") == (
        "long-runs---show---every---last---explain-steps-json-lines"
    )
    assert slug("Why the sheet's loss is twice gradcalc's `quadratic`") == (
        "why-the-sheets-loss-is-twice-gradcalcs-quadratic"
    )


@pytest.mark.parametrize(("page", "target"), links(), ids=[f"{name(p)} -> {t}" for p, t in links()])
def test_every_relative_link_resolves(page: Path, target: str) -> None:
    if re.match(r"[a-z]+:", target):
        return  # an address on the web: not ours to check offline
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{name(page)}: {target}: no such file"
    if anchor:
        assert file.suffix == ".md", f"{name(page)}: {target}: an anchor into a non-page"
        assert anchor in anchors(file), f"{name(page)}: {target}: no such heading"


def test_the_checker_finds_links_and_refuses_a_broken_one(tmp_path: Path) -> None:
    assert len(links()) > 40
    page = ROOT / "README.md"
    assert "docs/step.md" in [t for p, t in links() if p == page]
    assert "no-such-heading" not in anchors(ROOT / "docs" / "step.md")


def test_the_readme_is_a_landing_page() -> None:
    readme = text(ROOT / "README.md")
    assert len(readme.splitlines()) <= 250
    titles = [m.group(2) for m in HEADING.finditer(FENCE.sub("", readme))]
    assert titles[:3] == ["gradcalc", "The sheet it grew from", "Quick start"]
    assert "Documentation" in titles


def test_every_page_is_reachable_from_the_readme() -> None:
    reachable, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in reachable or not page.exists():
            continue
        reachable.add(page)
        for target in LINK.findall(prose(page)):
            path = target.partition("#")[0]
            if path.endswith(".md") and not re.match(r"[a-z]+:", path):
                todo.append((page.parent / path).resolve())
    assert set(PAGES) <= reachable, sorted(name(p) for p in set(PAGES) - reachable)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "completion"])
def test_every_command_has_its_page(command: str) -> None:
    pages = [p for p in PAGES if p.parent.name == "docs"]
    titled = [p for p in pages if f"`gradcalc {command}`" in text(p).splitlines()[0]]
    assert titled, f"no docs page is titled with `gradcalc {command}`"


def test_the_sheets_question_is_the_worked_example() -> None:
    """The README shows the question with the numbers of configs/worked-example.yaml."""
    question = section("The sheet it grew from")
    config = yaml.safe_load((ROOT / "configs" / "worked-example.yaml").read_text("utf-8"))

    def numbers(s: str) -> list[float]:
        return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", s.replace("−", "-"))]

    rows = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"^> \| (\d) \| (.*) \|$", question, flags=re.M)
    }
    assert sorted(rows) == [2, 3]
    for l, layer in zip((2, 3), config["layers"], strict=True):
        weights, biases, activation = (c.strip() for c in rows[l].split(" | "))
        assert numbers(weights) == [w for row in layer["weights"] for w in row]
        assert numbers(biases) == layer["biases"]
        assert activation == layer["activation"]
    assert f"a¹ = ({', '.join(map(str, config['input']))})" in question
    assert f"y = {config['target'][0]}" in question
    assert f"η = {config['learning_rate']:g}" in question
    assert "0.0951464" in question and "0.115070" in question


def test_the_docs_index_lists_what_the_readme_lists() -> None:
    """Both tables list every page of docs/, the same way."""

    def rows(page: Path) -> list[str]:
        return [line for line in text(page).splitlines() if line.startswith("| [")]

    readme = [row.replace("](docs/", "](") for row in rows(ROOT / "README.md")]
    assert readme and readme == rows(ROOT / "docs" / "README.md")
    listed = {m for row in readme for m in re.findall(r"\]\(([\w-]+\.md)\)", row)}
    pages = {p.name for p in PAGES if p.parent.name == "docs"}
    assert listed == pages - {"README.md"}
