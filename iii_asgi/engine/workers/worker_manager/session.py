"""The session of a connection on an RBAC or middleware listener (protocol.md §8): the
:class:`~iii_asgi.engine.core.session.Session` the core asks at each invocation and
registration of that connection.

* Invocations (§8.3, §8.4): a denied call gets a ``FORBIDDEN`` ``invocationresult`` (also for
  a void call, with a fresh id); an ``engine::workers::register`` declaring a namespace outside
  ``AuthResult.namespaces`` (when it names any) gets ``FORBIDDEN``; with a middleware, every
  allowed call except to an engine-owned ``engine::*`` built-in is handed to it with
  ``MiddlewareFunctionInput`` ``{function_id, payload, action, context, namespace}`` (the
  caller's ``metadata`` as the call's metadata) and its result or error is the reply.
* Registrations (§8.5, §8.6): ``allow_function_registration``, ``allowed_trigger_types`` and
  ``allow_trigger_type_registration`` refuse silently (logged); each hook, called in ``default``,
  may rename or alter (its object result) or deny (an error, or anything but an object); then
  the ``function_registration_prefix`` is applied; a trigger whose target the session may not
  call gets ``triggerregistrationresult`` ``FORBIDDEN``. A function id the engine uses for
  access decisions (an auth function, hook or middleware) is refused (an iii-asgi addition).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from iii.protocol import Frame, error_body, invocation_result

from ...core.errors import InvocationError
from ...core.registry import DEFAULT_NAMESPACE, FunctionEntry
from .rbac import Access, AuthResult

if TYPE_CHECKING:
    from ...core.connection import WorkerConnection
    from .listener import WorkerListener

__all__ = ["RbacSession"]

logger = logging.getLogger("iii_asgi.engine")


class RbacSession:
    """``RbacSession(listener, auth)``: the access rules of one connection accepted on
    ``listener`` whose auth function returned ``auth``."""

    def __init__(self, listener: WorkerListener, auth: AuthResult) -> None:
        self.listener = listener
        self.core = listener.core
        self.auth = auth
        self.access = Access(listener.exposure, auth)
        self.prefix = auth.function_registration_prefix
        self.context = auth.context
        rbac = listener.config.rbac
        self.hooks = {
            "function": rbac.on_function_registration_function_id if rbac else None,
            "trigger": rbac.on_trigger_registration_function_id if rbac else None,
            "trigger_type": rbac.on_trigger_type_registration_function_id if rbac else None,
        }

    def _entry(self, function_id: str, namespace: str) -> FunctionEntry | None:
        """The function a call in ``namespace`` reaches (an engine built-in answers for every
        namespace, as :meth:`Invoker.builtin` routes it)."""
        entry = self.core.registry.functions.get((namespace, function_id))
        if entry is None and namespace != DEFAULT_NAMESPACE:
            entry = self.core.invoker.builtin(function_id)
        return entry

    def allows(self, function_id: str, namespace: str) -> bool:
        entry = self._entry(function_id, namespace)
        return self.access.allows(function_id, namespace, entry.metadata if entry else None)

    # -- invocations (§8.3, §8.4) ------------------------------------------------------------

    async def intercept(self, conn: WorkerConnection, frame: Frame) -> bool:
        function_id: str = frame["function_id"]
        namespace: str = frame.get("namespace", DEFAULT_NAMESPACE)
        entry = self._entry(function_id, namespace)
        denial = self.access.denial(function_id, namespace, entry.metadata if entry else None)
        if denial is None and function_id == "engine::workers::register":
            denial = self._namespace_denial(frame.get("data"))
        if denial is not None:
            logger.info("%r: %s", conn, denial)
            await self._reply(conn, frame, error=error_body("FORBIDDEN", denial))
            return True
        middleware = self.listener.config.middleware_function_id
        if middleware is None or (
            entry is not None and entry.owner is None and function_id.startswith("engine::")
        ):
            return False  # routed as usual; engine-owned engine::* built-ins skip middleware
        self.core.spawn(self._through_middleware(conn, frame, middleware, namespace))
        return True

    def _namespace_denial(self, data: Any) -> str | None:
        """With scoped grants, the namespaces a worker may declare are their keys (§8.1)."""
        permitted = self.auth.namespaces
        if not permitted:
            return None
        declared = data.get("namespace") if isinstance(data, dict) else None
        declared = declared if isinstance(declared, str) else DEFAULT_NAMESPACE
        if declared in permitted:
            return None
        names = ", ".join(sorted(permitted))
        return f"namespace '{declared}' not allowed for this session (permitted: {names})"

    async def _through_middleware(
        self, conn: WorkerConnection, frame: Frame, middleware: str, namespace: str
    ) -> None:
        data = {
            "function_id": frame["function_id"],
            "payload": frame.get("data"),
            "action": frame.get("action"),
            "context": self.context,
            "namespace": namespace,
        }
        try:
            result = await self.core.invoker.call(
                middleware,
                data,
                namespace=namespace,
                metadata=frame.get("metadata"),
                traceparent=frame.get("traceparent"),
                baggage=frame.get("baggage"),
            )
        except InvocationError as exc:
            await self._reply(conn, frame, error=error_body(exc.code, exc.message))
            return
        await self._reply(conn, frame, result=result)

    async def _reply(
        self, conn: WorkerConnection, frame: Frame, *, result: Any = None, error: Any = None
    ) -> None:
        """The ``invocationresult`` of a call answered here: the caller's id, or a fresh one
        for a void call (as the real engine sends)."""
        await conn.send(
            invocation_result(
                frame.get("invocation_id") or str(uuid.uuid4()),
                frame["function_id"],
                result=result,
                error=error,
                traceparent=frame.get("traceparent"),
                baggage=frame.get("baggage"),
            )
        )

    # -- registrations (§8.5, §8.6) ----------------------------------------------------------

    async def _hook(self, kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Call the registration hook of ``kind``: its object result, or ``None`` (denied)."""
        hook = self.hooks[kind]
        assert hook is not None
        try:
            result = await self.core.invoker.call(hook, {**data, "context": self.context})
        except InvocationError as exc:
            logger.warning("%s registration denied by hook %s: %s", kind, hook, exc.message)
            return None
        if not isinstance(result, dict):
            logger.warning("%s registration denied by hook %s: result %r", kind, hook, result)
            return None
        return result

    def _prefixed(self, function_id: str) -> str:
        return f"{self.prefix}::{function_id}" if self.prefix else function_id

    async def register_function(self, conn: WorkerConnection, frame: Frame) -> Frame | None:
        if not self.auth.allow_function_registration:
            logger.warning("%r: function registration not allowed (%s)", conn, frame["id"])
            return None
        out = dict(frame)
        if self.hooks["function"] is not None:
            result = await self._hook(
                "function",
                {
                    "function_id": frame["id"],
                    "description": frame.get("description"),
                    "metadata": frame.get("metadata"),
                    "namespace": conn.namespace or DEFAULT_NAMESPACE,
                },
            )
            if result is None:
                return None
            _merge(out, result, {"function_id": "id", "description": "description"}, "metadata")
        out["id"] = function_id = self._prefixed(out["id"])
        if function_id in self.listener.reserved:
            logger.warning("%r may not register %s: an access-control function", conn, function_id)
            return None
        return out

    async def register_trigger(self, conn: WorkerConnection, frame: Frame) -> Frame | None:
        allowed = self.auth.allowed_trigger_types
        if allowed is not None and frame["trigger_type"] not in allowed:
            logger.warning("%r: trigger type %s not allowed", conn, frame["trigger_type"])
            return None
        out = dict(frame)
        target = frame.get("namespace") or DEFAULT_NAMESPACE
        if self.hooks["trigger"] is not None:
            result = await self._hook(
                "trigger",
                {
                    "trigger_id": frame["id"],
                    "trigger_type": frame["trigger_type"],
                    "function_id": frame["function_id"],
                    "config": frame.get("config"),
                    "metadata": frame.get("metadata"),
                    "namespace": target,
                },
            )
            if result is None:
                return None
            names = {
                "trigger_id": "id",
                "trigger_type": "trigger_type",
                "function_id": "function_id",
            }
            _merge(out, result, names, "config")
        out["function_id"] = function_id = self._prefixed(out["function_id"])
        if not self.allows(function_id, target):
            logger.warning("%r: trigger %s targets %s, not allowed", conn, out["id"], function_id)
            await conn.send(
                {
                    "type": "triggerregistrationresult",
                    "id": out["id"],
                    "trigger_type": out["trigger_type"],
                    "function_id": function_id,
                    "error": error_body(
                        "FORBIDDEN", f"function '{function_id}' not allowed in namespace '{target}'"
                    ),
                }
            )
            return None
        return out

    async def register_trigger_type(self, conn: WorkerConnection, frame: Frame) -> Frame | None:
        if not self.auth.allow_trigger_type_registration:
            logger.warning("%r: trigger type registration not allowed (%s)", conn, frame["id"])
            return None
        out = dict(frame)
        if self.hooks["trigger_type"] is not None:
            result = await self._hook(
                "trigger_type",
                {"trigger_type_id": frame["id"], "description": frame.get("description") or ""},
            )
            if result is None:
                return None
            _merge(out, result, {"trigger_type_id": "id", "description": "description"})
        return out


def _merge(frame: Frame, result: dict[str, Any], strings: dict[str, str], value: str = "") -> None:
    """Apply a hook's result to ``frame`` (§8.5): each ``strings`` key (result key → frame key)
    that holds a string, and the ``value`` key when present at all (a present ``null`` replaces
    the value, as in the real engine); other keys are ignored."""
    for key, name in strings.items():
        if isinstance(result.get(key), str):
            frame[name] = result[key]
    if value and value in result:
        frame[value] = result[value]
