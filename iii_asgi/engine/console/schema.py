"""A function's request/response JSON Schema, made readable: one row per field (name, type,
required, description, nesting depth) and an example payload to start the invoke form from.

Handles what pydantic and the SDKs emit: ``properties``/``required``, ``items``, ``$ref`` into
the nearest ``$defs``/``definitions``, ``anyOf``/``oneOf`` and a single ``allOf``,
``enum``/``const``, ``default`` and ``examples``. Anything else shows as its ``type``, or
``any``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SchemaRow", "example", "schema_rows"]

MAX_DEPTH = 6
_EXAMPLES = {"string": "", "integer": 0, "number": 0, "boolean": False, "null": None}


@dataclass
class SchemaRow:
    """One field: ``depth`` 0 for the top-level properties."""

    depth: int
    name: str
    type: str
    required: bool
    description: str


class _Resolver:
    """Resolves local ``$ref`` against the ``$defs`` of the enclosing schemas."""

    def __init__(self) -> None:
        self.defs: list[dict[str, Any]] = []
        self.seen: list[str] = []

    @contextlib.contextmanager
    def scope(self, schema: Any) -> Iterator[None]:
        """While inside ``schema``, its ``$defs`` (if any) resolve references."""
        defs = (
            schema.get("$defs") or schema.get("definitions") if isinstance(schema, dict) else None
        )
        if not isinstance(defs, dict):
            yield
            return
        self.defs.append(defs)
        try:
            yield
        finally:
            self.defs.pop()

    def resolve(self, schema: Any) -> tuple[Any, str | None]:
        """``(the schema a $ref points to, its name)``, or the schema itself."""
        if not isinstance(schema, dict) or not isinstance(schema.get("$ref"), str):
            return schema, None
        name = schema["$ref"].rsplit("/", 1)[-1]
        for defs in reversed(self.defs):
            if isinstance(defs.get(name), dict):
                return defs[name], name
        return {}, name


def _variants(schema: dict[str, Any]) -> list[Any] | None:
    """The alternatives of ``anyOf``/``oneOf``, or the one schema of a single ``allOf``."""
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return list(schema[key])
    all_of = schema.get("allOf")
    return list(all_of) if isinstance(all_of, list) and len(all_of) == 1 else None


def type_text(schema: Any, resolver: _Resolver | None = None) -> str:
    """A short type: ``string``, ``array of Todo``, ``integer | null``, ``"a" | "b"``."""
    resolver = resolver or _Resolver()
    schema, ref = resolver.resolve(schema)
    if ref is not None:
        return ref
    if not isinstance(schema, dict):
        return "any"
    if "const" in schema:
        return repr_json(schema["const"])
    if isinstance(schema.get("enum"), list):
        return " | ".join(repr_json(v) for v in schema["enum"][:8])
    variants = _variants(schema)
    if variants is not None:
        return " | ".join(type_text(v, resolver) for v in variants)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array":
        return f"array of {type_text(schema.get('items', {}), resolver)}"
    if kind is None and "properties" in schema:
        return "object"
    return str(kind or schema.get("title") or "any")


def repr_json(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower()


def _object_of(schema: Any, resolver: _Resolver) -> tuple[dict[str, Any] | None, list[str]]:
    """The object schema whose properties a field shows below it (through refs, arrays and a
    single non-null variant), or ``None``; and the names of the refs followed to it."""
    refs: list[str] = []
    for _ in range(4):
        schema, ref = resolver.resolve(schema)
        if ref is not None:
            refs.append(ref)
        if not isinstance(schema, dict):
            return None, refs
        if isinstance(schema.get("properties"), dict):
            return schema, refs
        if schema.get("type") == "array":
            schema = schema.get("items")
            continue
        variants = [v for v in _variants(schema) or [] if v != {"type": "null"}]
        if len(variants) != 1:
            return None, refs
        schema = variants[0]
    return None, refs


def schema_rows(schema: Any) -> list[SchemaRow]:
    """The fields of an object schema, nested fields indented; ``[]`` for anything else."""
    rows: list[SchemaRow] = []
    _rows(schema, 0, _Resolver(), rows)
    return rows


def _rows(schema: Any, depth: int, resolver: _Resolver, rows: list[SchemaRow]) -> None:
    with resolver.scope(schema):
        target, refs = _object_of(schema, resolver)
        if target is None or depth >= MAX_DEPTH or any(r in resolver.seen for r in refs):
            return  # nothing below, or a recursive model already shown above
        resolver.seen.extend(refs)
        with resolver.scope(target):
            required = set(target.get("required") or [])
            for name, field in target["properties"].items():
                with resolver.scope(field):
                    rows.append(_row(name, field, name in required, depth, resolver))
                    _rows(field, depth + 1, resolver, rows)
        del resolver.seen[len(resolver.seen) - len(refs) :]


def _row(name: str, field: Any, required: bool, depth: int, resolver: _Resolver) -> SchemaRow:
    resolved, _ref = resolver.resolve(field)
    description = field.get("description") if isinstance(field, dict) else None
    if description is None and isinstance(resolved, dict):
        description = resolved.get("description")
    return SchemaRow(depth, name, type_text(field, resolver), required, description or "")


def example(schema: Any) -> Any:
    """A payload of the schema's shape: its ``examples``/``default`` where given, else empty
    values of each type (``{}`` when there is no schema)."""
    if not isinstance(schema, dict):
        return {}
    return _example(schema, _Resolver(), 0)


def _example(schema: Any, resolver: _Resolver, depth: int) -> Any:
    with resolver.scope(schema):
        schema, ref = resolver.resolve(schema)
        if not isinstance(schema, dict) or depth > MAX_DEPTH or (ref and ref in resolver.seen):
            return None
        if ref is not None:
            resolver.seen.append(ref)
        try:
            with resolver.scope(schema):
                return _example_of(schema, resolver, depth)
        finally:
            if ref is not None:
                resolver.seen.pop()


def _example_of(schema: dict[str, Any], resolver: _Resolver, depth: int) -> Any:
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    variants = _variants(schema)
    if variants:
        useful = [v for v in variants if v != {"type": "null"}] or variants
        return _example(useful[0], resolver, depth)
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    if isinstance(schema.get("properties"), dict):
        required = schema.get("required")
        props = schema["properties"]
        names = [n for n in props if not isinstance(required, list) or n in required]
        return {n: _example(props[n], resolver, depth + 1) for n in names or list(props)}
    if kind == "array":
        return [_example(schema.get("items", {}), resolver, depth + 1)]
    if kind == "object":
        return {}
    return _EXAMPLES.get(str(kind))
