"""The client-facing stream WebSocket (builtins.md §6.4): a browser subscribes to a stream
group or item and receives its changes live.

Served on its own port (``EngineConfig.stream_port``, default 3112; ``--stream-port``), route
``/`` only (anything else: 404). An upgrade carrying an ``Origin`` outside
``EngineConfig.stream_allowed_origins`` gets 403 (:mod:`iii_asgi.engine.origins`).

* On upgrade, ``EngineConfig.stream_auth_function`` (if set) is called with ``{"headers":
  {lower-case name: value}, "path": "/", "query_params": {name: [values]}, "addr": "ip:port"}``;
  a ``{"context": …}`` result attaches that context to the connection. It never rejects: a
  failure or another result means "no context".
* Client → server (JSON text or binary frames; blank frames ignored, bad JSON logged and
  ignored): ``{"type": "join" | "leave", "data": {"subscriptionId", "streamName", "groupId",
  "id"?}}``. A join runs every ``stream:join`` binding in turn with ``{"subscription_id",
  "stream_name", "group_id", "id", "context"}``; a result with ``"unauthorized": true`` refuses
  it (the client gets ``{"type": "unauthorized"}``). Otherwise the subscription is recorded and
  the client gets ``{"type": "sync", "data": item or [values]}``. Leave (or closing the socket,
  once per remaining subscription) runs the ``stream:leave`` bindings.
* Server → client: text frames ``{"type": "stream", "timestamp", "streamName", "groupId", "id",
  "event"}``, one per matching subscription (a subscription matches when stream and group are
  equal and it has no ``id`` or the same ``id``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pydantic_core

from iii_asgi._asgi import TEXT, send_response

from ...core.errors import InvocationError
from ...core.registry import CallContext
from ...origins import OriginPolicy, refuse_origin
from ...types import Receive, Scope, Send

if TYPE_CHECKING:
    from .worker import StreamWorker

__all__ = [
    "StreamClient",
    "StreamSocketApp",
    "StreamSubscribers",
    "Subscription",
    "wrapper",
]

logger = logging.getLogger("iii_asgi.engine")

#: Frames queued per client before it counts as too slow and is disconnected.
CLIENT_QUEUE = 1024


def wrapper(stream_name: str, group_id: str, item_id: str | None, event: Any) -> dict[str, Any]:
    """The camelCase message of §6.2/§6.4: the ``stream`` trigger payload and socket frame."""
    return {
        "type": "stream",
        "timestamp": int(time.time() * 1000),
        "streamName": stream_name,
        "groupId": group_id,
        "id": item_id,
        "event": event,
    }


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    stream_name: str
    group_id: str
    item_id: str | None

    def matches(self, message: dict[str, Any]) -> bool:
        return (
            self.stream_name == message["streamName"]
            and self.group_id == message["groupId"]
            and (self.item_id is None or self.item_id == message["id"])
        )

    def payload(self, context: Any) -> dict[str, Any]:
        """The ``stream:join`` / ``stream:leave`` payload (§6.3, snake_case)."""
        return {
            "subscription_id": self.id,
            "stream_name": self.stream_name,
            "group_id": self.group_id,
            "id": self.item_id,
            "context": context,
        }


@dataclass(eq=False)
class StreamClient:
    """One socket: its auth context, subscriptions and outbound queue."""

    send: Send
    context: Any = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    outbox: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    closed: bool = False

    def push(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            logger.warning("stream client too slow (%d frames queued): disconnecting", CLIENT_QUEUE)
            self.closed = True
            self.outbox = asyncio.Queue(1)
            self.outbox.put_nowait(None)

    async def write_forever(self) -> None:
        while True:
            text = await self.outbox.get()
            if text is None:
                await self.send({"type": "websocket.close", "code": 1008})
                return
            await self.send({"type": "websocket.send", "text": text})


class StreamSubscribers:
    """Every connected stream client; :meth:`broadcast` delivers a message to the matching
    subscriptions."""

    def __init__(self) -> None:
        self.clients: set[StreamClient] = set()

    def broadcast(self, message: dict[str, Any]) -> None:
        text: str | None = None
        for client in list(self.clients):
            for subscription in list(client.subscriptions.values()):
                if subscription.matches(message):
                    if text is None:
                        text = pydantic_core.to_json(message).decode()
                    client.push(text)

    def __iter__(self) -> Iterator[StreamClient]:
        return iter(self.clients)


class StreamSocketApp:
    """``StreamSocketApp(worker)``: the ASGI 3 app of the stream port."""

    def __init__(self, worker: StreamWorker) -> None:
        self.worker = worker
        self.subscribers = StreamSubscribers()
        self.origins = OriginPolicy(worker.core.config.stream_allowed_origins)
        worker.subscribers = self.subscribers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" and not self.origins.allows(scope):
            await refuse_origin(send)
        elif kind == "websocket" and scope["path"] == "/":
            await self._serve(scope, receive, send)
        elif kind in ("websocket", "http"):
            prefix = "websocket.http.response" if kind == "websocket" else "http.response"
            await send_response(send, 404, b"Not Found", TEXT, prefix)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        client = StreamClient(send, context=await self._authenticate(scope))
        await send({"type": "websocket.accept"})
        self.subscribers.clients.add(client)
        writer = asyncio.get_running_loop().create_task(client.write_forever())
        try:
            while not client.closed:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    raw = (message.get("bytes") or b"").decode("utf-8", "replace")
                if raw.strip():
                    await self._handle(client, raw)
        finally:
            self.subscribers.clients.discard(client)
            remaining = list(client.subscriptions.values())
            client.subscriptions.clear()
            for subscription in remaining:
                await self._fire_leave(client, subscription)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _authenticate(self, scope: Scope) -> Any:
        function_id = self.worker.core.config.stream_auth_function
        if function_id is None:
            return None
        client = scope.get("client")
        data = {
            "headers": {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope.get("headers", [])
            },
            "path": scope["path"],
            "query_params": parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            ),
            "addr": f"{client[0]}:{client[1]}" if client else "",
        }
        try:
            result = await self.worker.core.invoker.call(function_id, data)
        except InvocationError as exc:
            logger.warning("stream auth function %s failed: %s", function_id, exc.message)
            return None
        if isinstance(result, dict) and "context" in result:
            return result["context"]
        return None

    async def _handle(self, client: StreamClient, raw: str) -> None:
        try:
            message = pydantic_core.from_json(raw)
        except ValueError:
            logger.warning("stream socket: ignoring a frame that is not JSON: %.80r", raw)
            return
        subscription = _subscription(message)
        if subscription is None:
            logger.warning("stream socket: ignoring a malformed message: %.200r", raw)
            return
        if message["type"] == "join":
            await self._join(client, subscription)
        else:
            removed = client.subscriptions.pop(subscription.id, None)
            await self._fire_leave(client, removed or subscription)

    async def _join(self, client: StreamClient, subscription: Subscription) -> None:
        payload = subscription.payload(client.context)
        for trigger in list(self.worker.join.bindings.values()):
            try:
                result = await self.worker.core.invoker.call(
                    trigger.function_id,
                    payload,
                    namespace=trigger.namespace,
                    metadata=trigger.metadata,
                )
            except InvocationError as exc:
                logger.warning(
                    "stream:join handler %s failed: %s", trigger.function_id, exc.message
                )
                continue
            if isinstance(result, dict) and "unauthorized" in result:
                flag = result["unauthorized"]
                if not isinstance(flag, bool):
                    logger.error(
                        "stream:join handler %s: `unauthorized` is not a boolean",
                        trigger.function_id,
                    )
                elif flag:
                    client.push(self._frame(subscription, {"type": "unauthorized"}))
                    return
        client.subscriptions[subscription.id] = subscription
        client.push(
            self._frame(subscription, {"type": "sync", "data": await self._sync(subscription)})
        )

    async def _sync(self, subscription: Subscription) -> Any:
        data: dict[str, Any] = {
            "stream_name": subscription.stream_name,
            "group_id": subscription.group_id,
        }
        context = CallContext(None, None)
        try:
            if subscription.item_id is None:
                return await self.worker.list(context, data)
            return await self.worker.get(context, {**data, "item_id": subscription.item_id})
        except InvocationError as exc:
            logger.warning("stream socket: sync of %s failed: %s", subscription, exc.message)
            return None if subscription.item_id is not None else []

    async def _fire_leave(self, client: StreamClient, subscription: Subscription) -> None:
        payload = subscription.payload(client.context)
        for trigger in list(self.worker.leave.bindings.values()):
            try:
                await self.worker.core.invoker.call(
                    trigger.function_id,
                    payload,
                    namespace=trigger.namespace,
                    metadata=trigger.metadata,
                )
            except InvocationError as exc:
                logger.info("stream:leave handler %s failed: %s", trigger.function_id, exc.message)

    @staticmethod
    def _frame(subscription: Subscription, event: dict[str, Any]) -> str:
        message = wrapper(
            subscription.stream_name, subscription.group_id, subscription.item_id, event
        )
        return pydantic_core.to_json(message).decode()


def _subscription(message: Any) -> Subscription | None:
    if not isinstance(message, dict) or message.get("type") not in ("join", "leave"):
        return None
    data = message.get("data")
    if not isinstance(data, dict):
        return None
    sid, stream, group, item = (
        data.get("subscriptionId"),
        data.get("streamName"),
        data.get("groupId"),
        data.get("id"),
    )
    if not (isinstance(sid, str) and isinstance(stream, str) and isinstance(group, str)):
        return None
    if item is not None and not isinstance(item, str):
        return None
    return Subscription(sid, stream, group, item)
