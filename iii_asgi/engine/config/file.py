"""The engine config file: YAML in the real engine's shape (builtins.md §13), read into an
:class:`~iii_asgi.engine.config.engine.EngineConfig`.

Example ``config.yaml``::

    registration_namespace_grace_ms: 5000
    storage:                       # iii-asgi extension: one store for everything
      data_dir: ./data
    workers:
      - name: iii-worker-manager
        config: {host: 127.0.0.1, port: 49134}
      - name: iii-worker-manager#rbac          # a further listener (docs/rbac.md)
        config:
          port: 49135
          middleware_function_id: auth::middleware
          allowed_origins: ["https://app.example"]
          rbac:
            auth_function_id: auth::check
            expose_functions: ['match("api::public::*")', {metadata: {public: true}}]
            on_function_registration_function_id: auth::on-function
      - name: iii-http
        config:
          host: 127.0.0.1
          port: 3111
          default_timeout: 30000
          concurrency_request_limit: 1024
          cors: {allowed_origins: ["https://app.example"], allowed_methods: [GET, POST]}
          middleware: [{function_id: auth::check, phase: preHandler, priority: 0}]
          allowed_hosts: [app.example]      # iii-asgi extensions from here (HTTP_LIMITS)
          max_header_bytes: 65536
          body_budget_bytes: 67108864
      - name: iii-stream
        config: {host: 127.0.0.1, port: 3112, auth_function: auth::stream}
      - name: iii-state
        config: {triggers_enabled: true, max_value_bytes: 1048576}
      - name: iii-http-functions
        config:
          security:
            url_allowlist: ["api.example.com", "*.hooks.example"]
            block_private_ips: true
            require_https: true
            secret_env_allowlist: ["III_SECRET_*"]     # iii-asgi extension

Rules (§13.1–§13.2):

* ``${VAR}`` / ``${VAR:default}`` are expanded over the raw text before parsing; an unset
  variable without a default is an error; ``__III_ENGINE_VERSION__`` as a default expands to the
  iii-asgi version.
* Unknown top-level keys, unknown worker names and unknown keys of a worker's ``config`` are
  errors (:class:`ConfigError`), and so are features this engine does not have (RBAC, the
  ``bridge`` and ``rabbitmq`` adapters...). ``modules:`` is merged into ``workers:``.
* With a config file, exactly the listed workers run: no ``iii-http`` entry means no HTTP trigger
  server (``http_port=None``), no ``iii-stream`` entry no stream socket (``stream_port=None``),
  no ``iii-http-functions`` entry no HTTP-invoked functions (``http_functions_enabled=False``).
  The built-in functions (state, stream...) are always installed. The mandatory workers
  (``configuration``, ``iii-worker-manager``, ``iii-engine-functions``, ``iii-observability``,
  ``iii-telemetry``) may be listed; their blocks are ignored, except worker-manager's and
  ``iii-observability``'s ``allow_clear`` (iii-asgi extension: ``EngineConfig.telemetry_clear``).
* ``name#instance`` names an instance (``iii-worker-manager#rbac``). ``iii-worker-manager``
  may be listed any number of times (§13.3): the first entry is the main listener
  (``EngineConfig.host`` / ``port`` / ``rbac`` / ``middleware_function_id`` /
  ``handshake_timeout_ms`` / ``allowed_origins``), each further one (``port`` required) becomes
  a :class:`~.worker_manager.WorkerListenerConfig` in ``EngineConfig.worker_listeners``; an
  ``rbac`` block takes the real engine's keys (``auth_function_id``, ``expose_functions``,
  ``on_function_registration_function_id``, ``on_trigger_registration_function_id``,
  ``on_trigger_type_registration_function_id``). Any other worker may be listed once (the
  embedded engine runs one instance of each); listing both an old and a new name (``iii-http``
  and ``http``) is an error.
* Storage: ``storage: {data_dir: PATH}``, or a state/stream ``adapter`` of kind ``kv`` with
  ``store_method: file_based`` and a ``file_path``: its directory becomes the data directory (the
  embedded engine keeps one SQLite file there, ``iii.sqlite3``). Conflicting directories are an
  error. Relative paths are relative to the working directory, as in the real engine.

* Worker-socket limits (docs/engine.md, "Limits"; iii-asgi extensions): the
  ``iii-worker-manager`` block also takes ``outbound_queue_size``, ``outbound_queue_bytes``,
  ``max_inflight_invocations``, ``invocation_timeout_ms``, ``max_message_size``,
  ``frame_budget_bytes``, ``channel_max_bytes`` and ``channel_budget_bytes`` (the
  :class:`EngineConfig` options of the same names).
* ``iii-http-functions`` (protocol.md §4.1): ``security: {url_allowlist, block_private_ips,
  require_https}`` as in the real engine, plus ``secret_env_allowlist`` (globs of the environment
  variables auth may name; default ``["III_SECRET_*"]``): the ``EngineConfig.http_functions_*``
  options.

* Queues (``iii-queue`` / ``queue``, §7.2): ``queue_configs: {name: {max_retries, concurrency,
  type, message_group_field, backoff_ms, poll_interval_ms, max_depth}}`` become
  :attr:`EngineConfig.queues` (``default`` is always added). Queue, pubsub and cron are always
  available.

* Adapters (``adapter: {name, config}``; :class:`~.adapters.AdapterConfig`), per worker:

  ==================  ==========================  ==================================="""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from .adapters import REDIS, AdapterConfig
from .engine import CorsConfig, EngineConfig, HttpMiddleware
from .queue import queue_configs_from_mapping
from .worker_manager import RbacConfig, WorkerListenerConfig

__all__ = ["ALIASES", "WORKERS", "ConfigError", "config_from_mapping", "expand_env", "load_config"]


class ConfigError(ValueError):
    """The config file cannot be used; the message names the file and the offending key."""


@dataclass
class Loading:
    """What a worker block's handler may read and change while a file is applied."""

    config: EngineConfig
    data_dirs: dict[str, str] = field(default_factory=dict)  # data dir -> where it came from
    listed: set[str] = field(default_factory=set)  # canonical names of listed workers
    instance: str | None = None  # the `#instance` part of the entry being applied
    base_dir: Path | None = None  # the config file's folder (None: the working directory)


#: ``handler(block, loading, where)`` applies one worker's ``config`` block.
WorkerHandler = Callable[[dict[str, Any], Loading, str], None]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_TOP_LEVEL = {"registration_namespace_grace_ms", "workers", "modules", "storage"}


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Expand ``${VAR}`` and ``${VAR:default}`` (not bash's ``:-``) in raw config text."""
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is None:
            raise ConfigError(f"environment variable {name} is not set and has no default")
        if default == "__III_ENGINE_VERSION__":
            return metadata.version("iii-asgi")
        return default

    return _ENV.sub(replace, text)


def load_config(path: str | os.PathLike[str], **overrides: Any) -> EngineConfig:
    """Read a YAML engine config file (the real engine's shape: builtins.md §13) into an
    :class:`EngineConfig` (defaults for what it does not set), then set ``overrides``. Raises
    :class:`ConfigError` for an unreadable file, bad YAML or a bad key, ``TypeError`` for an
    override that is not an option."""
    config = _read_config(path)
    for name, value in overrides.items():
        if not hasattr(config, name):
            raise TypeError(f"EngineConfig has no option {name!r}")
        setattr(config, name, value)
    return config


def _read_config(path: str | os.PathLike[str]) -> EngineConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(expand_env(text))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    try:
        return config_from_mapping({} if data is None else data, Path(path).resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_from_mapping(data: Any, base_dir: Path | None = None) -> EngineConfig:
    """Build an :class:`EngineConfig` from an already parsed config document; ``base_dir`` is
    the config file's folder (``iii-exec`` commands run there)."""
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping")
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise ConfigError(f"unknown top-level key(s): {', '.join(map(str, unknown))}")
    loading = Loading(EngineConfig(), base_dir=base_dir)
    config = loading.config
    if "registration_namespace_grace_ms" in data:
        config.registration_grace_ms = _int(
            data["registration_namespace_grace_ms"], "registration_namespace_grace_ms"
        )
    storage = data.get("storage")
    if storage is not None:
        block = _mapping(storage, "storage", {"data_dir"})
        if block.get("data_dir") is not None:
            _data_dir(loading, _str(block["data_dir"], "storage.data_dir"), "storage.data_dir")
    entries = _list(data.get("workers"), "workers") + _list(data.get("modules"), "modules")
    for index, entry in enumerate(entries):
        where = f"workers[{index}]"
        entry = _mapping(entry, where, {"name", "image", "config"})
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.name must be a non-empty string")
        base, _, instance = name.partition("#")
        canonical = ALIASES.get(base, base)
        if canonical not in WORKERS:
            raise ConfigError(f"{where}: worker {name!r} is not provided by the embedded engine")
        if entry.get("image") is not None:
            raise ConfigError(f"{where}: 'image' is not allowed for the built-in worker {name!r}")
        if canonical in loading.listed and canonical not in REPEATABLE:
            raise ConfigError(f"{where}: worker {name!r} is listed twice")
        loading.instance = instance or None
        block = entry.get("config") or {}
        WORKERS[canonical](_mapping(block, f"{where}.config"), loading, f"{where}.config")
        loading.listed.add(canonical)
    if "iii-http" not in loading.listed:
        config.http_port = None
    if "iii-stream" not in loading.listed:
        config.stream_port = None
    if "iii-http-functions" not in loading.listed:
        config.http_functions_enabled = False
    if loading.data_dirs:
        config.data_dir = next(iter(loading.data_dirs))
    return config


# -- value checks -------------------------------------------------------------------------------


def _mapping(value: Any, where: str, keys: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    if keys is not None:
        unknown = sorted(map(str, set(value) - keys))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s): {', '.join(unknown)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list")
    return value


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    return [_str(item, f"{where}[{i}]") for i, item in enumerate(items)]


def _port(value: Any, where: str) -> int:
    port = _int(value, where)
    if port > 65535:
        raise ConfigError(f"{where} must be a port number (0-65535)")
    return port


def _address(block: dict[str, Any], config: EngineConfig, where: str, host: str, port: str) -> None:
    """A block's ``host`` / ``port`` into the config fields named ``host`` / ``port``."""
    if "host" in block:
        setattr(config, host, _str(block["host"], f"{where}.host"))
    if "port" in block:
        setattr(config, port, _port(block["port"], f"{where}.port"))


def _data_dir(loading: Loading, path: str, where: str) -> None:
    normal = os.path.normpath(path)
    for existing, source in loading.data_dirs.items():
        if existing != normal:
            raise ConfigError(
                f"{where} points to {path!r} but {source} points to {existing!r}; the embedded "
                "engine keeps one store"
            )
    loading.data_dirs.setdefault(normal, where)


def _adapter(
    value: Any, loading: Loading, where: str, option: str, local: tuple[str, ...] = ("kv",)
) -> dict[str, Any]:
    """An ``adapter`` block: ``redis`` sets ``EngineConfig.<option>`` (and returns its
    ``config``); a ``local`` kind keeps the engine's store (``kv``/``builtin`` with ``file_based``
    select the data directory); any other name is an error."""
    block = _mapping(value, where, {"name", "config"})
    name = block.get("name", local[0])
    options = _mapping(block.get("config") or {}, f"{where}.config")
    if name == REDIS:
        return _redis(options, loading, f"{where}.config", option)
    if name not in local:
        kinds = ", ".join(map(repr, (*local, REDIS)))
        raise ConfigError(
            f"{where}.name {name!r} is not provided by the embedded engine (only {kinds})"
        )
    if name in ("kv", "builtin"):
        keys = {"store_method", "file_path", "save_interval_ms", "channel_size"}
        _mapping(options, f"{where}.config", keys | {"lock_ttl_ms", "lock_index"})
        method = options.get("store_method", "in_memory")
        if method == "file_based":
            file_path = _str(options.get("file_path", "./data/store"), f"{where}.config.file_path")
            _data_dir(loading, os.path.dirname(file_path) or ".", f"{where}.config.file_path")
        elif method != "in_memory":
            raise ConfigError(f"{where}.config.store_method must be 'in_memory' or 'file_based'")
    return {}


#: Keys of a ``redis`` adapter's ``config`` beyond ``redis_url`` / ``key_prefix``, per option.
_REDIS_EXTRA = {"queue_adapter": {"visibility_timeout_ms"}, "cron_adapter": {"lock_ttl_ms"}}


def _redis(options: dict[str, Any], loading: Loading, where: str, option: str) -> dict[str, Any]:
    _mapping(options, where, {"redis_url", "key_prefix"} | _REDIS_EXTRA.get(option, set()))
    adapter = AdapterConfig(REDIS)
    if "redis_url" in options:
        adapter.redis_url = _str(options["redis_url"], f"{where}.redis_url")
    if options.get("key_prefix") is not None:
        prefix = options["key_prefix"]
        if not isinstance(prefix, str):
            raise ConfigError(f"{where}.key_prefix must be a string")
        adapter.key_prefix = prefix
    setattr(loading.config, option, adapter)
    return options


# -- worker blocks ------------------------------------------------------------------------------


#: Worker-socket limits (issue 13), iii-asgi extensions in the iii-worker-manager block: the
#: EngineConfig options of the same names (``invocation_timeout_ms`` may be null).
SOCKET_LIMITS = (
    "outbound_queue_size",
    "outbound_queue_bytes",
    "max_inflight_invocations",
    "invocation_timeout_ms",
    "max_message_size",
    "frame_budget_bytes",
    "channel_max_bytes",
    "channel_budget_bytes",
)


_WORKER_MANAGER_KEYS = {
    "host",
    "port",
    "handshake_timeout_ms",
    "middleware_function_id",
    "rbac",
    "allowed_origins",
}


def _worker_manager(block: dict[str, Any], loading: Loading, where: str) -> None:
    """The first entry configures the main listener; each further one adds a listener."""
    _mapping(block, where, {*_WORKER_MANAGER_KEYS, *SOCKET_LIMITS})
    config = loading.config
    if "iii-worker-manager" not in loading.listed:
        _address(block, config, where, "host", "port")
        listener = WorkerListenerConfig(port=config.port, host=config.host)
    else:
        if "port" not in block:
            raise ConfigError(f"{where}.port is required for a further iii-worker-manager")
        listener = WorkerListenerConfig(port=_port(block["port"], f"{where}.port"))
        if "host" in block:
            listener.host = _str(block["host"], f"{where}.host")
        listener.name = loading.instance or str(len(config.worker_listeners) + 1)
        config.worker_listeners.append(listener)
    if "handshake_timeout_ms" in block:
        listener.handshake_timeout_ms = _int(
            block["handshake_timeout_ms"], f"{where}.handshake_timeout_ms", 1
        )
    if block.get("middleware_function_id") is not None:
        listener.middleware_function_id = _str(
            block["middleware_function_id"], f"{where}.middleware_function_id"
        )
    if block.get("rbac") is not None:
        try:
            listener.rbac = RbacConfig.from_mapping(_mapping(block["rbac"], f"{where}.rbac"))
        except ValueError as exc:
            raise ConfigError(f"{where}.rbac: {exc}") from None
    if "allowed_origins" in block:
        listener.allowed_origins = _strings(block["allowed_origins"], f"{where}.allowed_origins")
    if listener.name is None:  # the main listener: its options live on EngineConfig
        config.handshake_timeout_ms = listener.handshake_timeout_ms
        config.middleware_function_id = listener.middleware_function_id
        config.rbac = listener.rbac
        config.allowed_origins = listener.allowed_origins

    _socket_limits(block, config, where)


def _socket_limits(block: dict[str, Any], config: EngineConfig, where: str) -> None:
    for key in SOCKET_LIMITS:
        if key not in block:
            continue
        value = block[key]
        if key == "invocation_timeout_ms" and value is None:
            config.invocation_timeout_ms = None
            continue
        setattr(config, key, _int(value, f"{where}.{key}", 1))


#: iii-asgi's own ``iii-http`` keys (the real engine has no such bounds) -> (EngineConfig field,
#: minimum). Each is a positive integer; ``max_connections`` may also be null (derived).
HTTP_LIMITS: dict[str, tuple[str, int]] = {
    "max_body_bytes": ("http_max_body_bytes", 0),
    "body_budget_bytes": ("http_body_budget_bytes", 1),
    "max_header_bytes": ("http_max_header_bytes", 1024),
    "max_request_line_bytes": ("http_max_request_line_bytes", 256),
    "max_headers": ("http_max_headers", 1),
    "header_timeout_ms": ("http_header_timeout_ms", 1),
    "body_timeout_ms": ("http_body_timeout_ms", 1),
    "keep_alive_timeout_ms": ("http_keep_alive_timeout_ms", 1),
    "max_connections": ("http_max_connections", 1),
}
_HTTP_KEYS = {
    "host",
    "port",
    "default_timeout",
    "concurrency_request_limit",
    "cors",
    "middleware",
    "allowed_hosts",
    *HTTP_LIMITS,
}


def _http(block: dict[str, Any], loading: Loading, where: str) -> None:
    _mapping(block, where, _HTTP_KEYS)
    config = loading.config
    _address(block, config, where, "http_host", "http_port")
    if "default_timeout" in block:
        config.http_default_timeout_ms = _int(
            block["default_timeout"], f"{where}.default_timeout", 1
        )
    if "concurrency_request_limit" in block:
        config.http_concurrency_limit = _int(
            block["concurrency_request_limit"], f"{where}.concurrency_request_limit"
        )
    for key, (name, minimum) in HTTP_LIMITS.items():
        if block.get(key) is not None:
            setattr(config, name, _int(block[key], f"{where}.{key}", minimum))
    if block.get("allowed_hosts") is not None:
        config.http_allowed_hosts = _strings(block["allowed_hosts"], f"{where}.allowed_hosts")
    if block.get("cors") is not None:
        cors = _mapping(block["cors"], f"{where}.cors", {"allowed_origins", "allowed_methods"})
        config.http_cors = CorsConfig(
            allowed_origins=_strings(cors.get("allowed_origins"), f"{where}.cors.allowed_origins"),
            allowed_methods=_strings(cors.get("allowed_methods"), f"{where}.cors.allowed_methods"),
        )
    if "middleware" in block:
        middleware = []
        for i, item in enumerate(_list(block["middleware"], f"{where}.middleware")):
            at = f"{where}.middleware[{i}]"
            entry = _mapping(item, at, {"function_id", "phase", "priority"})
            middleware.append(
                HttpMiddleware(
                    function_id=_str(entry.get("function_id"), f"{at}.function_id"),
                    phase=_str(entry.get("phase", "preHandler"), f"{at}.phase"),
                    priority=_signed(entry.get("priority", 0), f"{at}.priority"),
                )
            )
        config.http_middleware = sorted(middleware, key=lambda m: m.priority)


def _signed(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer")
    return value


def _stream(block: dict[str, Any], loading: Loading, where: str) -> None:
    _mapping(block, where, {"host", "port", "auth_function", "adapter", "allowed_origins"})
    config = loading.config
    config.stream_port = 3112  # listed: the real engine's default port
    _address(block, config, where, "stream_host", "stream_port")
    if block.get("auth_function") is not None:
        config.stream_auth_function = _str(block["auth_function"], f"{where}.auth_function")
    if block.get("adapter") is not None:
        _adapter(block["adapter"], loading, f"{where}.adapter", "stream_adapter")
    if "allowed_origins" in block:
        config.stream_allowed_origins = _strings(
            block["allowed_origins"], f"{where}.allowed_origins"
        )


def _state(block: dict[str, Any], loading: Loading, where: str) -> None:
    _mapping(block, where, {"adapter", "triggers_enabled", "max_value_bytes", "save_interval_ms"})
    config = loading.config
    if "triggers_enabled" in block:
        config.state_triggers_enabled = _bool(
            block["triggers_enabled"], f"{where}.triggers_enabled"
        )
    if block.get("max_value_bytes") is not None:
        config.state_max_value_bytes = _int(block["max_value_bytes"], f"{where}.max_value_bytes")
    if block.get("adapter") is not None:
        _adapter(block["adapter"], loading, f"{where}.adapter", "state_adapter")


def _queue(block: dict[str, Any], loading: Loading, where: str) -> None:
    _mapping(block, where, {"queue_configs", "adapter"})
    try:
        loading.config.queues = queue_configs_from_mapping(block.get("queue_configs"))
    except ValueError as exc:
        raise ConfigError(f"{where}.queue_configs: {exc}") from None
    adapter = block.get("adapter")
    if adapter is not None:
        at = f"{where}.adapter"
        redis = _adapter(adapter, loading, at, "queue_adapter", ("builtin",))
        if "visibility_timeout_ms" in redis:
            timeout = _int(redis["visibility_timeout_ms"], f"{at}.config.visibility_timeout_ms", 1)
            loading.config.queue_visibility_timeout_ms = timeout


def _pubsub(block: dict[str, Any], loading: Loading, where: str) -> None:
    _mapping(block, where, {"adapter"})
    if block.get("adapter") is not None:
        at = f"{where}.adapter"
        _adapter(block["adapter"], loading, at, "pubsub_adapter", ("local", "memory"))


def _cron(block: dict[str, Any], loading: Loading, where: str) -> None:
    _mapping(block, where, {"adapter"})
    if block.get("adapter") is not None:
        at = f"{where}.adapter"
        redis = _adapter(block["adapter"], loading, at, "cron_adapter", ("kv", "memory"))
        if "lock_ttl_ms" in redis:
            ttl = _int(redis["lock_ttl_ms"], f"{at}.config.lock_ttl_ms", 1)
            loading.config.cron_lock_ttl_ms = ttl


def _http_functions(block: dict[str, Any], loading: Loading, where: str) -> None:
    _mapping(block, where, {"security"})
    at = f"{where}.security"
    keys = {"url_allowlist", "block_private_ips", "require_https", "secret_env_allowlist"}
    security = _mapping(block.get("security") or {}, at, keys)
    config = loading.config
    if security.get("url_allowlist") is not None:
        allowlist = _strings(security["url_allowlist"], f"{at}.url_allowlist")
        config.http_functions_url_allowlist = allowlist or ["*"]  # empty means any (§4.1)
    if "block_private_ips" in security:
        config.http_functions_block_private_ips = _bool(
            security["block_private_ips"], f"{at}.block_private_ips"
        )
    if "require_https" in security:
        config.http_functions_require_https = _bool(
            security["require_https"], f"{at}.require_https"
        )
    if security.get("secret_env_allowlist") is not None:
        config.http_functions_secret_env = _strings(
            security["secret_env_allowlist"], f"{at}.secret_env_allowlist"
        )


def _observability(block: dict[str, Any], loading: Loading, where: str) -> None:
    """The real engine's observability options do not apply here and are ignored; only
    ``allow_clear`` (ours) is read."""
    if "allow_clear" in block:
        loading.config.telemetry_clear = _bool(block["allow_clear"], f"{where}.allow_clear")


def _ignored(block: dict[str, Any], loading: Loading, where: str) -> None:
    """Mandatory workers without options in the embedded engine: their blocks are ignored."""


def _exec(block: dict[str, Any], loading: Loading, where: str) -> None:
    """``iii-exec``: ``exec`` (required, the command pipeline) and ``watch`` (globs)."""
    _mapping(block, where, {"exec", "watch"})
    commands = _strings(block.get("exec"), f"{where}.exec")
    if not commands:
        raise ConfigError(f"{where}.exec must list at least one command")
    config = loading.config
    config.exec_commands = commands
    config.exec_watch = _strings(block.get("watch"), f"{where}.watch")
    config.exec_cwd = str(loading.base_dir or Path.cwd())


#: Canonical worker name -> handler of its ``config`` block (aliases in :data:`ALIASES`).
WORKERS: dict[str, WorkerHandler] = {
    "iii-worker-manager": _worker_manager,
    "iii-http": _http,
    "iii-stream": _stream,
    "iii-state": _state,
    "iii-queue": _queue,
    "iii-pubsub": _pubsub,
    "iii-cron": _cron,
    "iii-http-functions": _http_functions,
    "iii-exec": _exec,
    "configuration": _ignored,
    "iii-engine-functions": _ignored,
    "iii-observability": _observability,
    "iii-telemetry": _ignored,
}

#: Workers that may be listed more than once (each ``iii-worker-manager`` is one listener).
REPEATABLE = frozenset({"iii-worker-manager"})

#: Newer (standalone worker) names -> the canonical name (§13.1, §3.14, §7.7).
ALIASES: dict[str, str] = {
    "http": "iii-http",
    "state": "iii-state",
    "stream": "iii-stream",
    "queue": "iii-queue",
    "pubsub": "iii-pubsub",
    "cron": "iii-cron",
}
