"""What the console reads of one engine, in-process: the registries (functions, triggers,
workers) and the stores behind the queue, state and stream workers. Nothing here writes; the
actions (:mod:`.actions`) call the built-in functions instead."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from croniter import croniter

from ..core.builtins import ENGINE_WORKER_NAME, _is_internal
from ..core.connection import WorkerConnection
from ..core.registry import DEFAULT_NAMESPACE, FunctionEntry, Trigger, TriggerType
from ..workers.cron.worker import to_croniter
from ..workers.queue.worker import subscriber_queue_name
from ..workers.state.worker import STATE_SPACE
from ..workers.stream.worker import stream_space

if TYPE_CHECKING:
    from ..core.engine import EngineCore
    from ..server import EngineWorkers
    from .live import Rates

__all__ = ["SCAN_LIMIT", "EngineView", "TriggerGroup"]

#: Queues up to this depth have their waiting messages read for the ``retrying`` count.
SCAN_LIMIT = 1000

#: Trigger-specific columns by type: (heading, config key or a computed column).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "http": ("Method", "Path"),
    "cron": ("Expression", "Next runs (UTC)"),
    "state": ("Scope", "Key", "Condition"),
    "stream": ("Stream", "Group", "Item", "Condition"),
    "subscribe": ("Topic",),
    "durable:subscriber": ("Topic", "Queue", "Condition"),
}
_KEYS = {
    "state": ("scope", "key", "condition_function_id"),
    "stream": ("stream_name", "group_id", "item_id", "condition_function_id"),
    "subscribe": ("topic",),
}


def is_internal(entry: FunctionEntry) -> bool:
    """The engine's own bookkeeping functions (``engine::*``, ``metadata.internal``), hidden
    as ``engine::functions::list`` hides them."""
    return _is_internal(entry.function_id, entry.metadata)


def next_runs(expression: str, count: int = 3) -> list[datetime]:
    """The next ``count`` times (UTC) of an engine cron expression; ``[]`` when invalid."""
    try:
        it = croniter(to_croniter(expression), datetime.now(timezone.utc), day_or=False)
        return [it.get_next(datetime) for _ in range(count)]
    except Exception:  # croniter raises several error types
        return []


def compact(value: Any, limit: int = 120) -> str:
    """One-line JSON, cut to ``limit`` characters."""
    text = json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class TriggerGroup:
    """The bindings of one trigger type, with the columns that type shows."""

    type_id: str
    namespace: str
    description: str
    provider: str
    in_process: bool
    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)


class EngineView:
    """Read access to one engine for the console's pages."""

    def __init__(self, core: EngineCore, workers: EngineWorkers, rates: Rates) -> None:
        self.core = core
        self.workers = workers
        self.rates = rates
        self.invoker = core.invoker
        self.registry = core.registry
        self.store = workers.observability.store
        self.storage = workers.storage

    # -- functions -----------------------------------------------------------------------------

    def worker_name(self, entry: FunctionEntry) -> str:
        return self.core.builtins.worker_name_of(entry)

    def function_rows(
        self, search: str = "", worker: str = "", internal: bool = False
    ) -> list[dict[str, Any]]:
        """Every function (without the engine's internal ones unless ``internal``): the
        workers' by id, then the engine's built-ins."""
        counts: dict[tuple[str, str], int] = {}
        for trigger in self.registry.triggers.values():
            key = (trigger.namespace, trigger.function_id)
            counts[key] = counts.get(key, 0) + 1
        needle = search.lower()
        rows = []
        for key, entry in self.registry.functions.items():
            hidden = is_internal(entry)
            if hidden and not internal:
                continue
            name = self.worker_name(entry)
            if worker and name != worker:
                continue
            text = f"{entry.function_id} {entry.description or ''} {name}".lower()
            if needle and needle not in text:
                continue
            rows.append(
                {
                    "id": entry.function_id,
                    "namespace": entry.namespace,
                    "worker": name,
                    "description": entry.description or "",
                    "kind": self.kind(entry),
                    "internal": hidden,
                    "triggers": counts.get(key, 0),
                }
            )
        rows.sort(key=lambda r: (r["kind"] == "built-in", r["id"], r["namespace"]))
        return rows

    @staticmethod
    def kind(entry: FunctionEntry) -> str:
        if entry.owner is None:
            return "built-in"
        return "http-invoked" if entry.in_process else "worker"

    def function(self, function_id: str, namespace: str | None) -> FunctionEntry | None:
        """The function ``function_id`` in ``namespace`` (else ``default``, else its only
        namespace)."""
        functions = self.registry.functions
        if namespace:
            return functions.get((namespace, function_id))
        entry = functions.get((DEFAULT_NAMESPACE, function_id))
        if entry is not None:
            return entry
        spaces = sorted(self.registry.function_namespaces.get(function_id, ()))
        return functions.get((spaces[0], function_id)) if spaces else None

    def bindings_of(self, entry: FunctionEntry) -> list[Trigger]:
        return [
            t
            for t in self.registry.triggers.values()
            if t.function_id == entry.function_id and t.namespace == entry.namespace
        ]

    def queue_names(self) -> list[str]:
        return sorted(self.workers.queue.named)

    # -- triggers ------------------------------------------------------------------------------

    def _provider_name(self, ttype: TriggerType) -> str:
        provider = ttype.provider
        if isinstance(provider, WorkerConnection):
            return provider.display_name
        return ENGINE_WORKER_NAME

    def trigger_groups(self) -> list[TriggerGroup]:
        """Bindings grouped by trigger type (types without bindings too; bindings waiting for
        their type in a group of their own), http first, then by type id."""
        groups: dict[tuple[str, str], TriggerGroup] = {}
        for ttype in self.registry.trigger_types.values():
            groups[(ttype.namespace, ttype.id)] = TriggerGroup(
                ttype.id,
                ttype.namespace,
                ttype.description,
                self._provider_name(ttype),
                ttype.in_process,
                _COLUMNS.get(ttype.id, ("Config",)),
            )
        for trigger in self.registry.triggers.values():
            provider = trigger.provider
            key = (provider.namespace, provider.id) if provider else ("", trigger.trigger_type)
            group = groups.get(key)
            if group is None:
                group = groups[key] = TriggerGroup(
                    trigger.trigger_type,
                    "",
                    "no provider yet: bindings wait for this trigger type",
                    "",
                    False,
                    _COLUMNS.get(trigger.trigger_type, ("Config",)),
                )
            group.rows.append(self.trigger_row(trigger))
        for group in groups.values():
            group.rows.sort(key=lambda r: (r["sort"], r["function_id"]))
        order = sorted(groups.values(), key=lambda g: (g.type_id != "http", g.type_id))
        return order

    def trigger_row(self, trigger: Trigger) -> dict[str, Any]:
        config = trigger.config if isinstance(trigger.config, dict) else {}
        kind = trigger.trigger_type
        cells: list[Any]
        if kind == "http":
            method = str(config.get("http_method") or "GET").upper()
            path = str(config.get("api_path") or "")
            cells = [method, "/" + path.lstrip("/")]
            sort = cells[1] + " " + method
        elif kind == "cron":
            expression = str(config.get("expression") or "")
            cells = [expression, next_runs(" ".join(expression.split()))]
            sort = expression
        elif kind == "durable:subscriber":
            topic = str(config.get("topic") or config.get("queue") or "")
            queue = subscriber_queue_name(topic, trigger.function_id, trigger.namespace)
            cells = [topic, queue, config.get("condition_function_id") or ""]
            sort = topic
        elif kind in _KEYS:
            cells = [config.get(key) or "" for key in _KEYS[kind]]
            sort = str(cells[0])
        else:
            cells = [compact(trigger.config)]
            sort = cells[0]
        owner = trigger.owner
        return {
            "id": trigger.id,
            "type": kind,
            "function_id": trigger.function_id,
            "namespace": trigger.namespace,
            "worker": owner.display_name if owner is not None else "engine (durable)",
            "cells": cells,
            "parked": trigger.provider is None,
            "sort": sort,
        }

    # -- workers -------------------------------------------------------------------------------

    def worker_rows(self) -> list[dict[str, Any]]:
        """The engine itself, then every live worker connection, oldest first."""
        builtins = self.core.builtins
        engine = builtins.engine_summary()
        engine["pid"] = None
        engine["functions"] = sorted(
            e.function_id for e in self.registry.functions.values() if e.owner is None
        )
        rows = [engine]
        connections = sorted(
            (c for c in self.registry.workers.values() if c.alive),
            key=lambda c: c.connected_at_ms,
        )
        for conn in connections:
            row = builtins.worker_summary(conn)
            row["pid"] = conn.info.get("pid")
            row["status"] = "connected" if conn.registered else "registering"
            row["functions"] = sorted(function_id for _, function_id in conn.functions)
            rows.append(row)
        return rows

    # -- queues --------------------------------------------------------------------------------

    async def queue_rows(self) -> list[dict[str, Any]]:
        """Every queue: named ones, durable subscribers' and any other the store holds.
        ``retrying`` (messages that failed an attempt and wait for the next) is counted only
        for queues of at most :data:`SCAN_LIMIT` messages (``None`` above)."""
        queues = self.workers.queue.queues
        names = sorted(set(queues) | set(await self.storage.queue_names()))
        rows = []
        for name in names:
            queue = queues.get(name)
            depth = await self.storage.queue_depth(name)
            retrying = None
            if depth <= SCAN_LIMIT:
                pending = await self.storage.queue_pending(name) if depth else []
                retrying = sum(1 for m in pending if m.attempts > 0)
            rows.append(
                {
                    "name": name,
                    "type": queue.broker_type if queue is not None else "stored",
                    "depth": depth,
                    "inflight": queue.running if queue is not None else 0,
                    "retrying": retrying,
                    "dead": await self.storage.dead_letter_count(name),
                    "delivered": queue.delivered if queue is not None else 0,
                    "failed": queue.failed if queue is not None else 0,
                    "consuming": queue is not None and queue.deliver is not None,
                    "config": queue.config if queue is not None else None,
                }
            )
        return rows

    async def queue_detail(self, name: str, limit: int = 100) -> dict[str, Any] | None:
        """One queue's row, its dead letters and waiting messages (the first ``limit``)."""
        row = next((r for r in await self.queue_rows() if r["name"] == name), None)
        if row is None:
            return None
        letters = await self.storage.dead_letters(name, 0, limit)
        pending = (await self.storage.queue_pending(name))[:limit] if row["depth"] else []
        row["dead_letters"] = [
            {
                "id": d.message.id,
                "function_id": d.message.payload.get("function_id"),
                "payload": d.message.payload.get("data"),
                "error": d.error,
                "failed_at_ms": d.failed_at_ms,
                "attempts": d.message.attempts,
            }
            for d in letters
        ]
        row["pending"] = [
            {
                "id": m.id,
                "function_id": m.payload.get("function_id"),
                "payload": m.payload.get("data"),
                "attempts": m.attempts,
                "available_at_ms": m.available_at_ms,
                "created_at_ms": m.created_at_ms,
            }
            for m in pending
        ]
        return row

    # -- state and streams ---------------------------------------------------------------------

    async def state_scopes(self) -> list[str]:
        return await self.storage.list_collections(STATE_SPACE)

    async def state_items(self, scope: str) -> list[tuple[str, Any]]:
        return await self.storage.list_items(STATE_SPACE, scope)

    async def stream_names(self) -> list[str]:
        prefix = stream_space("")
        return [space[len(prefix) :] for space in await self.storage.list_spaces(prefix)]

    async def stream_tree(self, stream: str | None, group: str | None) -> dict[str, Any]:
        """The stream names, the groups of ``stream`` and the items of ``group``."""
        groups = await self.storage.list_collections(stream_space(stream)) if stream else []
        items = (
            await self.storage.list_items(stream_space(stream), group) if stream and group else []
        )
        return {"streams": await self.stream_names(), "groups": groups, "items": items}
