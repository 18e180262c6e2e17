"""Update ops of ``state::update`` and ``stream::update`` (builtins.md §5).

:func:`parse_ops` validates the wire shape (a bad op fails the whole call with
``deserialization_error``); :func:`apply_ops` evaluates them in order against a working value,
collecting per-op errors instead of aborting.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvocationError
from . import MISSING

__all__ = ["DOC_URL", "Op", "apply_ops", "parse_ops"]

logger = logging.getLogger("iii_asgi.engine")

DOC_URL = "https://iii.dev/docs/workers/iii-state#error-codes"
MAX_SEGMENTS = 32
MAX_SEGMENT_BYTES = 256
MAX_MERGE_KEYS = 1024
MAX_MERGE_DEPTH = 16
PROTO_KEYS = frozenset({"__proto__", "constructor", "prototype"})
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
_ABSENT = object()


@dataclass(slots=True)
class Op:
    """One parsed op. ``path`` is a ``str`` (one literal key, ``""`` = root), a ``list`` of
    literal segments (merge/append) or ``None`` (absent: root). ``value`` is ``_ABSENT`` when the
    wire op had none (set only)."""

    type: str
    path: str | list[str] | None
    value: Any = None
    by: int = 0


class OpError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_ops(function_id: str, ops: Any) -> list[Op]:
    """Parse the ``ops`` array; raises ``deserialization_error`` like the engine's serde."""

    def bad(reason: str) -> InvocationError:
        return InvocationError(
            "deserialization_error", f"Failed to deserialize input for {function_id}: {reason}"
        )

    if ops is None:
        raise bad("missing field `ops`")
    if not isinstance(ops, list):
        raise bad("invalid type for `ops`: expected a sequence")
    parsed: list[Op] = []
    for index, raw in enumerate(ops):
        where = f"ops[{index}]"
        if not isinstance(raw, dict):
            raise bad(f"{where}: expected an object")
        kind = raw.get("type")
        if kind not in ("set", "merge", "increment", "decrement", "append", "remove"):
            raise bad(
                f"{where}: unknown variant `{kind}`, expected one of `set`, `merge`, "
                "`increment`, `decrement`, `append`, `remove`"
            )
        path = raw.get("path")
        if kind in ("merge", "append"):
            if path is not None and not (
                isinstance(path, str)
                or (isinstance(path, list) and all(isinstance(p, str) for p in path))
            ):
                raise bad(f"{where}: `path` must be a string or an array of strings")
            if "value" not in raw:
                raise bad(f"{where}: missing field `value`")
            parsed.append(Op(kind, path, raw["value"]))
            continue
        if path is None:
            raise bad(f"{where}: missing field `path`")
        if not isinstance(path, str):
            raise bad(f"{where}: invalid type for `path`: expected a string")
        if kind in ("increment", "decrement"):
            by = raw.get("by")
            if by is None:
                raise bad(f"{where}: missing field `by`")
            if isinstance(by, bool) or not isinstance(by, int) or not I64_MIN <= by <= I64_MAX:
                raise bad(f"{where}: invalid type for `by`: expected i64")
            parsed.append(Op(kind, path, by=by))
        elif kind == "set":
            parsed.append(Op(kind, path, raw.get("value", _ABSENT)))
        else:
            parsed.append(Op(kind, path))
    return parsed


def apply_ops(old: Any, ops: list[Op]) -> tuple[Any, list[dict[str, Any]]]:
    """Evaluate ``ops`` on a copy of ``old`` (:data:`MISSING` starts from ``{}``); returns the
    new value and the ``errors`` entries ``{op_index, code, message, doc_url}``."""
    state = _Working(copy.deepcopy(old) if old is not MISSING else {}, old is MISSING)
    errors: list[dict[str, Any]] = []
    for index, op in enumerate(ops):
        try:
            _APPLY[op.type](state, op)
        except OpError as exc:
            errors.append(
                {"op_index": index, "code": exc.code, "message": exc.message, "doc_url": DOC_URL}
            )
    return state.root, errors


@dataclass(slots=True)
class _Working:
    root: Any
    missing_default: bool

    def took_effect(self) -> None:
        self.missing_default = False


def _segments(op: Op) -> list[str]:
    """The op's path as segments (``[]`` = root), validated (``<op>.path.<reason>``)."""
    path = op.path
    if path is None or path == "":
        return []
    segments = [path] if isinstance(path, str) else list(path)
    prefix = f"{op.type}.path"
    if len(segments) > MAX_SEGMENTS:
        raise OpError(f"{prefix}.too_deep", f"path has more than {MAX_SEGMENTS} segments")
    for segment in segments:
        if segment == "":
            raise OpError(f"{prefix}.empty_segment", "path contains an empty segment")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise OpError(
                f"{prefix}.segment_too_long", f"path segment exceeds {MAX_SEGMENT_BYTES} bytes"
            )
        if segment in PROTO_KEYS:
            raise OpError(f"{prefix}.proto_polluted", f"path segment {segment!r} is not allowed")
    return segments


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _set(state: _Working, op: Op) -> None:
    segments = _segments(op)
    value = None if op.value is _ABSENT else op.value
    if not segments:
        state.root = value
    elif isinstance(state.root, dict):
        state.root[segments[0]] = value
    else:
        raise OpError("set.target_not_object", "set target is not an object")
    state.took_effect()


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _merge(state: _Working, op: Op) -> None:
    value = op.value
    if not isinstance(value, dict):
        raise OpError("merge.value.not_an_object", "merge value must be an object")
    if len(value) > MAX_MERGE_KEYS:
        raise OpError(
            "merge.value.too_many_keys", f"merge value has more than {MAX_MERGE_KEYS} keys"
        )
    polluted = sorted(PROTO_KEYS.intersection(value))
    if polluted:
        raise OpError(
            "merge.value.proto_polluted", f"merge value key {polluted[0]!r} is not allowed"
        )
    if _depth(value) > MAX_MERGE_DEPTH:
        raise OpError("merge.value.too_deep", f"merge value nests deeper than {MAX_MERGE_DEPTH}")
    segments = _segments(op)
    if not segments:
        if not isinstance(state.root, dict):
            logger.warning("merge at the root ignored: the root is not an object")
            return
        state.root.update(value)
        state.took_effect()
        return
    if not isinstance(state.root, dict):
        state.root = {}
    target = state.root
    for segment in segments:
        child = target.get(segment)
        if not isinstance(child, dict):
            child = target[segment] = {}
        target = child
    target.update(value)
    state.took_effect()


def _step(state: _Working, op: Op, sign: int) -> None:
    segments = _segments(op)
    by = op.by * sign
    if not segments:
        if state.missing_default:
            state.root = by
        elif _is_number(state.root):
            state.root = _add(state.root, by, op.type)
        else:
            raise OpError(f"{op.type}.not_number", f"{op.type} target is not a number")
        state.took_effect()
        return
    root = state.root
    if not isinstance(root, dict):
        raise OpError(f"{op.type}.target_not_object", f"{op.type} target is not an object")
    key = segments[0]
    if key in root:
        current = root[key]
        if not _is_number(current):
            raise OpError(f"{op.type}.not_number", f"value at {key!r} is not a number")
        root[key] = _add(current, by, op.type)
    else:
        root[key] = by
    state.took_effect()


def _add(current: int | float, by: int, kind: str) -> int | float:
    if isinstance(current, float):
        return current + by
    total = current + by
    if not I64_MIN <= total <= I64_MAX:
        raise OpError(f"{kind}.not_number", f"{kind} overflows a 64-bit integer")
    return total


def _append_to(target: Any, value: Any) -> Any:
    """The target rules of append: array push, string concat, null → initial value."""
    if isinstance(target, list):
        target.append(value)
        return target
    if isinstance(target, str):
        if isinstance(value, str):
            return target + value
        raise OpError("append.type_mismatch", "cannot append a non-string to a string")
    if target is None:
        return value if isinstance(value, str) else [value]
    raise OpError("append.type_mismatch", f"cannot append to a {type(target).__name__}")


def _append(state: _Working, op: Op) -> None:
    segments = _segments(op)
    if not segments:
        state.root = _append_to(None if state.missing_default else state.root, op.value)
        state.took_effect()
        return
    root = state.root
    if not isinstance(root, dict):
        raise OpError("append.target_not_object", "append target is not an object")
    if isinstance(op.path, str):
        key = segments[0]
        root[key] = _append_to(root.get(key), op.value)
        state.took_effect()
        return
    parent = root
    for segment in segments[:-1]:
        child = parent.get(segment)
        if not isinstance(child, dict):
            child = parent[segment] = {}
        parent = child
    leaf = segments[-1]
    if leaf not in parent or parent[leaf] is None:
        parent[leaf] = [op.value]
    else:
        parent[leaf] = _append_to(parent[leaf], op.value)
    state.took_effect()


def _remove(state: _Working, op: Op) -> None:
    segments = _segments(op)
    if not segments:
        state.root = None
    elif isinstance(state.root, dict):
        state.root.pop(segments[0], None)
    else:
        raise OpError("remove.target_not_object", "remove target is not an object")
    state.took_effect()


_APPLY = {
    "set": _set,
    "merge": _merge,
    "increment": lambda state, op: _step(state, op, 1),
    "decrement": lambda state, op: _step(state, op, -1),
    "append": _append,
    "remove": _remove,
}
