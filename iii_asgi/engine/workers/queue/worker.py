"""Queues (builtins.md §7): ``engine::queue::enqueue`` behind ``TriggerAction.Enqueue``, named
queues, durable pub/sub and the dead-letter functions, all in namespace ``default``.

Functions (``→`` result; errors as ``code``):

* ``engine::queue::enqueue`` ``{queue, function_id, data, messageReceiptId, namespace?,
  traceparent?, baggage?}`` → ``{messageReceiptId}``; ``queue_not_found`` for an unknown queue,
  ``fifo_group_missing`` when a fifo queue's group field is absent or null (§7.1, §7.2),
  ``enqueue_failed`` when the store refuses the message (e.g. a ``messageReceiptId`` already
  queued), ``queue_full`` when the queue holds ``max_depth`` messages (issue 13).
* ``iii::durable::publish`` ``{topic (or queue), data}`` → ``null``; ``topic_not_set`` (§7.3),
  ``queue_full`` when a subscriber's queue holds ``max_depth`` messages (no copy is queued).
* ``iii::queue::redrive`` ``{queue | topic}`` → ``{queue, redriven}``;
  ``iii::queue::redrive_message`` / ``iii::queue::discard_message`` ``{queue, message_id}`` →
  ``{queue, message_id, redriven: 0|1}``; ``queue_not_set``, ``message_id_not_set``,
  ``redrive_failed`` (unknown queue) (§7.4).
* ``engine::queue::list_topics`` → ``[{name, broker_type, subscriber_count}]``;
  ``engine::queue::topic_stats`` ``{topic}`` → ``{depth, consumer_count, dlq_depth, config,
  delivered, failed}``; ``engine::queue::dlq_topics`` → ``[{topic, broker_type,
  message_count}]``; ``engine::queue::dlq_messages`` ``{topic, offset=0, limit=50}`` →
  ``[{id, payload, error, failed_at, retries, size_bytes}]``; ``topic_required`` (§7.4).

Trigger type ``durable:subscriber`` ``{topic (or queue), condition_function_id?,
queue_config?}``: each distinct ``(namespace, function_id)`` gets its own queue
``<topic>::<function_id>@<namespace>``; every publish is copied into the queue of each
subscriber that has a live trigger; several triggers of one function share its queue.

With the Redis adapter (``cluster``: :class:`~iii_asgi.engine.adapters.base.QueueCluster`) the
queues are shared by every engine on the same Redis: any engine's consumers take messages any
engine stored, a publish reaches the durable subscribers of every engine, and a named-queue
message whose function is not registered here is handed to an engine that has it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ...adapters.base import QueueCluster, SubscriberRef
from ...adapters.local import LocalQueues
from ...config.queue import DEFAULT_QUEUE, QueueConfig
from ...core.builtins import parse_input
from ...core.errors import InvocationError
from ...core.registry import DEFAULT_NAMESPACE, CallContext, Trigger
from ...core.worker import BuiltinWorker, EngineServices
from ...storage import QueueMessage, Storage, StorageError
from .runtime import Deferred, MessageQueue, QueueFull, now_ms, put_batcher

__all__ = ["ENQUEUE_FUNCTION", "Queues", "subscriber_queue_name"]

logger = logging.getLogger("iii_asgi.engine.queue")

ENQUEUE_FUNCTION = "engine::queue::enqueue"
_STR: tuple[type, ...] = (str,)
_INT: tuple[type, ...] = (int,)


def subscriber_queue_name(topic: str, function_id: str, namespace: str) -> str:
    """``<topic>::<function_id>@<namespace>``, with ``@`` escaped (``%40``) inside parts."""

    def esc(part: str) -> str:
        return part.replace("%", "%25").replace("@", "%40")

    return f"{esc(topic)}::{esc(function_id)}@{esc(namespace)}"


@dataclass(eq=False)
class Subscription:
    """One ``(namespace, function_id)`` subscribed to a durable topic, with its live triggers."""

    topic: str
    function_id: str
    namespace: str
    queue: MessageQueue
    triggers: dict[str, Trigger] = field(default_factory=dict)


def _job(
    function_id: str,
    namespace: str,
    data: Any,
    config: QueueConfig,
    *,
    traceparent: str | None = None,
    baggage: str | None = None,
) -> dict[str, Any]:
    """The stored payload of a queued call (see :mod:`.queue_runtime`)."""
    job: dict[str, Any] = {
        "function_id": function_id,
        "namespace": namespace,
        "data": data,
        "max_attempts": config.max_retries,
        "backoff_ms": config.backoff_ms,
    }
    if traceparent is not None:
        job["traceparent"] = traceparent
    if baggage is not None:
        job["baggage"] = baggage
    return job


class Queues(BuiltinWorker):
    """The ``iii-queue`` built-in of one engine: functions, the ``durable:subscriber`` trigger
    type, messages in ``storage``."""

    name = "iii-queue"

    def __init__(
        self, core: EngineServices, storage: Storage, cluster: QueueCluster | None = None
    ) -> None:
        self.core = core
        self.storage = storage
        self.cluster: QueueCluster = cluster or LocalQueues()
        self.batcher = put_batcher(self.storage)
        self.queues: dict[str, MessageQueue] = {}
        self.named: dict[str, MessageQueue] = {}
        self.topics: dict[str, dict[str, Subscription]] = {}
        self.by_trigger: dict[str, Subscription] = {}
        configs = {DEFAULT_QUEUE: QueueConfig(), **core.config.queues}
        for name, config in configs.items():
            if isinstance(config, Mapping):  # a plain dict works too (the file's shape)
                config = QueueConfig.from_mapping(name, config)
            config.check_named(name)
            queue = MessageQueue(
                name, config, self.storage, deliver=self._deliver_job, batcher=self.batcher
            )
            self.named[name] = queue
            self.queues[name] = queue
        poll_ms = min(q.config.poll_interval_ms for q in self.named.values())
        self.cluster.listen(self._wake, poll_ms)

    # -- lifecycle -----------------------------------------------------------------------------

    def install(self) -> None:
        """Register the functions and the ``durable:subscriber`` trigger type."""
        table = {
            ENQUEUE_FUNCTION: self.enqueue,
            "iii::durable::publish": self.durable_publish,
            "iii::queue::redrive": self.redrive,
            "iii::queue::redrive_message": self.redrive_message,
            "iii::queue::discard_message": self.discard_message,
            "engine::queue::list_topics": self.list_topics,
            "engine::queue::topic_stats": self.topic_stats,
            "engine::queue::dlq_topics": self.dlq_topics,
            "engine::queue::dlq_messages": self.dlq_messages,
        }
        self.core.registry.add_builtins(table)
        self.core.triggers.register_in_process(
            "durable:subscriber", "Durable topic subscriber (queue-backed pub/sub)", self
        )

    async def start(self) -> None:
        """Start the named queues' consumers (resuming messages stored before a restart)."""
        for name, queue in self.named.items():
            await queue.start()
            await self._consume(name, None)

    async def stop(self) -> None:
        await asyncio.gather(*(q.close() for q in self.queues.values()))

    # -- other engines -------------------------------------------------------------------------

    def _wake(self, name: str | None) -> None:
        """Another engine stored due messages in queue ``name`` (``None``: look at every
        consumed queue)."""
        if name is not None:
            queue = self.queues.get(name)
            if queue is not None and queue.deliver is not None:
                queue.wake()
            return
        for queue in self.queues.values():
            if queue.deliver is not None:
                queue.wake()

    async def _consume(self, name: str, subscriber: tuple[str, SubscriberRef] | None) -> None:
        try:
            await self.cluster.consume(name, subscriber)
        except StorageError as exc:
            logger.warning("queue %s: not announced to the other engines: %s", name, exc)

    # -- delivery ------------------------------------------------------------------------------

    async def _deliver_job(self, message: QueueMessage) -> None:
        """A named-queue job: the raw ``data`` to ``function_id`` in its namespace (§7.2); with
        a shared adapter, handed over when the function lives on another engine only."""
        job = message.payload
        namespace = job.get("namespace", DEFAULT_NAMESPACE)
        if (namespace, job["function_id"]) not in self.core.registry.functions:
            try:
                if await self.cluster.defer(message):
                    raise Deferred
            except StorageError as exc:
                logger.warning(
                    "queue %s: handing %s over failed: %s", message.queue, message.id, exc
                )
        await self.core.invoker.call(
            job["function_id"],
            job.get("data"),
            namespace=namespace,
            traceparent=job.get("traceparent"),
            baggage=job.get("baggage"),
        )

    def _subscriber_delivery(self, sub: Subscription) -> Any:
        async def deliver(message: QueueMessage) -> None:
            trigger = next(iter(sub.triggers.values()), None)
            if trigger is None:
                raise InvocationError("invocation_stopped", "the subscriber is gone")
            data = message.payload.get("data")
            config = trigger.config if isinstance(trigger.config, dict) else {}
            condition = config.get("condition_function_id")
            if isinstance(condition, str) and condition:
                verdict = await self.core.invoker.call(
                    condition, data, namespace=sub.namespace, metadata=trigger.metadata
                )
                if verdict is False:  # only a literal false skips; counts as handled (§1.3)
                    return
            await self.core.invoker.call(
                sub.function_id, data, namespace=sub.namespace, metadata=trigger.metadata
            )

        return deliver

    # -- engine::queue::enqueue (§7.1, §7.2) ---------------------------------------------------

    async def enqueue(self, ctx: CallContext, data: Any) -> Any:
        """Queue a call: {queue, function_id, data, messageReceiptId, ...} → {messageReceiptId}."""
        args = parse_input(
            ENQUEUE_FUNCTION,
            data,
            {
                "queue": (_STR, True),
                "function_id": (_STR, True),
                "messageReceiptId": (_STR, True),
                "namespace": (_STR, False),
                "traceparent": (_STR, False),
                "baggage": (_STR, False),
            },
        )
        name = args["queue"]
        queue = self.named.get(name)
        if queue is None:
            raise InvocationError("queue_not_found", f"Queue '{name}' not found")
        payload = args.get("data")
        group = queue.config.message_group_field
        group_value: Any = None
        if queue.config.fifo and group:
            if not isinstance(payload, dict) or group not in payload:
                raise InvocationError(
                    "fifo_group_missing",
                    f"FIFO queue '{name}' requires field '{group}' in data",
                )
            if payload[group] is None:
                raise InvocationError(
                    "fifo_group_missing",
                    f"FIFO queue '{name}' requires field '{group}' in data; it must not be null",
                )
            group_value = payload[group]
        job = _job(
            args["function_id"],
            args.get("namespace") or DEFAULT_NAMESPACE,
            payload,
            queue.config,
            traceparent=args.get("traceparent"),
            baggage=args.get("baggage"),
        )
        current = now_ms()
        message = QueueMessage(
            name,
            args["messageReceiptId"],
            job,
            available_at_ms=current,
            group=None if group_value is None else str(group_value),
            created_at_ms=current,
        )
        try:
            await queue.put(message)
        except QueueFull as exc:
            raise InvocationError("queue_full", str(exc)) from None
        except StorageError as exc:  # e.g. a messageReceiptId already queued
            raise InvocationError("enqueue_failed", str(exc)) from None
        self.cluster.notify(name)
        return {"messageReceiptId": args["messageReceiptId"]}

    # -- durable pub/sub (§7.3) ----------------------------------------------------------------

    async def durable_publish(self, ctx: CallContext, data: Any) -> Any:
        """Publish to a durable topic: {topic, data} → null; one copy per subscriber queue."""
        args = parse_input(
            "iii::durable::publish", data, {"topic": (_STR, False), "queue": (_STR, False)}
        )
        topic = args.get("topic") or args.get("queue")
        if not topic:
            raise InvocationError("topic_not_set", "Topic is not set")
        subs = [s for s in self.topics.get(topic, {}).values() if s.triggers]
        local = {s.queue.name for s in subs}
        others = [r for r in await self._subscribers(topic) if r.queue not in local]
        if not subs and not others:
            logger.debug("durable topic %s has no subscribers: message dropped", topic)
            return None
        full = next((s.queue for s in subs if s.queue.full()), None)
        if full is not None:  # refuse before any copy goes out
            raise InvocationError(
                "queue_full",
                f"Queue '{full.name}' of topic '{topic}' is full ({full.depth} messages, "
                f"max_depth {full.config.max_depth})",
            )
        current = now_ms()
        data = args.get("data")

        def message(queue: str, function_id: str, namespace: str, config: QueueConfig) -> Any:
            job = _job(function_id, namespace, data, config)
            return QueueMessage(
                queue, str(uuid.uuid4()), job, available_at_ms=current, created_at_ms=current
            )

        for sub in subs:
            await sub.queue.put(
                message(sub.queue.name, sub.function_id, sub.namespace, sub.queue.config)
            )
            self.cluster.notify(sub.queue.name)
        for ref in others:  # consumed on other engines only
            config = QueueConfig(**ref.config)
            await self.batcher.add(message(ref.queue, ref.function_id, ref.namespace, config))
            self.cluster.notify(ref.queue)
        return None

    async def _subscribers(self, topic: str) -> list[SubscriberRef]:
        try:
            return await self.cluster.subscribers(topic)
        except StorageError as exc:
            logger.warning("durable topic %s: other engines' subscribers unknown: %s", topic, exc)
            return []

    async def register_trigger(self, trigger: Trigger) -> None:
        """A ``durable:subscriber`` binding; raises ``ValueError`` on a bad config."""
        config = trigger.config if isinstance(trigger.config, dict) else {}
        topic = config.get("topic") or config.get("queue")
        if not isinstance(topic, str) or not topic:
            raise ValueError("durable:subscriber requires a non-empty topic")
        queue_config = QueueConfig.from_subscriber(config.get("queue_config"))
        name = subscriber_queue_name(topic, trigger.function_id, trigger.namespace)
        subs = self.topics.setdefault(topic, {})
        sub = subs.get(name)
        if sub is None:
            queue = self.queues.get(name)
            if queue is None:
                queue = MessageQueue(
                    name, queue_config, self.storage, broker_type="builtin", batcher=self.batcher
                )
                self.queues[name] = queue
            sub = Subscription(topic, trigger.function_id, trigger.namespace, queue)
            subs[name] = sub
        sub.triggers[trigger.id] = trigger
        self.by_trigger[trigger.id] = sub
        if sub.queue.deliver is None:
            sub.queue.deliver = self._subscriber_delivery(sub)
            ref = SubscriberRef(name, sub.function_id, sub.namespace, asdict(sub.queue.config))
            await self._consume(name, (topic, ref))  # announced first, then consumed
            await sub.queue.start()
            sub.queue.wake()

    async def unregister_trigger(self, trigger: Trigger) -> None:
        sub = self.by_trigger.pop(trigger.id, None)
        if sub is None:
            return
        sub.triggers.pop(trigger.id, None)
        if not sub.triggers:
            sub.queue.deliver = None  # paused: its messages wait for a subscriber
            try:
                await self.cluster.stop_consuming(sub.queue.name)
            except StorageError as exc:
                logger.warning("queue %s: %s", sub.queue.name, exc)

    # -- dead letters (§7.4) -------------------------------------------------------------------

    def _names(self, queue_or_topic: str) -> list[str]:
        """Internal queue names a ``queue``/``topic`` argument designates."""
        if queue_or_topic in self.queues:
            return [queue_or_topic]
        return list(self.topics.get(queue_or_topic, {}))

    async def redrive(self, ctx: CallContext, data: Any) -> Any:
        """Redrive dead letters: {queue | topic} → {queue, redriven}.

        Every dead letter of the queue (or of each subscriber queue of a durable topic) is
        queued again with fresh attempts."""
        args = parse_input(
            "iii::queue::redrive", data, {"queue": (_STR, False), "topic": (_STR, False)}
        )
        name = args.get("queue") or args.get("topic")
        if not name:
            raise InvocationError("queue_not_set", "Queue is not set")
        names = self._names(name) or [n for n in await self.storage.queue_names() if n == name]
        if not names:
            raise InvocationError("redrive_failed", f"Queue '{name}' not found")
        total = 0
        for internal in names:
            total += await self._redrive(internal, None)
        return {"queue": name, "redriven": total}

    async def _redrive(self, name: str, message_id: str | None) -> int:
        queue = self.queues.get(name)
        if queue is not None:
            moved = await queue.redrive(message_id)
        else:  # waits for its subscriber
            ids = None if message_id is None else [message_id]
            moved = len(await self.storage.redrive(name, ids, now_ms()))
        if moved:
            self.cluster.notify(name)
        return moved

    def _message_args(self, function_id: str, data: Any) -> tuple[str, str]:
        args = parse_input(function_id, data, {"queue": (_STR, False), "message_id": (_STR, False)})
        if not args.get("queue"):
            raise InvocationError("queue_not_set", "Queue is not set")
        if not args.get("message_id"):
            raise InvocationError("message_id_not_set", "Message id is not set")
        return args["queue"], args["message_id"]

    async def redrive_message(self, ctx: CallContext, data: Any) -> Any:
        """Move one dead letter back: {queue, message_id} → {queue, message_id, redriven}."""
        name, message_id = self._message_args("iii::queue::redrive_message", data)
        total = 0
        for internal in self._names(name) or [name]:
            total += await self._redrive(internal, message_id)
        return {"queue": name, "message_id": message_id, "redriven": min(total, 1)}

    async def discard_message(self, ctx: CallContext, data: Any) -> Any:
        """Delete one dead letter: {queue, message_id} → {queue, message_id, redriven}."""
        name, message_id = self._message_args("iii::queue::discard_message", data)
        found = False
        for internal in self._names(name) or [name]:
            found = await self.storage.discard_dead_letter(internal, message_id) or found
        return {"queue": name, "message_id": message_id, "redriven": int(found)}

    # -- introspection (§7.4) ------------------------------------------------------------------

    async def list_topics(self, ctx: CallContext, data: Any) -> Any:
        """List queues and durable topics: → [{name, broker_type, subscriber_count}]."""
        rows = [
            {"name": name, "broker_type": "function_queue", "subscriber_count": 1}
            for name in sorted(self.named)
        ]
        for topic in sorted(self.topics):
            live = sum(1 for s in self.topics[topic].values() if s.triggers)
            rows.append({"name": topic, "broker_type": "builtin", "subscriber_count": live})
        return rows

    def _topic_arg(self, function_id: str, data: Any) -> dict[str, Any]:
        args = parse_input(function_id, data, {"topic": (_STR, False), "queue": (_STR, False)})
        topic = args.get("topic") or args.get("queue")
        if not topic:
            raise InvocationError("topic_required", "topic is required")
        args["topic"] = topic
        return args

    async def topic_stats(self, ctx: CallContext, data: Any) -> Any:
        """Queue counters: {topic} → {depth, consumer_count, dlq_depth, config, …}.

        Also ``delivered`` and ``failed`` (dead-lettered) since the engine started."""
        topic = self._topic_arg("engine::queue::topic_stats", data)["topic"]
        names = self._names(topic)
        if not names:
            raise InvocationError("topic_not_found", f"Topic '{topic}' not found")
        queues = [self.queues[n] for n in names]
        return {
            "depth": sum([await self.storage.queue_depth(n) for n in names]),
            "consumer_count": sum(1 for q in queues if q.deliver is not None),
            "dlq_depth": sum([await self.storage.dead_letter_count(n) for n in names]),
            "config": asdict(queues[0].config),
            "delivered": sum(q.delivered for q in queues),
            "failed": sum(q.failed for q in queues),
        }

    async def dlq_topics(self, ctx: CallContext, data: Any) -> Any:
        """Queues holding dead letters: → [{topic, broker_type, message_count}]."""
        rows = []
        for name in await self.storage.queue_names():
            count = await self.storage.dead_letter_count(name)
            if not count:
                continue
            queue = self.queues.get(name)
            broker = queue.broker_type if queue is not None else "builtin"
            rows.append({"topic": name, "broker_type": broker, "message_count": count})
        return rows

    async def dlq_messages(self, ctx: CallContext, data: Any) -> Any:
        """List dead letters: {topic, offset=0, limit=50} → [{id, payload, error, …}].

        Rows: ``{id, payload, error, failed_at, retries, size_bytes}``, oldest failure first."""
        fid = "engine::queue::dlq_messages"
        args = self._topic_arg(fid, data)
        parse_input(fid, data, {"offset": (_INT, False), "limit": (_INT, False)})
        offset = max(0, args.get("offset") or 0)
        limit = args.get("limit")
        limit = 50 if limit is None else max(0, limit)
        letters = []
        for name in self._names(args["topic"]) or [args["topic"]]:
            letters.extend(await self.storage.dead_letters(name, 0, offset + limit))
        letters.sort(key=lambda d: d.failed_at_ms)
        rows = []
        for letter in letters[offset : offset + limit]:
            data = letter.message.payload.get("data")
            rows.append(
                {
                    "id": letter.message.id,
                    "payload": data,
                    "error": letter.error,
                    "failed_at": letter.failed_at_ms,
                    "retries": letter.message.attempts,
                    "size_bytes": len(json.dumps(data, separators=(",", ":")).encode()),
                }
            )
        return rows
