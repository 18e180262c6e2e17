"""Engine-side errors.

::

    InvocationError   an invocation outcome carrying an ErrorBody code (protocol.md §3.7)
"""

from __future__ import annotations

from iii.protocol import ErrorBody, error_body

__all__ = ["InvocationError"]


class InvocationError(Exception):
    """A failed invocation: ``code`` and ``message`` become the ErrorBody sent back (§2.0)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> ErrorBody:
        return error_body(self.code, self.message)
