"""Round-trip invocation benchmark: our SDK vs the official iii-sdk 0.25.0, one run.

worker A (caller) → embedded engine → worker B (``bench::echo``) → back. The engine runs in its
own process; each SDK's executor and caller run as subprocesses under that SDK's interpreter, so
both SDKs meet the same engine in the same run. Prints throughput (sequential and 64 in flight),
p50/p99 latency, CPU per call of the engine, the executor and the caller (``/proc``), and the
ratio ours/official, per round and the median of the rounds (cases are interleaved: each round
runs every case once).

    python bench/invoke.py [--calls 5000] [--rounds 3] [--official-python PATH]
                           [--otel-only | --no-otel]

Cases: ``thread`` (``register_worker()`` + ``await trigger_async()`` from the main loop: every
call crosses to the client's loop thread), ``sync`` (``register_worker()`` + the blocking
``trigger()`` from 1 or 64 plain threads), both SDKs; ``attached`` (ours only: ``III(url)`` +
``await connect()`` on the caller's loop, how the ASGI bridge runs), compared with the
official ``thread`` case.

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
#: Calls each caller makes before it measures (bench/_sdk_bench_worker.py).
WARM_UP = 200
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


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_case(
    python: str,
    url: str,
    calls: int,
    inflight: int,
    mode: str,
    otel: bool = False,
    engine_pid: int | None = None,
) -> dict[str, float]:
    """One case: throughput, p50/p99 (ms), and CPU µs per call of the engine (when
    ``engine_pid`` is given; warm-up calls included), the executor and the caller."""
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
    before = {pid: cpu_of(pid) for pid in (engine_pid, server.pid) if pid is not None}
    try:
        out = subprocess.run(
            [python, "-P", str(PEER), "call", url, str(calls), str(inflight), mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=True,
        ).stdout
        used = {pid: cpu_of(pid) - cpu for pid, cpu in before.items()}
    finally:
        server.stdin.close()
        server.wait(timeout=20)
    data = json.loads(out.strip().splitlines()[-1])
    lat = sorted(data["latencies_ms"])
    per_call = 1e6 / (calls + WARM_UP)
    return {
        "rps": calls / data["seconds"],
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "engine_us": used.get(engine_pid or -1, 0.0) * per_call,
        "executor_us": used[server.pid] * per_call,
        "caller_us": data.get("cpu", 0.0) * 1e6 / calls,
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
    parser.add_argument("--no-otel", action="store_true", help="skip the OTel on/off cases")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case")
    args = parser.parse_args()
    engine, url = start_engine()
    print(f"engine {url}; {args.calls} calls per case; payload ~60 bytes JSON")
    try:
        if not args.otel_only:
            theirs = official_python(args.official_python)
            versus_official(url, args.calls, theirs, args.rounds, engine.pid)
        if not args.no_otel:
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


#: (label, ours?, mode); each "ours" case is compared with the official case of the same mode
#: (``attached`` with the official ``thread``).
CASES = (
    ("official", False, "thread"),
    ("official-sync", False, "sync"),
    ("ours", True, "thread"),
    ("ours-sync", True, "sync"),
    ("ours-attached", True, "attached"),
)
VERSUS = {"ours": "official", "ours-sync": "official-sync", "ours-attached": "official"}


def versus_official(url: str, calls: int, theirs: str, rounds: int, engine_pid: int) -> None:
    rows: dict[tuple[str, int], list[dict[str, float]]] = {}
    for inflight in (1, 64):
        for round_ in range(rounds):
            for label, ours, mode in CASES:
                python = sys.executable if ours else theirs
                r = run_case(python, url, calls, inflight, mode, engine_pid=engine_pid)
                rows.setdefault((label, inflight), []).append(r)
                print(
                    f"{label:>14} in-flight={inflight:<3} round {round_ + 1} {r['rps']:>9.0f} "
                    f"calls/s  p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  cpu/call "
                    f"engine {r['engine_us']:.0f} executor {r['executor_us']:.0f} caller "
                    f"{r['caller_us']:.0f} us",
                    flush=True,
                )
    print()
    for inflight in (1, 64):
        for label, base in VERSUS.items():
            pairs = list(zip(rows[(label, inflight)], rows[(base, inflight)], strict=True))
            rps = sorted(o["rps"] / t["rps"] for o, t in pairs)
            p50 = sorted(o["p50"] / t["p50"] for o, t in pairs)
            print(
                f"{label}/{base}, in-flight={inflight}: throughput {statistics.median(rps):.2f}x "
                f"(rounds {rps[0]:.2f}-{rps[-1]:.2f}), p50 {statistics.median(p50):.2f}x "
                f"(rounds {p50[0]:.2f}-{p50[-1]:.2f})  (goal >= 2x, p50 <= 0.5x)"
            )
    print("\nmedian CPU per call (us): engine / executor / caller")
    for (label, inflight), runs in rows.items():
        keys = ("engine_us", "executor_us", "caller_us")
        cpu = [statistics.median(r[k] for r in runs) for k in keys]
        print(f"{label:>14} in-flight={inflight:<3} {cpu[0]:.0f} / {cpu[1]:.0f} / {cpu[2]:.0f}")
    # CPU per call is far steadier than calls/s on a shared machine: the SDKs' own share.
    print("\nSDK CPU per call (executor + caller), ours/official: median of the rounds")
    for inflight in (1, 64):
        for label, base in VERSUS.items():
            pairs = list(zip(rows[(label, inflight)], rows[(base, inflight)], strict=True))
            sdk = sorted(
                (o["executor_us"] + o["caller_us"]) / (t["executor_us"] + t["caller_us"])
                for o, t in pairs
            )
            print(
                f"{label}/{base}, in-flight={inflight}: {statistics.median(sdk):.2f}x "
                f"(rounds {sdk[0]:.2f}-{sdk[-1]:.2f})"
            )


if __name__ == "__main__":
    main()
