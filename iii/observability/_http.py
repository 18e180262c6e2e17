"""CLIENT spans around outgoing HTTP: ``execute_traced_request`` (httpx, seed 003) and the
``urllib.request`` instrumentation behind ``OtelConfig.fetch_instrumentation_enabled``.

Both inject W3C ``traceparent`` (and ``baggage``) into the request headers and record the HTTP
semantic-convention attributes ``http.request.method``, ``url.full``, ``server.address``,
``server.port`` and ``http.response.status_code``; a status >= 400 sets ERROR, a network error
is recorded as an exception (and ``error.type``) before it propagates.
"""

from __future__ import annotations

import functools
import os
import re
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._state import state

if TYPE_CHECKING:
    import httpx

__all__ = ["execute_traced_request", "instrument_urllib"]


def _ignored_urls() -> list[re.Pattern[str]]:
    raw = os.environ.get("OTEL_FETCH_IGNORE_URLS", "")
    return [re.compile(p.strip()) for p in raw.split(",") if p.strip()]


@contextmanager
def _client_span(method: str, url: str, headers: Any) -> Iterator[trace.Span]:
    """A CLIENT span named after ``method``; injects the context into ``headers`` (a mutable
    mapping or a ``urllib`` request)."""
    tracer = state.tracer
    if tracer is None:
        yield trace.INVALID_SPAN
        return
    parts = urlsplit(url)
    attributes: dict[str, Any] = {"http.request.method": method, "url.full": url}
    if parts.hostname:
        attributes["server.address"] = parts.hostname
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port:
        attributes["server.port"] = port
    with tracer.start_as_current_span(
        method, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        for key, value in carrier.items():
            if isinstance(headers, urllib.request.Request):
                headers.add_unredirected_header(key.capitalize(), value)
            else:
                headers[key] = value
        try:
            yield span
        except BaseException as exc:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, str(exc) or type(exc).__name__))
            raise


def _record_status(span: trace.Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))


async def _execute_async(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    with _client_span(request.method, str(request.url), request.headers) as span:
        response = await client.send(request)
        _record_status(span, response.status_code)
        return response


def execute_traced_request(client: Any, request: Any) -> Any:
    """Send ``request`` (an ``httpx.Request``) with ``client`` inside an OTel CLIENT span.

    With an ``httpx.AsyncClient`` it returns an awaitable of the ``httpx.Response``
    (``await execute_traced_request(client, request)``); with an ``httpx.Client`` the response
    itself. W3C ``traceparent``/``baggage`` are added to the request headers. A status >= 400
    sets ERROR status (the response is still returned); a network error is recorded on the
    span and raised. Without :func:`init_otel` the request is sent untraced.
    """
    import httpx

    if isinstance(client, httpx.AsyncClient):
        return _execute_async(client, request)
    if not isinstance(client, httpx.Client):
        raise TypeError(f"expected an httpx client, not {type(client).__name__}")
    with _client_span(request.method, str(request.url), request.headers) as span:
        response = client.send(request)
        _record_status(span, response.status_code)
        return response


def instrument_urllib(skip: Callable[[str], bool]) -> Callable[[], None]:
    """Wrap ``urllib.request.OpenerDirector.open`` in CLIENT spans; returns the undo function.

    ``skip(url)`` (and ``OTEL_FETCH_IGNORE_URLS``, comma-separated regular expressions)
    exempts URLs.
    """
    original = urllib.request.OpenerDirector.open
    ignored = _ignored_urls()

    @functools.wraps(original)
    def traced_open(self: Any, fullurl: Any, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        request = (
            fullurl
            if isinstance(fullurl, urllib.request.Request)
            else urllib.request.Request(fullurl)
        )
        url = request.full_url
        if state.tracer is None or skip(url) or any(p.search(url) for p in ignored):
            return original(self, fullurl, data, *args, **kwargs)
        if data is not None:
            request.data = data  # what OpenerDirector.open does with it
        with _client_span(request.get_method(), url, request) as span:
            try:
                response = original(self, request, None, *args, **kwargs)
            except HTTPError as exc:
                _record_status(span, exc.code)
                raise
            _record_status(span, response.status)
            return response

    urllib.request.OpenerDirector.open = traced_open  # type: ignore[method-assign]

    def undo() -> None:
        urllib.request.OpenerDirector.open = original  # type: ignore[method-assign]

    return undo
