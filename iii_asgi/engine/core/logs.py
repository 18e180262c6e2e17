"""Logging of bad input without letting it flood the log (issue 13).

A client that sends 100k malformed frames must not write 100k warnings, and a field of 8 MB
must not be copied into the log. :class:`RateLimitedLogger` lets a burst of lines through per
*key* (one key per log site), then at most ``rate`` lines per second; the next line that gets
through says how many were suppressed. :func:`truncate` shortens any value to a few hundred
characters, saying how long it was.

Example::

    bad_input = RateLimitedLogger(logging.getLogger("iii_asgi.engine"))
    bad_input.warning("bad_frame", "dropping malformed frame from %r: %s", conn, truncate(exc))
    # ... "dropping malformed frame from <...>: frame is not valid JSON ... (41 similar lines
    #     suppressed)"
"""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["BURST", "RATE", "TRUNCATE_AT", "RateLimitedLogger", "truncate"]

#: Lines a key may log at once before the rate applies.
BURST = 10
#: Lines per second a key may log after its burst is spent.
RATE = 1.0
#: Characters :func:`truncate` keeps by default.
TRUNCATE_AT = 300
#: Keys remembered per logger; past this the oldest key is forgotten (keys are log sites, so
#: this is only reached when a caller builds keys from input, which it should not).
MAX_KEYS = 1024


def truncate(value: object, limit: int = TRUNCATE_AT) -> str:
    """``str(value)`` (a ``str`` as is, an exception by its message, else ``repr``) cut to
    ``limit`` characters, with ``"… (N chars)"`` appended when it was longer."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, BaseException):
        text = str(value)
    elif isinstance(value, bytes | bytearray):
        text = repr(bytes(value[: limit + 1]))
        if len(value) > limit:
            return f"{text[:limit]}… ({len(value)} bytes)"
        return text
    else:
        text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


class _Bucket:
    __slots__ = ("stamp", "suppressed", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.suppressed = 0


class RateLimitedLogger:
    """A token bucket per key in front of ``logger``: ``burst`` lines at once, then ``rate``
    lines per second (``rate`` in lines/s). Suppressed lines are counted and the count is
    appended to the next line of that key that is logged. Arguments are formatted only for
    lines that are logged; pass long values through :func:`truncate`."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        rate: float = RATE,
        burst: int = BURST,
        clock: Any = time.monotonic,
    ) -> None:
        self.logger = logger
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str) -> int | None:
        """Take a token of ``key``: ``None`` when the line must be suppressed (it is counted),
        else the number of lines suppressed since the last one allowed (and reset it)."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            return None
        bucket.tokens -= 1.0
        suppressed, bucket.suppressed = bucket.suppressed, 0
        return suppressed

    def log(self, level: int, key: str, msg: str, *args: Any, **kwargs: Any) -> bool:
        """Log ``msg % args`` at ``level`` unless ``key`` is over its rate; True when logged.
        ``kwargs`` go to :meth:`logging.Logger.log` (``exc_info``...)."""
        if not self.logger.isEnabledFor(level):
            return False
        suppressed = self.allow(key)
        if suppressed is None:
            return False
        if suppressed:
            msg = f"{msg} (%d similar lines suppressed)"
            args = (*args, suppressed)
        self.logger.log(level, msg, *args, **kwargs)
        return True

    def warning(self, key: str, msg: str, *args: Any, **kwargs: Any) -> bool:
        """:meth:`log` at WARNING."""
        return self.log(logging.WARNING, key, msg, *args, **kwargs)

    def error(self, key: str, msg: str, *args: Any, **kwargs: Any) -> bool:
        """:meth:`log` at ERROR."""
        return self.log(logging.ERROR, key, msg, *args, **kwargs)
