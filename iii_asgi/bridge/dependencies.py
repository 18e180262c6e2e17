"""What a route gets from the bridge: the iii client and the invocation it serves.

FastAPI::

    @app.get("/orders/{id}")
    async def order(id: int, client: IIIClient, inv: Invocation):
        total = await client.trigger_async({"function_id": "orders::total", "payload": {"id": id}})
        return {"total": total, "via_engine": inv.via_engine}

Starlette (or anything holding a scope): ``get_client(request)``, ``get_invocation(request)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection

from iii import III

if TYPE_CHECKING:
    from .plugin import IIIBridge

__all__ = [
    "IIIClient",
    "Invocation",
    "InvocationInfo",
    "bridge_of",
    "get_client",
    "get_invocation",
]


@dataclass(frozen=True)
class InvocationInfo:
    """The invocation a request is served for.

    ``via_engine``: the request came through the engine's http trigger (``False`` for a
    request straight to the server, whose ids are then ``None``). ``function_id``,
    ``invocation_id``, ``worker_id``: of the engine invocation; ``route``: the trigger's
    ``api_path``; ``traceparent`` / ``baggage``: W3C trace context (the invocation's, or the
    direct request's headers).
    """

    via_engine: bool
    function_id: str | None = None
    invocation_id: str | None = None
    traceparent: str | None = None
    baggage: str | None = None
    worker_id: str | None = None
    route: str | None = None

    @property
    def trace_id(self) -> str | None:
        """32 hex digits from ``traceparent``, or ``None``."""
        parts = (self.traceparent or "").split("-")
        return parts[1] if len(parts) == 4 else None

    @property
    def parent_span_id(self) -> str | None:
        """16 hex digits from ``traceparent``, or ``None``."""
        parts = (self.traceparent or "").split("-")
        return parts[2] if len(parts) == 4 else None


def bridge_of(conn: HTTPConnection | Any) -> IIIBridge:
    """The :class:`IIIBridge` serving a request (``request`` or a raw ``scope``).

    Raises ``RuntimeError`` when the app is not bridged (no ``IIIBridge`` / ``IIIMiddleware``).
    """
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    bridge = scope.get("iii_bridge") if isinstance(scope, dict) else None
    if bridge is None:
        raise RuntimeError(
            "this request did not pass through the iii bridge: wrap the app with "
            "IIIBridge(app) or add IIIMiddleware"
        )
    return bridge  # type: ignore[no-any-return]


def get_client(request: HTTPConnection) -> III:
    """The bridge's connected :class:`iii.III` client (a FastAPI dependency).

    Raises ``RuntimeError`` when the bridge has not started (lifespan not run or failed).
    """
    return bridge_of(request).client


def get_invocation(request: HTTPConnection) -> InvocationInfo:
    """The :class:`InvocationInfo` of this request (a FastAPI dependency); for a direct request
    ``via_engine`` is ``False`` and the trace context comes from its headers."""
    info = request.scope.get("iii_invocation")
    if isinstance(info, InvocationInfo):
        return info
    headers = request.headers
    return InvocationInfo(
        via_engine=False, traceparent=headers.get("traceparent"), baggage=headers.get("baggage")
    )


# FastAPI runs a plain ``def`` dependency in its thread pool: a thread hop per request (on the
# bridge bench ~100 µs and a busy pool of idle threads). These resolve on the event loop.
async def _client(request: HTTPConnection) -> III:
    return get_client(request)


async def _invocation(request: HTTPConnection) -> InvocationInfo:
    return get_invocation(request)


IIIClient = Annotated[III, Depends(_client)]
"""A route parameter ``client: IIIClient`` receives the bridge's client."""

Invocation = Annotated[InvocationInfo, Depends(_invocation)]
"""A route parameter ``inv: Invocation`` receives the :class:`InvocationInfo`."""
