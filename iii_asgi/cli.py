"""The ``iii-asgi`` command line, in uvicorn's idiom: a thin layer over :class:`EngineConfig`
and :mod:`iii_asgi.runner`.

::

    iii-asgi engine --host 127.0.0.1 --port 49134 --http-port 3111
    iii-asgi engine --rbac-port 49135 --auth-function auth::check --expose-function 'api::*'
    iii-asgi run examples.todo_app:app            # the app, bridged, on the embedded engine
    iii-asgi run mymodule:app --engine ws://engine:49134 --workers 4
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .engine import Engine, EngineConfig
from .engine.config.engine import DEFAULT_SECRET_ENV
from .engine.config.file import ConfigError, load_config
from .engine.config.worker_manager import FunctionFilter, RbacConfig, WorkerListenerConfig
from .engine.gc_tuning import settle_after_startup
from .runner import RunOptions, run_coroutine
from .runner import run as run_app

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def _optional_port(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """A port number, ``0`` (any free port) or ``off`` / ``none`` (no server)."""
    if value.lower() in ("off", "none"):
        return None
    if value.isdigit():
        return int(value)
    raise click.BadParameter("a port number, 0 or 'off'")


def _port_option(flag: str, default: str, help: str) -> Callable[[F], F]:
    """An optional server's port option (``--http-port 0``, ``--stream-port off``...)."""
    return click.option(
        flag, default=default, show_default=True, callback=_optional_port, help=help
    )


def _secret_env(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    """The ``--secret-env`` globs; none given: the default; ``''`` alone: no variable."""
    if not value:
        return list(DEFAULT_SECRET_ENV)
    return [pattern for pattern in value if pattern]


def _security_options(command: F) -> F:
    """The options ``iii-asgi engine`` and ``iii-asgi run`` share (docs/security.md)."""
    options = [
        click.option(
            "--dev",
            is_flag=True,
            help="Local development: HTTP-invoked functions may use http:// and loopback, "
            "private and metadata addresses (169.254.169.254).",
        ),
        click.option(
            "--secret-env",
            multiple=True,
            callback=_secret_env,
            metavar="GLOB",
            help="Environment variables HTTP-invoked functions may name as secrets "
            "(repeatable; default III_SECRET_*; '' allows none; '*' allows all).",
        ),
        click.option(
            "--allow-telemetry-clear",
            is_flag=True,
            help="Allow engine::traces::clear and engine::logs::clear.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


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
@_port_option("--http-port", "3111", "HTTP trigger server port (0: any; 'off': no HTTP server).")
@click.option(
    "--http-allowed-host",
    "http_allowed_hosts",
    multiple=True,
    callback=lambda ctx, param, value: list(value) or None,
    help="Host header name the HTTP port answers (repeatable; '*.example' for subdomains, "
    "'*' for any); others get 400. Default: loopback names when bound to loopback, else any.",
)
@click.option(
    "--http-timeout-ms",
    default=30000,
    show_default=True,
    type=int,
    help="HTTP request timeout up to the response head (ms).",
)
@_security_options
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Keep state, streams and queued messages in DIR/iii.sqlite3 (default: in memory).",
)
@click.option(
    "--stream-host", default="127.0.0.1", show_default=True, help="Stream WebSocket address."
)
@_port_option("--stream-port", "3112", "Client-facing stream WebSocket port (0: any; 'off': none).")
@_port_option("--console-port", "3113", "Dev console port (0: any; 'off': none). docs/console.md")
@click.option(
    "--tracing/--no-tracing",
    default=None,
    help="Engine spans (HTTP SERVER, invoke) into the /otel store (docs/observability.md). "
    "Default: on with the console.",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Browser origin (https://app.example, or '*') allowed to open the engine's WebSockets "
    "(every worker listener and the stream socket); others get 403. Repeatable.",
)
@click.option(
    "--handshake-timeout-ms",
    default=None,
    type=click.IntRange(min=1),
    help="Close worker connections whose upgrade or authentication takes longer "
    "(ms; default 10000).",
)
@click.option(
    "--rbac-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Open a further worker listener for untrusted workers (RBAC, docs/rbac.md).",
)
@click.option("--rbac-host", default=None, help="Its bind address (default: --host).")
@click.option(
    "--auth-function", default=None, metavar="ID", help="RBAC listener: the auth function."
)
@click.option(
    "--expose-function",
    "expose_functions",
    multiple=True,
    metavar="GLOB",
    help="RBAC listener: functions its workers may call ('*' is a wildcard). Repeatable.",
)
@click.option(
    "--middleware-function", default=None, metavar="ID", help="RBAC listener: middleware."
)
@click.option(
    "--on-function-registration",
    default=None,
    metavar="ID",
    help="RBAC listener: hook for registerfunction.",
)
@click.option(
    "--on-trigger-registration",
    default=None,
    metavar="ID",
    help="RBAC listener: hook for registertrigger.",
)
@click.option(
    "--on-trigger-type-registration",
    default=None,
    metavar="ID",
    help="RBAC listener: hook for registertriggertype.",
)
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Engine config file (YAML, the iii engine's shape); flags given explicitly win.",
)
@click.pass_context
def engine(ctx: click.Context, /, config_file: str | None, **options: Any) -> None:
    """Run the embedded iii engine until SIGINT/SIGTERM."""
    listener_options = {name: options.pop(name) for name in _LISTENER_OPTIONS}
    if config_file is not None:
        try:
            config = load_config(config_file)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--config") from None
        explicit = {
            name: value
            for name, value in options.items()
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        }
    else:
        config, explicit = EngineConfig(), options
    explicit["console_port"] = options["console_port"]  # no config file names a console
    tracing = explicit.pop("tracing", None)
    for name, value in explicit.items():
        setattr(config, _FIELDS.get(name, name), value)
    config.tracing = with_console_tracing(tracing, config)
    _apply_listener_options(config, **listener_options)
    run_coroutine(_serve(Engine(config)))


def with_console_tracing(flag: bool | None, config: EngineConfig) -> bool:
    """``--tracing`` / ``--no-tracing`` when given; else on when the console is served (its
    waterfalls show the engine's spans), else the config's own setting."""
    if flag is not None:
        return flag
    return config.tracing or config.console_port is not None


#: CLI option name -> EngineConfig field, where they differ.
_FIELDS = {
    "http_timeout_ms": "http_default_timeout_ms",
    "dev": "local_development",
    "secret_env": "http_functions_secret_env",
    "allow_telemetry_clear": "telemetry_clear",
}

#: Options that shape the worker listeners rather than set one EngineConfig field.
_LISTENER_OPTIONS = (
    "allowed_origins",
    "handshake_timeout_ms",
    "rbac_port",
    "rbac_host",
    "auth_function",
    "expose_functions",
    "middleware_function",
    "on_function_registration",
    "on_trigger_registration",
    "on_trigger_type_registration",
)


def _apply_listener_options(
    config: EngineConfig,
    *,
    allowed_origins: tuple[str, ...],
    handshake_timeout_ms: int | None,
    rbac_port: int | None,
    rbac_host: str | None,
    auth_function: str | None,
    expose_functions: tuple[str, ...],
    middleware_function: str | None,
    on_function_registration: str | None,
    on_trigger_registration: str | None,
    on_trigger_type_registration: str | None,
) -> None:
    """``--rbac-port`` and its options add one RBAC listener; ``--allowed-origin`` and
    ``--handshake-timeout-ms`` (when given) apply to every worker listener (and the origins to
    the stream socket too)."""
    rbac_only = {
        "--rbac-host": rbac_host,
        "--auth-function": auth_function,
        "--expose-function": expose_functions,
        "--middleware-function": middleware_function,
        "--on-function-registration": on_function_registration,
        "--on-trigger-registration": on_trigger_registration,
        "--on-trigger-type-registration": on_trigger_type_registration,
    }
    if rbac_port is None:
        given = [flag for flag, value in rbac_only.items() if value]
        if given:
            raise click.BadParameter(f"{given[0]} needs --rbac-port", param_hint=given[0])
    else:
        config.worker_listeners.append(
            WorkerListenerConfig(
                port=rbac_port,
                host=rbac_host or config.host,
                middleware_function_id=middleware_function,
                rbac=RbacConfig(
                    auth_function_id=auth_function,
                    expose_functions=[FunctionFilter(match=glob) for glob in expose_functions],
                    on_function_registration_function_id=on_function_registration,
                    on_trigger_registration_function_id=on_trigger_registration,
                    on_trigger_type_registration_function_id=on_trigger_type_registration,
                ),
                name="rbac",
            )
        )
    if handshake_timeout_ms is not None:
        config.handshake_timeout_ms = handshake_timeout_ms
        for listener in config.worker_listeners:
            listener.handshake_timeout_ms = handshake_timeout_ms
    if allowed_origins:
        origins = list(allowed_origins)
        config.allowed_origins = config.stream_allowed_origins = origins
        for listener in config.worker_listeners:
            listener.allowed_origins = origins


@main.command()
@click.argument("app")
@click.option(
    "--engine",
    "engine_url",
    default=None,
    help="Engine URL (ws://host:port). Default: $III_URL, else an embedded engine in this process.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="App bind address.")
@click.option("--port", default=8000, show_default=True, type=int, help="App port (0: any).")
@click.option(
    "--reload",
    is_flag=True,
    help="Restart the app on code changes (the embedded engine keeps running).",
)
@click.option("--reload-dir", "reload_dirs", multiple=True, help="Directories to watch.")
@click.option("--workers", default=1, show_default=True, type=int, help="App processes.")
@click.option("--factory", is_flag=True, help="APP is a factory: call it to get the app.")
@click.option(
    "--app-dir", default=".", show_default=True, help="Directory added to sys.path for APP."
)
@click.option("--log-level", default="info", show_default=True, help="uvicorn log level.")
@click.option(
    "--engine-host", default="127.0.0.1", show_default=True, help="Embedded engine address."
)
@click.option(
    "--engine-port",
    default=49134,
    show_default=True,
    type=int,
    help="Embedded engine worker port (0: any).",
)
@_port_option(
    "--engine-http-port", "3111", "Embedded engine HTTP trigger port (0: any; 'off': none)."
)
@_port_option(
    "--engine-stream-port", "3112", "Embedded engine stream WebSocket port (0: any; 'off': none)."
)
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Embedded engine: keep state, streams and queues in DIR (default: in memory).",
)
@_security_options
@_port_option("--console-port", "3113", "Embedded engine dev console port (0: any; 'off': none).")
@click.option(
    "--tracing/--no-tracing",
    default=None,
    help="Embedded engine spans (HTTP SERVER, invoke). Default: on with the console.",
)
def run(
    app: str,
    engine_url: str | None,
    host: str,
    port: int,
    reload: bool,
    reload_dirs: tuple[str, ...],
    workers: int,
    factory: bool,
    app_dir: str,
    log_level: str,
    engine_host: str,
    engine_port: int,
    engine_http_port: int | None,
    engine_stream_port: int | None,
    data_dir: str | None,
    dev: bool,
    secret_env: list[str],
    allow_telemetry_clear: bool,
    console_port: int | None,
    tracing: bool | None,
) -> None:
    """Run APP (module:attr) under uvicorn, bridged to iii, until SIGINT/SIGTERM.

    With no --engine and no $III_URL an embedded engine starts in this process, with the
    defaults of `iii-asgi engine` (no local-development mode unless --dev); call the app
    through its HTTP trigger port (3111) or directly on --port. APP is bridged with
    iii_asgi.IIIBridge unless it already is (or is an iii_asgi.WorkerApp).
    """
    if workers < 1:
        raise click.BadParameter("at least 1", param_hint="--workers")
    engine = EngineConfig(
        host=engine_host,
        port=engine_port,
        http_host=engine_host,
        http_port=engine_http_port,
        stream_host=engine_host,
        stream_port=engine_stream_port,
        data_dir=data_dir,
        local_development=dev,
        http_functions_secret_env=secret_env,
        telemetry_clear=allow_telemetry_clear,
        console_port=console_port,
    )
    engine.tracing = with_console_tracing(tracing, engine)
    run_app(
        RunOptions(
            app=app,
            engine_url=engine_url,
            host=host,
            port=port,
            reload=reload,
            reload_dirs=list(reload_dirs),
            workers=workers,
            factory=factory,
            app_dir=app_dir,
            log_level=log_level,
            engine=engine,
        )
    )


async def _serve(engine: Engine) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    settle_after_startup()
    click.echo(f"iii engine listening on {engine.url}", err=False)
    for url in engine.worker_urls[1:]:
        click.echo(f"iii worker listener on {url}", err=False)
    if engine.http_port is not None:
        click.echo(f"iii HTTP triggers on {engine.http_url}", err=False)
    if engine.stream_port is not None:
        click.echo(f"iii streams on {engine.stream_url}", err=False)
    console = engine.workers.console if engine.workers is not None else None
    if console is not None and console.port is not None:
        click.echo(f"iii console on {console.login_url}", err=False)
    try:
        await stop.wait()
    finally:
        await engine.stop()
        click.echo("iii engine stopped")
