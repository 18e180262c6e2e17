"""The route table on the engine: one function per row, one ``http`` trigger per binding, kept
in step with the app's routes (:meth:`RouteRegistrations.apply` diffs a new table against what
is registered) and the cheap change check the bridge runs on requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from iii import III
from iii.client import FunctionRef, Trigger

from .routes import BridgeRoute

__all__ = ["RouteRegistrations", "RouteWatch", "SyncResult", "routes_fingerprint"]

logger = logging.getLogger("iii_asgi.bridge")


@dataclass(frozen=True)
class SyncResult:
    """What :meth:`IIIBridge.sync` changed: function ids ``added`` / ``removed``, and those
    whose triggers changed (``rebound``)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    rebound: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.rebound)


@dataclass
class _Registered:
    row: BridgeRoute
    function: FunctionRef
    triggers: dict[tuple[str, str], Trigger] = field(default_factory=dict)


class RouteRegistrations:
    """The route functions registered on ``client``, all served by ``handler``."""

    def __init__(self, client: III, handler: Any) -> None:
        self.client = client
        self.handler = handler
        self.registered: dict[str, _Registered] = {}

    def apply(self, table: Sequence[BridgeRoute]) -> SyncResult:
        """Make the registrations match ``table``: every removal goes out before any
        registration, so an engine route moving to another function is never refused as a
        conflict (the engine handles a connection's frames in order)."""
        wanted = {row.function_id: row for row in table}
        removed = [fid for fid in self.registered if fid not in wanted]
        rebound: list[str] = []
        for function_id in removed:
            entry = self.registered.pop(function_id)
            for trigger in entry.triggers.values():
                trigger.unregister()
            entry.function.unregister()
        for function_id, kept in self.registered.items():
            bindings = set(wanted[function_id].bindings)
            gone = [b for b in kept.triggers if b not in bindings]
            for binding in gone:
                kept.triggers.pop(binding).unregister()
            if gone or bindings - set(kept.triggers):
                rebound.append(function_id)
        added: list[str] = []
        for function_id, row in wanted.items():
            if function_id not in self.registered:
                self.registered[function_id] = _Registered(row, self._function(row))
                added.append(function_id)
            entry = self.registered[function_id]
            entry.row = row
            for method, api_path in row.bindings:
                if (method, api_path) not in entry.triggers:
                    entry.triggers[(method, api_path)] = self.client.register_trigger(
                        {
                            "type": "http",
                            "function_id": function_id,
                            "config": {"api_path": api_path, "http_method": method},
                        }
                    )
        return SyncResult(tuple(added), tuple(removed), tuple(rebound))

    def optional_ids(self) -> set[str]:
        """Ids of the triggers the app can do without (a refusal is not fatal): redirect
        twins, and the paths of catch-alls (mounts, frontends, ``{p:path}``) an engine route
        of another worker may already have."""
        optional: set[str] = set()
        for entry in self.registered.values():
            row = entry.row
            catch_all = row.kind != "route" or len(row.api_paths) > 1
            for (_, path), trigger in entry.triggers.items():
                if catch_all or path in row.redirect_paths:
                    optional.add(trigger.id)
        return optional

    def _function(self, row: BridgeRoute) -> FunctionRef:
        return self.client.register_function(
            row.function_id,
            self.handler,
            description=row.description,
            metadata={**(row.metadata or {}), "http": {"path": row.path}},
            request_format=row.request_format,
            response_format=row.response_format,
        )

    def unregister_triggers(self) -> None:
        """Stop the engine routing here (shutdown): every ``http`` trigger goes."""
        for entry in self.registered.values():
            for trigger in entry.triggers.values():
                trigger.unregister()
            entry.triggers.clear()


def routes_fingerprint(holder: Any) -> tuple[int, int, int]:
    """A cheap value that changes when routes are added to ``holder`` (an app or router):
    the number of its routes, FastAPI's routes version (which counts the routers it includes)
    and its low-priority routes."""
    router = getattr(holder, "router", holder)
    routes = getattr(router, "routes", None)
    version = getattr(router, "_get_routes_version", None)
    low = getattr(router, "_low_priority_routes", ())
    return (
        len(routes) if isinstance(routes, list) else 0,
        version() if callable(version) else 0,
        len(low) if isinstance(low, list) else 0,
    )


#: How often :class:`RouteWatch` also looks into the routers an app includes (seconds).
DEEP_CHECK_S = 1.0


class RouteWatch:
    """Notices routes added to an app, cheaply enough for every request: the top router's
    route count, FastAPI routes version and low-priority routes each time (three attribute
    reads); the routers it includes (:func:`routes_fingerprint`) at most every
    :data:`DEEP_CHECK_S`."""

    def __init__(self, holder: Any) -> None:
        self.holder = holder
        router = getattr(holder, "router", holder)
        self.router = router if isinstance(getattr(router, "routes", None), list) else holder
        self.quick = self._quick()
        self.seen = routes_fingerprint(holder)
        self.deep_due = time.monotonic() + DEEP_CHECK_S

    def _quick(self) -> tuple[int, int, int]:
        router = self.router
        routes = getattr(router, "routes", None)  # None: an app without routes
        return (
            len(routes) if routes is not None else 0,
            getattr(router, "_routes_version", 0),
            len(getattr(router, "_low_priority_routes", ())),
        )

    def changed(self) -> bool:
        """Whether the routes changed since the last call that said so (or construction)."""
        quick = self._quick()
        if quick == self.quick:
            now = time.monotonic()
            if now < self.deep_due:
                return False
            self.deep_due = now + DEEP_CHECK_S
        self.quick = quick
        seen = routes_fingerprint(self.holder)
        if seen == self.seen:
            return False
        self.seen = seen
        return True
