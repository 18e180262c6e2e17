"""Write tests/sdk/official_surface.json: the public surface of the official 0.25 wheels.

Run it with the Python of a venv that has ``iii-sdk==0.25.0`` and ``iii-helpers==0.25.0``
installed (the official packages also import as ``iii``, so never in our venv)::

    $III_OFFICIAL_PYTHON scripts/official_surface.py > tests/sdk/official_surface.json

What counts as public, per module of the two wheels (every module whose dotted path has no
``_``-prefixed part):

- a module with ``__all__``: exactly ``__all__``;
- a module without: every top-level name, defined there or imported into it, whose definition
  lives in the wheels (found by following ``from .x import y`` statements in the source) in a
  module that is not internal, or that is listed in some ``__all__``. Names from the standard
  library or other packages, ``log`` loggers and ``TypeVar`` objects are left out.

Internal modules (``INTERNAL`` below: sdk_surface.md §2 lists them as unwired or internal, the
observe/local-dispatch machinery) are recorded with their reason but not pinned.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import pathlib
import pkgutil
import sys
import types
from typing import Any, TypeVar

PACKAGES = ("iii", "iii_helpers")
DISTRIBUTIONS = ("iii-sdk", "iii-helpers")
INTERNAL = {
    "iii.invocation_context": "contextvar plumbing of handlers; public names are at the root",
    "iii.observable": "observe machinery (owner side); public names are at the root",
    "iii.observe_types": "observe TypedDicts; public names are at the root",
    "iii.observe_wire": "observe wire encoding",
    "iii.observer_handle": "observe machinery; ObserverHandle is at the root",
    "iii.otel_worker_gauges": "unwired in 0.25 (sdk_surface.md §2)",
    "iii.process_marker": "the ~/.iii/run marker file for `iii ps`",
    "iii.reporter": "local-dispatch invocation reports",
    "iii.worker_metrics": "unwired in 0.25 (sdk_surface.md §2)",
    "iii_helpers.observability.telemetry_exporters": "OTLP exporters behind init_otel",
}


def modules() -> list[str]:
    names: list[str] = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        names.append(top)
        for info in pkgutil.walk_packages(package.__path__, f"{top}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return sorted(names)


def top_level(module: types.ModuleType) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """Names a module's source defines, and ``name -> (module, name)`` for its imports."""
    path = module.__file__
    assert path is not None
    tree = ast.parse(pathlib.Path(path).read_text())
    defined: set[str] = set()
    imported: dict[str, tuple[str, str]] = {}
    package = module.__name__ if path.endswith("__init__.py") else module.__package__ or ""
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if node in tree.body:
                defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                imported[alias.asname or alias.name] = (base, alias.name)
    return defined, imported


def origin(module_name: str, name: str) -> str | None:
    """The wheel module that defines ``name`` as seen from ``module_name`` (None: elsewhere)."""
    seen = set()
    while module_name.split(".")[0] in PACKAGES and (module_name, name) not in seen:
        seen.add((module_name, name))
        defined, imported = top_level(importlib.import_module(module_name))
        if name in defined:
            return module_name
        if name not in imported:
            return None
        module_name, name = imported[name]
    return None


def internal(module_name: str) -> bool:
    """An internal module: listed in INTERNAL, or private (a ``_``-prefixed part)."""
    return module_name in INTERNAL or any(p.startswith("_") for p in module_name.split("."))


def surface() -> dict[str, Any]:
    listed = {
        name
        for module_name in modules()
        for name in getattr(importlib.import_module(module_name), "__all__", ())
    }
    public: dict[str, list[str]] = {}
    for module_name in modules():
        if module_name in INTERNAL:
            continue
        module = importlib.import_module(module_name)
        if hasattr(module, "__all__"):
            public[module_name] = sorted(module.__all__)
            continue
        names = []
        for name, value in vars(module).items():
            if name.startswith("_") or name == "log" or isinstance(value, types.ModuleType):
                continue
            if isinstance(value, TypeVar) or name in ("annotations", "TYPE_CHECKING"):
                continue
            source = origin(module_name, name)
            if source is None or (internal(source) and name not in listed):
                continue
            names.append(name)
        public[module_name] = sorted(names)
    return {
        "_comment": __doc__.strip().splitlines()[0]
        + " Regenerate: $III_OFFICIAL_PYTHON scripts/official_surface.py"
        " > tests/sdk/official_surface.json",
        "distributions": {d: importlib.metadata.version(d) for d in DISTRIBUTIONS},
        "python": ".".join(map(str, sys.version_info[:2])),
        "modules": public,
        "internal_modules": INTERNAL,
    }


if __name__ == "__main__":
    json.dump(surface(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
