"""How a trace shows itself in a rich console, IPython or Jupyter: as the command's tables in a
terminal, and as its Markdown (with real tables) in a notebook."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any


class RichDisplay:
    """Mixin for a trace: ``renderables`` gives the command's table view; a class with a
    ``_repr_markdown_`` is shown as that Markdown in Jupyter."""

    def renderables(self) -> list[Any]:
        raise NotImplementedError

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        yield from self.renderables()

    def _repr_mimebundle_(
        self, include: Sequence[str] = (), exclude: Sequence[str] = (), **kwargs: Any
    ) -> dict[str, str]:
        from rich.jupyter import JupyterMixin

        bundle: dict[str, str] = JupyterMixin._repr_mimebundle_(self, include, exclude, **kwargs)
        markdown = getattr(self, "_repr_markdown_", None)
        wanted = (not include or "text/markdown" in include) and "text/markdown" not in exclude
        if markdown is not None and wanted:
            # Jupyter shows HTML before Markdown: rich's HTML is the terminal's tables as
            # preformatted text, the Markdown has real tables and typeset formulas.
            bundle.pop("text/html", None)
            bundle["text/markdown"] = markdown()
        page = getattr(self, "_repr_html_", None)
        if (
            page is not None
            and (not include or "text/html" in include)
            and ("text/html" not in exclude)
        ):
            bundle["text/html"] = page()  # the --format html page: pictures, MathML, tables
        return bundle


def capture(draw: Callable[[Any], None], width: int = 100) -> str:
    """What `draw` prints on a rich console `width` columns wide, as plain text."""
    import io

    from rich.console import Console

    console = Console(
        file=io.StringIO(),
        width=width,
        color_system=None,
        force_terminal=False,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    console.begin_capture()
    draw(console)
    return console.end_capture()
