"""Trigger types under the official 0.25 path ``iii.trigger`` (sdk_surface.md §1b):
``TriggerHandler[Cfg]`` / ``TriggerConfig[Cfg]`` for a custom trigger type's provider."""

from iii import Trigger

from .types import TriggerActionVoid, TriggerConfig, TriggerHandler

__all__ = ["Trigger", "TriggerActionVoid", "TriggerConfig", "TriggerHandler"]
