"""The framework's own telemetry under the bridge (docs/observability.md, "FastAPI's own
telemetry").

FastAPI 0.165+ traces and measures every request natively whenever *any* global OpenTelemetry
provider exists, and the iii SDK installs one (as the official SDK does) so that handler spans
and user instrumentations export to the engine. Bridging an app must not silently switch on
that per-request instrumentation: it costs about 430 µs of CPU per request (~3× the app's own
cost; docs/benchmarks.md). So the bridge turns FastAPI's native tracing, metrics and logs off
for the app it bridges, unless the app configured its own providers
(``FastAPI(telemetry={"tracer_provider": ...})`` or ``FASTAPI_OTEL_AUTO_CONFIGURE=true``) or
the user keeps it (``IIIBridge(app, framework_telemetry=True)`` or
``III_FRAMEWORK_TELEMETRY=true``). Every engine invocation is still traced: the SDK's handler
span (and the engine's spans with ``--tracing``) land in the engine's trace store.
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["quiet_framework_telemetry"]

logger = logging.getLogger("iii_asgi.bridge")

_PROVIDERS = ("tracer_provider", "meter_provider", "logger_provider")


def _keep_from_env() -> bool:
    return os.environ.get("III_FRAMEWORK_TELEMETRY", "").strip().lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


def quiet_framework_telemetry(app: Any, keep: bool | None = None) -> bool:
    """Turn FastAPI's native telemetry off for ``app`` (see the module docstring); ``keep``
    (default: ``$III_FRAMEWORK_TELEMETRY``) leaves it as the app configured it. Returns whether
    it was turned off. Apps without native telemetry (Starlette, FastAPI < 0.165) are left
    alone."""
    if keep if keep is not None else _keep_from_env():
        return False
    config = getattr(app, "_telemetry", None)
    if not isinstance(config, dict) or not {"tracing", "metrics", "logs"} <= config.keys():
        return False
    if config.get("auto_configure") or any(config.get(key) is not None for key in _PROVIDERS):
        return False
    if not (config["tracing"] or config["metrics"] or config["logs"]):
        return False
    config.update(tracing=False, metrics=False, logs=False)
    logger.debug(
        "FastAPI's native telemetry is off under the bridge (framework_telemetry=True keeps it)"
    )
    return True
