"""Fire-and-forget delivery of built-in trigger events (state, stream: builtins.md §1.3, §4.3,
§6.2): condition check first, handler results ignored, failures logged.

Each binding gets its events one at a time, in the order they were fired (a handler sees
``create`` before ``update``); bindings do not wait for each other. (The real engine runs the
matching bindings of one write one after another in a task per write; per-binding order is what
handlers can rely on here.)
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .errors import InvocationError
from .invocation import Invoker
from .registry import Trigger

__all__ = ["Binding", "Fanout", "condition_met"]

logger = logging.getLogger("iii_asgi.engine")


async def condition_met(
    invoker: Invoker, function_id: str, payload: Any, namespace: str, metadata: Any
) -> bool:
    """Call a ``condition_function_id`` (§1.3): only a literal ``false`` result skips; a failing
    condition skips too (logged)."""
    try:
        result = await invoker.call(function_id, payload, namespace=namespace, metadata=metadata)
    except InvocationError as exc:
        logger.warning("condition %s failed (%s): handler skipped", function_id, exc.message)
        return False
    return result is not False


@dataclass(eq=False)
class Binding:
    """A registered trigger plus its parsed config and its queue of undelivered payloads."""

    trigger: Trigger
    config: dict[str, Any]
    condition: str | None = None
    pending: deque[Any] = field(default_factory=deque)
    running: bool = False
    active: bool = True


class Fanout:
    """The bindings of one trigger type and their delivery."""

    def __init__(
        self, invoker: Invoker, spawn: Callable[[Coroutine[Any, Any, None]], None]
    ) -> None:
        self.invoker = invoker
        self.spawn = spawn
        self.bindings: dict[str, Binding] = {}

    def add(self, binding: Binding) -> None:
        old = self.bindings.get(binding.trigger.id)
        if old is not None:
            old.active = False
        self.bindings[binding.trigger.id] = binding

    def remove(self, trigger_id: str) -> None:
        binding = self.bindings.pop(trigger_id, None)
        if binding is not None:
            binding.active = False

    def deliver(self, binding: Binding, payload: Any) -> None:
        """Queue ``payload`` for ``binding`` (must be called on the engine loop)."""
        binding.pending.append(payload)
        if not binding.running:
            binding.running = True
            self.spawn(self._drain(binding))

    async def _drain(self, binding: Binding) -> None:
        try:
            while binding.pending and binding.active:
                await self._run(binding, binding.pending.popleft())
        finally:
            binding.running = False
            if not binding.active:
                binding.pending.clear()

    async def _run(self, binding: Binding, payload: Any) -> None:
        trigger = binding.trigger
        if binding.condition is not None and not await condition_met(
            self.invoker, binding.condition, payload, trigger.namespace, trigger.metadata
        ):
            return
        try:
            await self.invoker.call(
                trigger.function_id, payload, namespace=trigger.namespace, metadata=trigger.metadata
            )
        except InvocationError as exc:
            logger.info(
                "%s trigger %s → %s failed: %s",
                trigger.trigger_type,
                trigger.id,
                trigger.function_id,
                exc.message,
            )
