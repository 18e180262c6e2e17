"""What a worker registers with the engine, kept to be replayed on every reconnect (protocol.md
§1.4, §2): functions, triggers, trigger types it provides, services; and the handles
(:class:`FunctionRef`, :class:`Trigger`, :class:`TriggerTypeRef`) that withdraw them.

Functions another live worker owns stay registered here as standbys (:mod:`iii._standby`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from . import protocol as wire
from ._config import ClientConfig
from ._connection import Connection
from ._handlers import LocalFunction, jsonable
from ._loop import ClientLoop
from ._standby import Standby
from .http import HttpInvocationConfig
from .types import (
    RegisterTriggerInput,
    RegisterTriggerTypeInput,
    TriggerConfig,
    TriggerHandler,
)

__all__ = ["FunctionRef", "Registrations", "Trigger", "TriggerTypeRef"]

logger = logging.getLogger("iii.client")


class FunctionRef:
    """Handle of a registered function: ``id`` and ``unregister()``."""

    def __init__(self, registrations: Registrations, function_id: str) -> None:
        self.id = function_id
        self._registrations = registrations

    def unregister(self) -> None:
        """Withdraw the function (``unregisterfunction``, §2.5). Idempotent."""
        self._registrations.unregister_function(self.id)

    def __repr__(self) -> str:
        return f"FunctionRef(id={self.id!r})"


class Trigger:
    """Handle of a registered trigger (binding): ``id`` and ``unregister()``."""

    def __init__(self, registrations: Registrations, trigger_id: str, trigger_type: str) -> None:
        self.id = trigger_id
        self.trigger_type = trigger_type
        self._registrations = registrations

    def unregister(self) -> None:
        """Remove the binding (``unregistertrigger``, §2.10). Idempotent."""
        self._registrations.unregister_trigger(self.id)

    def __repr__(self) -> str:
        return f"Trigger(id={self.id!r}, trigger_type={self.trigger_type!r})"


TriggerConfigT = TypeVar("TriggerConfigT")
CallRequestT = TypeVar("CallRequestT")


class TriggerTypeRef(Generic[TriggerConfigT, CallRequestT]):
    """Handle of a trigger type this worker provides; ``TriggerTypeRef[Cfg, Req]`` names its
    trigger config and call request types (0.25), for type checkers only."""

    def __init__(self, registrations: Registrations, type_id: str) -> None:
        self.id = type_id
        self._registrations = registrations

    def register_trigger(self, function_id: str, config: Any, metadata: Any = None) -> Trigger:
        """Bind ``function_id`` to a trigger of this type."""
        return self._registrations.register_trigger(
            {"type": self.id, "function_id": function_id, "config": config, "metadata": metadata}
        )

    def register_function(
        self, function_id: str, handler: Callable[..., Any], *, description: str | None = None
    ) -> FunctionRef:
        """Register a function (a convenience, same as ``client.register_function``)."""
        return self._registrations.register_function(function_id, handler, description=description)

    def unregister(self) -> None:
        self._registrations.unregister_trigger_type({"id": self.id})


class Registrations:
    """One client's registrations. The ``register_*`` methods are :class:`iii.III`'s (see their
    docstrings there); they work from any thread and send on the client's loop."""

    def __init__(self, config: ClientConfig, conn: Connection, client_loop: ClientLoop) -> None:
        self._config = config
        self._conn = conn
        self._client_loop = client_loop
        self.functions: dict[str, LocalFunction | HttpInvocationConfig] = {}
        self.function_frames: dict[str, wire.Frame] = {}
        self.triggers: dict[str, wire.Frame] = {}
        self.trigger_types: dict[str, tuple[wire.Frame, TriggerHandler[Any]]] = {}
        self.services: dict[str, wire.Frame] = {}
        self._provided: dict[str, TriggerConfig[Any]] = {}
        #: Registrations the engine refused (``III.registration_errors``).
        self.errors: list[dict[str, Any]] = []
        self.standby = Standby(self, conn, client_loop, config)

    def replay(self) -> list[wire.Frame]:
        """Every registration, to send on a new connection (§1.4): trigger types, services,
        functions, triggers. Standby rejections start afresh."""
        self.standby.reset()
        return [
            *(frame for frame, _ in self.trigger_types.values()),
            *self.services.values(),
            *self.function_frames.values(),
            *self.triggers.values(),
        ]

    def _post_soon(self, frame: wire.Frame) -> None:
        conn = self._conn
        self._client_loop.call_soon(lambda: conn.post(frame))

    # ------------------------------------------------------------------ functions

    def register_function(
        self,
        function_id: str,
        handler_or_invocation: Callable[..., Any] | HttpInvocationConfig,
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        request_format: Any = None,
        response_format: Any = None,
    ) -> FunctionRef:
        if not isinstance(function_id, str):
            raise TypeError("function_id must be str")
        if not function_id.strip():
            raise ValueError("function_id must not be empty")
        if function_id in self.functions:
            raise ValueError(f"function {function_id!r} is already registered on this worker")
        frame: wire.Frame = {"type": "registerfunction", "id": function_id}
        entry: LocalFunction | HttpInvocationConfig
        if isinstance(handler_or_invocation, HttpInvocationConfig):
            entry = handler_or_invocation
            frame["invocation"] = entry.to_wire()
        else:
            entry = LocalFunction.from_handler(
                function_id, handler_or_invocation, request_format, response_format
            )
            request_format, response_format = entry.request_format, entry.response_format
        if description is not None:
            frame["description"] = description
        if request_format is not None:
            frame["request_format"] = jsonable(request_format)
        if response_format is not None:
            frame["response_format"] = jsonable(response_format)
        if metadata is not None:
            frame["metadata"] = metadata
        self.functions[function_id] = entry
        self.function_frames[function_id] = frame
        self._post_soon(frame)
        return FunctionRef(self, function_id)

    def unregister_function(self, function_id: str) -> None:
        if self.functions.pop(function_id, None) is None:
            return
        self.function_frames.pop(function_id, None)
        self._client_loop.call_soon(lambda: self.standby.forget_function(function_id))
        self._post_soon({"type": "unregisterfunction", "id": function_id})

    # ------------------------------------------------------------------ triggers

    def register_trigger(
        self,
        trigger: RegisterTriggerInput | Mapping[str, Any] | str,
        function_id: str | None = None,
        config: Any = None,
        *,
        metadata: Any = None,
        **kwargs: Any,
    ) -> Trigger:
        if isinstance(trigger, str):
            spec = RegisterTriggerInput(
                type=trigger,
                function_id=function_id or "",
                config=config,
                metadata=metadata,
                **kwargs,
            )
        elif isinstance(trigger, RegisterTriggerInput):
            spec = trigger
        else:
            spec = RegisterTriggerInput.model_validate(dict(trigger))
        if not spec.function_id:
            raise ValueError("register_trigger needs a function_id")
        trigger_id = str(uuid.uuid4())
        frame: wire.Frame = {
            "type": "registertrigger",
            "id": trigger_id,
            "trigger_type": spec.type,
            "function_id": spec.function_id,
            "config": jsonable(spec.config),
        }
        if spec.metadata is not None:
            frame["metadata"] = spec.metadata
        namespace = spec.namespace or self._config.namespace
        if namespace is not None:
            frame["namespace"] = namespace
        if spec.trigger_namespace is not None:
            frame["trigger_namespace"] = spec.trigger_namespace
        self.triggers[trigger_id] = frame
        self._post_soon(frame)
        return Trigger(self, trigger_id, spec.type)

    def unregister_trigger(self, trigger_id: str) -> None:
        frame = self.triggers.pop(trigger_id, None)
        if frame is None:
            return
        self._client_loop.call_soon(lambda: self.standby.forget_trigger(trigger_id))
        self._post_soon(
            {"type": "unregistertrigger", "id": trigger_id, "trigger_type": frame["trigger_type"]}
        )

    def on_trigger_result(self, frame: wire.Frame) -> None:
        """A ``triggerregistrationresult`` (§2.11): the engine reports only failures."""
        error = frame.get("error")
        if error is None or self.standby.trigger_failed(frame):
            return
        body = error if isinstance(error, dict) else {"message": str(error)}
        logger.error(
            "[iii] Trigger registration failed for '%s' (%s): %s",
            frame["id"],
            frame["trigger_type"],
            body.get("message"),
        )
        self.errors.append(
            {
                "kind": "trigger",
                "id": frame["id"],
                "function_id": frame.get("function_id"),
                "code": body.get("code"),
                "message": body.get("message"),
            }
        )

    def on_function_rejected(self, frame: wire.Frame) -> None:
        """A ``FUNCTION_NAMESPACE_CONFLICT`` rejection (§1.10, §2.6): a standby, or skipped."""
        if self.standby.rejected(frame.get("function_id", ""), frame.get("owner_worker_id", "")):
            return
        logger.warning(
            "iii: engine refused function %r in namespace %r: owned by worker %s; skipped",
            frame.get("function_id"),
            frame.get("namespace"),
            frame.get("owner_worker_id"),
        )
        self.errors.append(
            {
                "kind": "function",
                "id": frame.get("function_id"),
                "function_id": frame.get("function_id"),
                "code": frame["code"],
                "message": f"owned by worker {frame.get('owner_worker_id')}",
            }
        )

    # ------------------------------------------------------------------ trigger types

    def register_trigger_type(
        self,
        trigger_type: RegisterTriggerTypeInput | Mapping[str, Any] | str,
        handler: TriggerHandler[Any] | str,
        legacy_handler: TriggerHandler[Any] | None = None,
    ) -> TriggerTypeRef[Any, Any]:
        if isinstance(trigger_type, str):
            if not isinstance(handler, str) or legacy_handler is None:
                raise TypeError("use register_trigger_type(id, description, handler)")
            spec = RegisterTriggerTypeInput(id=trigger_type, description=handler)
            provider = legacy_handler
        else:
            spec = (
                trigger_type
                if isinstance(trigger_type, RegisterTriggerTypeInput)
                else RegisterTriggerTypeInput.model_validate(dict(trigger_type))
            )
            if isinstance(handler, str):
                raise TypeError("handler must be a TriggerHandler")
            provider = handler
        if not isinstance(provider, TriggerHandler):
            raise TypeError("handler must be a TriggerHandler instance")
        frame: wire.Frame = {
            "type": "registertriggertype",
            "id": spec.id,
            "description": spec.description,
        }
        for key in ("trigger_request_format", "call_request_format"):
            value = getattr(spec, key)
            if value is not None:
                frame[key] = jsonable(value)
        if spec.namespace is not None:
            frame["namespace"] = spec.namespace
        self.trigger_types[spec.id] = (frame, provider)
        self._post_soon(frame)
        return TriggerTypeRef(self, spec.id)

    def unregister_trigger_type(
        self, trigger_type: RegisterTriggerTypeInput | Mapping[str, Any] | str
    ) -> None:
        if isinstance(trigger_type, str):
            type_id, namespace = trigger_type, None
        elif isinstance(trigger_type, RegisterTriggerTypeInput):
            type_id, namespace = trigger_type.id, trigger_type.namespace
        else:
            type_id, namespace = trigger_type["id"], trigger_type.get("namespace")
        if self.trigger_types.pop(type_id, None) is None:
            return
        frame: wire.Frame = {"type": "unregistertriggertype", "id": type_id}
        if namespace is not None:
            frame["namespace"] = namespace
        self._post_soon(frame)

    async def on_provider_register(self, frame: wire.Frame) -> None:
        """The engine binds a trigger of a type this worker provides (§5.2); acknowledged with
        a ``triggerregistrationresult``, carrying the provider's error if it raised."""
        entry = self.trigger_types.get(frame["trigger_type"])
        if entry is None:
            return  # not a type we provide: ignored, as the official SDK does
        config: TriggerConfig[Any] = TriggerConfig(
            id=frame["id"],
            function_id=frame["function_id"],
            config=frame.get("config"),
            metadata=frame.get("metadata"),
            namespace=frame.get("namespace"),
        )
        ack: wire.Frame = {
            "type": "triggerregistrationresult",
            "id": frame["id"],
            "trigger_type": frame["trigger_type"],
            "function_id": frame["function_id"],
        }
        try:
            await entry[1].register_trigger(config)
            self._provided[config.id] = config
        except Exception as exc:
            logger.exception("trigger provider %s refused %s", frame["trigger_type"], frame["id"])
            ack["error"] = wire.error_body("trigger_registration_failed", str(exc))
        await self._conn.send(ack)

    async def on_provider_unregister(self, frame: wire.Frame) -> None:
        """The engine removes a binding of a type this worker provides (§5.2)."""
        trigger_type = frame.get("trigger_type")
        entry = self.trigger_types.get(trigger_type) if trigger_type else None
        if entry is None:
            return
        config = self._provided.pop(frame["id"], None) or TriggerConfig(
            id=frame["id"], function_id=""
        )
        try:
            await entry[1].unregister_trigger(config)
        except Exception:
            logger.exception("trigger provider %s failed to unregister %s", trigger_type, config.id)

    # ------------------------------------------------------------------ services

    def register_service(
        self, id: str, description: str | None = None, parent_service_id: str | None = None
    ) -> None:
        frame: wire.Frame = {"type": "registerservice", "id": id, "name": id}
        if description is not None:
            frame["description"] = description
        if parent_service_id is not None:
            frame["parent_service_id"] = parent_service_id
        self.services[id] = frame
        self._post_soon(frame)
