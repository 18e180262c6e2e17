"""Every benchmark script starts from a fresh checkout: ``python bench/<name>.py --help`` exits
0 with its usage, run from another directory; and no script shadows a standard-library module
for its neighbours (``python bench/x.py`` puts ``bench/`` first on ``sys.path``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.processes import run

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))
#: bench/http.py is named like the stdlib's ``http`` on purpose (the docs' commands name it); it
#: drops its own folder from ``sys.path`` before any import, and so do its neighbours that import
#: anything reaching ``http`` (bench/state.py, bench/queues.py, bench/bridge.py through it).
SHADOWING_ALLOWED = {"http"}


def test_the_benchmarks_are_found() -> None:
    assert {p.stem for p in SCRIPTS} >= {"bridge", "http", "invoke", "queues", "state"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_help(script: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: "), result.stdout
    assert "--help" in result.stdout


def test_no_bench_script_shadows_the_standard_library() -> None:
    shadowing = {p.stem for p in BENCH.glob("*.py")} & set(sys.stdlib_module_names)
    assert shadowing <= SHADOWING_ALLOWED, f"rename bench/{sorted(shadowing)}.py"
