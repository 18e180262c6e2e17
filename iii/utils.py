"""Small helpers of the official 0.25 ``iii.utils`` module (sdk_surface.md §2)."""

from __future__ import annotations

import json
from typing import Any

from .format_utils import extract_request_format, extract_response_format, python_type_to_format
from .protocol import is_channel_ref

__all__ = [
    "extract_request_format",
    "extract_response_format",
    "is_channel_ref",
    "python_type_to_format",
    "safe_stringify",
]


def safe_stringify(value: Any) -> str:
    """``json.dumps(value)`` with ``str()`` for values JSON cannot hold; never raises: a value
    that still cannot be encoded (a circular reference) gives ``"[unserializable]"``.

    >>> safe_stringify({"at": object}) .startswith('{"at": "<class')
    True
    """
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return "[unserializable]"
