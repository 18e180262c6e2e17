"""Garbage-collector settings for a process the engine owns (``iii-asgi engine`` / ``run``).

CPython's cycle collector (``gc``) walks every tracked object in a full (generation 2)
collection: with the engine's modules loaded that is ~55k objects and a 20–40 ms pause under
load, which was the whole p99 of ``bench/http.py``; the young generation's default threshold
(700 net allocations) also ran ~40 collections per 1000 requests, ~4 µs per request, although
nearly everything a request allocates is freed by reference counting before any collection.

:func:`settle_after_startup` collects once, moves every object that survived startup (modules,
the app, routes) to the permanent generation (:func:`gc.freeze`, Python ≥ 3.7) so later
collections never walk them again, and raises the young threshold. Cycles made after startup
are still collected; only objects that existed at startup are exempt (they live as long as the
process anyway). Applied by the CLI only, never by a library import: it is process-wide.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_after_startup"]

#: Net container allocations between two young-generation collections (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def settle_after_startup() -> None:
    """Collect, freeze the survivors of startup and raise the young-generation threshold (never
    lowers a higher one set by the user). Process-wide; call once the server is up."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
