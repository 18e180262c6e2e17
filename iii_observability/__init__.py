"""``iii_observability``: the import path seed 001 names for ``Logger`` and the OpenTelemetry
helpers; the same objects as :mod:`iii.observability` (docs/observability.md)."""

from iii.observability import *  # noqa: F403
from iii.observability import __all__ as __all__
