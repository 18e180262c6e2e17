"""Live updates: the invocation rates, and one server-sent-event stream per open page.

A page names the topics it shows (``/events?topic=functions&topic=workers``). The stream looks
at the engine in-process twice a second and sends ``event: <topic>`` only when what that topic
shows has changed; the page then fetches the part of itself that listens to it (htmx
``hx-trigger="sse:<topic>"``). What is compared is cheap: sets of registry keys, counters, the
telemetry store's sizes; the storage-backed topics (queues, state, streams) are read again only
when an invocation happened since the last look (every write to them is one) or every 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..core.invocation import Invoker

if TYPE_CHECKING:
    from .model import EngineView

__all__ = ["TOPICS", "Rates", "event_stream"]

logger = logging.getLogger("iii_asgi.engine.console")

#: How often a stream compares (s), and how often storage-backed topics are read regardless.
TICK_S = 0.5
STORAGE_EVERY_S = 5.0
KEEPALIVE_S = 15.0


class Rates:
    """Invocations and errors per second, from the invoker's counters sampled once a second."""

    def __init__(self, invoker: Invoker, size: int = 121) -> None:
        self.invoker = invoker
        #: ``(monotonic s, invocations, errors)``, oldest first.
        self.samples: deque[tuple[float, int, int]] = deque(maxlen=size)
        self.sample()

    def sample(self) -> None:
        self.samples.append((time.monotonic(), self.invoker.invocations, self.invoker.errors))

    async def run(self, closing: asyncio.Event) -> None:
        while not closing.is_set():
            await asyncio.sleep(1.0)
            self.sample()

    def per_second(self, window: int = 10) -> tuple[float, float]:
        """``(invocations/s, errors/s)`` over the last ``window`` samples."""
        if len(self.samples) < 2:
            return 0.0, 0.0
        first = self.samples[max(0, len(self.samples) - 1 - window)]
        last = self.samples[-1]
        elapsed = max(last[0] - first[0], 1e-6)
        return (last[1] - first[1]) / elapsed, (last[2] - first[2]) / elapsed

    def history(self, points: int = 60) -> list[tuple[float, float]]:
        """Per-second ``(invocations, errors)`` of the last ``points`` seconds, oldest first
        (zeros before the console started)."""
        samples = list(self.samples)
        rates = [
            ((b[1] - a[1]) / max(b[0] - a[0], 1e-6), (b[2] - a[2]) / max(b[0] - a[0], 1e-6))
            for a, b in itertools.pairwise(samples)
        ][-points:]
        return [(0.0, 0.0)] * (points - len(rates)) + rates


def _json_digest(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _topics(view: EngineView) -> dict[str, Callable[[dict[str, str]], Awaitable[Any]]]:
    """Topic name → ``await digest(params)``: equal digests mean the page shows the same."""

    async def overview(params: dict[str, str]) -> Any:
        invocations, errors = view.rates.per_second()
        chart = [(round(a, 1), round(b, 1)) for a, b in view.rates.history()]
        return (
            await functions(params),
            await workers(params),
            await triggers(params),
            round(invocations, 1),
            round(errors, 1),
            view.invoker.invocations,
            chart if any(a or b for a, b in chart) else None,  # the chart moves while not flat
            await queues(params),
        )

    async def functions(params: dict[str, str]) -> Any:
        registry = view.core.registry
        return frozenset(registry.functions), frozenset(registry.failed_functions)

    async def workers(params: dict[str, str]) -> Any:
        return sorted(
            (c.worker_id, c.display_name, len(c.inflight), len(c.functions), c.namespace or "")
            for c in view.core.registry.workers.values()
        )

    async def triggers(params: dict[str, str]) -> Any:
        registry = view.core.registry
        bindings = frozenset((t.id, t.provider is None) for t in registry.triggers.values())
        return bindings, frozenset(registry.trigger_types)

    async def queues(params: dict[str, str]) -> Any:
        return _json_digest(await view.queue_rows())

    async def traces(params: dict[str, str]) -> Any:
        store = view.store
        spans = sum(len(spans) for spans in store.traces.values())
        last = next(reversed(store.traces), None)
        return spans, last, len(store.pending), store.pending_bytes

    async def logs(params: dict[str, str]) -> Any:
        store = view.store
        newest = id(store.logs[-1]) if store.logs else None
        return len(store.logs), newest, len(store.pending), store.pending_bytes

    async def state(params: dict[str, str]) -> Any:
        scopes = await view.state_scopes()
        scope = params.get("scope")
        items = await view.state_items(scope) if scope else []
        return _json_digest([scopes, items])

    async def streams(params: dict[str, str]) -> Any:
        return _json_digest(await view.stream_tree(params.get("stream"), params.get("group")))

    return {
        "overview": overview,
        "functions": functions,
        "workers": workers,
        "triggers": triggers,
        "queues": queues,
        "traces": traces,
        "logs": logs,
        "state": state,
        "streams": streams,
    }


#: Topics a page may ask for; those read from storage are re-read only when needed.
TOPICS = frozenset(
    {"overview", "functions", "workers", "triggers", "queues", "traces", "logs", "state", "streams"}
)
_STORED = frozenset({"overview", "queues", "state", "streams"})


async def event_stream(
    view: EngineView, topics: list[str], params: dict[str, str], closing: asyncio.Event
) -> AsyncIterator[str]:
    """The ``text/event-stream`` body of one page: ``event: <topic>`` each time what the topic
    shows changed, a comment every 15 s, until the client leaves or ``closing`` is set."""
    digests = _topics(view)
    wanted = [t for t in dict.fromkeys(topics) if t in digests]
    last: dict[str, Any] = {}
    seen_invocations = -1
    storage_read = 0.0
    keepalive = time.monotonic()
    yield "retry: 2000\n\n"
    while not closing.is_set():
        now = time.monotonic()
        invocations = view.invoker.invocations
        read_storage = invocations != seen_invocations or now - storage_read >= STORAGE_EVERY_S
        if read_storage:
            seen_invocations, storage_read = invocations, now
        for topic in wanted:
            if topic in _STORED and not read_storage:
                continue
            try:
                digest = await digests[topic](params)
            except Exception:  # e.g. the store closing under us: the browser reconnects
                logger.debug("console: live topic %s failed", topic, exc_info=True)
                return
            if topic in last and last[topic] != digest:
                yield f"event: {topic}\ndata: {topic}\n\n"
                keepalive = now
            last[topic] = digest
        if now - keepalive >= KEEPALIVE_S:
            yield ": keepalive\n\n"
            keepalive = now
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(closing.wait(), TICK_S)
