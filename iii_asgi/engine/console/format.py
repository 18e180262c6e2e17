"""Jinja2 filters of the console's templates: JSON with syntax classes, times, durations,
numbers, short ids, the sparkline of the overview."""

from __future__ import annotations

import json
import re
import time
import zlib
from datetime import datetime
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

__all__ = ["FILTERS"]

_TOKEN = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*")(?=\s*:)|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<lit>\btrue\b|\bfalse\b|\bnull\b)"
)
MAX_JSON_CHARS = 200_000


def json_text(value: Any) -> str:
    """Pretty JSON (2 spaces, unicode kept); values JSON cannot hold are shown as text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def json_html(value: Any) -> Markup:
    """Pretty JSON as HTML: keys, strings, numbers and literals in ``<span class="j-…">``."""
    text = json_text(value)
    if len(text) > MAX_JSON_CHARS:
        text = text[:MAX_JSON_CHARS] + "\n… (cut)"
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        out.append(str(escape(text[position : match.start()])))
        kind = match.lastgroup
        out.append(f'<span class="j-{kind}">{escape(match.group())}</span>')
        position = match.end()
    out.append(str(escape(text[position:])))
    return Markup("".join(out))


def attr_value(value: Any) -> Markup:
    """A span or log attribute: a string holding a JSON object or array (``iii.payload``) is
    shown pretty, another string as it is, anything else as JSON."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json_html(json.loads(text))
            except ValueError:
                pass
        return Markup(escape(value))
    return json_html(value)


def clock_ms(ms: Any) -> str:
    """Local wall-clock time of a Unix time in ms: ``14:03:07.120``."""
    if not ms:
        return "–"
    moment = datetime.fromtimestamp(ms / 1000)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def clock_ns(ns: Any) -> str:
    return clock_ms(ns / 1e6) if ns else "–"


def date_ms(ms: Any) -> str:
    """Local date and time: ``2026-01-02 14:03:07``."""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "–"


def _span_text(seconds: int) -> str:
    """``42 s``, ``3 min``, ``2 h 5 min``, ``3 d``."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d"


def since_ms(ms: Any) -> str:
    """How long ago a Unix time in ms was: ``42 s``, ``3 min``, ``2 h 5 min``, ``3 d``."""
    if not ms:
        return "–"
    return _span_text(max(0, int(time.time() - ms / 1000)))


def until(moment: datetime) -> str:
    """``in 4 s`` / ``in 3 min`` from now to ``moment`` (aware)."""
    return "in " + _span_text(max(0, int(moment.timestamp() - time.time())))


def duration(ms: Any) -> str:
    """``840 µs``, ``12.3 ms``, ``1.25 s``, ``2 min 3 s``."""
    ms = float(ms or 0)
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 100:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{int(ms // 60_000)} min {int(ms % 60_000 // 1000)} s"


def number(value: Any) -> str:
    """``12,345``; floats under 10 with one decimal."""
    if isinstance(value, float):
        return f"{value:.1f}" if value < 10 else f"{value:,.0f}"
    return f"{value:,}"


def short(value: Any, size: int = 8) -> str:
    text = str(value or "")
    return text[:size]


def sparkline(points: list[tuple[float, float]], width: int = 240, height: int = 40) -> Markup:
    """An inline SVG of invocations (area) and errors (line) per second, fixed size."""
    top = max([max(a, b) for a, b in points] + [1.0])
    step = width / max(len(points) - 1, 1)

    def path(index: int) -> str:
        coords = (
            f"{i * step:.1f},{height - 2 - (p[index] / top) * (height - 4):.1f}"
            for i, p in enumerate(points)
        )
        return "M" + " L".join(coords)

    calls = path(0)
    area = f"{calls} L{width},{height} L0,{height} Z"
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="invocations per second, last minute">'
        f'<path class="spark-area" d="{area}"/><path class="spark-line" d="{calls}"/>'
        f'<path class="spark-err" d="{path(1)}"/></svg>'
    )


def rows(text: str, least: int = 6, most: int = 20) -> int:
    """Rows of a textarea showing ``text`` (one spare), between ``least`` and ``most``."""
    return max(least, min(most, text.count("\n") + 2))


def service_class(name: str) -> str:
    """A stable colour class per service: the engine's own, else one of five by name."""
    if name == "engine":
        return "svc-engine"
    return f"svc-{zlib.crc32(name.encode()) % 5}"


def path_quote(value: Any) -> str:
    """A path segment: ``todos::list_todos`` stays readable, anything unsafe is quoted."""
    return quote(str(value), safe=":@")


FILTERS = {
    "attr_value": attr_value,
    "rows": rows,
    "svc_class": service_class,
    "path": path_quote,
    "json": json_html,
    "json_text": json_text,
    "clock_ms": clock_ms,
    "clock_ns": clock_ns,
    "date_ms": date_ms,
    "since_ms": since_ms,
    "until": until,
    "duration": duration,
    "number": number,
    "short": short,
    "sparkline": sparkline,
}
