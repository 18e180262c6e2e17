"""The request side of an HTTP trigger call (builtins.md §3.5): headers and query parameters
as the payload carries them, and body bytes as request-channel frames."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from iii.protocol import CHANNEL_CHUNK_SIZE

from ...core.channels import Channel
from ...types import Scope

__all__ = ["headers_of", "last", "put_frames", "query_of", "queued_bytes"]


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


def put_frames(channel: Channel, body: bytes) -> None:
    """Queue ``body`` in ``channel`` as binary frames of at most 64 KiB (no waiting)."""
    for start in range(0, len(body), CHANNEL_CHUNK_SIZE):
        channel.put_nowait((False, body[start : start + CHANNEL_CHUNK_SIZE]))


def queued_bytes(channel: Channel) -> int:
    """Bytes of the frames waiting in ``channel`` (a request channel holds at most 64)."""
    return sum(len(item[1]) for item in channel.items)
