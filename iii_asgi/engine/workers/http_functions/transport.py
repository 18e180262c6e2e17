"""An httpx transport that sends a small HTTP/1.1 request in one socket write.

httpcore writes a request as h11 produces it: the head in one ``write()``, then each body chunk,
so a small request leaves in two TCP segments. The real engine (hyper) sends a small request
whole, and some receivers read only the first segment (one ``read()``, then parse). Here the
connection's network stream keeps what httpcore writes until it reads the response, or until
:data:`FLUSH_BYTES` (64 KiB) are waiting, then writes it at once. A request whose body is one
piece (an HTTP-invoked function's always is) goes out in one ``write()``; a streamed body leaves
each time 64 KiB have gathered. A write failure found when reading is ignored, as httpcore ignores
one while sending, so that a response the server sent before closing is still read.

Only public APIs are used: :class:`httpcore.AsyncConnectionPool` with a network backend
wrapping :class:`httpcore.AnyIOBackend`, and :class:`httpx.AsyncBaseTransport`; httpcore's
exceptions become httpx's exceptions of the same name, as in ``httpx.AsyncHTTPTransport``.

Example::

    client = httpx.AsyncClient(transport=OneWriteTransport(max_keepalive_connections=50))
"""

from __future__ import annotations

import contextlib
import ssl
import typing
from collections.abc import AsyncIterator, Iterable, Iterator

import httpcore
import httpx

__all__ = ["FLUSH_BYTES", "OneWriteBackend", "OneWriteStream", "OneWriteTransport"]

#: Bytes kept before a write goes out without waiting for the read.
FLUSH_BYTES = 64 * 1024
_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


class OneWriteStream(httpcore.AsyncNetworkStream):
    """A network stream whose writes wait for the next read (see the module docstring)."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._size = 0
        self._timeout: float | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        self._pending.append(buffer)
        self._size += len(buffer)
        self._timeout = timeout
        if self._size >= FLUSH_BYTES:
            await self._flush()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with contextlib.suppress(httpcore.WriteError):  # read what the server answered anyway
            await self._flush()
        return await self._stream.read(max_bytes, timeout)

    async def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        await self._stream.write(data, self._timeout)

    async def aclose(self) -> None:
        self._pending.clear()
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        await self._flush()
        return OneWriteStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class OneWriteBackend(httpcore.AsyncNetworkBackend):
    """Opens connections with ``backend`` (default :class:`httpcore.AnyIOBackend`) and wraps
    each in a :class:`OneWriteStream`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return OneWriteStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return OneWriteStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """Raise httpcore's exceptions as httpx's of the same name (``ReadTimeout``...)."""
    try:
        yield
    except _HTTPCORE_ERRORS as exc:
        mapped = getattr(httpx, type(exc).__name__, httpx.TransportError)
        raise mapped(str(exc)) from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class OneWriteTransport(httpx.AsyncBaseTransport):
    """An HTTP/1.1 transport (no proxies, no HTTP/2) whose connections send each small request
    in one write. ``max_keepalive_connections`` idle connections are kept (per pool, as httpx's
    ``Limits``) for ``keepalive_expiry`` seconds; ``ssl_context`` defaults to httpx's
    (certificates verified); ``backend`` opens the connections (:class:`OneWriteBackend`)."""

    def __init__(
        self,
        *,
        max_keepalive_connections: int | None = 20,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=None,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            network_backend=OneWriteBackend(backend),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, typing.AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
