"""HTTP types (protocol.md §4, §5.4; sdk_surface.md §1h, §3.7; seeds 003 and 004).

Two unrelated uses of HTTP meet here:

- **HTTP-invoked functions**: ``register_function(id, HttpInvocationConfig(url=...))`` makes the
  engine call ``url`` for every invocation instead of this worker. Auth secrets never leave the
  engine: the ``*_key`` fields name environment variables of the engine process.
- **Functions bound to HTTP triggers**: the engine's HTTP server invokes them with a request
  payload (:class:`HttpRequest`, or :class:`StreamRequest` through :func:`http`); they answer
  with a buffered :class:`HttpResponse` (or :class:`ApiResponse`), or stream through a
  :class:`StreamResponse` and return ``None``.

The engine reads only the snake_case keys ``status_code`` / ``headers`` / ``body`` of a returned
result. Every response model here serialises to exactly those keys, whatever the input spelling.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_serializer

from .channels import ChannelReader, ChannelWriter, WritableStream

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "HttpAuthApiKey",
    "HttpAuthBearer",
    "HttpAuthConfig",
    "HttpAuthHmac",
    "HttpInvocationConfig",
    "HttpMethod",
    "HttpRequest",
    "HttpResponse",
    "InternalHttpRequest",
    "StreamRequest",
    "StreamResponse",
    "http",
]

TBody = TypeVar("TBody")

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
"""Methods of an HTTP-invoked function (the HTTP trigger itself also knows HEAD/OPTIONS)."""


# -- HTTP-invoked functions (protocol.md §4) ------------------------------------------------------


class HttpAuthBearer(BaseModel):
    """``Authorization: Bearer <value of env var token_key>``."""

    type: Literal["bearer"] = "bearer"
    token_key: str


class HttpAuthHmac(BaseModel):
    """``x-iii-signature: sha256=<hex>`` signed with the env var ``secret_key`` (§4.2)."""

    type: Literal["hmac"] = "hmac"
    secret_key: str


class HttpAuthApiKey(BaseModel):
    """``<header>: <value of env var value_key>``."""

    type: Literal["api_key"] = "api_key"
    header: str
    value_key: str


HttpAuthConfig = HttpAuthBearer | HttpAuthHmac | HttpAuthApiKey
"""Authentication of an HTTP-invoked function: bearer, HMAC or API key."""


class HttpInvocationConfig(BaseModel):
    """An HTTP-invoked function: the engine sends each invocation to ``url`` (protocol.md §4).

    ``method`` defaults to POST; ``timeout_ms`` to the engine's 30 000 ms; ``headers`` are added
    to every request.
    """

    url: str
    method: HttpMethod = "POST"
    timeout_ms: int | None = None
    headers: dict[str, str] | None = None
    auth: HttpAuthConfig | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``registerfunction.invocation`` object (§2.0), ``None`` fields left out."""
        return self.model_dump(exclude_none=True)


# -- functions bound to HTTP triggers (protocol.md §5.4) ------------------------------------------


class HttpRequest(BaseModel, Generic[TBody]):
    """A buffered HTTP request as the engine's HTTP trigger delivers it.

    ``HttpRequest[Order].model_validate(data)`` also validates the parsed ``body``. Keys the
    engine adds beyond these (``request_body``, ``response``) are ignored.

    >>> req = HttpRequest.model_validate(data)
    >>> req.method, req.path_params["id"], req.query_params.get("page")
    """

    model_config = ConfigDict(extra="ignore")

    path_params: dict[str, str] = Field(default_factory=dict)
    query_params: dict[str, str | list[str]] = Field(default_factory=dict)
    body: TBody | None = None
    headers: dict[str, str | list[str]] = Field(default_factory=dict)
    method: str = "GET"
    path: str | None = None
    trigger: dict[str, Any] | None = None


class HttpResponse(BaseModel, Generic[TBody]):
    """A buffered HTTP response; return it from the handler.

    ``status_code`` is also accepted as ``statusCode`` on input, but always serialises as
    ``status_code`` (the only spelling the engine reads), with or without ``by_alias``.

    >>> return HttpResponse(status_code=201, body={"id": 7}, headers={"x-id": "7"})
    """

    model_config = ConfigDict(populate_by_name=True)

    status_code: int = Field(
        default=200, validation_alias=AliasChoices("status_code", "statusCode")
    )
    body: TBody | None = None
    headers: dict[str, str] = Field(default_factory=dict)


@dataclass
class StreamRequest:
    """A streaming HTTP request (:func:`http`): the request metadata and ``request_body``, a
    :class:`ChannelReader` of the raw body bytes (``await req.request_body.read_all()`` or
    ``async for chunk in req.request_body``)."""

    path_params: dict[str, str]
    query_params: dict[str, str | list[str]]
    body: Any
    headers: dict[str, str | list[str]]
    method: str
    request_body: ChannelReader
    path: str | None = None
    trigger: dict[str, Any] | None = field(default=None)


@dataclass
class InternalHttpRequest:
    """The HTTP trigger's payload once the SDK made its channel refs live (0.25
    ``iii.internal``): :func:`http` also accepts one instead of the dict."""

    path_params: dict[str, str]
    query_params: dict[str, str | list[str]]
    body: Any
    headers: dict[str, str | list[str]]
    method: str
    response: ChannelWriter
    request_body: ChannelReader


class StreamResponse:
    """A streaming HTTP response on the response channel (protocol.md §5.4).

    Control messages are text frames; body bytes are binary frames::

        await res.status(201)
        await res.headers({"content-type": "text/plain"})
        await res.writer.write(b"chunk")
        await res.close()
    """

    def __init__(self, writer: ChannelWriter) -> None:
        self._writer = writer

    @property
    def writer(self) -> ChannelWriter:
        """The response channel's writer: ``await res.writer.write(bytes)`` sends body bytes."""
        return self._writer

    @property
    def stream(self) -> WritableStream:
        """The writer's Node-style view: ``res.stream.write(b"...")``, ``res.stream.end()``."""
        return self._writer.stream

    async def status(self, status_code: int) -> None:
        """Send ``{"type":"set_status","status_code":N}``; before any body bytes."""
        message = {"type": "set_status", "status_code": status_code}
        await self._writer.send_message_async(json.dumps(message, separators=(",", ":")))

    async def headers(self, headers: Mapping[str, str]) -> None:
        """Send ``{"type":"set_headers","headers":{...}}``; before any body bytes."""
        message = {"type": "set_headers", "headers": dict(headers)}
        await self._writer.send_message_async(json.dumps(message, separators=(",", ":")))

    async def close_async(self) -> None:
        """End the response body (closes the channel)."""
        await self._writer.close_async()

    def close(self) -> Awaitable[None] | None:
        """End the response body; awaitable inside a loop, blocking outside one."""
        return self._writer.close()


#: What an :func:`http` callback may return: ``None`` when it streamed through ``res``.
HttpCallback = Callable[[StreamRequest, StreamResponse], Awaitable[Any]]


def http(callback: HttpCallback) -> Callable[[Any], Awaitable[Any]]:
    """Wrap ``async callback(req: StreamRequest, res: StreamResponse)`` as a function handler.

    The engine's HTTP trigger delivers a dict whose ``request_body`` and ``response`` the SDK
    has already turned into a live :class:`ChannelReader` / :class:`ChannelWriter`. The returned
    async handler builds the :class:`StreamRequest` / :class:`StreamResponse` pair and awaits
    the callback. If the callback returns a response (:class:`HttpResponse`,
    :class:`ApiResponse` or a dict) it is the buffered result; ``None`` means the response was
    streamed on ``res``.

    >>> async def download(req: StreamRequest, res: StreamResponse) -> None:
    ...     await res.status(200)
    ...     await res.writer.write(b"hello")
    ...     await res.close()
    >>> client.register_function("files::download", http(download))

    Raises ``ValueError`` naming the missing key when the payload lacks ``request_body`` or
    ``response`` (i.e. the function was not invoked by an HTTP trigger), and ``TypeError``
    when the payload is not a dict or those values are not live channel ends.
    """

    async def handler(data: Any) -> Any:
        req, res = _stream_pair(data)
        return await callback(req, res)

    handler.__name__ = getattr(callback, "__name__", "http_handler")
    handler.__qualname__ = getattr(callback, "__qualname__", handler.__name__)
    handler.__doc__ = callback.__doc__
    return handler


def _stream_pair(data: Any) -> tuple[StreamRequest, StreamResponse]:
    if isinstance(data, InternalHttpRequest):
        data = vars(data)
    if not isinstance(data, Mapping):
        raise TypeError(
            f"http() handler expects the HTTP trigger's request dict, got {type(data).__name__}"
        )
    for key, cls in (("request_body", ChannelReader), ("response", ChannelWriter)):
        if key not in data:
            raise ValueError(
                f"http() handler payload has no {key!r} key: the function was not invoked by "
                "an HTTP trigger (expected request_body and response channel refs)"
            )
        if not isinstance(data[key], cls):
            raise TypeError(
                f"http() handler payload key {key!r} is {type(data[key]).__name__}, "
                f"expected a live {cls.__name__}"
            )
    request = StreamRequest(
        path_params=data.get("path_params") or {},
        query_params=data.get("query_params") or {},
        body=data.get("body"),
        headers=data.get("headers") or {},
        method=data.get("method") or "GET",
        request_body=data["request_body"],
        path=data.get("path"),
        trigger=data.get("trigger"),
    )
    return request, StreamResponse(data["response"])


# -- seed 004 names -------------------------------------------------------------------------------


class ApiRequest(BaseModel):
    """The HTTP trigger's request payload (seed 004): ``ApiRequest(**data)``.

    Like :class:`HttpRequest` plus ``request_body``, the live :class:`ChannelReader` of the raw
    body (``None`` when the payload carried none). Other keys (``response``, ``trigger``, ...)
    are ignored.
    """

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    path_params: dict[str, str] = Field(default_factory=dict)
    query_params: dict[str, str | list[str]] = Field(default_factory=dict)
    body: Any = None
    headers: dict[str, str | list[str]] = Field(default_factory=dict)
    method: str = "GET"
    request_body: ChannelReader | None = None


class ApiResponse(BaseModel):
    """A buffered HTTP response (seed 004): ``ApiResponse(status=200, data={...})``.

    Serialises to what the engine reads, ``{"status_code", "body", "headers"}``: return it from
    a handler as is, or use :meth:`to_result`. ``statusCode`` is accepted for ``status``.
    """

    model_config = ConfigDict(populate_by_name=True)

    status: int = Field(validation_alias=AliasChoices("status", "statusCode", "status_code"))
    data: Any = None
    headers: dict[str, str] | None = None

    def to_result(self) -> dict[str, Any]:
        """``{"status_code": status, "body": data, "headers": headers or {}}``."""
        return {"status_code": self.status, "body": self.data, "headers": dict(self.headers or {})}

    @model_serializer(mode="plain")
    def _serialize(self) -> dict[str, Any]:
        return self.to_result()
