"""HTTP responses of the trigger server: error envelopes (builtins.md §3.9), buffered function
results (§3.7) and streaming control messages (§3.8)."""

from __future__ import annotations

import re
import time
from typing import Any

import pydantic_core

from ...types import Send

__all__ = [
    "Headers",
    "apply_control",
    "buffered",
    "envelope",
    "error_id",
    "result_headers",
    "send_bytes",
    "send_json",
    "status_code",
]

#: Raw ASGI response headers.
Headers = list[tuple[bytes, bytes]]

_JSON = (b"content-type", b"application/json")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Set by the engine per response; a handler's own would disagree with the bytes sent.
_FRAMING = frozenset({"content-length", "transfer-encoding"})
#: A streamed response keeps a declared ``content-length`` (the server frames the body by it).
_STREAMED = frozenset({"transfer-encoding"})


def error_id() -> str:
    """Low 48 bits of the current Unix time in ns, in hex: the ``error_id`` of 5xx envelopes."""
    return format(time.time_ns() & 0xFFFF_FFFF_FFFF, "x")


def envelope(code: str, message: str, *, with_id: bool = False) -> dict[str, Any]:
    """``{"error":{"code","message"[,"error_id"]}}`` (builtins.md §3.9)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if with_id:
        error["error_id"] = error_id()
    return {"error": error}


async def send_bytes(
    send: Send, status: int, headers: Headers, body: bytes, extra: Headers | None = None
) -> None:
    """Send a complete response with a ``content-length``."""
    headers.append((b"content-length", str(len(body)).encode()))
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, value: Any, extra: Headers | None = None) -> None:
    await send_bytes(send, status, [_JSON], pydantic_core.to_json(value), extra)


def _header(
    name: Any, value: Any, framing: frozenset[str] = _FRAMING
) -> tuple[bytes, bytes] | None:
    if not isinstance(name, str) or not isinstance(value, str):
        return None
    name = name.strip()
    if not _TOKEN.match(name) or _BAD_VALUE.search(value):
        return None
    lower = name.lower()
    if lower in framing or (lower == "content-length" and not value.strip().isdigit()):
        return None
    try:
        return name.lower().encode("latin-1"), value.strip().encode("latin-1")
    except UnicodeEncodeError:
        return None


def result_headers(value: Any) -> Headers:
    """A result's ``headers``: an object of strings, or a list of ``"Name: value"``; invalid
    entries are dropped (builtins.md §3.7)."""
    out: Headers = []
    pairs: Any
    if isinstance(value, dict):
        pairs = value.items()
    elif isinstance(value, list):
        pairs = [line.split(":", 1) for line in value if isinstance(line, str) and ":" in line]
    else:
        return out
    for name, val in pairs:
        header = _header(name, val)
        if header is not None:
            out.append(header)
    return out


def status_code(value: Any, default: int = 200) -> int:
    """``value`` if it is an int in 100–599 (what uvicorn can write; hyper takes up to 999),
    else ``default``."""
    return value if type(value) is int and 100 <= value <= 599 else default


def buffered(result: Any) -> tuple[int, Headers, bytes]:
    """Status, headers and body of a non-null function result (builtins.md §3.7).

    ``status_code`` is read, or else ``statusCode`` (what ``iii_helpers.http.HttpResponse``
    serialises to; the real engine ignores it, §3.13). A non-object result is ``{}``.
    """
    if type(result) is not dict:
        result = {}
    status = result.get("status_code")
    if status is None:
        status = result.get("statusCode")
    raw_headers = result.get("headers")
    headers = result_headers(raw_headers) if raw_headers else []
    content_type = None
    for name, value in headers:
        if name == b"content-type":
            content_type = value
            break
    if "body" not in result:
        body: Any = {}
    else:
        body = result["body"]
    if content_type is None:
        headers.append(_JSON)
        data = pydantic_core.to_json(body)
    elif isinstance(body, str):
        data = body.encode()
    elif body is None:
        data = b""
    else:
        data = pydantic_core.to_json(body)
    return status_code(status), headers, data


def apply_control(text: str, state: dict[str, Any]) -> None:
    """Apply one text frame of the response channel to ``state`` (``status``, ``headers``:
    lower-cased name → value, or a list of values); anything else is ignored (builtins.md
    §3.8). Beyond the real engine, which skips non-string values: a list of strings sets
    repeated header lines (several ``set-cookie``), and a ``content-length`` is kept, so the
    streamed body is framed as the function declared it."""
    try:
        message = pydantic_core.from_json(text)
    except ValueError:
        return
    if type(message) is not dict:
        return
    kind = message.get("type")
    if kind == "set_status":
        state["status"] = status_code(message.get("status_code"), state["status"])
    elif kind == "set_headers":
        values = message.get("headers")
        if isinstance(values, dict):
            headers: dict[bytes, Any] = state["headers"]
            for name, value in values.items():
                if type(value) is list:
                    lines = [h for h in (_header(name, v, _STREAMED) for v in value) if h]
                    if lines:
                        headers[lines[0][0]] = [line[1] for line in lines]
                    continue
                header = _header(name, value, _STREAMED)
                if header is not None:
                    headers[header[0]] = header[1]
