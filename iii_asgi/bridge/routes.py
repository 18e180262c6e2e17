"""The route table: an app's HTTP routes as iii functions behind ``http`` triggers.

Every FastAPI ``APIRoute`` and Starlette ``Route`` with ``include_in_schema`` (so not the
docs/openapi routes) becomes one function; each of its methods one ``http`` trigger. Routers
included with a prefix and sub-apps or routers under a ``Mount`` are walked with their prefix.

Path syntax (builtins.md §3.3: the engine's parameters are whole ``:name`` segments):

- ``{id}`` and ``{id:int}`` (any converter but ``path``) ↔ ``:id``;
- ``{p:path}`` as the last segment, which the engine router cannot express as one route, is
  expanded to one trigger per depth ``:p``, ``:p__2``, … up to ``path_depth`` segments;
- a parameter inside a segment (``/{name}.{ext}``) cannot be routed by the engine: the route is
  skipped with a warning.

The engine only picks the function; the ASGI driver rebuilds the concrete path from the trigger's
template and ``path_params`` and the app routes it itself, so the app's own matching order,
converters and 404/405 answers apply to engine requests exactly as to direct ones.
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.routing import BaseRoute, Host, Mount, Route, Router

__all__ = [
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

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?\}$")
_ENGINE_PARAM = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")
_SLUG = re.compile(r"[^a-z0-9_.-]+")
#: Methods the engine's http trigger can mount (builtins.md §3.2); HEAD falls back to GET there.
_ROUTABLE = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_PATH_DEPTH = 8
F = TypeVar("F", bound=Callable[..., Any])


class RouteCollisionError(RuntimeError):
    """Two routes derive the same function id, or the same method and engine path shape."""


@dataclass(frozen=True)
class BridgeRoute:
    """One row of the route → function → trigger table.

    ``path``: the app's template, prefixes included (``/todos/{id:int}``); ``methods``: the HTTP
    methods bound; ``api_paths``: the engine trigger paths (``/todos/:id``, several for a
    ``{p:path}`` catch-all); ``function_id``: the iii function serving it.
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

    @property
    def triggers(self) -> list[dict[str, str]]:
        """The ``http`` trigger configs (``{"api_path", "http_method"}``), one per method and
        engine path."""
        return [
            {"api_path": api_path, "http_method": method}
            for method in self.methods
            for api_path in self.api_paths
        ]


@dataclass
class RouteFilter:
    """Which routes are bridged: ``include_*`` keep only matches (when given), ``exclude_*``
    drop matches. Paths are ``fnmatch`` patterns on the full template (``/admin/*``); a pattern
    without wildcards also matches everything under it. Routers match by the routes they hold."""

    include_paths: Sequence[str] | None = None
    exclude_paths: Sequence[str] | None = None
    include_tags: Sequence[str] | None = None
    exclude_tags: Sequence[str] | None = None
    include_routers: Sequence[Any] | None = None
    exclude_routers: Sequence[Any] | None = None
    _include_endpoints: set[Any] = field(default_factory=set, init=False, repr=False)
    _exclude_endpoints: set[Any] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._include_endpoints = _router_endpoints(self.include_routers or ())
        self._exclude_endpoints = _router_endpoints(self.exclude_routers or ())

    def accepts(self, path: str, tags: Iterable[str], endpoint: Any) -> bool:
        tag_set = set(tags)
        if self.include_paths is not None and not _path_matches(path, self.include_paths):
            return False
        if self.exclude_paths and _path_matches(path, self.exclude_paths):
            return False
        if self.include_tags is not None and not tag_set & set(self.include_tags):
            return False
        if self.exclude_tags and tag_set & set(self.exclude_tags):
            return False
        if self.include_routers is not None and endpoint not in self._include_endpoints:
            return False
        return not (self.exclude_routers and endpoint in self._exclude_endpoints)


def _router_endpoints(routers: Iterable[Any]) -> set[Any]:
    endpoints: set[Any] = set()
    for router in routers:
        for _, route in _walk(getattr(router, "routes", ()), ""):
            endpoint = getattr(route, "endpoint", None)
            if endpoint is not None:
                endpoints.add(endpoint)
    return endpoints


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


# -- path syntax ------------------------------------------------------------------------------


def engine_paths(path: str, depth: int = DEFAULT_PATH_DEPTH) -> list[str] | None:
    """The engine trigger paths for an app path template, or ``None`` when the engine cannot
    route it (a parameter inside a segment, or ``{x:path}`` before the last segment).

    >>> engine_paths("/todos/{id:int}")
    ['/todos/:id']
    >>> engine_paths("/files/{p:path}", depth=2)
    ['/files/:p', '/files/:p/:p__2']
    """
    segments = path.split("/")[1:]
    out: list[str] = []
    for index, segment in enumerate(segments):
        if "{" not in segment and "}" not in segment:
            out.append(segment)
            continue
        match = _PARAM.match(segment)
        if match is None:
            return None
        name, convertor = match.groups()
        if convertor == "path":
            if index != len(segments) - 1:
                return None
            head = "/" + "/".join(out) if out else ""
            return [
                head + "".join(f"/:{name}" if i == 1 else f"/:{name}__{i}" for i in range(1, n + 1))
                for n in range(1, depth + 1)
            ]
        out.append(f":{name}")
    return ["/" + "/".join(out)]


def asgi_path(api_path: str) -> str:
    """The other direction: ``/todos/:id`` → ``/todos/{id}`` (expanded catch-all parameters
    ``:p__2`` … fold back into ``{p:path}``)."""
    segments = api_path.split("/")[1:]
    out: list[str] = []
    for segment in segments:
        match = _ENGINE_PARAM.match(segment)
        if match is None:
            out.append(segment)
            continue
        name = match.group(1)
        base, _, level = name.rpartition("__")
        if base and level.isdigit():
            out[-1] = "{" + base + ":path}"
            continue
        out.append("{" + name + "}")
    return "/" + "/".join(out)


def concrete_path(api_path: str, path_params: Mapping[str, Any]) -> str:
    """The request's URL path (still percent-encoded) from the trigger template and the
    payload's ``path_params`` (builtins.md §3.5: the engine sends the template, not the URL)."""
    if ":" not in api_path:
        return api_path if api_path.startswith("/") else "/" + api_path
    parts = api_path.lstrip("/").split("/")
    for index, segment in enumerate(parts):
        if segment.startswith(":"):
            value = path_params.get(segment[1:])
            parts[index] = value if isinstance(value, str) else str(value or "")
    return "/" + "/".join(parts)


# -- collecting -------------------------------------------------------------------------------


def _walk(routes: Sequence[Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """``(full path, route-like)`` for every HTTP route, through included routers and mounts."""
    for item in _flatten(routes):
        if isinstance(item, Mount):
            sub_routes = getattr(item, "routes", None) or []
            if not sub_routes:
                logger.warning(
                    "iii bridge: mount %r holds a plain ASGI app without routes; not bridged",
                    prefix + item.path,
                )
            yield from _walk(sub_routes, prefix + item.path)
        elif isinstance(item, Host):
            logger.warning("iii bridge: host route %r is not bridged", item.host)
        elif isinstance(item, Router):
            yield from _walk(item.routes, prefix)
        elif isinstance(getattr(item, "original_route", item), Route):
            yield prefix + item.path, item


def _flatten(routes: Sequence[Any]) -> Iterator[Any]:
    """FastAPI ≥ 0.16x keeps included routers as one lazy entry; expand it to route contexts
    (``path`` with prefixes, the route's attributes). Older versions copy routes already."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI, or none
        yield from routes
        return
    for route in routes:
        if isinstance(route, (Mount, Host, Router)) or type(route).__name__ != "_IncludedRouter":
            yield route
        else:
            yield from iter_route_contexts([route])


def _methods(route: Any) -> tuple[str, ...]:
    methods: set[str] | None = route.methods
    if methods is None:  # an HTTPEndpoint class: the methods it implements
        endpoint = route.endpoint
        methods = {
            m for m in _ROUTABLE if inspect.isclass(endpoint) and hasattr(endpoint, m.lower())
        }
    wanted = {m.upper() for m in methods}
    if "GET" in wanted:
        wanted.discard("HEAD")  # the engine sends HEAD to the GET route
    return tuple(m for m in (*_ROUTABLE, "HEAD") if m in wanted)


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


def collect_routes(
    routes: Sequence[BaseRoute],
    *,
    route_filter: RouteFilter | None = None,
    root_path: str = "",
    path_depth: int = DEFAULT_PATH_DEPTH,
) -> list[BridgeRoute]:
    """The route table of an app's ``routes`` (see the module docstring).

    Raises :class:`RouteCollisionError` when two routes derive the same function id, or two
    bridged routes have the same method and engine path shape (which the engine refuses).
    """
    route_filter = route_filter or RouteFilter()
    root_path = root_path.rstrip("/")
    table: list[BridgeRoute] = []
    owners: dict[str, str] = {}
    shapes: dict[tuple[str, str], str] = {}
    for path, route in _walk(routes, ""):
        if not getattr(route, "include_in_schema", True):
            continue
        options = _options(route)
        if options.get("enabled", True) is False:
            continue
        tags = tuple(
            str(t.value if hasattr(t, "value") else t) for t in (getattr(route, "tags", None) or ())
        )
        full_path = root_path + path
        if not route_filter.accepts(full_path, tags, getattr(route, "endpoint", None)):
            continue
        methods = _methods(route)
        api_paths = engine_paths(full_path, path_depth)
        if not methods:
            continue
        if api_paths is None:
            logger.warning(
                "iii bridge: route %s %s has a parameter the engine cannot route (only whole "
                "`{name}` segments and a trailing `{name:path}`); not bridged",
                "/".join(methods),
                full_path,
            )
            continue
        catch_all = len(api_paths) > 1
        kept: list[str] = []
        for api_path in api_paths:
            shape = re.sub(r":[^/]+", ":", api_path)
            taken = [shapes.get((m, shape)) for m in methods]
            if any(taken):
                if catch_all:
                    continue  # an earlier route already serves this depth; the app decides
                raise RouteCollisionError(
                    f"route {full_path!r} ({'/'.join(methods)}) has the same engine path shape "
                    f"as route {next(t for t in taken if t)!r}; the engine cannot tell them "
                    "apart. Exclude one (include/exclude filters or x-iii enabled=False)."
                )
            kept.append(api_path)
        for method in methods:
            for api_path in kept:
                shapes[(method, re.sub(r":[^/]+", ":", api_path))] = full_path
        name = getattr(route, "name", None)
        function_id = options.get("function_id") or (
            f"{_default_group(full_path, tags, root_path)}::{_slug(name or 'route')}"
        )
        if function_id in owners:
            raise RouteCollisionError(
                f"routes {owners[function_id]!r} and {full_path!r} both map to iii function "
                f"{function_id!r}; give one a distinct name (name=...) or set "
                'openapi_extra={"x-iii": {"function_id": ...}}'
            )
        owners[function_id] = full_path
        request_format, response_format = _formats(route)
        metadata = options.get("metadata")
        table.append(
            BridgeRoute(
                path=full_path,
                methods=methods,
                api_paths=tuple(kept),
                function_id=function_id,
                name=name,
                tags=tags,
                description=options.get("description") or _description(route),
                metadata=dict(metadata) if isinstance(metadata, Mapping) else None,
                request_format=request_format,
                response_format=response_format,
            )
        )
    return table


def format_table(table: Sequence[BridgeRoute]) -> str:
    """The startup log's route → function → trigger table, one line per method (a catch-all's
    deeper engine paths are counted, not listed)."""
    lines = []
    for row in table:
        extra = len(row.api_paths) - 1
        api_path = row.api_paths[0] + (f" (+{extra} deeper)" if extra else "")
        for method in row.methods:
            lines.append(f"  {method:<7} {row.path:<40} -> {row.function_id:<32} http {api_path}")
    return "\n".join(lines) if lines else "  (no routes bridged)"
