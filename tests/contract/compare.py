"""Direct-vs-engine comparison: the same requests sent to an app straight under uvicorn and
through the engine's HTTP port (each side with a fresh lifespan, so stateful sequences line
up), compared on status, headers (minus per-hop ones) and body."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.workers.servers import serve

#: Per-hop headers: how each server frames and stamps a response, not what the app said.
PER_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "date",
        "server",
    }
)


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    #: headers that legitimately differ between the two sides (compared separately)
    ignore: tuple[str, ...] = ()
    #: the engine answers this one itself (a method no trigger serves: its router's 405, with
    #: ``allow`` but an empty body, builtins.md §3.3): compare status and ``allow`` only
    engine_answers: bool = False
    #: framing too: ``content-length`` present (and equal) on both sides or on neither
    strict_framing: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw_headers: httpx.Headers
    seconds: float = 0.0


async def send(http: httpx.AsyncClient, base: str, call: Call) -> Answer:
    kwargs: dict[str, Any] = {"headers": call.headers}
    if call.json is not None:
        kwargs["json"] = call.json
    if call.content is not None:
        kwargs["content"] = call.content
    started = time.perf_counter()
    response = await http.request(call.method, base + call.path, **kwargs)
    seconds = time.perf_counter() - started
    headers = sorted(
        (name.lower(), value)
        for name, value in response.headers.multi_items()
        if name.lower() not in PER_HOP and name.lower() not in call.ignore
    )
    return Answer(response.status_code, headers, response.content, response.headers, seconds)


async def run(app: Any, calls: list[Call], engine: Any, via_engine: bool) -> list[Answer]:
    async with serve(app) as direct, httpx.AsyncClient(timeout=20) as http:
        base = engine.http_url if via_engine else direct
        return [await send(http, base, call) for call in calls]


def _framing_free(answer: Answer, other: Answer) -> list[tuple[str, str]]:
    """``content-length`` is framing when the other side streamed (chunked) the same body."""
    if any(n == "content-length" for n, _ in other.headers):
        return answer.headers
    return [(n, v) for n, v in answer.headers if n != "content-length"]


async def compare(app: Any, calls: list[Call], engine: Any) -> list[tuple[Answer, Answer]]:
    """``(direct, through the engine)`` per call, asserting they agree."""
    direct = await run(app, calls, engine, via_engine=False)
    through = await run(app, calls, engine, via_engine=True)
    pairs = list(zip(direct, through, strict=True))
    for call, (d, e) in zip(calls, pairs, strict=True):
        assert e.status == d.status, f"{call}: status {e.status} via engine, {d.status} direct"
        if call.engine_answers:
            assert e.raw_headers.get("allow") == d.raw_headers.get("allow"), call
            continue
        assert e.body == d.body, (
            f"{call}: body differs\nengine: {e.body[:300]!r}\ndirect: {d.body[:300]!r}"
        )
        if call.strict_framing:
            assert e.headers == d.headers, f"{call}: headers differ\n{e.headers}\n{d.headers}"
        else:
            assert _framing_free(e, d) == _framing_free(d, e), f"{call}: headers differ"
    return pairs
