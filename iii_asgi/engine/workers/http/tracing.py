"""The SERVER span of an HTTP trigger request (docs/observability.md), when tracing is on.

The span continues the client's ``traceparent`` header (else starts a trace), is named
``"<METHOD> <route template>"`` once the route is known (just the method for 404/405), carries
the HTTP semantic-convention attributes (``http.request.method``, ``url.path``, ``url.scheme``,
``http.route``, ``http.response.status_code``, ``client.address``, ``server.address`` /
``server.port``) and ``iii.function.id``, and is ERROR for a 5xx response or an exception.
The route's function (and its condition and middleware) are invoked with the span as parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Status, StatusCode

from ...core.tracing import EngineTracer, traceparent_of
from ...types import Message

if TYPE_CHECKING:
    from .app import _Exchange

__all__ = ["traced"]


async def traced(tracing: EngineTracer, exchange: _Exchange) -> None:
    """Run ``exchange`` inside its SERVER span."""
    scope = exchange.scope
    traceparent = baggage = None
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered == b"traceparent":
            traceparent = value.decode("latin-1")
        elif lowered == b"baggage":
            baggage = value.decode("latin-1")
    method: str = scope["method"]
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
    }
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    server = scope.get("server")
    if server:
        attributes["server.address"] = server[0]
        if server[1] is not None:
            attributes["server.port"] = server[1]
    span = tracing.start_server(method, traceparent, attributes)
    exchange.traceparent = traceparent_of(span)
    exchange.baggage = baggage
    status = 0
    send = exchange.send

    async def record_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    exchange.send = record_status
    try:
        await exchange.run()
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc) or type(exc).__name__))
        raise
    finally:
        route = exchange.route
        if route is not None:
            span.update_name(f"{method} {route.template}")
            span.set_attribute("http.route", route.template)
            span.set_attribute("iii.function.id", route.function_id)
        if status:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        span.end()
