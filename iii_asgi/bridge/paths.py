"""Path syntax between an app's route templates and the engine's ``http`` trigger paths.

The engine's parameters are whole ``:name`` segments (builtins.md §3.3) and its router has no
catch-all, so:

- ``{id}`` and ``{id:int}`` (any converter but ``path``) ↔ ``:id``;
- a trailing ``{p:path}`` becomes one engine path per depth (``:p``, ``:p/:p__2``, … up to
  ``depth`` segments), each also with a trailing ``/``, plus the bare prefix with a slash
  (``/files/`` : an empty ``p``);
- a parameter inside a segment (``/{name}.{ext}``) cannot be routed by the engine.

The engine matches exact paths, so the trailing-slash *twin* of a route (``/a/`` for ``/a`` and
the reverse), which the app answers with its own ``redirect_slashes`` 307, is a path of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_PATH_DEPTH",
    "asgi_path",
    "concrete_path",
    "engine_paths",
    "served_paths",
    "shape",
]

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?\}$")
_ENGINE_PARAM = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")
_SHAPE = re.compile(r":[^/]+")
DEFAULT_PATH_DEPTH = 8


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


def served_paths(path: str, depth: int = DEFAULT_PATH_DEPTH) -> tuple[list[str], list[str]] | None:
    """``(paths, twins)``: every engine path the app serves for ``path`` itself, and the
    trailing-slash twins it answers with a redirect; ``None`` when the engine cannot route it.

    >>> served_paths("/items/{id}")
    (['/items/:id'], ['/items/:id/'])
    >>> served_paths("/files/{p:path}", depth=1)
    (['/files/', '/files/:p', '/files/:p/'], ['/files'])
    """
    paths = engine_paths(path, depth)
    if paths is None:
        return None
    last = path.rsplit("/", 1)[-1]
    match = _PARAM.match(last)
    if match is not None and match.group(2) == "path":
        head = path[: -len(last)]  # "/files/" (with its slash), "/" at the root
        served = (engine_paths(head, depth) or ["/"])[:1]
        for deeper in paths:
            served += [deeper, deeper + "/"]
        twins = [served[0].rstrip("/")] if served[0] != "/" else []
        return served, twins
    (only,) = paths
    if only == "/":
        return paths, []
    return paths, [only[:-1] if only.endswith("/") else only + "/"]


def shape(api_path: str) -> str:
    """The engine's notion of a route's shape: parameter names do not matter (§3.3)."""
    return _SHAPE.sub(":", api_path)


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
    payload's ``path_params`` (builtins.md §3.5: the engine sends the template, not the URL).
    An empty value (the embedded engine matches ``/files//x`` with one) stays empty."""
    if ":" not in api_path:
        return api_path if api_path.startswith("/") else "/" + api_path
    parts = api_path.lstrip("/").split("/")
    for index, segment in enumerate(parts):
        if segment.startswith(":"):
            value = path_params.get(segment[1:])
            parts[index] = value if isinstance(value, str) else str(value or "")
    return "/" + "/".join(parts)
