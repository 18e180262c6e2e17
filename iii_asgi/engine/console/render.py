"""Rendering: the Jinja2 environment (templates shipped in the package) and the context every
page shares (navigation, the live-update URL, whether actions are enabled)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .format import FILTERS
from .guard import AUTHORIZED

if TYPE_CHECKING:
    from .worker import Console

__all__ = ["NAV", "Renderer"]

HERE = Path(__file__).parent
NAV = (
    ("overview", "Overview", "/"),
    ("functions", "Functions", "/functions"),
    ("triggers", "Triggers", "/triggers"),
    ("workers", "Workers", "/workers"),
    ("queues", "Queues", "/queues"),
    ("state", "State", "/state"),
    ("streams", "Streams", "/streams"),
    ("traces", "Traces", "/traces"),
    ("logs", "Logs", "/logs"),
)


class Renderer:
    """``page()`` renders a whole page, ``fragment()`` a partial answering an htmx action."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(FILTERS)
        self.env.globals.update(nav=NAV, urlencode=urlencode)

    def page(
        self,
        request: Request,
        template: str,
        *,
        page: str,
        title: str,
        topics: tuple[str, ...],
        params: dict[str, str] | None = None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page listening to ``topics`` (with ``params``, e.g. the state scope it shows)."""
        query = [("topic", t) for t in topics] + sorted((params or {}).items())
        sse_url = "/events?" + urlencode(query) if topics else ""
        live_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = self.env.get_template(template).render(
            request=request,
            page=page,
            title=title,
            sse_url=sse_url,
            live_url=live_url,
            authorized=bool(request.scope.get(AUTHORIZED)),
            core=self.console.core,
            version=self.console.core.builtins.engine_summary()["version"],
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def missing(self, request: Request, what: str, back: str, page: str = "") -> HTMLResponse:
        """The 404 page: ``what`` is not here (any more), with a link ``back``."""
        return self.page(
            request,
            "missing.html",
            page=page,
            title="Not found",
            topics=(),
            what=what,
            back=back,
            status_code=404,
        )

    def fragment(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status_code)
