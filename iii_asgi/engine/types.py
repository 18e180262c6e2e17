"""ASGI types, declared once (:mod:`iii_asgi._asgi`) and reused by every engine module (ASGI 3.0
spec)."""

from __future__ import annotations

from iii_asgi._asgi import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]
