"""Standby registrations: functions this worker registered that another live worker owns.

The engine gives each ``(namespace, function id)`` one live owner (protocol.md §2.4 step 5): a
second connection registering the same id gets ``registrationrejected``
``FUNCTION_NAMESPACE_CONFLICT`` naming the owner, and keeps its connection (§2.6). The official
SDK logs and drops such a function. This client keeps it as a **standby** instead, which is what
``uvicorn --workers N`` needs (every process registers the same routes):

- the function stays registered locally (its handler, its frame, its triggers) and is listed in
  :attr:`iii.III.standby_functions` with the owner's worker id;
- its non-``http`` triggers (cron, queue, subscribe, custom types...) are withdrawn from the
  engine (``unregistertrigger``) so they do not fire twice through the owner; its ``http``
  triggers stay (the real engine lets a later route registration replace an earlier one and
  routes it to the owner; ours refuses the duplicate route, builtins.md §3.3);
- the registration is retried when the owner may be gone: on ``engine::workers-available``
  ``worker_disconnected`` naming the owner and on ``engine::functions-available`` without the id
  (protocol.md §5.5, through one private function bound to both), every
  ``retry_interval_s`` as a fallback, and on reconnect (the replay re-sends everything, §1.4);
- a retry re-sends ``registerfunction`` followed by a JSON ``ping`` (§1.7). The engine handles a
  connection's frames in order (§1.6), so a rejection for the retry arrives before the ``pong``;
  a ``pong`` without one means the takeover succeeded (0.23 engines never acknowledge a
  registration, §2.4). Then the function's triggers are sent again: withdrawn ones are
  re-registered, ``http`` ones are unregistered and registered again so the route is mounted for
  this worker.

A rejection for the reserved ``engine::`` prefix (``owner_worker_id`` empty) is not a standby: it
can never succeed, so it is logged and skipped as before.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from . import protocol as wire
from ._config import ClientConfig
from ._connection import Connection
from ._loop import ClientLoop

__all__ = ["STANDBY_RETRY_S", "Standby", "StandbyRegistry"]

logger = logging.getLogger("iii.client")

#: Fallback period of standby retries, in seconds (events normally trigger them sooner).
STANDBY_RETRY_S = 10.0


class _Registered(Protocol):
    def unregister(self) -> None: ...


class StandbyRegistry(Protocol):
    """What standby reads and calls of a client's registrations
    (:class:`iii._registrations.Registrations`)."""

    @property
    def functions(self) -> Mapping[str, object]: ...

    @property
    def function_frames(self) -> Mapping[str, wire.Frame]: ...

    @property
    def triggers(self) -> Mapping[str, wire.Frame]: ...

    def register_function(
        self,
        function_id: str,
        handler_or_invocation: Callable[..., Any],
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> _Registered: ...

    def register_trigger(self, trigger: Mapping[str, Any]) -> _Registered: ...


class Standby:
    """The standby bookkeeping of one :class:`iii.III` client; runs on the client's loop."""

    def __init__(
        self,
        registry: StandbyRegistry,
        conn: Connection,
        client_loop: ClientLoop,
        config: ClientConfig,
    ) -> None:
        self._registry = registry
        self._conn = conn
        self._client_loop = client_loop
        self._config = config
        self.retry_interval_s = STANDBY_RETRY_S
        self.owners: dict[str, str] = {}  # function id -> owner worker id
        self._claiming: dict[str, str] = {}  # re-sent, waiting for the pong
        self._claims: deque[set[str]] = deque()  # one per ping in flight
        self._held: set[str] = set()  # trigger ids withdrawn from the engine
        self._watch: tuple[_Registered, list[_Registered]] | None = None
        self._timer: asyncio.Task[None] | None = None

    def functions(self) -> dict[str, str]:
        """``{function id: owner worker id}`` of every function on standby."""
        return {**self.owners, **self._claiming}

    def is_standby(self, function_id: str) -> bool:
        return function_id in self.owners or function_id in self._claiming

    # -- events from the client -----------------------------------------------------------------

    def rejected(self, function_id: str, owner_worker_id: str) -> bool:
        """A ``FUNCTION_NAMESPACE_CONFLICT`` for ``function_id``; True when it became (or stays)
        a standby, False when it is not one (reserved id, or not registered here any more)."""
        registry = self._registry
        if not owner_worker_id or function_id not in registry.functions:
            return False
        first = not self.is_standby(function_id)
        self._claiming.pop(function_id, None)
        self.owners[function_id] = owner_worker_id
        if first:
            logger.warning(
                "iii: function %r is owned by worker %s; this worker (%s) stands by and takes "
                "over when the owner leaves",
                function_id,
                owner_worker_id,
                self._config.name,
            )
        else:
            logger.debug("iii: function %r still owned by worker %s", function_id, owner_worker_id)
        for trigger_id, frame in registry.triggers.items():
            if (
                frame["function_id"] == function_id
                and frame["trigger_type"] != "http"
                and trigger_id not in self._held
            ):
                self._held.add(trigger_id)
                self._conn.post(
                    {
                        "type": "unregistertrigger",
                        "id": trigger_id,
                        "trigger_type": frame["trigger_type"],
                    }
                )
        self._start_watching()
        return True

    def trigger_failed(self, frame: dict[str, Any]) -> bool:
        """True when a failed ``triggerregistrationresult`` belongs to a standby function (an
        ``http`` route the owner holds): expected, so the client logs it quietly."""
        if not self.is_standby(frame.get("function_id", "")):
            return False
        logger.info(
            "iii: trigger %s (%s) of standby function %r is held by its owner",
            frame.get("id"),
            frame.get("trigger_type"),
            frame.get("function_id"),
        )
        return True

    def pong(self) -> None:
        """The engine answered a retry's ping: every claim not rejected since is now ours."""
        if not self._claims:
            return
        for function_id in self._claims.popleft():
            owner = self._claiming.pop(function_id, None)
            if owner is not None and function_id in self._registry.functions:
                self._took_over(function_id, owner)
        self._stop_watching_if_done()

    def forget_function(self, function_id: str) -> None:
        """The user unregistered ``function_id``."""
        self.owners.pop(function_id, None)
        self._claiming.pop(function_id, None)
        self._stop_watching_if_done()

    def forget_trigger(self, trigger_id: str) -> None:
        """The user unregistered ``trigger_id``."""
        self._held.discard(trigger_id)

    def reset(self) -> None:
        """A new connection: the replay re-sends every function and trigger (§1.4), so
        rejections start afresh."""
        self.owners.clear()
        self._claiming.clear()
        self._claims.clear()
        self._held.clear()

    def retry(self, reason: str) -> None:
        """Claim every standby function again (see the module docstring)."""
        conn = self._conn
        if not self.owners or not conn.live:
            return
        claim = set(self.owners)
        logger.debug("iii: retrying standby functions %s (%s)", sorted(claim), reason)
        for function_id in claim:
            self._claiming[function_id] = self.owners.pop(function_id)
            conn.post(self._registry.function_frames[function_id])
        self._claims.append(claim)
        conn.post({"type": "ping"})

    # -- internals --------------------------------------------------------------------------------

    def _took_over(self, function_id: str, previous_owner: str) -> None:
        logger.warning(
            "iii: worker %s took over function %r from worker %s",
            self._config.name,
            function_id,
            previous_owner,
        )
        post = self._conn.post
        for trigger_id, frame in list(self._registry.triggers.items()):
            if frame["function_id"] != function_id:
                continue
            if trigger_id in self._held:
                self._held.discard(trigger_id)
            else:
                post(
                    {
                        "type": "unregistertrigger",
                        "id": trigger_id,
                        "trigger_type": frame["trigger_type"],
                    }
                )
            post(frame)

    async def _on_event(self, data: Any) -> None:
        """The private watcher: ``engine::workers-available`` / ``engine::functions-available``."""
        if not isinstance(data, dict):
            return
        event = data.get("event")
        if event == "worker_disconnected" and data.get("worker_id") in self.owners.values():
            self.retry(f"owner {data.get('worker_id')} disconnected")
        elif event == "functions_changed":
            present = {
                f.get("function_id") for f in data.get("functions") or [] if isinstance(f, dict)
            }
            if any(function_id not in present for function_id in self.owners):
                self.retry("functions changed")

    def _start_watching(self) -> None:
        registry = self._registry
        if self._watch is None:
            function_id = f"iii::standby::{uuid.uuid4().hex[:12]}"
            ref = registry.register_function(
                function_id,
                self._on_event,
                description="standby watcher",
                metadata={"internal": True},
            )
            triggers = [
                registry.register_trigger(
                    {"type": trigger_type, "function_id": function_id, "config": {}}
                )
                for trigger_type in ("engine::workers-available", "engine::functions-available")
            ]
            self._watch = (ref, triggers)
        if self._timer is None or self._timer.done():
            self._timer = self._client_loop.spawn(self._periodic())

    def _stop_watching_if_done(self) -> None:
        if self.owners or self._claiming:
            return
        watch, self._watch = self._watch, None
        if watch is not None:
            ref, triggers = watch
            for trigger in triggers:
                trigger.unregister()
            ref.unregister()
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _periodic(self) -> None:
        while self.owners or self._claiming:
            await asyncio.sleep(self.retry_interval_s)
            self.retry("periodic")
