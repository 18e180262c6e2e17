"""Trigger types and bindings (protocol.md §5): provider resolution, delivery, parking, acks.

A binding resolves to a provider by ``trigger_namespace`` (only that namespace) or else the
registering connection's namespace, then ``default`` (§5.1). Bindings without a provider are
parked and delivered when one registers (§5.2 step 6). Worker providers receive
``registertrigger`` / ``unregistertrigger`` frames; in-process providers are called directly.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from iii.protocol import ErrorBody, Frame, error_body

from .connection import WorkerConnection
from .errors import InvocationError
from .ownership import FORBIDDEN, trigger_removal_refusal, trigger_replace_refusal
from .registry import DEFAULT_NAMESPACE, Registry, Trigger, TriggerProvider, TriggerType

__all__ = ["Triggers"]

logger = logging.getLogger("iii_asgi.engine")


class Triggers:
    """The trigger registry's behaviour; data lives in :class:`Registry`."""

    def __init__(self, registry: Registry, ack_timeout_s: float = 10.0) -> None:
        self.registry = registry
        self.ack_timeout_s = ack_timeout_s
        self._ack_waiters: dict[tuple[int, str], asyncio.Future[Frame]] = {}

    # -- resolution ----------------------------------------------------------------------------

    def resolve(self, trigger: Trigger) -> TriggerType | None:
        types = self.registry.trigger_types
        if trigger.trigger_namespace is not None:
            return types.get((trigger.trigger_namespace, trigger.trigger_type))
        found = types.get((trigger.home_namespace, trigger.trigger_type))
        if found is None and trigger.home_namespace != DEFAULT_NAMESPACE:
            found = types.get((DEFAULT_NAMESPACE, trigger.trigger_type))
        return found

    # -- trigger types -------------------------------------------------------------------------

    async def register_type(self, ttype: TriggerType) -> None:
        """Install (or replace) a provider and deliver every binding that resolves to it. The
        caller has checked that it may (:func:`.ownership.trigger_type_refusal`)."""
        self.registry.trigger_types[(ttype.namespace, ttype.id)] = ttype
        for trigger in list(self.registry.triggers.values()):
            if trigger.trigger_type != ttype.id or self.resolve(trigger) is not ttype:
                continue
            previous = trigger.provider
            if previous is not None and previous.namespace != ttype.namespace:
                await self._withdraw(trigger, previous)  # moved from the default fallback
            trigger.provider = ttype
            error = await self._deliver(trigger, ttype, wait=False)
            if error is not None:
                trigger.provider = None
                logger.warning("trigger %s refused by provider: %s", trigger.id, error["message"])

    def register_in_process(
        self, type_id: str, description: str, provider: TriggerProvider, **formats: Any
    ) -> TriggerType:
        """Register an engine-provided trigger type in ``default`` (synchronous; engine start)."""
        ttype = TriggerType(
            type_id, DEFAULT_NAMESPACE, description, provider, in_process=True, **formats
        )
        self.registry.trigger_types[(DEFAULT_NAMESPACE, type_id)] = ttype
        return ttype

    async def unregister_type(self, namespace: str, type_id: str, owner: object) -> None:
        """Remove a type if ``owner`` still provides it; its bindings re-resolve or park (§1.8)."""
        key = (namespace, type_id)
        ttype = self.registry.trigger_types.get(key)
        if ttype is None or ttype.provider is not owner:
            return
        del self.registry.trigger_types[key]
        for trigger in list(self.registry.triggers.values()):
            if trigger.provider is not ttype:
                continue
            trigger.provider = None
            replacement = self.resolve(trigger)
            if replacement is not None:
                trigger.provider = replacement
                if await self._deliver(trigger, replacement, wait=False) is not None:
                    trigger.provider = None

    # -- bindings ------------------------------------------------------------------------------

    async def register(self, trigger: Trigger, *, wait_ack: bool = False) -> ErrorBody | None:
        """Store a binding and deliver it, or park it when no provider exists (§2.9).

        An existing binding with the same id is replaced only when ``trigger.owner`` may
        (:func:`~.ownership.trigger_replace_refusal`), else ``FORBIDDEN`` is returned (and
        logged). Returns an ErrorBody too when an in-process provider refused or, with
        ``wait_ack``, a worker provider acked an error; the binding is then not stored.
        """
        old = self.registry.triggers.get(trigger.id)
        if old is not None:
            refusal = trigger_replace_refusal(old, trigger.owner)
            if refusal is not None:
                logger.warning("refused registertrigger from %r: %s", trigger.owner, refusal)
                return error_body(FORBIDDEN, refusal)
            self._forget(old)
        self.registry.triggers[trigger.id] = trigger  # claimed before any await
        if trigger.owner is not None:
            trigger.owner.triggers.add(trigger.id)
        if old is not None and old.provider is not None:
            await self._withdraw(old, old.provider)
            old.provider = None
        ttype = self.resolve(trigger)
        if ttype is None:
            logger.debug("trigger %s parked: no provider for %s", trigger.id, trigger.trigger_type)
            return None
        trigger.provider = ttype
        error = await self._deliver(trigger, ttype, wait=wait_ack)
        if error is not None:
            trigger.provider = None
            if ttype.in_process or wait_ack:
                self._forget(trigger)
        return error

    async def unregister(
        self, trigger_id: str, requester: WorkerConnection | None, *, durable_ok: bool
    ) -> bool:
        """Remove a binding (idempotent) and tell its provider (§2.10); ``False`` when there is
        none. ``requester`` (``None``: an engine-initiated call) must own it, or, with
        ``durable_ok``, it is a durable binding (:func:`~.ownership.trigger_removal_refusal`);
        otherwise raises :class:`~.errors.InvocationError` ``FORBIDDEN`` (logged)."""
        trigger = self.registry.triggers.get(trigger_id)
        if trigger is None:
            return False
        refusal = trigger_removal_refusal(trigger, requester, durable_ok=durable_ok)
        if refusal is not None:
            logger.warning("refused to remove trigger for %r: %s", requester, refusal)
            raise InvocationError(FORBIDDEN, refusal)
        self._forget(trigger)
        if trigger.provider is not None:
            await self._withdraw(trigger, trigger.provider)
            trigger.provider = None
        return True

    def _forget(self, trigger: Trigger) -> None:
        self.registry.triggers.pop(trigger.id, None)
        if trigger.owner is not None:
            trigger.owner.triggers.discard(trigger.id)

    async def _deliver(
        self, trigger: Trigger, ttype: TriggerType, *, wait: bool
    ) -> ErrorBody | None:
        provider = ttype.provider
        if not isinstance(provider, WorkerConnection):
            try:
                await provider.register_trigger(trigger)
            except Exception as exc:
                return error_body("trigger_registration_failed", str(exc))
            return None
        frame: Frame = {
            "type": "registertrigger",
            "id": trigger.id,
            "trigger_type": trigger.trigger_type,
            "function_id": trigger.function_id,
            "config": trigger.config,
        }
        if trigger.metadata is not None:
            frame["metadata"] = trigger.metadata
        if trigger.namespace != DEFAULT_NAMESPACE:
            frame["namespace"] = trigger.namespace
        if ttype.namespace != DEFAULT_NAMESPACE:
            frame["trigger_namespace"] = ttype.namespace
        if not wait:
            await provider.send(frame)
            return None
        key = (id(provider), trigger.id)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._ack_waiters[key] = future
        try:
            await provider.send(frame)
            ack = await asyncio.wait_for(future, self.ack_timeout_s)
        except asyncio.TimeoutError:
            return None  # no ack in time: accepted (§2.11)
        finally:
            self._ack_waiters.pop(key, None)
        error = ack.get("error")
        if isinstance(error, dict):
            return error_body(
                str(error.get("code", "trigger_registration_failed")), str(error.get("message", ""))
            )
        return None

    async def _withdraw(self, trigger: Trigger, ttype: TriggerType) -> None:
        provider = ttype.provider
        if isinstance(provider, WorkerConnection):
            await provider.send(
                {
                    "type": "unregistertrigger",
                    "id": trigger.id,
                    "trigger_type": trigger.trigger_type,
                }
            )
        else:
            try:
                await provider.unregister_trigger(trigger)
            except Exception:
                logger.exception("provider of %s failed to unregister %s", ttype.id, trigger.id)

    # -- provider acks (§2.11) -----------------------------------------------------------------

    async def handle_ack(self, conn: WorkerConnection, frame: Frame) -> None:
        waiter = self._ack_waiters.get((id(conn), frame["id"]))
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(frame)
            return
        trigger = self.registry.triggers.get(frame["id"])
        if trigger is None or trigger.provider is None or trigger.provider.provider is not conn:
            return
        error = frame.get("error")
        if error is None:
            return
        trigger.provider = None  # parked until a provider registers again
        logger.warning("provider refused trigger %s: %s", trigger.id, error)
        owner = trigger.owner
        if owner is not None and owner.alive:
            await owner.send(
                {
                    "type": "triggerregistrationresult",
                    "id": trigger.id,
                    "trigger_type": trigger.trigger_type,
                    "function_id": trigger.function_id,
                    "error": error,
                }
            )

    # -- teardown (§1.8 step 4) ----------------------------------------------------------------

    async def remove_connection(self, conn: WorkerConnection) -> None:
        """Drop ``conn``'s bindings (telling their providers), then the types it provides."""
        for trigger_id in list(conn.triggers):
            trigger = self.registry.triggers.get(trigger_id)
            if trigger is not None and trigger.owner is conn:
                self._forget(trigger)
                provider = trigger.provider
                if provider is not None and provider.provider is not conn:
                    await self._withdraw(trigger, provider)
                trigger.provider = None
        conn.triggers.clear()
        for namespace, type_id in list(conn.trigger_types):
            await self.unregister_type(namespace, type_id, conn)
        conn.trigger_types.clear()
