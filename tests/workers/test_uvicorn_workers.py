"""``uvicorn --workers 2``: two processes, one owner and one standby per function id; killing
the owner hands its functions and routes to the standby, and nothing crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

import iii
from tests.processes import PATIENCE, Lines, kill_group, popen

ROOT = Path(__file__).resolve().parents[2]
RUN_FLAGS = ("--workers", "2", "--port", "0", "--engine-port", "0", "--engine-http-port", "0")
RUN_FLAGS += ("--engine-stream-port", "0", "--log-level", "info")


async def _math_workers(client: iii.III) -> set[int]:
    workers = await client.list_workers()
    return {int(w.name.rsplit(":", 1)[1]) for w in workers if w.name.startswith("math:")}


async def _pid_through_engine(http: httpx.AsyncClient, url: str) -> int | None:
    response = await http.get(f"{url}/pid")
    return int(response.json()["pid"]) if response.status_code == 200 else None


async def test_two_uvicorn_workers_one_owner_one_standby(engine: Any) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "III_URL": engine.url,
        "OTEL_ENABLED": "false",
    }
    command = [sys.executable, "-m", "uvicorn", "tests.workers.math_worker:app", "--workers", "2"]
    supervisor = popen(
        [*command, "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = Lines(supervisor.stderr, "uvicorn stderr")
    client = iii.III(engine.url)
    await client.connect()
    try:
        seen: dict[str, Any] = {}

        async def two_workers() -> bool:
            seen["pids"] = await _math_workers(client)
            return len(seen["pids"]) == 2

        await _until(two_workers)
        pids: set[int] = seen["pids"]
        async with httpx.AsyncClient(timeout=60) as http:

            async def routed() -> bool:
                seen["owner"] = await _pid_through_engine(http, engine.http_url)
                return seen["owner"] is not None

            await _until(routed)
            owner: int = seen["owner"]
            assert owner in pids
            (standby,) = pids - {owner}
            # both registered, the function is served by exactly one of them
            add = {"function_id": "math::add", "payload": {"a": 20, "b": 22}}
            assert await client.trigger_async(add) == 42
            os.kill(owner, signal.SIGKILL)

            async def taken_over() -> bool:
                seen["now"] = await _pid_through_engine(http, engine.http_url)
                return seen["now"] == standby

            await _until(taken_over)
            assert await client.trigger_async(add) == 42
            # uvicorn replaces the killed process; the newcomer stands by, the owner stays
            await _until(two_workers)
            assert standby in seen["pids"] and owner not in seen["pids"]
            assert await _pid_through_engine(http, engine.http_url) == standby
        assert supervisor.poll() is None, "the uvicorn supervisor died"
    finally:
        await client.shutdown_async()
        try:
            code = _interrupt(supervisor)
        finally:
            stderr.join()
    errors = stderr.text
    assert code == 0, errors
    assert "Traceback" not in errors, errors


def _interrupt(supervisor: subprocess.Popen[str]) -> int:
    """SIGINT the supervisor (a graceful stop) and return its exit code. Its process group is
    killed afterwards whatever happened (``AssertionError`` when it did not stop in time)."""
    supervisor.send_signal(signal.SIGINT)
    try:
        return supervisor.wait(PATIENCE)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the supervisor did not stop within {PATIENCE}s") from None
    finally:
        kill_group(supervisor)


async def _until(check: Any, timeout: float = PATIENCE) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{check.__name__} not reached in {timeout}s")
        await asyncio.sleep(0.05)


async def test_iii_asgi_run_workers_2_bridged_routes_stand_by(tmp_path: Path) -> None:
    """``iii-asgi run --workers 2``: the engine in the supervisor, two bridged app processes;
    the route's function has one owner, the other process stands by and takes over."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OTEL_ENABLED": "false"}
    env.pop("III_URL", None)
    log = tmp_path / "run.log"
    with log.open("w") as out:
        supervisor = popen(
            [sys.executable, "-m", "iii_asgi", "run", "tests.workers.pid_app:app", *RUN_FLAGS],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        urls: dict[str, str] = {}

        async def announced() -> bool:
            for line in log.read_text().splitlines():
                for kind in ("ws", "http"):
                    if line.startswith(f"iii-asgi: engine {kind}://"):
                        urls[kind] = line.split()[2]
            return len(urls) == 2

        await _until(announced)
        client = iii.III(urls["ws"])
        await client.connect()
        try:
            seen: dict[str, Any] = {}

            async def two_apps() -> bool:
                workers = await client.list_workers()
                seen["pids"] = {
                    int(w.name.rsplit(":", 1)[1])
                    for w in workers
                    if w.name.startswith("pid-app:")  # worker_name="pid-app" + each pid
                }
                return len(seen["pids"]) == 2

            await _until(two_apps)
            async with httpx.AsyncClient(timeout=60) as http:

                async def routed() -> bool:
                    seen["owner"] = await _pid_through_engine(http, urls["http"])
                    return seen["owner"] is not None

                await _until(routed)
                owner = seen["owner"]
                (standby,) = seen["pids"] - {owner}
                await _until(lambda: _logged(log, "stands by"))  # the other one
                os.kill(owner, signal.SIGKILL)

                async def taken_over() -> bool:
                    seen["now"] = await _pid_through_engine(http, urls["http"])
                    return seen["now"] == standby

                await _until(taken_over)
            assert supervisor.poll() is None, log.read_text()
        finally:
            await client.shutdown_async()
    finally:
        code = _interrupt(supervisor)
    output = log.read_text()
    assert code == 0, output
    assert "took over" in output
    assert "engine stopped" in output


async def _logged(log: Path, text: str) -> bool:
    return text in log.read_text()
