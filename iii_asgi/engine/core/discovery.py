"""Engine-provided discovery trigger types (protocol.md §5.5).

``engine::workers-available`` fires ``{"event": "worker_connected" | "worker_disconnected" |
"worker_metadata_updated", "worker_id": id}``; ``engine::functions-available`` fires
``{"event": "functions_changed", "functions": [FunctionSummary…]}`` when a poll (every
``functions_poll_interval_s``, 5 s by default) sees the set of ``(namespace, id)`` change.
Fires use the internal call path (§3.4) with the binding's metadata and target namespace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .errors import InvocationError
from .invocation import Invoker
from .registry import Trigger

__all__ = ["EventTriggerProvider", "poll_functions"]

logger = logging.getLogger("iii_asgi.engine")


class EventTriggerProvider:
    """An in-process trigger provider that fires every binding with an event payload."""

    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker
        self.bindings: dict[str, Trigger] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def register_trigger(self, trigger: Trigger) -> None:
        self.bindings[trigger.id] = trigger

    async def unregister_trigger(self, trigger: Trigger) -> None:
        self.bindings.pop(trigger.id, None)

    def fire(self, payload: dict[str, Any]) -> None:
        """Call every bound function with ``payload`` (fire and forget)."""
        loop = asyncio.get_running_loop()
        for trigger in list(self.bindings.values()):
            task = loop.create_task(self._call(trigger, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _call(self, trigger: Trigger, payload: dict[str, Any]) -> None:
        try:
            await self.invoker.call(
                trigger.function_id, payload, namespace=trigger.namespace, metadata=trigger.metadata
            )
        except InvocationError as exc:
            logger.info("trigger %s → %s failed: %s", trigger.id, trigger.function_id, exc.message)


async def poll_functions(
    provider: EventTriggerProvider,
    keys: Callable[[], frozenset[tuple[str, str]]],
    summaries: Callable[[], list[dict[str, Any]]],
    interval_s: float,
) -> None:
    """Fire ``functions_changed`` whenever the set of function keys changed since the last poll."""
    seen = keys()
    while True:
        await asyncio.sleep(interval_s)
        current = keys()
        if current != seen:
            seen = current
            provider.fire({"event": "functions_changed", "functions": summaries()})
