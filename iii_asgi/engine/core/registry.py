"""The engine's registries: functions, trigger types, triggers, workers (protocol.md §2, §5).

Functions are keyed by ``(namespace, function_id)``; the entry's ``owner`` is the owner map of
§1.8 step 2, and :meth:`Registry.remove_function` is its compare-and-delete. Trigger types are
keyed by ``(namespace, type_id)``; their provider is a worker connection or an in-process
:class:`TriggerProvider` (the seam the ``http`` trigger server plugs into).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .connection import WorkerConnection

__all__ = [
    "DEFAULT_NAMESPACE",
    "BuiltinHandler",
    "CallContext",
    "FailedFunction",
    "FunctionEntry",
    "Registry",
    "Trigger",
    "TriggerProvider",
    "TriggerType",
]

DEFAULT_NAMESPACE = "default"


@dataclass(slots=True)
class CallContext:
    """What an in-process function knows about its call: the calling connection (``None`` for
    engine-initiated calls, §3.4), the invocation id and the call metadata."""

    caller: WorkerConnection | None
    invocation_id: str | None
    metadata: Any = None


#: An in-process function: ``await handler(context, data) -> result``; raises InvocationError.
BuiltinHandler = Callable[[CallContext, Any], Awaitable[Any]]


@dataclass(eq=False, slots=True)
class FunctionEntry:
    """A registered function. ``owner`` is the worker connection executing it, or ``None`` with
    a ``handler`` for in-process functions (engine built-ins). An HTTP-invoked function has
    both: ``handler`` executes it, ``owner`` only owns it (removal, conflicts). ``inline``
    built-ins run inside the caller's read loop (ordering-sensitive ones such as
    ``engine::workers::register``). ``local_id`` is the id the owner registered it under and
    is sent in ``invokefunction`` (protocol.md §8.6: without the session's prefix, and the id
    as sent when a registration hook renamed it); it defaults to ``function_id``."""

    function_id: str
    namespace: str
    owner: WorkerConnection | None = None
    handler: BuiltinHandler | None = None
    description: str | None = None
    request_format: Any = None
    response_format: Any = None
    metadata: Any = None
    inline: bool = False
    local_id: str = ""

    def __post_init__(self) -> None:
        if not self.local_id:
            self.local_id = self.function_id

    @property
    def in_process(self) -> bool:
        """Executed by the engine itself (a built-in, or an HTTP-invoked function owned by its
        registering connection, protocol.md §4) rather than sent to ``owner``."""
        return self.handler is not None


@dataclass(eq=False, slots=True)
class FailedFunction:
    """An HTTP-invoked function whose registration failed (protocol.md §4.1): not registered,
    but remembered so that calls get ``code``/``message`` instead of ``function_not_found``.
    ``owner`` is the registering connection; its unregister or disconnect forgets it."""

    function_id: str
    namespace: str
    code: str
    message: str
    owner: WorkerConnection | None = None


class TriggerProvider(Protocol):
    """An in-process provider of a trigger type (e.g. the ``http`` server, §5.4).

    ``register_trigger`` raises to refuse a binding; the message becomes the
    ``trigger_registration_failed`` error sent to the registering worker (§2.9).
    """

    async def register_trigger(self, trigger: Trigger) -> None: ...

    async def unregister_trigger(self, trigger: Trigger) -> None: ...


@dataclass(eq=False, slots=True)
class TriggerType:
    """A trigger type provided by a worker connection or an in-process provider (§5.1)."""

    id: str
    namespace: str
    description: str
    provider: WorkerConnection | TriggerProvider
    trigger_request_format: Any = None
    call_request_format: Any = None
    in_process: bool = False


@dataclass(eq=False, slots=True)
class Trigger:
    """A binding (§5.1). ``namespace`` is the target function's namespace; ``trigger_namespace``
    the explicit provider namespace (``None``: home namespace, then ``default``). ``owner`` is the
    registering connection (``None``: durable, from ``engine::register_trigger``). ``provider`` is
    the trigger type it is delivered to, ``None`` while parked."""

    id: str
    trigger_type: str
    function_id: str
    config: Any = None
    metadata: Any = None
    namespace: str = DEFAULT_NAMESPACE
    trigger_namespace: str | None = None
    owner: WorkerConnection | None = None
    home_namespace: str = DEFAULT_NAMESPACE
    provider: TriggerType | None = None


@dataclass
class Registry:
    """Every registry of one engine; plain dicts, mutated only on the event loop."""

    functions: dict[tuple[str, str], FunctionEntry] = field(default_factory=dict)
    function_namespaces: dict[str, set[str]] = field(default_factory=dict)
    trigger_types: dict[tuple[str, str], TriggerType] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    workers: dict[str, WorkerConnection] = field(default_factory=dict)
    worker_names: dict[tuple[str, str], WorkerConnection] = field(default_factory=dict)
    services: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    failed_functions: dict[tuple[str, str], FailedFunction] = field(default_factory=dict)

    def add_function(self, entry: FunctionEntry) -> None:
        key = (entry.namespace, entry.function_id)
        self.functions[key] = entry
        self.function_namespaces.setdefault(entry.function_id, set()).add(entry.namespace)
        self.failed_functions.pop(key, None)

    def add_builtins(
        self,
        handlers: Mapping[str, Callable[[CallContext, Any], Any]],
        *,
        internal: bool = False,
        inline: Collection[str] = (),
    ) -> None:
        """Register in-process functions (engine built-ins) in the default namespace, each
        described by the first line of its handler's docstring. ``internal`` marks them
        ``metadata={"internal": True}`` (builtins.md §10.1); ``inline`` names those run inside
        the caller's read loop."""
        for function_id, handler in handlers.items():
            self.add_function(
                FunctionEntry(
                    function_id,
                    DEFAULT_NAMESPACE,
                    handler=handler,
                    description=(handler.__doc__ or "").strip().splitlines()[0],
                    metadata={"internal": True} if internal else None,
                    inline=function_id in inline,
                )
            )

    def add_failed_function(self, failed: FailedFunction) -> None:
        """Record a failed registration in place of any function under its key (the caller
        has checked ownership: the key is free, ours, or held by a dying connection)."""
        entry = self.functions.get((failed.namespace, failed.function_id))
        if entry is not None:
            self.remove_function(failed.namespace, failed.function_id, entry.owner)
        self.failed_functions[(failed.namespace, failed.function_id)] = failed

    def remove_function(
        self, namespace: str, function_id: str, owner: WorkerConnection | None
    ) -> bool:
        """Remove ``(namespace, function_id)`` only if ``owner`` still owns it (§1.8 step 2);
        also forgets a failed registration of ``owner`` under that key."""
        key = (namespace, function_id)
        failed = self.failed_functions.get(key)
        if failed is not None and failed.owner is owner:
            del self.failed_functions[key]
            return True
        entry = self.functions.get(key)
        if entry is None or entry.owner is not owner:
            return False
        del self.functions[key]
        spaces = self.function_namespaces.get(function_id)
        if spaces is not None:
            spaces.discard(namespace)
            if not spaces:
                del self.function_namespaces[function_id]
        return True

    def engine_function(self, function_id: str) -> bool:
        """Whether the engine itself provides ``function_id`` (a built-in in ``default``)."""
        entry = self.functions.get((DEFAULT_NAMESPACE, function_id))
        return entry is not None and entry.owner is None

    def engine_trigger_type(self, type_id: str) -> bool:
        """Whether an in-process provider (the engine or a built-in worker) serves ``type_id``
        in any namespace."""
        return any(t.in_process and t.id == type_id for t in self.trigger_types.values())

    def live_owner(self, namespace: str, function_id: str) -> WorkerConnection | bool | None:
        """The live owner of a function: a connection, ``True`` for an in-process function,
        ``None`` when unowned or owned by a connection that is tearing down."""
        entry = self.functions.get((namespace, function_id))
        if entry is None:
            return None
        if entry.owner is None:
            return True
        return entry.owner if entry.owner.alive else None
