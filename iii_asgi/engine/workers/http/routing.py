"""The HTTP trigger's route table (builtins.md §3.3).

A route is ``(method, api_path)``. ``:name`` and ``{name}`` segments are path parameters. Static
paths are found with one dict lookup; parameterised ones by segment count, tried most specific
first (at the first segment where two routes differ, a static segment beats a parameter). Two
routes with the same method and shape (parameter names ignored) conflict: the second trigger is
refused, as the standalone ``http`` worker does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["METHODS", "Route", "RouteConflict", "Router", "parse_route"]

#: Methods a route may be mounted on (builtins.md §3.2).
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
_PARAM = None  # a parameter segment in a route's shape


class RouteConflict(ValueError):
    """A route with the same method and shape is already registered."""


@dataclass(eq=False, slots=True)
class Route:
    """One mounted trigger. ``template`` is the ``api_path`` as registered (the payload's
    ``path``); ``segments`` the mounted path split on ``/``; ``params`` maps segment index to
    parameter name."""

    method: str
    template: str
    segments: tuple[str, ...]
    params: dict[int, str]
    trigger_id: str
    function_id: str
    namespace: str
    metadata: Any = None
    condition_function_id: str | None = None
    middleware_function_ids: list[str] = field(default_factory=list)
    owner: object | None = None

    @property
    def shape(self) -> tuple[str | None, ...]:
        return tuple(_PARAM if i in self.params else s for i, s in enumerate(self.segments))

    @property
    def display(self) -> str:
        return f"{self.method} /{'/'.join(self.segments)}"

    def match(self, parts: list[str], empty: bool = False) -> dict[str, str] | None:
        """Path parameters when ``parts`` (the request path split on ``/``) fits, else None.
        ``empty``: a parameter before the last segment may match an empty one (``//``)."""
        params = self.params
        found: dict[str, str] = {}
        last = len(self.segments) - 1
        for i, segment in enumerate(self.segments):
            part = parts[i]
            if i in params:
                if not part and not (empty and i < last):
                    return None
                found[params[i]] = part
            elif part != segment:
                return None
        return found


def parse_route(api_path: str) -> tuple[tuple[str, ...], dict[int, str]]:
    """Split an ``api_path`` into its mounted segments and parameters (``{x}`` → ``:x``).

    A leading ``/`` is optional (``users`` and ``/users`` are the same route); a trailing one is
    kept (``/users/`` is another route).
    """
    segments = tuple(("/" + api_path.lstrip("/")).split("/")[1:])
    params: dict[int, str] = {}
    for i, segment in enumerate(segments):
        if len(segment) > 1 and segment[0] == ":":
            params[i] = segment[1:]
        elif len(segment) > 2 and segment[0] == "{" and segment[-1] == "}":
            params[i] = segment[1:-1]
    return segments, params


class Router:
    """Routes by method and path; mutated only on the engine's event loop."""

    def __init__(self) -> None:
        self.by_trigger: dict[str, Route] = {}
        self._static: dict[tuple[str, str], Route] = {}
        self._dynamic: dict[tuple[str, int], list[Route]] = {}
        self._shapes: dict[tuple[str, tuple[str | None, ...]], Route] = {}

    def __len__(self) -> int:
        return len(self.by_trigger)

    def add(self, route: Route) -> None:
        """Mount ``route``; raises :class:`RouteConflict` if its method and shape are taken."""
        key = (route.method, route.shape)
        existing = self._shapes.get(key)
        if existing is not None and existing.trigger_id != route.trigger_id:
            raise RouteConflict(
                f"Route '{route.display}' conflicts with already-registered route "
                f"'{existing.display}' (trigger {existing.trigger_id})"
            )
        if existing is not None:
            self.remove(existing.trigger_id)
        self._shapes[key] = route
        self.by_trigger[route.trigger_id] = route
        if route.params:
            bucket = self._dynamic.setdefault((route.method, len(route.segments)), [])
            bucket.append(route)
            bucket.sort(key=lambda r: [i in r.params for i in range(len(r.segments))])
        else:
            self._static[(route.method, "/" + "/".join(route.segments))] = route

    def remove(self, trigger_id: str, owner: object | None = None) -> Route | None:
        """Unmount the route of ``trigger_id`` (only if ``owner`` matches, when given)."""
        route = self.by_trigger.get(trigger_id)
        if route is None or (owner is not None and route.owner is not owner):
            return None
        del self.by_trigger[trigger_id]
        del self._shapes[(route.method, route.shape)]
        if route.params:
            bucket = self._dynamic[(route.method, len(route.segments))]
            bucket.remove(route)
            if not bucket:
                del self._dynamic[(route.method, len(route.segments))]
        else:
            del self._static[(route.method, "/" + "/".join(route.segments))]
        return route

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for ``method`` and ``path`` with its path parameters (values as in the
        URL, not percent-decoded, builtins.md §3.5). HEAD falls back to the GET route.

        An empty segment (``/files//home/x``) matches no route first; failing any, a parameter
        before the last segment may match it empty, so a catch-all expanded to ``:p/:p__2/…``
        serves it as Starlette's ``{p:path}`` does (the real engine answers 404)."""
        found = self._find(method, path)
        if found is None and method == "HEAD":
            found = self._find("GET", path)
        if found is None and "//" in path:
            found = self._find(method, path, empty=True)
            if found is None and method == "HEAD":
                found = self._find("GET", path, empty=True)
        return found

    def _find(
        self, method: str, path: str, empty: bool = False
    ) -> tuple[Route, dict[str, str]] | None:
        route = self._static.get((method, path))
        if route is not None:
            return route, {}
        parts = path.split("/")
        del parts[0]
        bucket = self._dynamic.get((method, len(parts)))
        if bucket is not None:
            for route in bucket:
                params = route.match(parts, empty)
                if params is not None:
                    return route, params
        return None

    def allowed(self, path: str) -> list[str]:
        """Methods routed for ``path`` (for a 405's ``Allow``); empty when none is."""
        methods = [m for m in sorted(METHODS) if self._find(m, path) is not None]
        if "GET" in methods and "HEAD" not in methods:
            methods.append("HEAD")
        return methods
