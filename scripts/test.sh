#!/usr/bin/env bash
# Install the project with its test tools into .venv, then lint, type-check and run the suite.
# The official iii-sdk 0.25.0 used by the interop tests is installed by the tests themselves
# into .venv-official (see tests/official.py). The Redis adapter tests start Debian's
# redis-server (installed here when missing; where it cannot be, they are skipped and -rs prints
# why).
set -euo pipefail
cd "$(dirname "$0")/.."
# The console's browser tests drive Debian's chromium through Playwright (never a browser
# download); CI runs as root on a fresh machine.
command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
    || echo "chromium could not be installed: the console's browser tests will be skipped" >&2
if ! command -v redis-server >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq redis-server) \
        || echo "redis-server could not be installed: the Redis adapter tests will be skipped" >&2
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest -q -rs "$@"
