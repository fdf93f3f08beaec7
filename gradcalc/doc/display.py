"""How a trace shows itself in a rich console, IPython or Jupyter: as the command's tables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any


class RichDisplay:
    """Mixin for a trace: ``renderables`` gives the command's table view."""

    def renderables(self) -> list[Any]:
        raise NotImplementedError

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        yield from self.renderables()

    def _repr_mimebundle_(
        self, include: Sequence[str] = (), exclude: Sequence[str] = (), **kwargs: Any
    ) -> dict[str, str]:
        from rich.jupyter import JupyterMixin

        return JupyterMixin._repr_mimebundle_(self, include, exclude, **kwargs)
