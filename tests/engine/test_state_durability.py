"""Durability: state and stream items written before an engine SIGKILL are readable after a
restart on the same ``--data-dir`` (a real engine process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine_wire import Wire

from tests.processes import PATIENCE, Lines, kill_group, started

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def engine_process(*options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``iii-asgi engine --port 0 <options>`` in a subprocess (its own process group); yields it
    and its worker URL. The group is killed on exit."""
    with started(
        [sys.executable, "-m", "iii_asgi", "engine", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
    ) as proc:
        out = Lines(proc.stdout, "engine")
        try:
            url = out.wait_for(r"ws://\S+").group(0)
            yield proc, url
        finally:
            kill_group(proc)
            out.join()


async def test_state_survives_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    options = ("--http-port", "off", "--stream-port", "off", "--data-dir", str(data))
    with engine_process(*options) as (proc, url):
        wire = await Wire.connect(url)
        for i in range(50):
            await wire.result("state::set", {"scope": "orders", "key": f"o{i}", "value": {"i": i}})
        await wire.result(
            "state::update",
            {"scope": "orders", "key": "o0", "ops": [{"type": "increment", "path": "i", "by": 5}]},
        )
        await wire.result("state::delete", {"scope": "orders", "key": "o1"})
        await wire.result("state::set", {"scope": "empty", "key": "x", "value": 1})
        await wire.result("state::delete", {"scope": "empty", "key": "x"})
        item = {"stream_name": "todo", "group_id": "inbox", "item_id": "t1"}
        await wire.result("stream::set", {**item, "data": {"title": "milk"}})
        proc.send_signal(signal.SIGKILL)  # no shutdown: only what was committed survives
        proc.wait(PATIENCE)
        await wire.close()
    config = tmp_path / "config.yaml"  # restart through a config file: no http/stream workers
    config.write_text(f"storage:\n  data_dir: {data}\nworkers: []\n")
    with engine_process("--config", str(config)) as (_, url):
        wire = await Wire.connect(url)
        assert await wire.result("state::get", {"scope": "orders", "key": "o0"}) == {"i": 5}
        assert await wire.result("state::get", {"scope": "orders", "key": "o1"}) is None
        values = await wire.result("state::list", {"scope": "orders"})
        assert values == [{"i": 5}] + [{"i": i} for i in range(2, 50)]
        assert await wire.result("state::list_groups", {}) == {"groups": ["empty", "orders"]}
        assert await wire.result("stream::get", item) == {"title": "milk"}
