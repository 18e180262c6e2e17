"""The stream built-in (builtins.md §6): ``stream::*`` functions and the ``stream``,
``stream:join`` and ``stream:leave`` trigger types. The client-facing WebSocket is
:mod:`iii_asgi.engine.workers.stream.socket`.

Data: ``stream_name`` → ``group_id`` → ``item_id`` → JSON (storage space ``stream:<name>``,
collection = group id).

=======================  ===============================================  ==========================
``stream::set``          ``{stream_name, group_id, item_id, data}``       ``{old_value, new_value}``
``stream::get``          ``{stream_name, group_id, item_id}``             value or ``null``
``stream::delete``       ``{stream_name, group_id, item_id}``             ``{old_value}``
``stream::list``         ``{stream_name, group_id}``                      array of values
``stream::list_groups``  ``{stream_name}``                                array of group ids
``stream::list_all``     ``{}``                                           ``{stream: [{id, groups}],
                                                                          count}``
``stream::send``         ``{stream_name, group_id, id?, type, data}``     ``null`` (not stored)
``stream::update``       ``{stream_name, group_id, item_id, ops}``        ``{old_value, new_value,
                                                                          errors?}``
=======================  ===============================================  ==========================

A function ``stream::<op>(<stream_name>)`` registered in ``default`` (``create_stream`` /
``IStream``) replaces the store for set, get, delete, list, list_groups and update; its result must
have the shape above (else ``JSON_ERROR``); events are still emitted from it. Such a custom
stream belongs to the connection that registered its first override: another connection's
override of the same stream is refused (``FUNCTION_NAMESPACE_CONFLICT`` naming the owner), and so
is any override of a stream the engine's store holds items for (owner ``""``), so no worker takes
over a stream others use (:meth:`StreamWorker.guard`; docs/security.md).

Events: set/update → ``create`` (no previous value) or ``update``; delete → ``delete`` with the
old value, only when the item existed; send → ``{"type": "event", "event": {"type", "data"}}``.
Each write first queues the ``stream`` triggers, then broadcasts to socket subscribers. With a
shared adapter (Redis) the message also goes to the other engines, which do the same with it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from ...adapters.base import Events
from ...adapters.local import NO_EVENTS
from ...core.builtins import _parse
from ...core.connection import WorkerConnection
from ...core.errors import InvocationError
from ...core.fanout import Binding, Fanout
from ...core.ownership import Refusal
from ...core.registry import DEFAULT_NAMESPACE, CallContext, Trigger
from ...core.worker import BuiltinWorker, EngineServices, Listener
from ...storage import MISSING, Storage, StorageError
from ...storage.update_ops import apply_ops, parse_ops
from ..state.worker import parse_trigger_config
from .socket import StreamSocketApp, StreamSubscribers, wrapper

__all__ = ["JoinLeaveProvider", "StreamWorker", "stream_space"]

logger = logging.getLogger("iii_asgi.engine")

_STR: tuple[type, ...] = (str,)
_ITEM = {"stream_name": (_STR, True), "group_id": (_STR, True), "item_id": (_STR, True)}
_GROUP = {"stream_name": (_STR, True), "group_id": (_STR, True)}
#: The operations a custom stream may override, and the override's function id.
OVERRIDE_OPS = ("set", "get", "delete", "list", "list_groups", "update")
_OVERRIDE = re.compile(r"stream::(?:set|get|delete|list|list_groups|update)\((.*)\)", re.DOTALL)


def stream_space(stream_name: str) -> str:
    """Storage space of a stream's documents."""
    return f"stream:{stream_name}"


class JoinLeaveProvider:
    """``stream:join`` / ``stream:leave``: config ignored, every binding fires (§6.3)."""

    def __init__(self) -> None:
        self.bindings: dict[str, Trigger] = {}

    async def register_trigger(self, trigger: Trigger) -> None:
        self.bindings[trigger.id] = trigger

    async def unregister_trigger(self, trigger: Trigger) -> None:
        self.bindings.pop(trigger.id, None)


class StreamWorker(BuiltinWorker):
    """The ``iii-stream`` built-in of one engine (items in ``storage``, change events shared
    with other engines through ``events``)."""

    name = "iii-stream"

    def __init__(self, core: EngineServices, storage: Storage, events: Events = NO_EVENTS) -> None:
        self.core = core
        self.storage = storage
        self.events = events
        events.subscribe(self._deliver)
        self.fanout = Fanout(core.invoker, core.spawn)
        self.join = JoinLeaveProvider()
        self.leave = JoinLeaveProvider()
        #: the socket's subscriptions, set by the stream socket app when it is served
        self.subscribers: StreamSubscribers | None = None
        #: names of streams with items in the engine's store (loaded at start, grown on writes)
        self.stored: set[str] = set()

    def listeners(self) -> list[Listener]:
        """The client-facing stream WebSocket (builtins.md §6.4) when ``stream_port`` is set."""
        c = self.core.config
        if c.stream_port is None:
            return []
        options = {"ws": c.ws, "ws_max_size": c.max_message_size, "ws_per_message_deflate": False}
        app = StreamSocketApp(self)
        return [Listener("stream", app, c.stream_host, c.stream_port, options)]

    def install(self) -> None:
        table: dict[str, Callable[[CallContext, Any], Any]] = {
            "stream::set": self.set,
            "stream::get": self.get,
            "stream::delete": self.delete,
            "stream::list": self.list,
            "stream::list_groups": self.list_groups,
            "stream::list_all": self.list_all,
            "stream::send": self.send,
            "stream::update": self.update,
        }
        self.core.registry.add_builtins(table)
        self.core.function_guards.append(self.guard)
        triggers = self.core.triggers
        triggers.register_in_process("stream", "Stream item change trigger", self)
        triggers.register_in_process("stream:join", "Stream subscription join", self.join)
        triggers.register_in_process("stream:leave", "Stream subscription leave", self.leave)

    async def start(self) -> None:
        prefix = stream_space("")
        self.stored = {s[len(prefix) :] for s in await self.storage.list_spaces(prefix)}

    def guard(self, conn: WorkerConnection, namespace: str, function_id: str) -> Refusal | None:
        """Refuse a custom-stream override (``stream::<op>(<name>)`` in ``default``) of a stream
        another live connection overrides, or one the engine's store holds items for."""
        match = _OVERRIDE.fullmatch(function_id) if namespace == DEFAULT_NAMESPACE else None
        if match is None:
            return None
        name = match[1]
        mine = False
        for op in OVERRIDE_OPS:
            owner = self.core.registry.live_owner(DEFAULT_NAMESPACE, f"stream::{op}({name})")
            if isinstance(owner, WorkerConnection):
                if owner is not conn:
                    reason = f"custom stream {name!r} belongs to worker {owner.worker_id}"
                    return Refusal(reason, owner.worker_id)
                mine = True
        if not mine and name in self.stored:
            return Refusal(f"stream {name!r} is kept in the engine's store; no worker overrides it")
        return None

    # -- the stream trigger (§6.2) -------------------------------------------------------------

    async def register_trigger(self, trigger: Trigger) -> None:
        keys = ("stream_name", "group_id", "item_id", "condition_function_id")
        config = parse_trigger_config(trigger, keys, required=("stream_name",))
        self.fanout.add(Binding(trigger, config, config.get("condition_function_id")))

    async def unregister_trigger(self, trigger: Trigger) -> None:
        self.fanout.remove(trigger.id)

    def emit(self, stream_name: str, group_id: str, item_id: str | None, event: Any) -> None:
        """Queue the matching ``stream`` triggers, then broadcast to socket subscribers (here
        and on the other engines)."""
        message = wrapper(stream_name, group_id, item_id, event)
        self.events.publish(message)
        self._deliver(message)

    def _deliver(self, message: Any) -> None:
        """A change message (this engine's, or another's) to the triggers and the socket."""
        stream_name, group_id, item_id = message["streamName"], message["groupId"], message["id"]
        for binding in list(self.fanout.bindings.values()):
            config = binding.config
            if config["stream_name"] != stream_name:
                continue
            if config.get("group_id") and config["group_id"] != group_id:
                continue
            if config.get("item_id") and config["item_id"] != item_id:
                continue
            self.fanout.deliver(binding, message)
        if self.subscribers is not None:
            self.subscribers.broadcast(message)

    def _changed(self, args: dict[str, Any], old: Any, new: Any) -> None:
        kind = "create" if old is MISSING or old is None else "update"
        self.emit(
            args["stream_name"], args["group_id"], args["item_id"], {"type": kind, "data": new}
        )

    # -- custom-stream overrides (§6.1) --------------------------------------------------------

    async def _override(self, op: str, args: dict[str, Any]) -> tuple[bool, Any]:
        function_id = f"stream::{op}({args['stream_name']})"
        if (DEFAULT_NAMESPACE, function_id) not in self.core.registry.functions:
            return False, None
        data = {k: v for k, v in args.items() if k != "_caller_worker_id"}
        return True, await self.core.invoker.call(function_id, data)

    @staticmethod
    def _shape(op: str, result: Any, ok: bool) -> None:
        if not ok:
            raise InvocationError(
                "JSON_ERROR", f"custom stream::{op} returned a result of the wrong shape"
            )

    # -- functions -----------------------------------------------------------------------------

    async def set(self, ctx: CallContext, data: Any) -> Any:
        """Store an item: {stream_name, group_id, item_id, data} → {old_value, new_value}."""
        args = _parse("stream::set", data, _ITEM)
        if "data" not in args:
            raise _missing("stream::set", "data")
        overridden, result = await self._override("set", args)
        if overridden:
            self._shape("set", result, isinstance(result, dict) and "new_value" in result)
            old = result.get("old_value")
            new = result["new_value"]
            self._changed(args, MISSING if old is None else old, new)
            return {"old_value": old, "new_value": new}
        space, group, item = stream_space(args["stream_name"]), args["group_id"], args["item_id"]
        self.stored.add(args["stream_name"])  # before the await: the guard sees it at once
        try:
            old = await self.storage.set(space, group, item, args["data"])
        except StorageError as exc:
            raise InvocationError("STREAM_SET_ERROR", str(exc)) from None
        self._changed(args, old, args["data"])
        return {"old_value": None if old is MISSING else old, "new_value": args["data"]}

    async def get(self, ctx: CallContext, data: Any) -> Any:
        """Read an item: {stream_name, group_id, item_id} → the value or null."""
        args = _parse("stream::get", data, _ITEM)
        overridden, result = await self._override("get", args)
        if overridden:
            return result
        space = stream_space(args["stream_name"])
        try:
            value = await self.storage.get(space, args["group_id"], args["item_id"])
        except StorageError as exc:
            raise InvocationError("STREAM_GET_ERROR", str(exc)) from None
        return None if value is MISSING else value

    async def delete(self, ctx: CallContext, data: Any) -> Any:
        """Delete an item: {stream_name, group_id, item_id} → {old_value}."""
        args = _parse("stream::delete", data, _ITEM)
        overridden, result = await self._override("delete", args)
        if overridden:
            self._shape("delete", result, isinstance(result, dict))
            old = result.get("old_value")
            deleted = old is not None
        else:
            space = stream_space(args["stream_name"])
            try:
                stored = await self.storage.delete(space, args["group_id"], args["item_id"])
            except StorageError as exc:
                raise InvocationError("STREAM_DELETE_ERROR", str(exc)) from None
            deleted = stored is not MISSING  # a stored null is deleted too
            old = stored if deleted else None
        if deleted:
            event = {"type": "delete", "data": old}
            self.emit(args["stream_name"], args["group_id"], args["item_id"], event)
        return {"old_value": old}

    async def list(self, ctx: CallContext, data: Any) -> Any:
        """List a group's items: {stream_name, group_id} → [value, …] in insertion order."""
        args = _parse("stream::list", data, _GROUP)
        overridden, result = await self._override("list", args)
        if overridden:
            self._shape("list", result, isinstance(result, list))
            return result
        try:
            items = await self.storage.list_items(
                stream_space(args["stream_name"]), args["group_id"]
            )
        except StorageError as exc:
            raise InvocationError("STREAM_GET_GROUP_ERROR", str(exc)) from None
        return [value for _, value in items]

    async def list_groups(self, ctx: CallContext, data: Any) -> Any:
        """List a stream's groups: {stream_name} → [group_id, …]."""
        args = _parse("stream::list_groups", data, {"stream_name": (_STR, True)})
        overridden, result = await self._override("list_groups", args)
        if overridden:
            ok = isinstance(result, list) and all(isinstance(g, str) for g in result)
            self._shape("list_groups", result, ok)
            return result
        try:
            return await self.storage.list_collections(stream_space(args["stream_name"]))
        except StorageError as exc:
            raise InvocationError("STREAM_LIST_GROUPS_ERROR", str(exc)) from None

    async def list_all(self, ctx: CallContext, data: Any) -> Any:
        """List every stream: {} → {stream: [{id, groups}], count}."""
        _parse("stream::list_all", data, {})
        storage = self.storage
        prefix = stream_space("")
        try:
            streams: list[dict[str, Any]] = [
                {"id": space[len(prefix) :], "groups": await storage.list_collections(space)}
                for space in await storage.list_spaces(prefix)
            ]
        except StorageError as exc:
            raise InvocationError("STREAM_LIST_ALL_ERROR", str(exc)) from None
        streams.sort(key=lambda s: str(s["id"]))
        return {"stream": streams, "count": len(streams)}

    async def send(self, ctx: CallContext, data: Any) -> Any:
        """Send a custom event (not stored): {stream_name, group_id, id?, type, data} → null."""
        fid = "stream::send"
        args = _parse(fid, data, {**_GROUP, "id": (_STR, False), "type": (_STR, True)})
        if "data" not in args:
            raise _missing(fid, "data")
        event = {"type": "event", "event": {"type": args["type"], "data": args["data"]}}
        self.emit(args["stream_name"], args["group_id"], args.get("id"), event)
        return None

    async def update(self, ctx: CallContext, data: Any) -> Any:
        """Apply update ops to an item → {old_value, new_value, errors?}.

        Input ``{stream_name, group_id, item_id, ops}`` (builtins.md §5)."""
        fid = "stream::update"
        args = _parse(fid, data, _ITEM)
        ops = parse_ops(fid, args.get("ops"))
        overridden, result = await self._override("update", args)
        if overridden:
            self._shape("update", result, isinstance(result, dict) and "new_value" in result)
            old = result.get("old_value")
            self._changed(args, MISSING if old is None else old, result["new_value"])
            return result
        errors: list[dict[str, Any]] = []

        def change(old: Any) -> Any:
            new, found = apply_ops(old, ops)
            errors[:] = found
            return new

        space = stream_space(args["stream_name"])
        self.stored.add(args["stream_name"])
        try:
            old, new = await self.storage.update(space, args["group_id"], args["item_id"], change)
        except StorageError as exc:
            raise InvocationError("STREAM_UPDATE_ERROR", str(exc)) from None
        self._changed(args, old, new)
        out: dict[str, Any] = {"old_value": None if old is MISSING else old, "new_value": new}
        if errors:
            out["errors"] = errors
        return out


def _missing(function_id: str, field: str) -> InvocationError:
    return InvocationError(
        "deserialization_error",
        f"Failed to deserialize input for {function_id}: missing field `{field}`",
    )
