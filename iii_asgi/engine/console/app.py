"""The console's ASGI app: its routes (pages, actions under ``/actions/``, the live stream at
``/events``, static files) behind :class:`~.guard.Guard`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..core.errors import InvocationError
from ..types import ASGIApp
from .actions import Actions, Outcome, parse_json
from .guard import Guard
from .live import TOPICS, event_stream
from .model import EngineView
from .pages import Pages
from .render import Renderer

if TYPE_CHECKING:
    from .worker import Console

__all__ = ["build_app"]

STATIC = Path(__file__).parent / "static"
MAX_FORM_BYTES = 16 * 1024 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (what htmx and plain forms send)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def local_path(path: str) -> str:
    """``path`` when it is a path on this console, else ``/`` (no redirect elsewhere)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


class ActionRoutes:
    """POST handlers: each calls the engine, then answers htmx with a fragment (and
    ``HX-Trigger: refresh`` so that the page's live parts reload) or a plain form with a
    redirect to ``next``."""

    def __init__(self, actions: Actions, render: Renderer) -> None:
        self.actions = actions
        self.render = render

    def answer(
        self,
        request: Request,
        form: dict[str, str],
        outcome: Outcome,
        *,
        redirect: str = "",
        fragment: str = "_outcome.html",
    ) -> Response:
        """htmx: ``fragment``; ``Accept: application/json``: the outcome as JSON (422 for an
        error); a plain form post: a redirect to ``next``."""
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(asdict(outcome), 200 if outcome.ok else 422)
        if request.headers.get("hx-request") != "true":
            return RedirectResponse(local_path(form.get("next") or redirect), 303)
        response = self.render.fragment(fragment, outcome=outcome, mode=form.get("mode", ""))
        response.headers["hx-trigger"] = "refresh"
        if redirect and outcome.ok:
            response.headers["hx-redirect"] = redirect
        return response

    async def invoke(self, request: Request) -> Response:
        form = await read_form(request)
        outcome = await self.actions.invoke(
            form.get("function_id", ""),
            form.get("namespace", ""),
            form.get("payload", ""),
            form.get("mode", "sync"),
            form.get("queue", "default"),
        )
        return self.answer(request, form, outcome, fragment="_result.html")

    async def queue(self, request: Request) -> Response:
        form = await read_form(request)
        queue, message_id = form.get("queue", ""), form.get("message_id", "")
        operation = request.path_params["operation"]
        if operation not in ("redrive", "discard"):
            return Response(status_code=404)
        if operation == "discard":
            outcome = await self.actions.call(
                "iii::queue::discard_message", {"queue": queue, "message_id": message_id}
            )
        elif message_id:
            outcome = await self.actions.call(
                "iii::queue::redrive_message", {"queue": queue, "message_id": message_id}
            )
        else:
            outcome = await self.actions.call("iii::queue::redrive", {"queue": queue})
        return self.answer(request, form, outcome)

    async def state(self, request: Request) -> Response:
        form = await read_form(request)
        scope, key = form.get("scope", ""), form.get("key", "")
        back = f"/state?scope={_q(scope)}"
        where = {"scope": scope, "key": key}
        return await self._set_or_delete(
            request, form, "state", where, "value", back, f"{back}&key={_q(key)}"
        )

    async def stream(self, request: Request) -> Response:
        form = await read_form(request)
        stream, group, item = form.get("stream", ""), form.get("group", ""), form.get("item", "")
        where = {"stream_name": stream, "group_id": group, "item_id": item}
        back = f"/streams?stream={_q(stream)}&group={_q(group)}"
        return await self._set_or_delete(
            request, form, "stream", where, "data", back, f"{back}&item={_q(item)}"
        )

    async def _set_or_delete(
        self,
        request: Request,
        form: dict[str, str],
        kind: str,
        where: dict[str, str],
        field: str,
        back: str,
        target: str,
    ) -> Response:
        """The ``set`` / ``delete`` operation (any other: 404) on the ``where`` entry of
        ``kind`` (``state`` / ``stream``): ``<kind>::delete``, then redirect to ``back``; or
        ``<kind>::set`` with the form's JSON ``field``, then, for a ``new`` entry, redirect to
        ``target``."""
        operation = request.path_params["operation"]
        if operation not in ("set", "delete"):
            return Response(status_code=404)
        if operation == "delete":
            outcome = await self.actions.call(f"{kind}::delete", where)
            return self.answer(request, form, outcome, redirect=back)
        outcome = await self._set(f"{kind}::set", where, field, form.get(field, ""))
        return self.answer(request, form, outcome, redirect=target if form.get("new") else "")

    async def _set(self, function_id: str, where: dict[str, str], field: str, text: str) -> Outcome:
        try:
            value = parse_json(text, "value")
        except InvocationError as exc:
            return Outcome(False, code=exc.code, message=exc.message)
        return await self.actions.call(function_id, {**where, field: value})


def _q(value: str) -> str:
    return quote(value, safe="")


def build_app(console: Console) -> ASGIApp:
    """The console app of ``console`` (pages, actions, live stream, static files), guarded."""
    view = EngineView(console.core, console.workers, console.rates)
    render = Renderer(console)
    pages = Pages(view, render)
    actions = ActionRoutes(Actions(console.core), render)

    async def events(request: Request) -> Response:
        topics = [t for t in request.query_params.getlist("topic") if t in TOPICS]
        params = {
            k: v for k, v in request.query_params.items() if k in ("scope", "stream", "group")
        }
        return StreamingResponse(
            event_stream(view, topics, params, console.closing),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def not_found(request: Request, exc: Exception) -> HTMLResponse:
        return render.missing(request, request.url.path, "/")

    routes = [
        Route("/", pages.overview),
        Route("/functions", pages.functions),
        Route("/functions/{function_id:path}", pages.function),
        Route("/triggers", pages.triggers),
        Route("/workers", pages.workers),
        Route("/queues", pages.queues),
        Route("/queues/{name:path}", pages.queue),
        Route("/state", pages.state),
        Route("/streams", pages.streams),
        Route("/traces", pages.traces),
        Route("/traces/{trace_id}", pages.trace),
        Route("/logs", pages.logs),
        Route("/events", events),
        Route("/actions/invoke", actions.invoke, methods=["POST"]),
        Route("/actions/queue/{operation:str}", actions.queue, methods=["POST"]),
        Route("/actions/state/{operation:str}", actions.state, methods=["POST"]),
        Route("/actions/stream/{operation:str}", actions.stream, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found})
    return Guard(app, console)
