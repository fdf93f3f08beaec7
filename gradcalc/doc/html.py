"""The HTML writer: a worked solution (of `step`, `derive` or `check`) as one self-contained
page: no network access, no script; its mathematics as MathML, which browsers render natively,
its pictures as inline SVG, and a print stylesheet.

The blocks are those the Markdown writer takes (the markdown notation: TeX math between `$…$`,
code between backticks, Markdown's escapes); a command may add Picture blocks of its own.
Wide equations and tables scroll inside their own box, so the page never does sideways.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from gradcalc.doc.blocks import Block, Eq, Eqs, Heading, Mermaid, Para, Table
from gradcalc.doc.mathml import mathml, row


@dataclass(frozen=True)
class Picture:
    """An SVG picture (a <svg> element, from gradcalc.doc.svg.write(…, standalone=False))."""

    svg: str
    caption: str = ""


CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1a1a1a; background: #fff; }
main { max-width: 62rem; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; line-height: 1.25; } h2 { font-size: 1.3rem; margin-top: 2rem; }
h3 { font-size: 1.1rem; margin-top: 1.5rem; }
p, li { overflow-wrap: anywhere; }
code { font: 0.92em "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f3f3f3;
  padding: 0 0.2em; border-radius: 3px; }
math { font-size: 1.08em; }
.scroll { overflow-x: auto; max-width: 100%; }
.eqs math[display="block"] { margin: 0.6rem 0; }
mtd { padding: 0.15em 0.1em; text-align: left; }
.eqs mtd:first-child { text-align: right; }
table.data { border-collapse: collapse; margin: 0.6rem 0; font-variant-numeric: tabular-nums; }
table.data th, table.data td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem;
  text-align: left; white-space: nowrap; }
table.data td.num { text-align: right; }
table.data thead th { border-bottom: 2px solid #888; }
td.correct { color: #1d7a35; } td.rounding { color: #17727a; } td.carried { color: #9a6a00; }
td.wrong { color: #b3261e; font-weight: bold; }
tr.wrong td { background: #fdf1f0; } tr.carried td { background: #fdf9ec; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 0.9rem; }
.note { color: #555; font-size: 0.92rem; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  .scroll { overflow: visible; }
  h2 { break-after: avoid; } h3 { break-after: avoid; }
  figure, table.data, .eqs { break-inside: avoid; }
  tr.wrong td, tr.carried td { background: none; }
  @page { margin: 1.6cm; }
}
"""

# A table cell that is a verdict's mark gets its verdict's colour.
_VERDICTS = {"✓": "correct", "≈": "rounding", "↳": "carried", "✗": "wrong"}

_INLINE = re.compile(
    r"(?<!\\)\$(.+?)(?<!\\)\$|(`+)(.+?)\2|\\([\\`*_\[\]<>$|~{}#+.!-])|\*\*(.+?)\*\*", re.S
)
_NUMBER = re.compile(r"[−-]?[\d.,]+(?:e[+-]?\d+|×10[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)?|[\d.]+/[\d.]+")


def inline(text: str) -> str:
    """A line of the markdown notation as HTML: $math$ as MathML, `code` as <code>."""
    out, at = [], 0
    for m in _INLINE.finditer(text):
        out.append(escape(text[at : m.start()], quote=False))
        if m.group(1) is not None:
            out.append(mathml(m.group(1)))
        elif m.group(3) is not None:
            out.append(f"<code>{escape(m.group(3).strip(), quote=False)}</code>")
        elif m.group(4) is not None:
            out.append(escape(m.group(4), quote=False))
        else:
            out.append(f"<strong>{inline(m.group(5))}</strong>")
        at = m.end()
    out.append(escape(text[at:], quote=False))
    return "".join(out)


def _equations(block: Eqs) -> str:
    rows = []
    for eq in block.items:
        rows += _eq_rows(eq)
    table = '<mtable columnalign="right left left" displaystyle="true">' + "".join(rows)
    return f'<div class="eqs scroll"><math display="block">{table}</mtable></math></div>'


def _eq_rows(eq: Eq) -> list[str]:
    out = []
    for i, (rel, expr) in enumerate(eq.rhs or (("", ""),)):
        lhs = row(eq.lhs) if i == 0 else "<mrow/>"
        rhs = row(f"{rel} {expr}")
        tag = f"<mtext>({escape(eq.tag, quote=False)})</mtext>" if eq.tag and i == 0 else ""
        tag_cell = f'<mtd><mspace width="2em"/>{tag}</mtd>' if eq.tag else ""
        out.append(f"<mtr><mtd>{lhs}</mtd><mtd>{rhs}</mtd>{tag_cell}</mtr>")
    return out


def _table(block: Table) -> str:
    head = "".join(f"<th>{inline(c)}</th>" for c in block.header)
    body = []
    for r in block.rows:
        verdicts = [_VERDICTS[c.strip()[:1]] for c in r if c.strip()[:1] in _VERDICTS]
        cls = f' class="{verdicts[0]}"' if verdicts else ""
        cells = "".join(
            f'<td class="{_VERDICTS[c.strip()[:1]]}">{inline(c)}</td>'
            if c.strip()[:1] in _VERDICTS
            else f'<td class="num">{inline(c)}</td>'
            if _NUMBER.fullmatch(c.strip())
            else f"<td>{inline(c)}</td>"
            for c in r
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    out = (
        f'<div class="scroll"><table class="data"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
    if block.note:
        out += f'\n<p class="note">{inline(block.note)}</p>'
    return out


def render_block(block: Block | Picture) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 1), 6)
        return f"<h{level}>{inline(block.text)}</h{level}>"
    if isinstance(block, Para):
        return f"<p>{inline(block.text)}</p>"
    if isinstance(block, Eqs):
        return _equations(block)
    if isinstance(block, Picture):
        caption = f"<figcaption>{inline(block.caption)}</figcaption>" if block.caption else ""
        return f'<figure><div class="scroll">{block.svg}</div>{caption}</figure>'
    if isinstance(block, Mermaid):
        return ""  # the command draws its graph as a Picture instead
    return _table(block)


def _title(blocks: Sequence[Block | Picture]) -> str:
    for b in blocks:
        if isinstance(b, Heading):
            return re.sub(r"<[^>]+>", "", inline(b.text.replace("$", "")))
    return "gradcalc"


def write(blocks: Sequence[Block | Picture], compact: bool = False) -> str:
    """A complete page; `compact` is accepted for the other writers' sake (one layout here)."""
    body = "\n".join(part for part in (render_block(b) for b in blocks) if part)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="gradcalc">\n'
        f"<title>{_title(blocks)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _scoped(css: str, scope: str) -> str:
    """The page's stylesheet for a fragment inside another page: every rule under `scope`;
    the page-wide rules (:root, *, body, main) and the print stylesheet left out."""
    screen = css.split("@media print", 1)[0]
    rules = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", screen):
        kept = [
            f"{scope} {sel.strip()}"
            for sel in selectors.split(",")
            if sel.strip() and sel.strip() not in (":root", "*", "body", "main")
        ]
        if kept:
            rules.append(f"{', '.join(kept)} {{{body}}}")
    return "\n".join(rules)


def fragment(blocks: Sequence[Block | Picture]) -> str:
    """The page's content for a notebook cell (Jupyter's _repr_html_): one <div> with its
    stylesheet scoped to it (a <style> in a cell applies to the whole notebook), no <html>
    wrapper, no script, nothing fetched."""
    body = "\n".join(part for part in (render_block(b) for b in blocks) if part)
    return f'<div class="gradcalc">\n<style>{_scoped(CSS, ".gradcalc")}</style>\n{body}\n</div>\n'
