"""PubSub (builtins.md §8): the ``publish`` function and the ``subscribe`` trigger type.

``publish`` ``{topic, data}`` → ``null`` (``topic_not_set`` for an empty topic). Every
``subscribe`` binding whose ``config.topic`` equals the topic exactly (no wildcards) gets the raw
``data`` in its own task, in the binding's namespace with its metadata; results and errors are
ignored (logged), nothing is retried or kept for subscribers that are not connected. A binding
without a topic is accepted and never fires (a warning, as in the engine). Unlike the engine's
local adapter, removing one subscriber leaves the topic's other subscribers in place. With the
Redis adapter a publish also reaches the subscribers of every other engine on the same Redis.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ...adapters.base import Events
from ...adapters.local import NO_EVENTS
from ...core.builtins import parse_input
from ...core.errors import InvocationError
from ...core.registry import DEFAULT_NAMESPACE, CallContext, FunctionEntry, Trigger
from ...core.worker import BuiltinWorker, EngineServices

__all__ = ["PubSub"]

logger = logging.getLogger("iii_asgi.engine.pubsub")


class PubSub(BuiltinWorker):
    """The ``iii-pubsub`` built-in: the ``publish`` function and the in-process ``subscribe``
    trigger provider."""

    name = "iii-pubsub"

    def __init__(self, core: EngineServices, events: Events = NO_EVENTS) -> None:
        self.core = core
        self.topics: dict[str, dict[str, Trigger]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.events = events
        events.subscribe(self._published)

    def install(self) -> None:
        self.core.registry.add_function(
            FunctionEntry(
                "publish",
                DEFAULT_NAMESPACE,
                handler=self.publish,
                description="Publish an event to a topic's subscribers (fire and forget)",
            )
        )
        self.core.triggers.register_in_process("subscribe", "Topic subscription (pubsub)", self)

    async def register_trigger(self, trigger: Trigger) -> None:
        config = trigger.config if isinstance(trigger.config, dict) else {}
        topic = config.get("topic")
        if not isinstance(topic, str) or not topic:
            logger.warning("subscribe trigger %s has no topic: it will never fire", trigger.id)
            return
        self.topics.setdefault(topic, {})[trigger.id] = trigger

    async def unregister_trigger(self, trigger: Trigger) -> None:
        for topic, subscribers in list(self.topics.items()):
            if subscribers.pop(trigger.id, None) is not None and not subscribers:
                del self.topics[topic]

    async def publish(self, ctx: CallContext, data: Any) -> Any:
        """Publish {topic, data} to every subscriber of the topic → null."""
        args = parse_input("publish", data, {"topic": ((str,), False)})
        topic = args.get("topic")
        if not topic:
            raise InvocationError("topic_not_set", "Topic is not set")
        event = {"topic": topic, "data": args.get("data")}
        self.events.publish(event)
        self._published(event)
        return None

    def _published(self, event: Any) -> None:
        """Start a delivery per subscriber of ``event["topic"]`` (published here or on another
        engine)."""
        loop = asyncio.get_running_loop()
        for trigger in list(self.topics.get(event["topic"], {}).values()):
            task = loop.create_task(self._deliver(trigger, event["data"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, trigger: Trigger, data: Any) -> None:
        try:
            await self.core.invoker.call(
                trigger.function_id, data, namespace=trigger.namespace, metadata=trigger.metadata
            )
        except InvocationError as exc:
            logger.info("subscriber %s of %s failed: %s", trigger.id, trigger.function_id, exc)
        except Exception:
            logger.exception("subscriber %s failed", trigger.id)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
