"""``engine::log::{trace,debug,info,warn,error}``: the real engine's log functions (builtins.md
§12; its ``OtelLogInput``).

Input ``{message: str, data?: any, trace_id?: str, span_id?: str, service_name?: str}`` (unknown
keys ignored), output ``null``; a missing or mistyped field fails with ``deserialization_error``.

Each call stores one record in the telemetry store, in the flattened OTLP shape of
:mod:`.store` (``engine::logs::list`` reads it): ``severity_number`` 1 / 5 / 9 / 13 / 17 and
``severity_text`` ``TRACE`` / ``DEBUG`` / ``INFO`` / ``WARN`` / ``ERROR``; ``body`` = ``message``;
``attributes`` = the keys of ``data`` (a non-object ``data`` is kept as attribute ``data``);
``service_name`` defaults to ``"unknown"``; ``resource`` names the service and the calling
worker (``iii.worker.id``, set by the engine, so a worker cannot log as another); ``scope``
``iii``. It also goes to the process log, on one line (control characters escaped), through the
logger ``iii_asgi.engine.log`` at the matching level (``trace`` as ``DEBUG``).

Sizes are bounded (:data:`LIMITS`): the message to 8192 characters, ids and the service name to
128, ``data`` to 64 keys, each value to 4096 characters (a string) or 4096 characters of JSON
(else that JSON text, cut); the process log line shows at most 1024 characters of the message
and of ``data``. A cut text ends with ``…[truncated]``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ...core.builtins import parse_input
from ...core.registry import CallContext
from .store import TelemetryStore

__all__ = ["LEVELS", "LIMITS", "log_function"]

logger = logging.getLogger("iii_asgi.engine.log")

#: level → (OTLP severity number, severity text, Python logging level)
LEVELS: dict[str, tuple[int, str, int]] = {
    "trace": (1, "TRACE", logging.DEBUG),
    "debug": (5, "DEBUG", logging.DEBUG),
    "info": (9, "INFO", logging.INFO),
    "warn": (13, "WARN", logging.WARNING),
    "error": (17, "ERROR", logging.ERROR),
}
#: Largest sizes kept, in characters.
LIMITS = {"message": 8192, "id": 128, "keys": 64, "value": 4096, "process_log": 1024}

_STR: tuple[type, ...] = (str,)
_INPUT = {
    "message": (_STR, True),
    "trace_id": (_STR, False),
    "span_id": (_STR, False),
    "service_name": (_STR, False),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_CUT = "…[truncated]"


def cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters followed by ``…[truncated]``."""
    return text if len(text) <= limit else text[:limit] + _CUT


def _one_line(text: str) -> str:
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def _value(value: Any) -> Any:
    limit = LIMITS["value"]
    if isinstance(value, str):
        return cut(value, limit)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return value if len(text) <= limit else cut(text, limit)


def _attributes(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        return {"data": _value(data)}
    items = list(data.items())[: LIMITS["keys"]]
    return {cut(str(key), LIMITS["id"]): _value(value) for key, value in items}


def log_function(
    store: TelemetryStore, level: str
) -> Callable[[CallContext, Any], Awaitable[None]]:
    """The handler of ``engine::log::<level>`` (``level`` a key of :data:`LEVELS`)."""
    number, text, python_level = LEVELS[level]
    function_id = f"engine::log::{level}"

    async def handler(context: CallContext, data: Any) -> None:
        args = parse_input(function_id, data, _INPUT)
        service = cut(args.get("service_name") or "unknown", LIMITS["id"])
        trace_id, span_id = args.get("trace_id"), args.get("span_id")
        resource: dict[str, Any] = {"service.name": service}
        if context.caller is not None:
            resource["iii.worker.id"] = context.caller.worker_id
        record = {
            "timestamp_unix_nano": time.time_ns(),
            "severity_number": number,
            "severity_text": text,
            "body": cut(args["message"], LIMITS["message"]),
            "attributes": _attributes(args.get("data")),
            "trace_id": cut(trace_id.lower(), LIMITS["id"]) if trace_id else None,
            "span_id": cut(span_id.lower(), LIMITS["id"]) if span_id else None,
            "service_name": service,
            "resource": resource,
            "scope": "iii",
        }
        store.add_record(record)
        if logger.isEnabledFor(python_level):
            shown = LIMITS["process_log"]
            data_text = json.dumps(record["attributes"], ensure_ascii=False, default=str)
            logger.log(
                python_level,
                "[%s] %s data=%s trace_id=%s",
                _one_line(service),
                _one_line(cut(args["message"], shown)),
                _one_line(cut(data_text, shown)),
                _one_line(str(record["trace_id"])),
            )

    handler.__doc__ = f"Log a {level} message: {{message, data?, trace_id?, span_id?}} → null."
    return handler
