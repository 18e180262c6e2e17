"""The ``iii-exec`` worker: a command pipeline run beside the engine (the real engine's
``iii-exec`` config: ``exec`` and ``watch``).

``exec`` is a sequential pipeline: each command runs through ``/bin/sh -c`` in
``EngineConfig.exec_cwd`` (the config file's folder); an intermediate command must exit 0
before the next starts (otherwise the pipeline stops, logged), and the last command is kept
running as the long-lived process. ``watch`` globs (relative to the same folder; ``**`` for any
depth, ``{a,b}`` alternatives) restart the whole pipeline when a matching file changes
(``watchfiles``). Each line a command prints is forwarded to the engine's stdout prefixed with
``[exec:<n>]``; commands see ``III_URL`` set to this engine's worker socket unless the
environment already has one; a command that exits is logged with its exit status. On engine
shutdown the running command's process group gets SIGTERM, then SIGKILL after
``EngineConfig.exec_stop_grace_s`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import re
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import watchfiles

from ...core.worker import BuiltinWorker, EngineServices

__all__ = ["ExecWorker", "expand_braces", "matches"]

logger = logging.getLogger("iii_asgi.engine.exec")

_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """``src/*.{ts,js}`` → ``["src/*.ts", "src/*.js"]`` (nested and repeated groups too)."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [
        expanded
        for option in match.group(1).split(",")
        for expanded in expand_braces(head + option + tail)
    ]


def _variants(pattern: str) -> list[str]:
    """A ``**/`` segment also matches no directory at all (``src/**/*.py`` matches
    ``src/a.py``)."""
    out = [pattern]
    while "**/" in out[-1]:
        out.append(out[-1].replace("**/", "", 1))
    return out


def matches(relative: str, patterns: Iterable[str]) -> bool:
    """Does the ``/``-separated ``relative`` path match one of the watch globs?"""
    relative = relative.lstrip("./") if relative.startswith("./") else relative
    for pattern in patterns:
        for expanded in expand_braces(pattern.removeprefix("./")):
            if any(fnmatch.fnmatchcase(relative, v) for v in _variants(expanded)):
                return True
    return False


class ExecWorker(BuiltinWorker):
    """Runs ``EngineConfig.exec_commands`` once the engine serves, restarts them on watched
    changes, stops them on shutdown."""

    name = "iii-exec"

    def __init__(self, core: EngineServices) -> None:
        c = core.config
        self.commands = list(c.exec_commands)
        self.watch = list(c.exec_watch)
        self.cwd = Path(c.exec_cwd or os.getcwd()).resolve()
        self.grace_s = c.exec_stop_grace_s
        self.process: asyncio.subprocess.Process | None = None
        #: How many times the pipeline started (1 after the first start).
        self.runs = 0
        self._pipeline: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        #: The commands' environment: the engine's, plus ``III_URL`` (this engine's worker
        #: socket) unless already set.
        self.environ: dict[str, str] = dict(os.environ)

    async def serving(self, urls: Mapping[str, str]) -> None:
        self.environ = dict(os.environ)
        self.environ.setdefault("III_URL", urls["worker"])
        self._pipeline = asyncio.get_running_loop().create_task(self._run_pipeline())
        if self.watch:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        self._stopping.set()
        for task in (self._watcher, self._pipeline):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._terminate()

    async def _run_pipeline(self) -> None:
        self.runs += 1
        for index, command in enumerate(self.commands):
            last = index == len(self.commands) - 1
            process = await asyncio.create_subprocess_shell(
                command,
                cwd=self.cwd,
                env=self.environ,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with its children
            )
            self.process = process
            logger.info("exec: started %r (pid %d)", command, process.pid)
            assert process.stdout is not None
            forward = asyncio.get_running_loop().create_task(
                _forward(process.stdout, f"[exec:{index}] ")
            )
            try:
                status = await process.wait()
                await forward
            finally:
                forward.cancel()
            self.process = None
            if last:
                logger.warning("exec: %r exited with status %s", command, status)
            elif status != 0:
                logger.error("exec: %r exited with status %s; pipeline stopped", command, status)
                return
            else:
                logger.info("exec: %r finished", command)

    async def _watch(self) -> None:
        async for changes in watchfiles.awatch(
            self.cwd, stop_event=self._stopping, debounce=300, recursive=True
        ):
            changed = [
                Path(path).resolve().relative_to(self.cwd).as_posix()
                for _, path in changes
                if Path(path).resolve().is_relative_to(self.cwd)
            ]
            hit = [path for path in changed if matches(path, self.watch)]
            if not hit:
                continue
            logger.info("exec: %s changed; restarting the pipeline", hit[0])
            if self._pipeline is not None:
                self._pipeline.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._pipeline
            await self._terminate()
            self._pipeline = asyncio.get_running_loop().create_task(self._run_pipeline())

    async def _terminate(self) -> None:
        """SIGTERM the running command's process group, SIGKILL after the grace period."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.grace_s)
        except asyncio.TimeoutError:
            logger.warning("exec: pid %d ignored SIGTERM; killing it", process.pid)
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _forward(stream: asyncio.StreamReader, prefix: str) -> None:
    """Copy a command's output lines to stdout with ``prefix`` (bounded lines: 64 KiB)."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line over the stream limit: drop it, keep reading
            continue
        if not line:
            return
        sys.stdout.write(prefix + line.decode("utf-8", "replace").rstrip("\n") + "\n")
        sys.stdout.flush()
