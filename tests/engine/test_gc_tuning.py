"""The CLI's garbage-collector settings after startup (iii_asgi.engine.gc_tuning)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from iii_asgi.engine.gc_tuning import YOUNG_THRESHOLD, settle_after_startup


@pytest.fixture
def gc_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("gc_restored")
def test_settle_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    survivor = {"made": "before startup ended"}
    settle_after_startup()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert not any(obj is survivor for obj in gc.get_objects())  # frozen: never walked again


@pytest.mark.usefixtures("gc_restored")
def test_settle_keeps_a_higher_threshold_and_still_collects_new_cycles() -> None:
    gc.set_threshold(50_000, 5, 5)
    settle_after_startup()
    assert gc.get_threshold() == (50_000, 5, 5)

    class Node:
        other: object

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2  # a cycle made after startup is still found
