"""0.25 path of :func:`execute_traced_request` (an httpx request in an OTel CLIENT span)."""

from iii.observability import execute_traced_request

__all__ = ["execute_traced_request"]
