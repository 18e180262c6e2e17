"""Real uvicorn servers for the bridge tests, and direct-vs-engine comparison helpers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from iii_asgi.engine import EngineThread

#: Hop-by-hop and per-hop framing headers, left out of direct-vs-engine comparisons.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "date",
        "server",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "access-control-allow-origin",
        "access-control-expose-headers",
        "vary",
    }
)


class UvicornThread:
    """``app`` served by uvicorn on 127.0.0.1, an ephemeral port, in a background thread.

    ``start()`` returns once the server is up, or raises ``RuntimeError`` with the reason when
    the startup failed (e.g. the lifespan startup failed).
    """

    def __init__(self, app: Any, **options: Any) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_level="warning",
            loop="asyncio",
            **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve())
        except BaseException as exc:  # SystemExit on startup failure in some versions
            self.error = exc
        finally:
            self.finished.set()

    def start(self, timeout: float = 20.0) -> UvicornThread:
        self.thread.start()
        while not self.server.started:
            if self.finished.wait(0.01):
                raise RuntimeError(f"uvicorn did not start: {self.error!r}")
            timeout -= 0.01
            if timeout <= 0:
                raise RuntimeError("uvicorn did not start in time")
        return self

    @property
    def url(self) -> str:
        sockets = self.server.servers[0].sockets
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.finished.wait(timeout)
        self.thread.join(timeout)


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[UvicornThread]:
    server = UvicornThread(app, **options).start()
    try:
        yield server
    finally:
        server.stop()


def wait_routes(
    engine: EngineThread, count: int | Any, prefix: str | None = None, timeout: float = 10.0
) -> None:
    """Block until the engine mounts ``count`` http routes (only those whose function id
    starts with ``prefix``, when given: tests sharing an engine bridge several apps).
    ``count`` may be a started ``IIIBridge``: every trigger of its table (with ``prefix``)."""
    import time

    if not isinstance(count, int):
        count = sum(
            len(row.triggers)
            for row in count.routes
            if prefix is None or row.function_id.startswith(prefix)
        )

    app = engine.engine.http_app
    assert app is not None

    def mounted() -> int:
        routes = list(app.router.by_trigger.values())
        return sum(1 for r in routes if prefix is None or r.function_id.startswith(prefix))

    deadline = time.monotonic() + timeout
    while mounted() != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{mounted()} routes mounted, expected {count}")
        time.sleep(0.01)


def bridge_in(app: Any) -> Any:
    """The ``IIIBridge`` of a started Starlette app that added ``IIIMiddleware`` itself."""
    from iii_asgi import IIIMiddleware

    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, IIIMiddleware):
        layer = getattr(layer, "app", None)
    assert layer is not None, "no IIIMiddleware in the app's middleware stack"
    return layer.bridge


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers minus hop-by-hop (sorted, multi-valued kept) and body."""
    headers = sorted(
        (k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP
    )
    return response.status_code, headers, response.content


def both(
    direct: str, engine: str, method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The same request sent straight to the app and through the engine."""
    with httpx.Client(timeout=20) as client:
        a = client.request(method, direct + path, **kwargs)
        b = client.request(method, engine + path, **kwargs)
    return a, b
