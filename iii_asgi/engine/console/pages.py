"""The console's pages (GET): one handler per URL, each reading the engine through
:class:`~.model.EngineView` and naming the live topics it listens to."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from . import schema
from .actions import MODES
from .format import json_text
from .model import EngineView, compact
from .render import Renderer
from .telemetry import LEVELS, log_rows, trace_summaries, waterfall

__all__ = ["Pages"]


def _arg(request: Request, name: str) -> str:
    return request.query_params.get(name, "").strip()


def _float(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def http_request(config: dict[str, Any], example: Any) -> dict[str, Any]:
    """The payload an ``http`` trigger sends (builtins.md §3.3) for a route's ``config``, with
    the request schema's ``body`` example: what to invoke an HTTP function with."""
    path = "/" + str(config.get("api_path") or "").lstrip("/")
    names = [s[1:] for s in path.split("/") if s.startswith(":")]
    return {
        "method": str(config.get("http_method") or "GET").upper(),
        "path": path,
        "path_params": dict.fromkeys(names, ""),
        "query_params": {},
        "headers": {},
        "body": example.get("body") if isinstance(example, dict) else None,
    }


class Pages:
    """GET handlers of the console."""

    def __init__(self, view: EngineView, render: Renderer) -> None:
        self.view = view
        self.render = render

    async def overview(self, request: Request) -> HTMLResponse:
        view = self.view
        rate, errors = view.rates.per_second()
        queues = await view.queue_rows()
        workers = view.worker_rows()
        traces = trace_summaries(view.store, limit=8)
        failing = trace_summaries(view.store, status="error", limit=5, scan=200)
        return self.render.page(
            request,
            "overview.html",
            page="overview",
            title="Overview",
            topics=("overview", "traces"),
            stats={
                "workers": len(workers) - 1,
                "functions": len(view.function_rows()),
                "triggers": len(view.registry.triggers),
                "rate": rate,
                "errors_rate": errors,
                "invocations": view.invoker.invocations,
                "errors": view.invoker.errors,
                "depth": sum(q["depth"] for q in queues),
                "dead": sum(q["dead"] for q in queues),
            },
            history=view.rates.history(),
            workers=workers,
            queues=queues,
            traces=traces,
            failing=failing,
        )

    async def functions(self, request: Request) -> HTMLResponse:
        search, worker = _arg(request, "q"), _arg(request, "worker")
        internal = _arg(request, "internal") == "1"
        rows = self.view.function_rows(search, worker, internal)
        functions = self.view.registry.functions.values()
        return self.render.page(
            request,
            "functions.html",
            page="functions",
            title="Functions",
            topics=("functions", "triggers"),
            rows=rows,
            search=search,
            worker=worker,
            internal=internal,
            workers=sorted({self.view.worker_name(e) for e in functions}),
        )

    async def function(self, request: Request) -> HTMLResponse:
        function_id = request.path_params["function_id"]
        namespace = _arg(request, "namespace")
        entry = self.view.function(function_id, namespace or None)
        if entry is None:
            return self.render.missing(
                request, f"function {function_id}", "/functions", "functions"
            )
        bindings = self.view.bindings_of(entry)
        payload = schema.example(entry.request_format)
        http = next((t for t in bindings if t.trigger_type == "http"), None)
        if http is not None and isinstance(http.config, dict):
            payload = http_request(http.config, payload)
        return self.render.page(
            request,
            "function.html",
            page="functions",
            title=entry.function_id,
            topics=("functions", "triggers"),
            entry=entry,
            worker=self.view.worker_name(entry),
            kind=self.view.kind(entry),
            request_rows=schema.schema_rows(entry.request_format),
            response_rows=schema.schema_rows(entry.response_format),
            request_type=schema.type_text(entry.request_format) if entry.request_format else "",
            response_type=schema.type_text(entry.response_format) if entry.response_format else "",
            bindings=[self.view.trigger_row(t) for t in bindings],
            payload=json_text(payload if payload is not None else {}),
            modes=MODES,
            queues=self.view.queue_names(),
        )

    async def triggers(self, request: Request) -> HTMLResponse:
        groups = self.view.trigger_groups()
        return self.render.page(
            request,
            "triggers.html",
            page="triggers",
            title="Triggers",
            topics=("triggers",),
            groups=groups,
            total=sum(len(g.rows) for g in groups),
        )

    async def workers(self, request: Request) -> HTMLResponse:
        return self.render.page(
            request,
            "workers.html",
            page="workers",
            title="Workers",
            topics=("workers",),
            rows=self.view.worker_rows(),
        )

    async def queues(self, request: Request) -> HTMLResponse:
        return self.render.page(
            request,
            "queues.html",
            page="queues",
            title="Queues",
            topics=("queues",),
            rows=await self.view.queue_rows(),
        )

    async def queue(self, request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        detail = await self.view.queue_detail(name)
        if detail is None:
            return self.render.missing(request, f"queue {name}", "/queues", "queues")
        return self.render.page(
            request, "queue.html", page="queues", title=name, topics=("queues",), q=detail
        )

    async def state(self, request: Request) -> HTMLResponse:
        scope, key = _arg(request, "scope"), _arg(request, "key")
        scopes = await self.view.state_scopes()
        items = await self.view.state_items(scope) if scope else []
        value = next((v for k, v in items if k == key), None) if key else None
        return self.render.page(
            request,
            "state.html",
            page="state",
            title="State",
            topics=("state",),
            params={"scope": scope} if scope else {},
            scopes=scopes,
            scope=scope,
            key=key,
            items=[(k, compact(v, 90), len(compact(v, 10**9))) for k, v in items],
            found=any(k == key for k, _ in items),
            value=json_text(value) if key else "",
        )

    async def streams(self, request: Request) -> HTMLResponse:
        stream, group = _arg(request, "stream"), _arg(request, "group")
        item = _arg(request, "item")
        tree = await self.view.stream_tree(stream or None, group or None)
        items: list[tuple[str, Any]] = tree["items"]
        value = next((v for k, v in items if k == item), None) if item else None
        params = {k: v for k, v in (("stream", stream), ("group", group)) if v}
        return self.render.page(
            request,
            "streams.html",
            page="streams",
            title="Streams",
            topics=("streams",),
            params=params,
            tree=tree,
            stream=stream,
            group=group,
            item=item,
            items=[(k, compact(v, 90), len(compact(v, 10**9))) for k, v in items],
            found=any(k == item for k, _ in items),
            value=json_text(value) if item else "",
        )

    async def traces(self, request: Request) -> HTMLResponse:
        function, status = _arg(request, "function"), _arg(request, "status")
        min_ms = _arg(request, "min_ms")
        rows = trace_summaries(
            self.view.store, function=function, status=status, min_ms=_float(min_ms)
        )
        return self.render.page(
            request,
            "traces.html",
            page="traces",
            title="Traces",
            topics=("traces",),
            rows=rows,
            function=function,
            status=status,
            min_ms=min_ms,
            tracing=self.view.core.tracing.tracer is not None,
            longest=max((r.duration_ms for r in rows), default=1.0) or 1.0,
        )

    async def trace(self, request: Request) -> HTMLResponse:
        trace_id = request.path_params["trace_id"].lower()
        spans = self.view.store.trace(trace_id)
        laid = waterfall(trace_id, spans)
        logs = log_rows(self.view.store, trace_id=trace_id, limit=100)
        return self.render.page(
            request,
            "trace.html",
            page="traces",
            title=f"Trace {trace_id[:8]}",
            topics=("traces", "logs"),
            trace_id=trace_id,
            w=laid,
            logs=logs,
            tracing=self.view.core.tracing.tracer is not None,
            status_code=200 if laid is not None else 404,
        )

    async def logs(self, request: Request) -> HTMLResponse:
        level, function = _arg(request, "level"), _arg(request, "function")
        trace_id, search = _arg(request, "trace_id"), _arg(request, "q")
        rows = log_rows(
            self.view.store, level=level, function=function, trace_id=trace_id, search=search
        )
        return self.render.page(
            request,
            "logs.html",
            page="logs",
            title="Logs",
            topics=("logs",),
            rows=rows,
            level=level,
            levels=list(LEVELS),
            function=function,
            trace_id=trace_id,
            search=search,
        )
