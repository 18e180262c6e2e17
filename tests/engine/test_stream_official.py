"""Interop: an official ``iii-sdk==0.25.0`` worker serves a custom stream (``IStream`` +
``create_stream``) and our engine routes ``stream::*`` of that stream to it (builtins.md §6.1)."""

from __future__ import annotations

import textwrap

import pytest
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from tests.helpers import wait_until
from tests.official import run_official

pytestmark = pytest.mark.interop

SCRIPT = textwrap.dedent(
    """
    import time, warnings
    warnings.simplefilter("ignore")
    from iii import register_worker, InitOptions, IStream
    from iii.helpers import create_stream
    from iii_helpers.stream import StreamSetResult, StreamDeleteResult

    class Memory(IStream):
        def __init__(self):
            self.items = {}
        async def get(self, input):
            return self.items.get((input.group_id, input.item_id))
        async def set(self, input):
            old = self.items.get((input.group_id, input.item_id))
            self.items[(input.group_id, input.item_id)] = input.data
            return StreamSetResult(old_value=old, new_value=input.data)
        async def delete(self, input):
            old = self.items.pop((input.group_id, input.item_id), None)
            return StreamDeleteResult(old_value=old)
        async def list(self, input):
            return [v for (g, _), v in self.items.items() if g == input.group_id]
        async def list_groups(self, input):
            return sorted({g for g, _ in self.items})
        async def update(self, input):
            return None

    client = register_worker(options=InitOptions(worker_name="official-stream"))
    create_stream(client, "mem", Memory())
    print("READY", flush=True)
    while True:
        time.sleep(1)
    """
)


async def test_official_custom_stream(engine: EngineThread) -> None:
    watcher = await Wire.connect(engine.url, name="watcher")
    await watcher.send({"type": "registerfunction", "id": "on::mem"})
    await watcher.send(
        {
            "type": "registertrigger",
            "id": "t",
            "trigger_type": "stream",
            "function_id": "on::mem",
            "config": {"stream_name": "mem"},
        }
    )
    await watcher.sync()
    with run_official(SCRIPT, engine.url) as official:
        official.wait_for("READY")
        functions = engine.core.registry.functions
        await wait_until(lambda: ("default", "stream::list_groups(mem)") in functions)
        wire = await Wire.connect(engine.url)
        item = {"stream_name": "mem", "group_id": "g", "item_id": "a"}
        first = await wire.result("stream::set", {**item, "data": {"n": 1}})
        assert first == {"old_value": None, "new_value": {"n": 1}}
        second = await wire.result("stream::set", {**item, "data": {"n": 2}})
        assert second == {"old_value": {"n": 1}, "new_value": {"n": 2}}
        assert await wire.result("stream::get", item) == {"n": 2}
        assert await wire.result("stream::list", {"stream_name": "mem", "group_id": "g"}) == [
            {"n": 2}
        ]
        assert await wire.result("stream::list_groups", {"stream_name": "mem"}) == ["g"]
        assert await wire.result("stream::delete", item) == {"old_value": {"n": 2}}
        events = [(await watcher.serve_one())["data"]["event"] for _ in range(3)]
        assert events == [
            {"type": "create", "data": {"n": 1}},
            {"type": "update", "data": {"n": 2}},
            {"type": "delete", "data": {"n": 2}},
        ]
        assert engine.run(engine.workers.storage.list_spaces("stream:")) == []
