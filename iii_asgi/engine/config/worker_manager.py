"""Options of the ``iii-worker-manager`` listeners (builtins.md §13, protocol.md §1.1 and §8).

The first listener is the engine's main worker port (``EngineConfig.host`` / ``port`` and the
main-listener options on :class:`~iii_asgi.engine.config.engine.EngineConfig`); every
:class:`WorkerListenerConfig` in ``EngineConfig.worker_listeners`` opens one more, each with its
own address, RBAC block, middleware, handshake timeout and allowed browser origins.

Example::

    from iii_asgi.engine import EngineConfig
    from iii_asgi.engine.config import RbacConfig, WorkerListenerConfig

    EngineConfig(
        worker_listeners=[
            WorkerListenerConfig(
                port=49135,
                rbac=RbacConfig(
                    auth_function_id="auth::check",
                    expose_functions=['match("api::public::*")', {"metadata": {"public": True}}],
                ),
            )
        ]
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FunctionFilter",
    "RbacConfig",
    "WorkerListenerConfig",
    "parse_match",
]

#: Keys of an ``rbac`` block (protocol.md §8; unknown keys are errors).
RBAC_KEYS = (
    "auth_function_id",
    "expose_functions",
    "on_function_registration_function_id",
    "on_trigger_registration_function_id",
    "on_trigger_type_registration_function_id",
)


def parse_match(text: str) -> str | None:
    """The glob inside ``match("…")`` or ``match('…')`` (surrounding blanks ignored), else
    ``None``."""
    trimmed = text.strip()
    for quote in ('"', "'"):
        start = f"match({quote}"
        end = f"{quote})"
        if trimmed.startswith(start) and trimmed.endswith(end) and len(trimmed) >= 9:
            return trimmed[len(start) : -len(end)]
    return None


@dataclass(frozen=True)
class FunctionFilter:
    """One ``rbac.expose_functions`` entry (protocol.md §8.2).

    Exactly one of ``match`` (a glob: ``*`` is any run of characters, anchored at both ends) or
    ``metadata`` (every key must equal the function's registered metadata value; a string value
    ``match("glob")`` is a glob on a string value). ``namespace`` scopes the filter; without it
    the filter applies in ``default`` only.

    Build one from the config-file form with :meth:`parse`.
    """

    match: str | None = None
    metadata: Mapping[str, Any] | None = None
    namespace: str | None = None

    def __post_init__(self) -> None:
        if (self.match is None) == (self.metadata is None):
            raise ValueError("a filter has either a 'match' or a 'metadata' key, not both")

    @classmethod
    def parse(cls, value: Any) -> FunctionFilter:
        """A filter from ``'match("glob")'``, ``{"match": "glob"}`` or ``{"metadata": {...}}``
        (either map with an optional ``namespace``). Raises ``ValueError`` naming the problem
        (a bare string, an unknown key, both or neither of ``match`` / ``metadata``)."""
        if isinstance(value, FunctionFilter):
            return value
        if isinstance(value, str):
            pattern = parse_match(value)
            if pattern is None:
                raise ValueError(f'expected match("pattern"), got: {value}')
            return cls(match=pattern)
        if not isinstance(value, Mapping):
            raise ValueError('a filter is a match("pattern") string or a map')
        unknown = sorted(str(k) for k in value if k not in ("match", "metadata", "namespace"))
        if unknown:
            raise ValueError(
                f"unknown key '{unknown[0]}' in expose_functions filter; expected 'match', "
                "'metadata', or 'namespace'"
            )
        match, metadata = value.get("match"), value.get("metadata")
        namespace = value.get("namespace")
        if match is not None and not isinstance(match, str):
            raise ValueError("'match' must be a string")
        if metadata is not None and (not isinstance(metadata, Mapping) or not metadata):
            raise ValueError("'metadata' must be a non-empty map")
        if namespace is not None and (not isinstance(namespace, str) or not namespace.strip()):
            raise ValueError("'namespace' must be a non-empty string")
        if match is None and metadata is None:
            raise ValueError("expected a 'match' or 'metadata' key with filter conditions")
        return cls(match=match, metadata=dict(metadata) if metadata else None, namespace=namespace)


@dataclass
class RbacConfig:
    """The ``rbac`` block of a listener (protocol.md §8).

    Arguments:
        auth_function_id: called once per socket (``/`` and ``/otel``) with AuthInput; its
            AuthResult becomes the connection's session (§8.1). ``None``: every connection gets
            a permissive session, and ``expose_functions`` still gates calls.
        expose_functions: filters (:class:`FunctionFilter`, or their config-file forms, turned
            into filters here) naming the functions this listener's workers may call (§8.2);
            empty: only the infrastructure functions and the session's own grants.
        on_function_registration_function_id: hook called for each ``registerfunction`` (§8.5).
        on_trigger_registration_function_id: hook called for each ``registertrigger``.
        on_trigger_type_registration_function_id: hook called for each ``registertriggertype``.

    Raises ``ValueError`` for a filter that does not parse.
    """

    auth_function_id: str | None = None
    expose_functions: list[Any] = field(default_factory=list)
    on_function_registration_function_id: str | None = None
    on_trigger_registration_function_id: str | None = None
    on_trigger_type_registration_function_id: str | None = None

    def __post_init__(self) -> None:
        self.expose_functions = [FunctionFilter.parse(f) for f in self.expose_functions]

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any]) -> RbacConfig:
        """An ``rbac`` block of the config file. Raises ``ValueError`` naming the bad key
        (``expose_functions[2]: …``)."""
        unknown = sorted(str(k) for k in block if k not in RBAC_KEYS)
        if unknown:
            raise ValueError(f"unknown key(s): {', '.join(unknown)}")
        hooks: dict[str, str | None] = {}
        for key in RBAC_KEYS:
            if key == "expose_functions":
                continue
            value = block.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{key} must be a non-empty string")
            hooks[key] = value
        filters = block.get("expose_functions") or []
        if not isinstance(filters, list):
            raise ValueError("expose_functions must be a list")
        parsed = []
        for index, item in enumerate(filters):
            try:
                parsed.append(FunctionFilter.parse(item))
            except ValueError as exc:
                raise ValueError(f"expose_functions[{index}]: {exc}") from None
        return cls(expose_functions=parsed, **hooks)


@dataclass
class WorkerListenerConfig:
    """One further ``iii-worker-manager`` listener (builtins.md §13, protocol.md §1.1): the
    routes ``/``, ``/otel`` and ``/ws/channels/{id}`` on ``host``:``port``.

    Arguments:
        port: TCP port (0: any free port; read it back from ``Engine.worker_urls``).
        host: bind address.
        middleware_function_id: every call from this listener's workers to anything but an
            engine-owned ``engine::*`` built-in goes to this function instead (§8.4).
        rbac: the listener's access rules (§8); ``None`` with no middleware makes it a trusted
            listener like the main one.
        handshake_timeout_ms: a connection that has not sent its complete WebSocket upgrade
            request, or whose authentication has not finished, this long after it opened is
            closed.
        allowed_origins: browser origins (``https://app.example``; ``*`` for any) whose
            WebSocket upgrades are accepted; an upgrade carrying any other ``Origin`` header
            gets HTTP 403. Clients that send no ``Origin`` (SDKs) are not affected.
        name: the instance name (``rbac`` for a config entry ``iii-worker-manager#rbac``);
            the listener is then ``worker#<name>`` in ``Engine.listeners``.
    """

    port: int
    host: str = "127.0.0.1"
    middleware_function_id: str | None = None
    rbac: RbacConfig | None = None
    handshake_timeout_ms: int = 10000
    allowed_origins: list[str] = field(default_factory=list)
    name: str | None = None
