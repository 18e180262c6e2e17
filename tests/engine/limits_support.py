"""Helpers of the limits tests (issue 13): a well-behaved worker calling its own function at a
steady rate, raw HTTP/1.1 clients for abusive requests, and an engine in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import iii

#: p99 the steady caller must stay under while an abusive client runs (seconds). The stalls
#: these tests guard against lasted 5-20 s (issue 13); a busy 2-core CI machine adds ~200 ms
#: hiccups of its own (66 calls, p50 5.8 ms, p99 203.7 ms beside 32 x 16 MiB POSTs), so the
#: bound sits well between the two.
P99_S = 1.0
#: Calls the steady caller makes at least (it keeps going after the block until it has).
MIN_CALLS = 30


class Steady:
    """``async with Steady(url) as steady:`` — a worker that registers ``steady::echo`` and
    calls it every ``interval`` seconds until the block ends; :meth:`check` asserts no call
    failed and the p99 stayed under :data:`P99_S`."""

    def __init__(self, url: str, interval: float = 0.01, name: str = "steady") -> None:
        self.url = url
        self.interval = interval
        self.function_id = f"{name}::echo"
        self.latencies: list[float] = []
        self.errors: list[BaseException] = []
        self.client = iii.III(url)
        self._task: asyncio.Task[None] | None = None
        self._running = False

    async def __aenter__(self) -> Steady:
        await self.client.connect()
        self.client.register_function(self.function_id, lambda data: data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while True:  # registration is fire-and-forget: wait until the function answers
            try:
                await self.client.trigger_async({"function_id": self.function_id, "payload": 0})
                break
            except iii.IIIInvocationError as exc:
                if exc.code != "function_not_found" or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.02)
        self._running = True
        self._task = loop.create_task(self._run())
        return self

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        n = 0
        while self._running:
            start = loop.time()
            n += 1
            try:
                payload = {"n": n}
                request = {"function_id": self.function_id, "payload": payload}
                result = await asyncio.wait_for(self.client.trigger_async(request), 5)
                assert result["n"] == n, result  # the engine adds _caller_worker_id
                self.latencies.append(loop.time() - start)
            except Exception as exc:  # recorded; check() fails on any
                self.errors.append(exc)
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - start)))

    async def __aexit__(self, *exc: object) -> None:
        deadline = asyncio.get_running_loop().time() + 5
        while len(self.latencies) < MIN_CALLS and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(self.interval)
        self._running = False
        if self._task is not None:
            await self._task
        await self.client.shutdown_async()

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    def check(self, min_calls: int | None = None) -> str:
        """Assert no error, at least ``min_calls`` calls and p99 < :data:`P99_S`; returns a
        summary for the test's output."""
        assert not self.errors, self.errors[:3]
        assert len(self.latencies) >= (min_calls or MIN_CALLS), len(self.latencies)
        p99 = self.p(0.99)
        summary = f"{len(self.latencies)} calls, p50 {self.p(0.5) * 1e3:.1f} ms, "
        summary += f"p99 {p99 * 1e3:.1f} ms"
        assert p99 < P99_S, summary
        return summary


class SteadyProcess(Steady):
    """:class:`Steady` in a child process: its calls do not share this process's event loop
    (and CPU) with the abusive clients a test runs here, so what it measures is the engine."""

    SCRIPT = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[2])
from limits_support import Steady

async def main():
    async with Steady(sys.argv[1], name="steadyproc") as steady:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(json.dumps({"latencies": steady.latencies, "errors": [repr(e) for e in steady.errors]}))

asyncio.run(main())
"""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.proc: subprocess.Popen[str] | None = None

    async def __aenter__(self) -> SteadyProcess:
        here = str(Path(__file__).parent)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, self.url, here],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.readline)
        assert line.strip() == "ready", line
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        out = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.read)
        proc.wait()
        report = json.loads(out.strip().splitlines()[-1])
        self.latencies = report["latencies"]
        self.errors = [AssertionError(e) for e in report["errors"]]


# -- raw HTTP/1.1 ------------------------------------------------------------------------------


async def open_http(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_response(
    reader: asyncio.StreamReader, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names), body (content-length framed)."""
    async with asyncio.timeout(timeout):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def closed(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """Whether the server closes the connection within ``timeout`` (data before EOF is read
    and dropped)."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except (TimeoutError, asyncio.TimeoutError):
        return False
    except ConnectionError:
        pass
    return True


async def request(
    port: int, method: str, path: str, body: bytes = b"", headers: Sequence[str] = ()
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection."""
    reader, writer = await open_http(port)
    try:
        head = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", *headers]
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(f"content-length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return await read_response(reader)
    finally:
        writer.close()


async def send_quietly(writer: asyncio.StreamWriter, data: bytes, chunk: int = 65536) -> None:
    """Write ``data`` in chunks with backpressure, stopping when the server hangs up."""
    view = memoryview(data)
    with contextlib.suppress(ConnectionError):
        for start in range(0, len(view), chunk):
            writer.write(view[start : start + chunk])
            await writer.drain()


# -- an engine in its own process --------------------------------------------------------------


def vm_kib(pid: int, field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of ``pid`` from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class EngineProcess:
    """``iii-asgi engine --config <file>`` in a child process (ports 0), stopped on exit;
    ``nofile`` lowers the child's soft ``RLIMIT_NOFILE``."""

    def __init__(self, config_yaml: str, tmp: Path, nofile: int | None = None) -> None:
        self.path = tmp / "engine.yaml"
        self.path.write_text(config_yaml)
        self.nofile = nofile
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.http_port = 0

    def _preexec(self) -> Callable[[], None] | None:
        nofile = self.nofile
        if nofile is None:
            return None

        def limit() -> None:
            import resource

            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        return limit

    async def __aenter__(self) -> EngineProcess:
        code = "from iii_asgi.cli import main; main()"
        cmd = [sys.executable, "-c", code, "engine", "--config", str(self.path)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            preexec_fn=self._preexec(),
        )
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 30
        while not (self.url and self.http_port):
            line = await loop.run_in_executor(None, self.proc.stdout.readline)
            if not line or time.monotonic() > deadline:
                raise AssertionError("engine process did not start")
            if "listening on" in line:
                self.url = line.split()[-1]
            elif "HTTP triggers on" in line:
                self.http_port = int(line.rsplit(":", 1)[1])
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def __aexit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def engine_yaml(**http: Any) -> str:
    """A config file: the worker port and the HTTP port on 127.0.0.1, any free ports, the
    ``iii-http`` block extended with ``http``."""
    block = {"host": "127.0.0.1", "port": 0, **http}
    return (
        "workers:\n"
        "  - name: iii-worker-manager\n"
        "    config: {host: 127.0.0.1, port: 0}\n"
        "  - name: iii-http\n"
        f"    config: {json.dumps(block)}\n"
    )


@contextlib.asynccontextmanager
async def gathered(*coros: Any) -> AsyncIterator[list[asyncio.Task[Any]]]:
    """Run ``coros`` as tasks for the block, cancelling what is left at its end."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
