"""Trigger types and handles under the official 0.25 path ``iii.triggers`` (sdk_surface.md
§1b). Deprecated upstream in favour of observe (not in this SDK yet: docs/sdk.md), and fully
supported here."""

from iii import Trigger, TriggerTypeRef

from .types import TriggerConfig, TriggerHandler

__all__ = ["Trigger", "TriggerConfig", "TriggerHandler", "TriggerTypeRef"]
