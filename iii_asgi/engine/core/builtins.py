"""The engine's built-in functions, all in namespace ``default`` (protocol.md §7.1).

Bad input (not an object, a missing required field, a wrong type) fails with
``deserialization_error`` "Failed to deserialize input for <id>: …"; unknown keys are ignored
(that is why the injected ``_caller_worker_id`` is harmless).
"""

from __future__ import annotations

import json
import platform
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .connection import WorkerConnection
from .errors import InvocationError
from .registry import DEFAULT_NAMESPACE, CallContext, FunctionEntry, Trigger, TriggerType

if TYPE_CHECKING:
    from .engine import EngineCore

__all__ = ["ENGINE_WORKER_NAME", "Builtins", "parse_input", "sanitize_text"]

ENGINE_WORKER_NAME = "iii-engine"
MAX_TEXT = 280
MAX_INFO_BATCH = 32
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_Spec = dict[str, tuple[tuple[type, ...], bool]]
_STR: tuple[type, ...] = (str,)
_INT: tuple[type, ...] = (int,)
_BOOL: tuple[type, ...] = (bool,)
_LIST: tuple[type, ...] = (list,)
_T = TypeVar("_T")


def sanitize_text(value: Any) -> str | None:
    """Remove control and bidi characters, truncate to 280 characters; blank → ``None`` (§7.2.1)."""
    if not isinstance(value, str):
        return None
    cleaned = "".join(
        ch for ch in value if ch not in _BIDI and unicodedata.category(ch) not in ("Cc",)
    ).strip()[:MAX_TEXT]
    return cleaned or None


def _parse(function_id: str, data: Any, spec: _Spec) -> dict[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _bad(function_id, f"invalid type: {type(data).__name__}, expected an object")
    for name, (types, required) in spec.items():
        value = data.get(name)
        if value is None:
            if required:
                raise _bad(function_id, f"missing field `{name}`")
        elif not isinstance(value, types) or (types is _INT and isinstance(value, bool)):
            raise _bad(function_id, f"invalid type for `{name}`: expected {types[0].__name__}")
    return data


def parse_input(
    function_id: str, data: Any, spec: dict[str, tuple[tuple[type, ...], bool]]
) -> dict[str, Any]:
    """Check a built-in's input: an object (``None`` counts as ``{}``) whose fields in ``spec``
    (``name: (types, required)``) have those types; unknown keys are ignored. Raises
    ``InvocationError("deserialization_error", "Failed to deserialize input for <id>: …")``."""
    return _parse(function_id, data, spec)


def _bad(function_id: str, reason: str) -> InvocationError:
    return InvocationError(
        "deserialization_error", f"Failed to deserialize input for {function_id}: {reason}"
    )


def _is_internal(function_id: str, metadata: Any) -> bool:
    if function_id.startswith("engine::") and not function_id.startswith("engine::queue::"):
        return True
    return isinstance(metadata, dict) and metadata.get("internal") is True


def _rank(search: str, *fields: str | None) -> int | None:
    needle = search.lower()
    first = (fields[0] or "").lower()
    if first == needle:
        return 0
    if first.startswith(needle):
        return 1
    if needle in first:
        return 2
    if any(needle in (f or "").lower() for f in fields[1:]):
        return 3
    return None


def _matching(
    args: dict[str, Any],
    items: Iterable[_T],
    summary: Callable[[_T], dict[str, Any]],
    search_fields: Callable[[_T], tuple[str | None, ...]],
) -> list[dict[str, Any]]:
    """The summaries of ``items`` (in their order) that a list built-in returns for ``args``:
    those whose ``worker_name`` is ``args["worker"]`` and, with ``args["search"]``, that
    :func:`_rank` finds in ``search_fields(item)`` (the first field ranked first)."""
    worker, search = args.get("worker"), args.get("search")
    rows = []
    for item in items:
        row = summary(item)
        if worker and row["worker_name"] != worker:
            continue
        if search and _rank(search, *search_fields(item)) is None:
            continue
        rows.append(row)
    return rows


def _config_summary(trigger: Trigger) -> str:
    config = trigger.config
    if isinstance(config, dict):
        if trigger.trigger_type == "http" and "api_path" in config:
            return f"{str(config.get('http_method', 'GET')).upper()} {config['api_path']}"
        if "expression" in config:
            return str(config["expression"])
    text = json.dumps(config, separators=(",", ":"), default=str)
    return text if len(text) <= 80 else text[:77] + "..."


class Builtins:
    """Registers the ``engine::*`` functions of §7.1 on an :class:`EngineCore`."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self.registry = core.registry
        self.engine_id = str(uuid.uuid4())
        self.started_ms = int(time.time() * 1000)

    def install(self) -> None:
        table: dict[str, Callable[[CallContext, Any], Any]] = {
            "engine::channels::create": self.channels_create,
            "engine::workers::register": self.workers_register,
            "engine::functions::list": self.functions_list,
            "engine::functions::info": self.functions_info,
            "engine::workers::list": self.workers_list,
            "engine::workers::info": self.workers_info,
            "engine::triggers::list": self.triggers_list,
            "engine::triggers::info": self.triggers_info,
            "engine::registered-triggers::list": self.registered_triggers_list,
            "engine::registered-triggers::info": self.registered_triggers_info,
            "engine::register_trigger": self.register_trigger,
            "engine::unregister_trigger": self.unregister_trigger,
        }
        self.registry.add_builtins(table, internal=True, inline=("engine::workers::register",))

    # -- shapes ------------------------------------------------------------------------------

    def worker_name_of(self, entry: FunctionEntry) -> str:
        owner = entry.owner
        if owner is None:
            return ENGINE_WORKER_NAME
        return owner.name or entry.function_id.split("::", 1)[0]

    def function_summary(self, entry: FunctionEntry) -> dict[str, Any]:
        """FunctionSummary ``{function_id, namespace, worker_name, description?, metadata?}``."""
        out: dict[str, Any] = {
            "function_id": entry.function_id,
            "namespace": entry.namespace,
            "worker_name": self.worker_name_of(entry),
        }
        if entry.description is not None:
            out["description"] = entry.description
        if entry.metadata is not None:
            out["metadata"] = entry.metadata
        return out

    def function_detail(self, entry: FunctionEntry) -> dict[str, Any]:
        """FunctionDetail: the summary plus schemas and ``registered_triggers``."""
        out = self.function_summary(entry)
        if entry.request_format is not None:
            out["request_schema"] = entry.request_format
        if entry.response_format is not None:
            out["response_schema"] = entry.response_format
        out["registered_triggers"] = [
            {"id": t.id, "trigger_type": t.trigger_type, "config": t.config}
            for t in self.registry.triggers.values()
            if t.function_id == entry.function_id and t.namespace == entry.namespace
        ]
        return out

    def public_summaries(self) -> list[dict[str, Any]]:
        """Summaries of every non-internal function, sorted by id (for functions-available)."""
        entries = [
            e
            for e in self.registry.functions.values()
            if not _is_internal(e.function_id, e.metadata)
        ]
        entries.sort(key=lambda e: (e.function_id, e.namespace))
        return [self.function_summary(e) for e in entries]

    def worker_summary(self, conn: WorkerConnection) -> dict[str, Any]:
        info = conn.info
        return {
            "name": conn.display_name,
            "description": info.get("description"),
            "version": info.get("version"),
            "id": conn.worker_id,
            "namespace": conn.namespace or DEFAULT_NAMESPACE,
            "runtime": info.get("runtime", "unknown"),
            "os": info.get("os"),
            "status": "connected",
            "function_count": len(conn.functions),
            "connected_at_ms": conn.connected_at_ms,
            "active_invocations": len(conn.inflight),
            "isolation": info.get("isolation"),
            "ip_address": conn.ip_address,
        }

    def engine_summary(self) -> dict[str, Any]:
        return {
            "name": ENGINE_WORKER_NAME,
            "description": "embedded iii engine (iii-asgi)",
            "version": _version(),
            "id": self.engine_id,
            "namespace": DEFAULT_NAMESPACE,
            "runtime": "engine",
            "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "status": "available",
            "function_count": sum(1 for e in self.registry.functions.values() if e.owner is None),
            "connected_at_ms": self.started_ms,
            "active_invocations": 0,
            "isolation": "in-process",
            "ip_address": None,
        }

    def type_summary(self, ttype: TriggerType) -> dict[str, Any]:
        provider = ttype.provider
        name = (
            provider.display_name if isinstance(provider, WorkerConnection) else ENGINE_WORKER_NAME
        )
        return {
            "id": ttype.id,
            "namespace": ttype.namespace,
            "worker_name": name,
            "description": ttype.description,
        }

    def trigger_summary(self, trigger: Trigger) -> dict[str, Any]:
        owner = trigger.owner
        return {
            "id": trigger.id,
            "trigger_type": trigger.trigger_type,
            "function_id": trigger.function_id,
            "worker_name": owner.display_name if owner is not None else ENGINE_WORKER_NAME,
            "config": trigger.config,
            "config_summary": _config_summary(trigger),
        }

    # -- engine::channels::create (§6.1) -----------------------------------------------------

    async def channels_create(self, ctx: CallContext, data: Any) -> Any:
        """Create a data channel: {buffer_size?} → {writer: Ref, reader: Ref}. The calling
        worker owns it: it is deleted when that worker disconnects (the real engine records no
        owner and leaves it to the 5-minute sweep, §6.4)."""
        args = _parse("engine::channels::create", data, {"buffer_size": (_INT, False)})
        channel = self.core.channels.create(args.get("buffer_size"), owner=ctx.caller)
        return {"writer": channel.ref("write"), "reader": channel.ref("read")}

    # -- engine::workers::register (§7.2.1) --------------------------------------------------

    async def workers_register(self, ctx: CallContext, data: Any) -> Any:
        """Report a worker's metadata and fix its namespace: → {success}. An iii-asgi SDK
        also says how many invocations it can hold (``max_inflight_invocations``): more than
        that are refused with ``WORKER_BACKPRESSURE`` instead of sent."""
        fid = "engine::workers::register"
        args = _parse(
            fid,
            data,
            {
                "_caller_worker_id": (_STR, True),
                "runtime": (_STR, False),
                "version": (_STR, False),
                "name": (_STR, False),
                "description": (_STR, False),
                "os": (_STR, False),
                "telemetry": ((dict,), False),
                "pid": (_INT, False),
                "isolation": (_STR, False),
                "namespace": (_STR, False),
                "max_inflight_invocations": (_INT, False),
            },
        )
        conn = self.registry.workers.get(args["_caller_worker_id"])
        if conn is None:
            raise InvocationError(
                "NOT_FOUND", f"worker {args['_caller_worker_id']} is not connected"
            )
        declared = args.get("namespace")
        if declared is not None and not declared.strip():
            raise InvocationError("INVALID_NAMESPACE", "namespace must not be blank")
        namespace = conn.namespace or declared or DEFAULT_NAMESPACE
        name = sanitize_text(args.get("name"))
        if name is not None and not await self.core.claim_name(conn, namespace, name):
            return {"success": False}
        conn.name = name
        conn.registered = True
        capacity = args.get("max_inflight_invocations")  # iii-asgi SDKs: what they can hold
        if capacity is not None and capacity > 0:
            conn.max_inflight = min(capacity, self.core.config.max_inflight_invocations)
        conn.info = {
            "runtime": args.get("runtime") or "unknown",
            "version": args.get("version"),
            "description": sanitize_text(args.get("description")),
            "os": args.get("os"),
            "telemetry": args.get("telemetry"),
            "pid": args.get("pid"),
            "isolation": args.get("isolation"),
        }
        if conn.namespace is None:
            await self.core.resolve_namespace(conn, namespace)
        self.core.workers_available.fire(
            {"event": "worker_metadata_updated", "worker_id": conn.worker_id}
        )
        return {"success": True}

    # -- engine::functions::* ----------------------------------------------------------------

    async def functions_list(self, ctx: CallContext, data: Any) -> Any:
        """List functions: {search?, prefix?, worker?, workers?, include_internal?}.

        → ``{functions: [FunctionSummary]}``; a caller with an RBAC session sees only the
        functions it may call (protocol.md §8.3).
        """
        args = _parse(
            "engine::functions::list",
            data,
            {
                "search": (_STR, False),
                "prefix": (_STR, False),
                "worker": (_STR, False),
                "workers": (_LIST, False),
                "include_internal": (_BOOL, False),
            },
        )
        search, prefix = args.get("search"), args.get("prefix")
        workers = set(args.get("workers") or [])
        if args.get("worker"):
            workers.add(args["worker"])
        session = ctx.caller.session if ctx.caller is not None else None
        ranked: list[tuple[int, str, str, FunctionEntry]] = []
        for entry in self.registry.functions.values():
            if not args.get("include_internal") and _is_internal(entry.function_id, entry.metadata):
                continue
            if session is not None and not session.allows(entry.function_id, entry.namespace):
                continue
            if prefix and not entry.function_id.startswith(prefix):
                continue
            if (
                workers
                and self.worker_name_of(entry) not in workers
                and (entry.owner is None or entry.owner.worker_id not in workers)
            ):
                continue
            rank = 0
            if search:
                found = _rank(search, entry.function_id, entry.description)
                if found is None:
                    continue
                rank = found
            ranked.append((rank, entry.function_id, entry.namespace, entry))
        ranked.sort(key=lambda r: r[:3])
        return {"functions": [self.function_summary(r[3]) for r in ranked]}

    def _find_function(self, function_id: str, namespace: str | None) -> FunctionEntry:
        if namespace is not None:
            entry = self.registry.functions.get((namespace, function_id))
            if entry is None:
                raise InvocationError(
                    "NOT_FOUND", f"function '{function_id}' not found in namespace '{namespace}'"
                )
            return entry
        entry = self.registry.functions.get((DEFAULT_NAMESPACE, function_id))
        if entry is not None:
            return entry
        spaces = sorted(self.registry.function_namespaces.get(function_id, ()))
        if len(spaces) == 1:
            return self.registry.functions[(spaces[0], function_id)]
        if not spaces:
            raise InvocationError("NOT_FOUND", f"function '{function_id}' not found")
        raise InvocationError(
            "NOT_FOUND",
            f"function '{function_id}' is ambiguous: registered in namespaces "
            f"{', '.join(spaces)}. Pass `namespace`.",
        )

    async def functions_info(self, ctx: CallContext, data: Any) -> Any:
        """Describe functions: {function_id | function_ids[≤32], namespace?} → FunctionDetail(s)."""
        fid = "engine::functions::info"
        args = _parse(
            fid,
            data,
            {
                "function_id": (_STR, False),
                "function_ids": (_LIST, False),
                "namespace": (_STR, False),
            },
        )
        namespace = args.get("namespace")
        ids = args.get("function_ids")
        session = ctx.caller.session if ctx.caller is not None else None
        if ids is None:
            if args.get("function_id") is None:
                raise _bad(fid, "expected `function_id` or `function_ids`")
            entry = self._find_function(args["function_id"], namespace)
            if session is not None and not session.allows(entry.function_id, entry.namespace):
                raise InvocationError(
                    "FORBIDDEN",
                    f"function '{entry.function_id}' not allowed (add to rbac.expose_functions)",
                )
            return self.function_detail(entry)
        if len(ids) > MAX_INFO_BATCH or not all(isinstance(i, str) for i in ids):
            raise InvocationError(
                "INVALID_ARGUMENTS", f"function_ids must be at most {MAX_INFO_BATCH} strings"
            )
        out: list[dict[str, Any]] = []
        for function_id in ids:
            try:
                entry = self._find_function(function_id, namespace)
            except InvocationError:
                out.append({"function_id": function_id, "error": "not_found"})
                continue
            if session is not None and not session.allows(entry.function_id, entry.namespace):
                out.append({"function_id": function_id, "error": "forbidden"})
            else:
                out.append(self.function_detail(entry))
        return {"functions": out}

    # -- engine::workers::* ------------------------------------------------------------------

    def _listed_workers(self) -> Iterable[WorkerConnection]:
        return (
            c for c in self.registry.workers.values() if c.alive and c.info.get("pid") is not None
        )

    async def workers_list(self, ctx: CallContext, data: Any) -> Any:
        """List workers: {search?, runtime?, status?} → {workers: [WorkerSummary]}."""
        args = _parse(
            "engine::workers::list",
            data,
            {
                "search": (_STR, False),
                "runtime": (_STR, False),
                "status": (_STR, False),
            },
        )
        rows = [self.engine_summary()] + [self.worker_summary(c) for c in self._listed_workers()]
        search = (args.get("search") or "").lower()
        return {
            "workers": [
                r
                for r in rows
                if (not search or search in str(r["name"]).lower() or search in r["id"])
                and (args.get("runtime") is None or r["runtime"] == args["runtime"])
                and (args.get("status") is None or r["status"] == args["status"])
            ]
        }

    async def workers_info(self, ctx: CallContext, data: Any) -> Any:
        """Describe a worker: {name, namespace?}.

        → ``{worker, functions, trigger_types, registered_triggers}``; unknown → NOT_FOUND.
        """
        args = _parse(
            "engine::workers::info", data, {"name": (_STR, True), "namespace": (_STR, False)}
        )
        name, namespace = args["name"], args.get("namespace")
        if name == ENGINE_WORKER_NAME and namespace in (None, DEFAULT_NAMESPACE):
            detail = {**self.engine_summary(), "internal": True}
            functions = [e for e in self.registry.functions.values() if e.owner is None]
            types = [t for t in self.registry.trigger_types.values() if t.in_process]
            return {
                "worker": detail,
                "functions": [self.function_summary(e) for e in functions],
                "trigger_types": [self.type_summary(t) for t in types],
                "registered_triggers": [],
            }
        for conn in self.registry.workers.values():
            if not conn.alive or conn.display_name != name:
                continue
            if namespace is not None and (conn.namespace or DEFAULT_NAMESPACE) != namespace:
                continue
            detail = {**self.worker_summary(conn), "internal": False}
            if conn.info.get("pid") is not None:
                detail["pid"] = conn.info["pid"]
            return {
                "worker": detail,
                "functions": [
                    self.function_summary(self.registry.functions[k])
                    for k in sorted(conn.functions, key=lambda k: k[1])
                    if k in self.registry.functions
                ],
                "trigger_types": [
                    self.type_summary(self.registry.trigger_types[k])
                    for k in conn.trigger_types
                    if k in self.registry.trigger_types
                ],
                "registered_triggers": [
                    self.trigger_summary(self.registry.triggers[i])
                    for i in conn.triggers
                    if i in self.registry.triggers
                ],
            }
        raise InvocationError("NOT_FOUND", f"worker '{name}' not found")

    # -- engine::triggers::* (trigger types) -------------------------------------------------

    async def triggers_list(self, ctx: CallContext, data: Any) -> Any:
        """List trigger types: {search?, prefix?, worker?, include_internal?} → {triggers}."""
        args = _parse(
            "engine::triggers::list",
            data,
            {
                "search": (_STR, False),
                "prefix": (_STR, False),
                "worker": (_STR, False),
                "include_internal": (_BOOL, False),
            },
        )
        prefix = args.get("prefix")
        types = [
            t
            for t in sorted(self.registry.trigger_types.values(), key=lambda t: (t.id, t.namespace))
            if (args.get("include_internal") or not t.id.startswith("engine::"))
            and (not prefix or t.id.startswith(prefix))
        ]
        rows = _matching(args, types, self.type_summary, lambda t: (t.id, t.description))
        return {"triggers": rows}

    async def triggers_info(self, ctx: CallContext, data: Any) -> Any:
        """Describe a trigger type: {id, namespace?}.

        → ``{id, namespace, worker_name, description, …, instance_count}``.
        """
        args = _parse(
            "engine::triggers::info", data, {"id": (_STR, True), "namespace": (_STR, False)}
        )
        ttype = self.registry.trigger_types.get(
            (args.get("namespace") or DEFAULT_NAMESPACE, args["id"])
        )
        if ttype is None:
            raise InvocationError("NOT_FOUND", f"trigger type '{args['id']}' not found")
        out = self.type_summary(ttype)
        if ttype.trigger_request_format is not None:
            out["configuration_schema"] = ttype.trigger_request_format
        if ttype.call_request_format is not None:
            out["request_schema"] = ttype.call_request_format
        out["instance_count"] = sum(
            1 for t in self.registry.triggers.values() if t.provider is ttype
        )
        return out

    # -- engine::registered-triggers::* (bindings) -------------------------------------------

    async def registered_triggers_list(self, ctx: CallContext, data: Any) -> Any:
        """List bindings: {search?, trigger_type?, function_id?, worker?, include_internal?}."""
        args = _parse(
            "engine::registered-triggers::list",
            data,
            {
                "search": (_STR, False),
                "trigger_type": (_STR, False),
                "function_id": (_STR, False),
                "worker": (_STR, False),
                "include_internal": (_BOOL, False),
            },
        )
        trigger_type, function_id = args.get("trigger_type"), args.get("function_id")
        triggers = [
            t
            for t in sorted(self.registry.triggers.values(), key=lambda t: (t.trigger_type, t.id))
            if (args.get("include_internal") or not t.function_id.startswith("engine::"))
            and (not trigger_type or t.trigger_type == trigger_type)
            and (not function_id or t.function_id == function_id)
        ]
        rows = _matching(
            args,
            triggers,
            self.trigger_summary,
            lambda t: (t.function_id, t.trigger_type, t.id),
        )
        return {"registered_triggers": rows}

    async def registered_triggers_info(self, ctx: CallContext, data: Any) -> Any:
        """Describe a binding: {id} → {id, trigger_type, function_id, worker_name, config, …}."""
        args = _parse("engine::registered-triggers::info", data, {"id": (_STR, True)})
        trigger = self.registry.triggers.get(args["id"])
        if trigger is None:
            raise InvocationError("NOT_FOUND", f"trigger '{args['id']}' not found")
        out = self.trigger_summary(trigger)
        del out["config_summary"]
        if trigger.metadata is not None:
            out["metadata"] = trigger.metadata
        ttype = self.core.triggers.resolve(trigger)
        out["trigger"] = self.type_summary(ttype) if ttype is not None else None
        entry = self.registry.functions.get((trigger.namespace, trigger.function_id))
        out["function"] = self.function_detail(entry) if entry is not None else None
        return out

    async def register_trigger(self, ctx: CallContext, data: Any) -> Any:
        """Create a durable, unowned binding: {trigger_type, function_id, config?, metadata?,
        trigger_namespace?} → {id}; waits up to 10 s for a worker provider's ack (§2.11)."""
        fid = "engine::register_trigger"
        args = _parse(
            fid,
            data,
            {
                "trigger_type": (_STR, True),
                "function_id": (_STR, True),
                "trigger_namespace": (_STR, False),
            },
        )
        trigger_namespace = args.get("trigger_namespace")
        if trigger_namespace is not None and not trigger_namespace.strip():
            raise InvocationError("INVALID_NAMESPACE", "trigger_namespace must not be blank")
        function_id: str = args["function_id"]
        session = ctx.caller.session if ctx.caller is not None else None
        if session is not None and session.prefix:  # protocol.md §8.6
            function_id = f"{session.prefix}::{function_id}"
        trigger = Trigger(
            str(uuid.uuid4()),
            args["trigger_type"],
            function_id,
            config=args.get("config"),
            metadata=args.get("metadata"),
            trigger_namespace=trigger_namespace,
        )
        error = await self.core.triggers.register(trigger, wait_ack=True)
        if error is not None:
            raise InvocationError(error["code"], error["message"])
        return {"id": trigger.id}

    async def unregister_trigger(self, ctx: CallContext, data: Any) -> Any:
        """Remove a binding: {id, trigger_type?} → {removed: bool}; the caller's own binding or
        a durable one (engine::register_trigger), else FORBIDDEN."""
        args = _parse(
            "engine::unregister_trigger",
            data,
            {
                "id": (_STR, True),
                "trigger_type": (_STR, False),
            },
        )
        removed = await self.core.triggers.unregister(args["id"], ctx.caller, durable_ok=True)
        return {"removed": removed}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iii-asgi")
    except PackageNotFoundError:
        return "0"
