"""The request side of an HTTP trigger call (builtins.md §3.5): headers and query parameters
as the payload carries them, and body bytes as request-channel frames."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pydantic_core

from iii.protocol import CHANNEL_CHUNK_SIZE

from ...core.channels import Channel
from ...types import Scope

__all__ = ["SPLICE_AT", "headers_of", "json_body", "last", "put_frames", "query_of", "queued_bytes"]

#: JSON bodies from this size (bytes) are passed to workers as sent (:func:`json_body`).
SPLICE_AT = 64 * 1024


def headers_of(scope: Scope) -> dict[str, Any]:
    """Lower-case name → value; a repeated header becomes a list; non-UTF-8 values are ``""``."""
    headers: dict[str, Any] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        try:
            value = raw_value.decode()
        except UnicodeDecodeError:
            value = ""
        _add_value(headers, name, value)
    return headers


def query_of(scope: Scope) -> dict[str, Any]:
    """The query string as ``query_params`` (percent-decoded, ``+`` as a space)."""
    query: dict[str, Any] = {}
    raw = scope.get("query_string")
    if not raw:
        return query
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        _add_value(query, name, value)
    return query


def _add_value(into: dict[str, Any], name: str, value: str) -> None:
    """One value per name; a repeated name becomes a list in arrival order (builtins.md §3.5)."""
    old = into.get(name)
    if old is None:
        into[name] = value
    elif type(old) is list:
        old.append(value)
    else:
        into[name] = [old, value]


def last(value: Any) -> str | None:
    """The last value of a header or query parameter (a list holds repeated ones)."""
    found: str | None = value[-1] if type(value) is list else value
    return found


def put_frames(channel: Channel, body: bytes | bytearray) -> None:
    """Queue ``body`` in ``channel`` as binary frames (``bytes``) of at most 64 KiB."""
    if len(body) <= CHANNEL_CHUNK_SIZE:
        if body:
            channel.put_nowait((False, bytes(body)))
        return
    view = memoryview(body)
    for start in range(0, len(body), CHANNEL_CHUNK_SIZE):
        channel.put_nowait((False, bytes(view[start : start + CHANNEL_CHUNK_SIZE])))


def queued_bytes(channel: Channel) -> int:
    """Bytes of the frames waiting in ``channel`` (a request channel holds at most 64)."""
    return sum(len(item[1]) for item in channel.items)


def json_body(data: bytes | bytearray) -> tuple[Any, str | None]:
    """The parsed ``body`` of a JSON request (``None`` when empty or invalid), and, for a body
    of :data:`SPLICE_AT` bytes or more that is strict JSON (no ``NaN``/``Infinity``) in
    UTF-8, its text: workers get that text in the invocation frame as it is."""
    if not data:
        return None, None
    if len(data) >= SPLICE_AT:
        try:
            return pydantic_core.from_json(data, allow_inf_nan=False), data.decode()
        except ValueError:  # not strict JSON or not UTF-8: parsed (or null) as usual
            pass
    try:
        return pydantic_core.from_json(data), None
    except ValueError:
        return None, None
