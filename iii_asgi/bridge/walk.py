"""Walking an app's routing tree: everything it serves over HTTP, in the order it matches.

:func:`walk` yields one :class:`Served` per thing the engine must route to the app:

- every ``Route`` / FastAPI ``APIRoute`` (hidden ones too: the filter decides), through routers
  included with a prefix (FastAPI ≥ 0.16x keeps them as lazy entries: expanded here) and
  ``Mount``\\ s of routers and sub-apps, with their prefixes;
- a ``Mount`` of an app without routes (``StaticFiles``, a WSGI app, any ASGI app): a
  catch-all ``<prefix>/{path:path}`` on every method (the mounted app answers for itself);
- a ``Host``: its routes (the engine cannot match on ``Host``; the app still does, so a request
  for another host gets the app's own answer); a ``Host`` of an app without routes: a catch-all;
- FastAPI's low-priority routes (``app.frontend()``), after the regular ones, as catch-alls.

WebSocket routes are skipped: the engine's http trigger does not carry WebSockets.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import Host, Mount, Route, Router, WebSocketRoute

__all__ = ["ROUTABLE", "Served", "walk"]

logger = logging.getLogger("iii_asgi.bridge")

#: Methods the engine's http trigger can mount (builtins.md §3.2); HEAD falls back to GET there.
ROUTABLE = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_CATCH_ALL = "/{path:path}"


@dataclass(frozen=True)
class Served:
    """One thing the app serves.

    ``path``: the full template, prefixes included (a catch-all ends in ``{path:path}``);
    ``route``: the route, route context, mount, host or frontend route it comes from;
    ``kind``: ``route``, ``mount``, ``host`` or ``frontend``; ``redirects``: the app answers
    the path's trailing-slash twin (a redirect, or for a frontend the bare prefix itself);
    ``low_priority``: matched only after every regular route (FastAPI's frontend routes).
    """

    path: str
    route: Any
    methods: tuple[str, ...]
    kind: str
    redirects: bool
    low_priority: bool = False

    @property
    def name(self) -> str | None:
        name = getattr(self.route, "name", None)
        if isinstance(name, str) and name:
            return name
        if self.kind == "route":
            return None
        if self.kind == "frontend":
            return "frontend"
        app = getattr(self.route, "app", None)
        return type(app).__name__ if app is not None else self.kind


def walk(container: Any, prefix: str = "", redirects: bool | None = None) -> Iterator[Served]:
    """Everything ``container`` (an app, a router, or a list of routes) serves, in match order.

    ``redirects``: whether the container's router answers trailing-slash twins with a redirect
    (its ``redirect_slashes``, read from the container when ``None``).
    """
    router = _router_of(container)
    routes = container if isinstance(container, list) else getattr(container, "routes", None)
    if redirects is None:
        redirects = bool(getattr(router, "redirect_slashes", True))
    for item in _flatten(routes or ()):
        yield from _item(item, prefix, redirects)
    if router is not None:
        yield from _low_priority(router, prefix)


def _item(item: Any, prefix: str, redirects: bool) -> Iterator[Served]:
    original = getattr(item, "original_route", item)  # a FastAPI route context, or the route
    if isinstance(original, Mount):
        path = prefix + str(item.path)
        sub = getattr(item, "routes", None) or []
        if sub:
            app = getattr(item, "app", None)
            inner = getattr(_router_of(app), "redirect_slashes", redirects)
            yield from walk(app if _router_of(app) is not None else sub, path, bool(inner))
        else:
            yield Served(path + _CATCH_ALL, item, ROUTABLE, "mount", redirects)
    elif isinstance(original, Host):
        sub = getattr(item, "routes", None) or []
        if sub:
            yield from walk(getattr(item, "app", sub), prefix, redirects)
        else:
            yield Served(prefix + _CATCH_ALL, item, ROUTABLE, "host", redirects)
    elif isinstance(original, Router):
        yield from walk(item, prefix, redirects)
    elif isinstance(original, Route):
        methods = _methods(item)
        if methods:
            yield Served(prefix + str(item.path), item, methods, "route", redirects)
    elif isinstance(original, WebSocketRoute):
        logger.debug("iii bridge: WebSocket route %r is not bridged", prefix + original.path)
    else:
        logger.warning("iii bridge: route %r of unknown kind is not bridged", item)


def _router_of(app: Any) -> Any:
    """The ``Router`` of an app (``app.router``), or the router itself."""
    if isinstance(app, Router):
        return app
    router = getattr(app, "router", None)
    return router if isinstance(router, Router) else None


def _flatten(routes: Sequence[Any]) -> Iterator[Any]:
    """FastAPI ≥ 0.16x keeps included routers as one lazy entry; expand it to route contexts
    (``path`` with prefixes, the route's attributes). Older versions copy routes already."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI, or none
        yield from routes
        return
    for route in routes:
        if type(route).__name__ == "_IncludedRouter":
            yield from iter_route_contexts([route])
        else:
            yield route


def _low_priority(router: Any, prefix: str) -> Iterator[Served]:
    """FastAPI's low-priority routes (``frontend()``): the router's own, then those of the
    routers it includes, each a catch-all under its path (matched only when no regular route
    did)."""
    groups: list[tuple[str, Any]] = [("", g) for g in getattr(router, "_low_priority_routes", ())]
    for route in getattr(router, "routes", ()):
        contexts = getattr(route, "effective_low_priority_routes", None)
        if callable(contexts):
            groups += [(c.frontend_prefix, c.original_route) for c in contexts()]
    for include_prefix, group in groups:
        for frontend in getattr(group, "routes", ()):
            path = str(frontend.path)
            if include_prefix:
                path = include_prefix if path == "/" else include_prefix + path
            methods = ROUTABLE  # GET/HEAD serve files; other methods get the app's own 405
            full = prefix + path.rstrip("/") + _CATCH_ALL
            yield Served(full, frontend, methods, "frontend", True, low_priority=True)


def _methods(route: Any) -> tuple[str, ...]:
    methods: set[str] | None = route.methods
    if methods is None:  # an HTTPEndpoint class: the methods it implements
        endpoint = route.endpoint
        methods = {
            m for m in ROUTABLE if inspect.isclass(endpoint) and hasattr(endpoint, m.lower())
        }
    wanted = {m.upper() for m in methods}
    if "GET" in wanted:
        wanted.discard("HEAD")  # the engine sends HEAD to the GET route
    return tuple(m for m in (*ROUTABLE, "HEAD") if m in wanted)
