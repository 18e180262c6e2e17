"""Round-trip invocation benchmark: our SDK vs the official iii-sdk 0.25.0, one run.

worker A (caller) → embedded engine → worker B (``bench::echo``) → back. The engine runs in its
own process; each SDK's executor and caller run as subprocesses under that SDK's interpreter, so
both SDKs meet the same engine in the same run. Prints throughput (sequential and 64 in flight),
p50/p99 latency, and the ratio ours/official.

    python bench/invoke.py [--calls 5000] [--official-python PATH] [--otel-only]

The official SDK's venv is the one the interop tests use (``tests/official.py``); OTel is off
for both SDKs (``OTEL_ENABLED=false``). Then the cost of tracing: our SDK again with OTel on
(``OTEL_ENABLED=true``: an ``execute`` span with input/output events and two metric updates per
call, batched to the engine's ``/otel`` socket, which stores them), against OTel off in the same
run, in alternating rounds; ``--otel-only`` runs just that part.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = Path(__file__).resolve().parent / "_sdk_bench_worker.py"


def start_engine() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "iii_asgi",
            "engine",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--http-port",
            "off",
            "--stream-port",
            "off",
            "--console-port",
            "off",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "ws://" in line:
            url = line[line.index("ws://") :].split()[0]
            return proc, url
    proc.kill()
    raise RuntimeError("engine did not report its URL")


def env_for(python: str, otel: bool = False) -> dict[str, str]:
    env = {**os.environ, "OTEL_ENABLED": "true" if otel else "false"}
    if python == sys.executable:
        env["PYTHONPATH"] = str(ROOT)
    else:
        env.pop("PYTHONPATH", None)
    return env


def run_case(
    python: str, url: str, calls: int, inflight: int, mode: str, otel: bool = False
) -> dict[str, float]:
    env = env_for(python, otel)
    # -P: bench/ must not shadow the standard library (bench/http.py vs `http`)
    server = subprocess.Popen(
        [python, "-P", str(PEER), "serve", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stdout is not None and server.stdin is not None
    if server.stdout.readline().strip() != "ready":
        raise RuntimeError(f"executor under {python} did not start")
    try:
        out = subprocess.run(
            [python, "-P", str(PEER), "call", url, str(calls), str(inflight), mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=True,
        ).stdout
    finally:
        server.stdin.close()
        server.wait(timeout=20)
    data = json.loads(out.strip().splitlines()[-1])
    lat = sorted(data["latencies_ms"])
    return {
        "rps": calls / data["seconds"],
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
    }


def official_python(explicit: str | None) -> str:
    if explicit:
        return explicit
    sys.path.insert(0, str(ROOT))
    from tests.official import official_python as find

    return str(find())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--official-python", default=os.environ.get("III_OFFICIAL_PYTHON"))
    parser.add_argument("--otel-only", action="store_true", help="only the OTel on/off cases")
    parser.add_argument("--rounds", type=int, default=2, help="OTel on/off rounds per case")
    args = parser.parse_args()
    engine, url = start_engine()
    print(f"engine {url}; {args.calls} calls per case; payload ~60 bytes JSON")
    try:
        if not args.otel_only:
            versus_official(url, args.calls, official_python(args.official_python))
        tracing_cost(url, args.calls, args.rounds)
    finally:
        engine.terminate()
        engine.wait(timeout=20)


def tracing_cost(url: str, calls: int, rounds: int) -> None:
    """Our SDK (thread mode) with OTel on vs off, in alternating rounds (off, on, off, on...).

    Prints each round's on/off ratio, their range, and the ratio of the best of each."""
    print()
    for inflight in (1, 64):
        best: dict[bool, dict[str, float]] = {}
        ratios: list[float] = []
        for _ in range(rounds):
            pair: dict[bool, float] = {}
            for otel in (False, True):
                r = run_case(sys.executable, url, calls, inflight, "thread", otel=otel)
                label = "ours+otel" if otel else "ours"
                print(
                    f"{label:>14} in-flight={inflight:<3} {r['rps']:>9.0f} calls/s  "
                    f"p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms",
                    flush=True,
                )
                pair[otel] = r["rps"]
                if otel not in best or r["rps"] > best[otel]["rps"]:
                    best[otel] = r
            ratios.append(pair[True] / pair[False])
        ratio = best[True]["rps"] / best[False]["rps"]
        print(
            f"ratio otel-on/otel-off, in-flight={inflight}: {ratio:.2f} (best of {rounds}); "
            f"per round {min(ratios):.2f}-{max(ratios):.2f} "
            f"[{' '.join(f'{x:.2f}' for x in ratios)}]"
        )


def versus_official(url: str, calls: int, theirs: str) -> None:
    rows: dict[tuple[str, int], dict[str, float]] = {}
    for inflight in (1, 64):
        for label, python, mode in (
            ("official", theirs, "thread"),
            ("ours", sys.executable, "thread"),
            ("ours-attached", sys.executable, "attached"),
        ):
            rows[(label, inflight)] = r = run_case(python, url, calls, inflight, mode)
            print(
                f"{label:>14} in-flight={inflight:<3} {r['rps']:>9.0f} calls/s  "
                f"p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms",
                flush=True,
            )
    print()
    for inflight in (1, 64):
        base = rows[("official", inflight)]["rps"]
        for label in ("ours", "ours-attached"):
            ratio = rows[(label, inflight)]["rps"] / base
            print(f"ratio {label}/official, in-flight={inflight}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
