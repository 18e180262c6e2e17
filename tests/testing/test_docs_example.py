"""The complete example of docs/testing.md runs as written: its app as ``shop/app.py``, its
tests as ``tests/test_shop.py``, under a pytest of its own that finds the plugin through its
``pytest11`` entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def test_the_documented_example_passes(pytester: pytest.Pytester) -> None:
    app, tests = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)[:2]
    pytester.mkpydir("shop")
    pytester.path.joinpath("shop", "app.py").write_text(app)
    pytester.makepyfile(test_shop=tests)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=3)
