"""``iii_helpers.observability`` (seed 003 ``observability``): :class:`Logger`,
:class:`OtelConfig`, :func:`init_otel` and the span helpers; the same objects as
:mod:`iii.observability`. ``DEFAULT_ALLOWLIST`` is seed 003's (0.25 dropped it).
"""

from iii.observability import *  # noqa: F403
from iii.observability import __all__ as __all__
