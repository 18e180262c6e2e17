"""0.25 path of the payload helpers that redact and truncate span payload events."""

from iii.observability import (
    REDACTED_PLACEHOLDER,
    redact,
    redact_and_truncate,
    resolve_max_bytes_from_env,
)

__all__ = ["REDACTED_PLACEHOLDER", "redact", "redact_and_truncate", "resolve_max_bytes_from_env"]
