"""The state built-in (builtins.md §4): ``state::*`` functions and the ``state`` trigger type.

Functions (namespace ``default``; input objects tolerate extra keys):

========================  ==========================  ===========================================
``state::set``            ``{scope, key, value}``     ``{"old_value", "new_value"}`` (``data`` is
                                                      accepted for ``value``)
``state::get``            ``{scope, key}``            the value or ``null``
``state::delete``         ``{scope, key}``            the deleted value or ``null`` (not wrapped)
``state::update``         ``{scope, key, ops}``       ``{"old_value", "new_value", "errors"?}``
``state::list``           ``{scope}``                 array of the scope's values, insertion order
``state::list_groups``    ``{}``                      ``{"groups": [sorted scope names]}``
========================  ==========================  ===========================================

Errors: ``deserialization_error`` (bad input), ``VALUE_TOO_LARGE`` (``set`` over
``EngineConfig.state_max_value_bytes``), and the adapter failures ``SET_ERROR``, ``GET_ERROR``,
``DELETE_ERROR``, ``UPDATE_ERROR``, ``LIST_ERROR``, ``LIST_GROUPS_ERROR``.

Trigger ``state``: config ``{scope?, key?, condition_function_id?}`` (exact matches; absent
matches all); payload ``{"type": "state", "event_type": "state:created" | "state:updated" |
"state:deleted", "scope", "key", "old_value", "new_value"}``, fired after ``set``, ``update``
and ``delete`` (a delete of a missing key fires too, with both values ``null``). With a shared
adapter (Redis) the payload also goes to the other engines, whose bindings fire as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic_core

from ...adapters.base import Events
from ...adapters.local import NO_EVENTS
from ...core.builtins import _parse
from ...core.errors import InvocationError
from ...core.fanout import Binding, Fanout
from ...core.registry import CallContext, Trigger
from ...core.worker import BuiltinWorker, EngineServices
from ...storage import MISSING, Storage, StorageError
from ...storage.update_ops import apply_ops, parse_ops

__all__ = ["STATE_SPACE", "StateWorker", "parse_trigger_config"]

#: Storage space of state documents (collection = scope).
STATE_SPACE = "state"

_STR: tuple[type, ...] = (str,)


def _json(value: Any) -> Any:
    return None if value is MISSING else value


def parse_trigger_config(
    trigger: Trigger, keys: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, str]:
    """Validate a built-in trigger's config: an object (or null) whose ``keys`` are strings;
    raises ``ValueError`` (→ ``trigger_registration_failed``)."""
    config = trigger.config
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(f"{trigger.trigger_type} trigger config must be an object")
    out: dict[str, str] = {}
    for key in keys:
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"{trigger.trigger_type} trigger config `{key}` must be a string")
        out[key] = value
    for key in required:
        if not out.get(key):
            raise ValueError(f"{trigger.trigger_type} trigger config requires `{key}`")
    return out


class StateWorker(BuiltinWorker):
    """The ``iii-state`` built-in of one engine: functions, the ``state`` trigger type, items
    in ``storage``, trigger events shared with other engines through ``events``."""

    name = "iii-state"

    def __init__(self, core: EngineServices, storage: Storage, events: Events = NO_EVENTS) -> None:
        self.core = core
        self.storage = storage
        self.fanout = Fanout(core.invoker, core.spawn)
        self.events = events
        events.subscribe(self._deliver)

    def install(self) -> None:
        table: dict[str, Callable[[CallContext, Any], Any]] = {
            "state::set": self.set,
            "state::get": self.get,
            "state::delete": self.delete,
            "state::update": self.update,
            "state::list": self.list,
            "state::list_groups": self.list_groups,
        }
        self.core.registry.add_builtins(table)
        self.core.triggers.register_in_process("state", "State change trigger", self)

    # -- trigger provider ----------------------------------------------------------------------

    async def register_trigger(self, trigger: Trigger) -> None:
        config = parse_trigger_config(trigger, ("scope", "key", "condition_function_id"))
        self.fanout.add(Binding(trigger, config, config.get("condition_function_id")))

    async def unregister_trigger(self, trigger: Trigger) -> None:
        self.fanout.remove(trigger.id)

    def fire(self, scope: str, key: str, old: Any, new: Any, deleted: bool = False) -> None:
        if not self.core.config.state_triggers_enabled:
            return
        if deleted:
            event = "state:deleted"
        else:
            event = "state:created" if old is MISSING else "state:updated"
        payload = {
            "type": "state",
            "event_type": event,
            "scope": scope,
            "key": key,
            "old_value": _json(old),
            "new_value": None if deleted else _json(new),
        }
        self.events.publish(payload)
        self._deliver(payload)

    def _deliver(self, payload: Any) -> None:
        """Queue a ``state`` event (this engine's, or another's) for the matching bindings."""
        if not self.fanout.bindings or not self.core.config.state_triggers_enabled:
            return
        scope, key = payload["scope"], payload["key"]
        for binding in list(self.fanout.bindings.values()):
            config = binding.config
            if config.get("scope", scope) != scope or config.get("key", key) != key:
                continue
            self.fanout.deliver(binding, payload)

    # -- functions (§4.1) ----------------------------------------------------------------------

    async def set(self, ctx: CallContext, data: Any) -> Any:
        """Store a value: {scope, key, value} → {old_value, new_value}."""
        fid = "state::set"
        args = _parse(fid, data, {"scope": (_STR, True), "key": (_STR, True)})
        if "value" in args:
            value = args["value"]
        elif "data" in args:
            value = args["data"]
        else:
            raise InvocationError(
                "deserialization_error",
                f"Failed to deserialize input for {fid}: missing field `value`",
            )
        limit = self.core.config.state_max_value_bytes
        if limit is not None:
            size = len(pydantic_core.to_json(value))
            if size > limit:
                raise InvocationError(
                    "VALUE_TOO_LARGE", f"Value size {size} bytes exceeds the limit of {limit} bytes"
                )
        scope, key = args["scope"], args["key"]
        try:
            old = await self.storage.set(STATE_SPACE, scope, key, value)
        except StorageError as exc:
            raise InvocationError("SET_ERROR", str(exc)) from None
        self.fire(scope, key, old, value)
        return {"old_value": _json(old), "new_value": value}

    async def get(self, ctx: CallContext, data: Any) -> Any:
        """Read a value: {scope, key} → the value or null."""
        args = _parse("state::get", data, {"scope": (_STR, True), "key": (_STR, True)})
        try:
            return _json(await self.storage.get(STATE_SPACE, args["scope"], args["key"]))
        except StorageError as exc:
            raise InvocationError("GET_ERROR", str(exc)) from None

    async def delete(self, ctx: CallContext, data: Any) -> Any:
        """Delete a value: {scope, key} → the deleted value or null."""
        args = _parse("state::delete", data, {"scope": (_STR, True), "key": (_STR, True)})
        scope, key = args["scope"], args["key"]
        try:
            old = await self.storage.delete(STATE_SPACE, scope, key)
        except StorageError as exc:
            raise InvocationError("DELETE_ERROR", str(exc)) from None
        self.fire(scope, key, old, None, deleted=True)
        return _json(old)

    async def update(self, ctx: CallContext, data: Any) -> Any:
        """Apply update ops: {scope, key, ops} → {old_value, new_value, errors?}."""
        fid = "state::update"
        args = _parse(fid, data, {"scope": (_STR, True), "key": (_STR, True)})
        ops = parse_ops(fid, args.get("ops"))
        scope, key = args["scope"], args["key"]
        errors: list[dict[str, Any]] = []

        def change(old: Any) -> Any:
            new, found = apply_ops(old, ops)
            errors[:] = found
            return new

        try:
            old, new = await self.storage.update(STATE_SPACE, scope, key, change)
        except StorageError as exc:
            raise InvocationError("UPDATE_ERROR", str(exc)) from None
        self.fire(scope, key, old, new)
        result: dict[str, Any] = {"old_value": _json(old), "new_value": new}
        if errors:
            result["errors"] = errors
        return result

    async def list(self, ctx: CallContext, data: Any) -> Any:
        """List a scope's values: {scope} → [value, …] in insertion order."""
        args = _parse("state::list", data, {"scope": (_STR, True)})
        try:
            items = await self.storage.list_items(STATE_SPACE, args["scope"])
        except StorageError as exc:
            raise InvocationError("LIST_ERROR", str(exc)) from None
        return [value for _, value in items]

    async def list_groups(self, ctx: CallContext, data: Any) -> Any:
        """List the scopes: {} → {groups: [scope, …] sorted}."""
        _parse("state::list_groups", data, {})
        try:
            return {"groups": await self.storage.list_collections(STATE_SPACE)}
        except StorageError as exc:
            raise InvocationError("LIST_GROUPS_ERROR", str(exc)) from None
