"""The ``iii-asgi`` command line, in uvicorn's idiom: a thin layer over :class:`EngineConfig`.

::

    iii-asgi engine --host 127.0.0.1 --port 49134 --http-port 3111
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

import click

from .engine import Engine, EngineConfig

__all__ = ["main"]


@click.group()
@click.version_option(package_name="iii-asgi")
def main() -> None:
    """iii-asgi: the iii Python SDK's ASGI side."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", default=49134, show_default=True, type=int, help="Worker port (0: any).")
@click.option(
    "--ws",
    default=EngineConfig.ws,
    show_default=True,
    type=click.Choice(["websockets", "websockets-sansio", "wsproto"]),
    help="uvicorn WebSocket implementation.",
)
@click.option("--log-level", default="warning", show_default=True, help="uvicorn log level.")
@click.option(
    "--registration-grace-ms",
    default=5000,
    show_default=True,
    type=int,
    help="Wait for engine::workers::register before fixing a namespace (ms).",
)
@click.option(
    "--http-host", default="127.0.0.1", show_default=True, help="HTTP trigger server address."
)
@click.option(
    "--http-port",
    default="3111",
    show_default=True,
    help="HTTP trigger server port (0: any; 'off': no HTTP server).",
)
@click.option(
    "--http-timeout-ms",
    default=30000,
    show_default=True,
    type=int,
    help="HTTP request timeout up to the response head (ms).",
)
@click.option(
    "--dev",
    is_flag=True,
    help="Local development: HTTP-invoked functions may use http:// and loopback/private hosts.",
)
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Keep state, streams and queued messages in DIR/iii.sqlite3 (default: in memory).",
)
def engine(
    host: str,
    port: int,
    ws: str,
    log_level: str,
    registration_grace_ms: int,
    http_host: str,
    http_port: str,
    http_timeout_ms: int,
    dev: bool,
    data_dir: str | None,
) -> None:
    """Run the embedded iii engine until SIGINT/SIGTERM."""
    if http_port.lower() in ("off", "none"):
        http: int | None = None
    elif http_port.isdigit():
        http = int(http_port)
    else:
        raise click.BadParameter("a port number, 0 or 'off'", param_hint="--http-port")
    config = EngineConfig(
        host=host,
        port=port,
        ws=ws,
        log_level=log_level,
        registration_grace_ms=registration_grace_ms,
        http_host=http_host,
        http_port=http,
        http_default_timeout_ms=http_timeout_ms,
        local_development=dev,
        data_dir=data_dir,
    )
    _run(_serve(Engine(config)))


async def _serve(engine: Engine) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    click.echo(f"iii engine listening on {engine.url}", err=False)
    if engine.http_port is not None:
        click.echo(f"iii HTTP triggers on {engine.http_url}", err=False)
    try:
        await stop.wait()
    finally:
        await engine.stop()
        click.echo("iii engine stopped")


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(coro)
        return
    uvloop.run(coro)
