"""One object with every engine option, in uvicorn's ``Config`` idiom."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iii.protocol import MAX_MESSAGE_SIZE

from .adapters import AdapterConfig
from .queue import QueueConfig
from .worker_manager import RbacConfig, WorkerListenerConfig

__all__ = [
    "DEFAULT_SECRET_ENV",
    "AdapterConfig",
    "CorsConfig",
    "EngineConfig",
    "HttpMiddleware",
    "QueueConfig",
    "RbacConfig",
    "WorkerListenerConfig",
]

#: The environment variables HTTP-invoked functions may name as secrets unless configured
#: otherwise (``EngineConfig.http_functions_secret_env``).
DEFAULT_SECRET_ENV = ("III_SECRET_*",)


@dataclass
class CorsConfig:
    """CORS of the HTTP trigger server (builtins.md §3.11). An empty list means "any".

    Without one (``EngineConfig.http_cors=None``, the default) the server sends no CORS
    headers at all; the real engine is permissive without a ``cors`` block, and
    ``CorsConfig()`` restores that: any origin (``*``), any method, any request header, every
    response header exposed. Credentials are never allowed.

    Example::

        CorsConfig(allowed_origins=["https://app.example"], allowed_methods=["GET", "POST"])
    """

    allowed_origins: list[str] = field(default_factory=list)
    allowed_methods: list[str] = field(default_factory=list)
    allowed_headers: list[str] = field(default_factory=list)
    max_age_s: int | None = None


@dataclass
class HttpMiddleware:
    """A global HTTP middleware function (builtins.md §3.1, §3.10): called in ``default`` before
    any route-level work, in ascending ``priority``; only ``phase="preHandler"`` entries run."""

    function_id: str
    phase: str = "preHandler"
    priority: int = 0


@dataclass
class EngineConfig:
    """Options of the embedded engine. Defaults are the real engine's (protocol.md Appendix A).

    Example::

        config = EngineConfig(host="127.0.0.1", port=0)   # port 0 = an ephemeral port

    Arguments:
        host: bind address.
        port: TCP port of the worker listener (``/``, ``/otel``, ``/ws/channels/{id}``);
            0 picks a free port (read it back from ``Engine.port``).
        handshake_timeout_ms: the main listener closes a connection that has not sent its
            complete WebSocket upgrade request (or finished authenticating) this long after it
            opened (protocol.md §1.1).
        middleware_function_id: the main listener's middleware (protocol.md §8.4); usually
            set on a further listener instead.
        rbac: the main listener's access rules (:class:`RbacConfig`, protocol.md §8); ``None``
            (default): its workers are trusted.
        allowed_origins: browser origins allowed to open WebSockets on the main listener
            (``/``, ``/otel``, channels); an upgrade with any other ``Origin`` header gets 403.
            ``["*"]`` allows every origin. Clients that send no ``Origin`` are not affected.
        worker_listeners: further worker listeners (:class:`WorkerListenerConfig`), each with
            its own address, RBAC, middleware, handshake timeout and origins (builtins.md §13;
            typically an RBAC port 49135 for untrusted workers beside the trusted 49134). See
            docs/rbac.md.
        registration_grace_ms: how long registrations of a connection are buffered waiting
            for ``engine::workers::register`` before its namespace is fixed to ``default`` (§1.5).
        reattach_timeout_s: how long a ``reattach`` waits for the old connection's teardown (§1.9).
        trigger_ack_timeout_s: how long ``engine::register_trigger`` waits for a worker
            provider's ``triggerregistrationresult`` before accepting the binding (§2.11).
        channel_ttl_s: age after which a channel with an end never attached is deleted (§6.4).
        channel_max_bytes: bytes one channel buffers (besides its ``buffer_size`` in frames);
            its writer waits past that (an empty channel takes any one frame).
        channel_budget_bytes: bytes all channels buffer together; each channel's first 64 KiB
            does not count; a writer past it waits until readers drain.
        channel_sweep_interval_s: period of that sweep (§6.4).
        functions_poll_interval_s: period of the ``engine::functions-available`` poll (§5.5).
        outbound_queue_size: frames queued to one worker socket before invocations to it are
            refused with ``WORKER_BACKPRESSURE`` (the real engine's senders wait at 64, §1.6;
            here nothing waits). Other frames may queue up to twice as many; past that the
            worker is not reading and is dropped (Close 1008).
        outbound_queue_bytes: the same bound in bytes (characters of the queued JSON); an
            empty queue always takes one frame.
        max_inflight_invocations: invocations one worker may be executing (routed to it,
            result not back yet); more are refused with ``WORKER_BACKPRESSURE`` at once.
        invocation_timeout_ms: deadline of a worker-to-worker call whose frame names none
            (the official SDK sends none; ours sends its own timeout as ``timeout_ms``).
            Past the deadline the caller gets ``TIMEOUT`` and the executor is told to stop
            (an ``invocationresult`` ``invocation_stopped`` for the id it runs). ``None``
            (default): no deadline, as in the real engine (§3.5).
        max_message_size: largest incoming WebSocket message, in bytes (§1.6: 64 MiB; a
            larger one closes the socket with 1009).
        frame_budget_bytes: bytes the worker listener holds at once across all sockets for
            messages being received (once) or handled (twice: bytes and decoded text) and
            frames queued to sockets; each socket's first MiB does not count
            (:mod:`iii_asgi.engine.core.budget`). A message that does not fit closes its
            socket with 1009; an invocation that does not fit is refused with
            ``FRAME_BUDGET_EXCEEDED``.
        ws: uvicorn WebSocket implementation. ``websockets-sansio`` (default) measured fastest:
            6.1k sequential / 54k pipelined (64 in flight) worker→engine→worker round trips/s,
            against 4.9k / 45k for the deprecated ``websockets``; ``wsproto`` needs the
            ``wsproto`` package.
        log_level: uvicorn log level name.
        timeout_graceful_shutdown_s: how long ``stop()`` waits for open sockets to finish.
        http_host: bind address of the HTTP trigger server (builtins.md §3.1).
        http_port: its TCP port; 0 picks a free port (``Engine.http_url``); ``None`` runs no
            HTTP server (the ``http`` trigger type is then not provided and bindings park).
        http_default_timeout_ms: per-request limit up to the response head (504), and per
            middleware call (504 ``MIDDLEWARE_TIMEOUT``); also the idle limit while streaming.
        http_cors: CORS policy (:class:`CorsConfig`); ``None`` (default) sends no CORS
            headers and leaves ``OPTIONS`` to the routes (issue 12: a web page on another
            origin cannot read the answers).
        http_allowed_hosts: ``Host`` header names the HTTP port answers (DNS-rebinding
            protection); others get 400 ``HOST_NOT_ALLOWED``. Entries are host names or
            addresses without the port (``"app.example"``, ``"*.example"`` for subdomains,
            ``"[::1]"``), compared case-insensitively; ``"*"`` allows any. ``None`` (default):
            when ``http_host`` is a loopback address, ``localhost``, ``*.localhost``,
            ``127.0.0.1``, ``[::1]`` and ``http_host`` itself, any port; otherwise any host.
            A request without ``Host`` (HTTP/1.0) is served.
        http_concurrency_limit: requests handled at once; further ones wait (0 counts as 1).
            A request takes its slot once its body has arrived (docs/engine.md, "Limits").
        http_max_body_bytes: largest request body; larger ones get 413 ``PAYLOAD_TOO_LARGE``.
        http_body_budget_bytes: request body bytes the HTTP port buffers at once, across
            all requests (JSON bodies, and body bytes queued in request channels); a request
            whose bytes would go past it gets 503 ``BODY_BUDGET_EXCEEDED``.
        http_max_header_bytes: largest request head (request line and headers), in bytes;
            past it: 431 ``HEADERS_TOO_LARGE`` and the connection is closed.
        http_max_request_line_bytes: longest request target (URL), in bytes; past it: 414
            ``URI_TOO_LONG`` and the connection is closed.
        http_max_headers: most header lines in one request (hyper's limit in the real
            engine: 100); past it: 431 ``HEADERS_TOO_LARGE``.
        http_header_timeout_ms: time a connection gets to send a complete request head,
            from its first byte (or from the connection for the first request); past it: 408
            ``REQUEST_TIMEOUT`` (a connection that sent nothing is just closed).
        http_body_timeout_ms: longest silence while the engine waits for request body bytes;
            past it: 408 ``REQUEST_TIMEOUT`` (or a close once the response started).
        http_keep_alive_timeout_ms: an idle keep-alive connection is closed after this long
            (uvicorn's ``timeout_keep_alive``).
        http_max_connections: open connections on the HTTP port. At the cap, a new connection
            closes the connection that has been waiting on its client the longest (idle
            keep-alive, or still sending its request: 408), or gets 503
            ``TOO_MANY_CONNECTIONS`` when every connection is busy with the engine. ``None``
            (default): half the soft ``RLIMIT_NOFILE`` (the rest stays for worker sockets
            and files), at most 4096, at least 16.
        http_middleware: global middleware functions (sorted by ``priority``).
        http_functions_enabled: HTTP-invoked functions (protocol.md §4, the
            ``iii-http-functions`` worker); off, their registrations fail with
            ``HTTP_FUNCTIONS_DISABLED``. A config file turns it off unless it lists the worker.
        http_functions_url_allowlist: host globs (``*``, ``?``, ``[...]``) an HTTP-invoked
            function's URL must match (protocol.md §4.3); empty means ``["*"]``.
        http_functions_block_private_ips: refuse URLs whose host is, or resolves to, a
            loopback/private/link-local/... address (§4.3).
        http_functions_require_https: refuse ``http://`` URLs of HTTP-invoked functions.
        http_functions_secret_env: globs (``*``, ``?``, ``[...]``, case-sensitive) of the
            engine's environment variables an HTTP-invoked function's ``token_key`` /
            ``secret_key`` / ``value_key`` may name; any other name is refused at registration
            (``secret_not_allowed``). Default ``["III_SECRET_*"]``; ``[]`` allows none,
            ``["*"]`` every variable (the real engine's behaviour). docs/security.md.
        local_development: development mode (``iii-asgi engine --dev``, ``iii-asgi run
            --dev``): HTTP-invoked functions may use ``http://`` and loopback/private/metadata
            addresses such as 169.254.169.254 (the allowlists still apply).
        stream_host: bind address of the client-facing stream WebSocket (builtins.md §6.4).
        stream_port: its TCP port; 0 picks a free port (``Engine.stream_url``); ``None`` (the
            default for an embedded engine) runs no stream socket; the ``stream::*`` functions
            work either way. The real engine's port is 3112: ``iii-asgi engine`` and a config
            file listing ``iii-stream`` use it.
        stream_auth_function: function called once per stream-socket upgrade (§6.4); its
            ``{"context": ...}`` result is attached to the connection.
        stream_allowed_origins: browser origins allowed to open the stream socket (as
            ``allowed_origins``); others get 403.
        state_triggers_enabled: fan ``state`` triggers out after writes (§4.4).
        state_max_value_bytes: largest JSON-encoded value ``state::set`` accepts
            (``VALUE_TOO_LARGE``); ``None`` means no limit.
        data_dir: directory of the file-backed store (``<data_dir>/iii.sqlite3``, created if
            needed): state, streams and queued messages survive a restart. ``None`` (default)
            keeps everything in memory (:mod:`iii_asgi.engine.storage`).
        tracing: engine spans (a SERVER span per HTTP trigger request, ``invoke <function>``
            per routed traced call) into the telemetry store; off by default, when the engine
            only passes ``traceparent``/``baggage`` through (docs/observability.md).
        span_exporters: OpenTelemetry ``SpanExporter`` objects (e.g. ``OTLPSpanExporter()``)
            that also receive the engine's spans; giving any turns ``tracing`` on.
        telemetry_max_traces: traces kept by the ``/otel`` store (oldest evicted first).
        telemetry_max_logs: log records kept by the ``/otel`` store.
        telemetry_clear: allow ``engine::traces::clear`` and ``engine::logs::clear`` (they
            erase what every worker reported); off, they fail with ``FORBIDDEN``.
        console_port: TCP port of the dev console (``docs/console.md``), bound to ``host``;
            0 picks a free port (``Engine.console_url``); ``None`` (the default for an embedded
            engine) serves none. ``iii-asgi engine`` and ``iii-asgi run`` use 3113. A console
            that cannot bind its port is logged and skipped; the engine still starts.
        queues: named queues for ``TriggerAction.Enqueue`` (builtins.md §7.2), name →
            :class:`QueueConfig` (a dict of the config file's keys is accepted too); a queue
            ``default`` with the default settings is always added unless given here.
        exec_commands: the ``iii-exec`` pipeline (:mod:`iii_asgi.engine.workers.exec`): shell
            commands run in order once the engine serves, the last one kept running; empty
            (default) runs none.
        exec_watch: globs (relative to ``exec_cwd``) whose changes restart the pipeline.
        exec_cwd: folder the commands run in (the config file's folder; ``None``: the
            working directory).
        exec_stop_grace_s: seconds between SIGTERM and SIGKILL when the pipeline stops.
        state_adapter: where ``iii-state`` keeps its values and sends its ``state`` trigger
            events (:class:`AdapterConfig`: ``local`` by default, or ``redis``); likewise
        stream_adapter: ``iii-stream`` (items, change events, the stream socket's feed),
        queue_adapter: ``iii-queue`` (queued messages, dead letters, durable subscribers),
        pubsub_adapter: ``iii-pubsub`` (``publish`` reaches the subscribers of every engine on
            the same Redis), and
        cron_adapter: ``iii-cron`` (with ``redis``, a schedule registered on several engines
            runs once per tick between them). See docs/engine.md, "Adapters".
        queue_visibility_timeout_ms: with the Redis queue adapter, how long a message taken by
            an engine stays invisible to the others; the engine renews it while the handler
            runs, so only a message taken by an engine that died is delivered again.
        cron_lock_ttl_ms: with the Redis cron adapter, the expiry of a schedule's run lock.
    """

    host: str = "127.0.0.1"
    port: int = 49134
    handshake_timeout_ms: int = 10000
    middleware_function_id: str | None = None
    rbac: RbacConfig | None = None
    allowed_origins: list[str] = field(default_factory=list)
    worker_listeners: list[WorkerListenerConfig] = field(default_factory=list)
    registration_grace_ms: int = 5000
    reattach_timeout_s: float = 5.0
    trigger_ack_timeout_s: float = 10.0
    channel_ttl_s: float = 300.0
    channel_max_bytes: int = 16 * 1024 * 1024
    channel_budget_bytes: int = 256 * 1024 * 1024
    channel_sweep_interval_s: float = 60.0
    functions_poll_interval_s: float = 5.0
    outbound_queue_size: int = 8192
    outbound_queue_bytes: int = 64 * 1024 * 1024
    max_inflight_invocations: int = 10_000
    invocation_timeout_ms: int | None = None
    max_message_size: int = MAX_MESSAGE_SIZE
    frame_budget_bytes: int = 256 * 1024 * 1024
    ws: str = "websockets-sansio"
    log_level: str = "warning"
    timeout_graceful_shutdown_s: int = 2
    http_host: str = "127.0.0.1"
    http_port: int | None = 3111
    http_default_timeout_ms: int = 30000
    http_cors: CorsConfig | None = None
    http_allowed_hosts: list[str] | None = None
    http_concurrency_limit: int = 1024
    http_max_body_bytes: int = 16 * 1024 * 1024
    http_body_budget_bytes: int = 64 * 1024 * 1024
    http_max_header_bytes: int = 64 * 1024
    http_max_request_line_bytes: int = 32 * 1024
    http_max_headers: int = 100
    http_header_timeout_ms: int = 10_000
    http_body_timeout_ms: int = 30_000
    http_keep_alive_timeout_ms: int = 5_000
    http_max_connections: int | None = None
    http_middleware: list[HttpMiddleware] = field(default_factory=list)
    http_functions_enabled: bool = True
    http_functions_url_allowlist: list[str] = field(default_factory=lambda: ["*"])
    http_functions_block_private_ips: bool = True
    http_functions_require_https: bool = True
    http_functions_secret_env: list[str] = field(default_factory=lambda: [*DEFAULT_SECRET_ENV])
    local_development: bool = False
    stream_host: str = "127.0.0.1"
    stream_port: int | None = None
    stream_auth_function: str | None = None
    stream_allowed_origins: list[str] = field(default_factory=list)
    state_triggers_enabled: bool = True
    state_max_value_bytes: int | None = None
    data_dir: str | None = None
    tracing: bool = False
    span_exporters: list[Any] = field(default_factory=list)
    telemetry_max_traces: int = 1000
    telemetry_max_logs: int = 10_000
    telemetry_clear: bool = False
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    exec_commands: list[str] = field(default_factory=list)
    exec_watch: list[str] = field(default_factory=list)
    exec_cwd: str | None = None
    exec_stop_grace_s: float = 5.0
    console_port: int | None = None
    state_adapter: AdapterConfig = field(default_factory=AdapterConfig)
    stream_adapter: AdapterConfig = field(default_factory=AdapterConfig)
    queue_adapter: AdapterConfig = field(default_factory=AdapterConfig)
    pubsub_adapter: AdapterConfig = field(default_factory=AdapterConfig)
    cron_adapter: AdapterConfig = field(default_factory=AdapterConfig)
    queue_visibility_timeout_ms: int = 30_000
    cron_lock_ttl_ms: int = 30_000

    def listener_configs(self) -> list[WorkerListenerConfig]:
        """Every worker listener: the main one (``host``, ``port`` and the main-listener
        options) first, then ``worker_listeners`` in order."""
        main = WorkerListenerConfig(
            port=self.port,
            host=self.host,
            middleware_function_id=self.middleware_function_id,
            rbac=self.rbac,
            handshake_timeout_ms=self.handshake_timeout_ms,
            allowed_origins=self.allowed_origins,
        )
        return [main, *self.worker_listeners]
