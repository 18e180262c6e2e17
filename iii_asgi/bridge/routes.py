"""The route table: what an app serves over HTTP as iii functions behind ``http`` triggers.

Everything the app serves becomes a function (:mod:`.walk` finds it): every route (the docs
and other ``include_in_schema=False`` routes too, unless filtered), every mounted app
(``StaticFiles``, WSGI, sub-apps) as a catch-all prefix, ``Host`` routes, FastAPI's
low-priority (``frontend()``) routes. Each function gets one ``http`` trigger per method and
engine path (:mod:`.paths`): the route's own paths, and its trailing-slash twin when the app
answers that with a redirect (``redirect_slashes``).

The engine only picks the function; the ASGI driver rebuilds the concrete path from the
trigger's template and ``path_params`` and the app routes it itself, so the app's own matching
order, converters, redirects and 404/405 answers apply to engine requests exactly as to direct
ones. Two routes of the same method and engine shape (``/a/{x}`` and ``/a/{y:int}``): the
first in the app's match order takes the engine route (the app still picks the handler);
twins and low-priority routes come after every regular route.

Function ids are ``<group>::<name>`` (readable); a derived id already taken gets a numeric
suffix (``items::read_item_2``, logged), deterministic in the app's route order.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .paths import DEFAULT_PATH_DEPTH, asgi_path, concrete_path, engine_paths, served_paths, shape
from .walk import Served, walk

__all__ = [
    "DEFAULT_PATH_DEPTH",
    "BridgeRoute",
    "RouteCollisionError",
    "RouteFilter",
    "asgi_path",
    "collect_routes",
    "concrete_path",
    "engine_paths",
    "format_table",
    "route_options",
]

logger = logging.getLogger("iii_asgi.bridge")

_SLUG = re.compile(r"[^a-z0-9_.-]+")
F = TypeVar("F", bound=Callable[..., Any])


class RouteCollisionError(RuntimeError):
    """Two routes were given the same explicit function id (``x-iii`` / ``route_options``).
    Derived ids never collide: a taken one gets a numeric suffix."""


@dataclass(frozen=True)
class BridgeRoute:
    """One row of the route → function → trigger table.

    ``path``: the app's template, prefixes included (``/todos/{id:int}``; a mounted app or a
    frontend is ``<prefix>/{path:path}``); ``methods``: the HTTP methods served;
    ``api_paths``: the engine paths of the route itself (``/todos/:id``, several for a
    catch-all); ``redirect_paths``: its trailing-slash twins; ``function_id``: the iii function
    serving it; ``kind``: ``route``, ``mount``, ``host`` or ``frontend``; ``bindings``: the
    ``(method, api_path)`` pairs it got (an earlier route of the same engine shape keeps its
    own); ``hidden``: ``include_in_schema=False``.
    """

    path: str
    methods: tuple[str, ...]
    api_paths: tuple[str, ...]
    function_id: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None
    metadata: dict[str, Any] | None = None
    request_format: Any = None
    response_format: Any = None
    redirect_paths: tuple[str, ...] = ()
    kind: str = "route"
    bindings: tuple[tuple[str, str], ...] = ()
    hidden: bool = False

    @property
    def triggers(self) -> list[dict[str, str]]:
        """The ``http`` trigger configs (``{"api_path", "http_method"}``), one per binding."""
        return [{"api_path": path, "http_method": method} for method, path in self.bindings]


@dataclass
class RouteFilter:
    """Which routes are bridged: ``include_*`` keep only matches (when given), ``exclude_*``
    drop matches. Paths are ``fnmatch`` patterns on the full template (``/admin/*``); a pattern
    without wildcards also matches everything under it. Routers match by the routes they hold.
    ``include_hidden=False`` drops the docs and every ``include_in_schema=False`` route."""

    include_paths: Sequence[str] | None = None
    exclude_paths: Sequence[str] | None = None
    include_tags: Sequence[str] | None = None
    exclude_tags: Sequence[str] | None = None
    include_routers: Sequence[Any] | None = None
    exclude_routers: Sequence[Any] | None = None
    include_hidden: bool = True
    _include_members: set[Any] = field(default_factory=set, init=False, repr=False)
    _exclude_members: set[Any] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._include_members = _router_members(self.include_routers or ())
        self._exclude_members = _router_members(self.exclude_routers or ())

    def accepts(self, path: str, tags: Iterable[str], route: Any) -> bool:
        tag_set = set(tags)
        if self.include_paths is not None and not _path_matches(path, self.include_paths):
            return False
        if self.exclude_paths and _path_matches(path, self.exclude_paths):
            return False
        if self.include_tags is not None and not tag_set & set(self.include_tags):
            return False
        if self.exclude_tags and tag_set & set(self.exclude_tags):
            return False
        if self.include_routers is not None and not _member(route, self._include_members):
            return False
        return not (self.exclude_routers and _member(route, self._exclude_members))


def _router_members(routers: Iterable[Any]) -> set[Any]:
    """The endpoints and route object ids a router holds (through its includes and mounts)."""
    members: set[Any] = set()
    for router in routers:
        for served in walk(router):
            members.add(id(getattr(served.route, "original_route", served.route)))
            endpoint = getattr(served.route, "endpoint", None)
            if endpoint is not None:
                members.add(endpoint)
    return members


def _member(route: Any, members: set[Any]) -> bool:
    if id(getattr(route, "original_route", route)) in members:
        return True
    endpoint = getattr(route, "endpoint", None)
    return endpoint is not None and endpoint in members


def _path_matches(path: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            if fnmatch.fnmatchcase(path, pattern):
                return True
        elif path == pattern or path.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def route_options(
    *,
    function_id: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    enabled: bool = True,
) -> Callable[[F], F]:
    """Per-route bridge options on an endpoint, for FastAPI and Starlette alike (the decorator
    form of ``openapi_extra={"x-iii": {...}}``, which wins where both are set)::

        @app.get("/internal")
        @route_options(enabled=False)
        def internal(): ...

    Sets ``endpoint.__iii__`` and returns the endpoint unchanged.
    """

    def decorate(endpoint: F) -> F:
        options: dict[str, Any] = {"enabled": enabled}
        if function_id is not None:
            options["function_id"] = function_id
        if description is not None:
            options["description"] = description
        if metadata is not None:
            options["metadata"] = dict(metadata)
        endpoint.__iii__ = options  # type: ignore[attr-defined]
        return endpoint

    return decorate


# -- one route's attributes -------------------------------------------------------------------


def _slug(text: str) -> str:
    return _SLUG.sub("_", text.lower()).strip("_") or "app"


def _default_group(path: str, tags: Sequence[str], root_path: str) -> str:
    if tags:
        return _slug(str(tags[0]))
    relative = path[len(root_path) :] if root_path and path.startswith(root_path) else path
    for segment in relative.split("/"):
        if segment and "{" not in segment:
            return _slug(segment)
    return "app"


def _schema(annotation: Any) -> Any:
    if annotation is None:
        return None
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(annotation).json_schema()
    except Exception:  # not every annotation has a JSON Schema (e.g. a Response class)
        return None


def _formats(route: Any) -> tuple[Any, Any]:
    body_field = getattr(route, "body_field", None)
    body = _schema(body_field.field_info.annotation) if body_field is not None else None
    response_model = getattr(route, "response_model", None)
    response = _schema(response_model) if response_model is not None else None
    request_format = (
        {"type": "object", "properties": {"body": body}, "description": "HTTP request"}
        if body is not None
        else None
    )
    response_format = (
        {"type": "object", "properties": {"status_code": {"type": "integer"}, "body": response}}
        if response is not None
        else None
    )
    return request_format, response_format


def _description(route: Any) -> str | None:
    for attr in ("summary", "description"):
        value = getattr(route, attr, None)
        if isinstance(value, str) and value.strip():
            return value.strip().splitlines()[0]
    doc = inspect.getdoc(getattr(route, "endpoint", None))
    return doc.splitlines()[0] if doc else None


def _options(route: Any) -> dict[str, Any]:
    extra = getattr(route, "openapi_extra", None)
    options: dict[str, Any] = {}
    endpoint_options = getattr(getattr(route, "endpoint", None), "__iii__", None)
    if isinstance(endpoint_options, dict):
        options.update(endpoint_options)
    if isinstance(extra, dict) and isinstance(extra.get("x-iii"), dict):
        options.update(extra["x-iii"])
    return options


def _tags(route: Any) -> tuple[str, ...]:
    return tuple(
        str(t.value if hasattr(t, "value") else t) for t in (getattr(route, "tags", None) or ())
    )


# -- the table --------------------------------------------------------------------------------


@dataclass
class _Entry:
    served: Served
    path: str
    tags: tuple[str, ...]
    options: dict[str, Any]
    paths: list[str]
    twins: list[str]
    function_id: str = ""
    bindings: list[tuple[str, str]] = field(default_factory=list)


def collect_routes(
    routes: Any,
    *,
    route_filter: RouteFilter | None = None,
    root_path: str = "",
    path_depth: int = DEFAULT_PATH_DEPTH,
    answers_options: bool = False,
) -> list[BridgeRoute]:
    """The route table of an app, a router, or a list of routes (see the module docstring;
    FastAPI's low-priority routes are found only from the app or its router).

    ``answers_options``: the app answers ``OPTIONS`` on every path itself (it has
    ``CORSMiddleware``: its preflight answers), so every route gets an ``OPTIONS`` trigger.

    Raises :class:`RouteCollisionError` when two routes are given the same explicit function
    id.
    """
    route_filter = route_filter or RouteFilter()
    root_path = root_path.rstrip("/")
    entries: list[_Entry] = []
    for served in walk(routes):
        if answers_options and "OPTIONS" not in served.methods:
            served = dataclasses.replace(served, methods=(*served.methods, "OPTIONS"))
        entry = _entry(served, route_filter, root_path, path_depth)
        if entry is not None:
            entries.append(entry)
    _assign_ids(entries, root_path)
    _bind(entries)
    return [_row(entry) for entry in entries]


def _entry(
    served: Served, route_filter: RouteFilter, root_path: str, path_depth: int
) -> _Entry | None:
    route = served.route
    if not getattr(route, "include_in_schema", True) and not route_filter.include_hidden:
        return None
    options = _options(route)
    if options.get("enabled", True) is False:
        return None
    tags = _tags(route)
    full_path = root_path + served.path
    if not route_filter.accepts(full_path, tags, route):
        return None
    paths = served_paths(full_path, path_depth)
    if paths is None:
        logger.warning(
            "iii bridge: route %s %s has a parameter the engine cannot route (only whole "
            "`{name}` segments and a trailing `{name:path}`); not bridged",
            "/".join(served.methods),
            full_path,
        )
        return None
    own, twins = paths
    return _Entry(served, full_path, tags, options, own, twins if served.redirects else [])


def _assign_ids(entries: list[_Entry], root_path: str) -> None:
    """Explicit ids first (a duplicate is an error), then derived ones, suffixed when taken."""
    owners: dict[str, str] = {}
    for entry in entries:
        explicit = entry.options.get("function_id")
        if explicit:
            if explicit in owners:
                raise RouteCollisionError(
                    f"routes {owners[explicit]!r} and {entry.path!r} are both given iii "
                    f"function id {explicit!r}"
                )
            owners[explicit] = entry.path
            entry.function_id = explicit
    for entry in entries:
        if entry.function_id:
            continue
        name = entry.served.name
        base = f"{_default_group(entry.path, entry.tags, root_path)}::{_slug(name or 'route')}"
        function_id, n = base, 2
        while function_id in owners:
            function_id, n = f"{base}_{n}", n + 1
        if function_id != base:
            logger.info(
                "iii bridge: %s derives function id %r, taken by %s: served as %r",
                entry.path,
                base,
                owners[base],
                function_id,
            )
        owners[function_id] = entry.path
        entry.function_id = function_id


def _bind(entries: list[_Entry]) -> None:
    """Give each ``(method, engine shape)`` to the first entry that serves it, in the app's
    match order: regular routes, then their redirect twins, then low-priority routes."""
    claimed: dict[tuple[str, str], _Entry] = {}
    for low in (False, True):
        for twin in (False, True):
            for entry in entries:
                if entry.served.low_priority is not low:
                    continue
                for api_path in entry.twins if twin else entry.paths:
                    key = shape(api_path)
                    for method in entry.served.methods:
                        if (method, key) not in claimed:
                            claimed[(method, key)] = entry
                            entry.bindings.append((method, api_path))
    for entry in entries:
        if not entry.bindings:
            logger.info(
                "iii bridge: %s %s: every engine path is served by an earlier route of the "
                "same shape (the app still picks the handler)",
                "/".join(entry.served.methods),
                entry.path,
            )


def _row(entry: _Entry) -> BridgeRoute:
    served = entry.served
    route = served.route
    order = {m: i for i, m in enumerate(served.methods)}
    position = {p: i for i, p in enumerate(entry.paths + entry.twins)}
    bindings = sorted(entry.bindings, key=lambda b: (order[b[0]], position[b[1]]))
    bound = {path for _, path in bindings}
    request_format, response_format = _formats(route) if served.kind == "route" else (None, None)
    metadata = entry.options.get("metadata")
    return BridgeRoute(
        path=entry.path,
        methods=served.methods,
        api_paths=tuple(p for p in entry.paths if p in bound),
        function_id=entry.function_id,
        name=served.name,
        tags=entry.tags,
        description=entry.options.get("description") or _description(route),
        metadata=dict(metadata) if isinstance(metadata, Mapping) else None,
        request_format=request_format,
        response_format=response_format,
        redirect_paths=tuple(p for p in entry.twins if p in bound),
        kind=served.kind,
        bindings=tuple(bindings),
        hidden=not getattr(route, "include_in_schema", True),
    )


def format_table(table: Sequence[BridgeRoute]) -> str:
    """The startup log's route → function → trigger table, one line per method (a catch-all's
    other engine paths and the redirect twins are counted, not listed)."""
    lines = []
    for row in table:
        for method in row.methods:
            paths = [path for m, path in row.bindings if m == method]
            if not paths:
                where = "(served by an earlier route)"
            else:
                extra = len(paths) - 1
                where = "http " + paths[0] + (f" (+{extra})" if extra else "")
            lines.append(f"  {method:<7} {row.path:<40} -> {row.function_id:<32} {where}")
    return "\n".join(lines) if lines else "  (no routes bridged)"
