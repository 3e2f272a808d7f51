"""Where a watcher's events go beyond one process.

:class:`RedisStreamSink` (the ``redis`` extra: ``pip install 'flipkart-otc[redis]'``)
writes each poll's events to a Redis stream together with the location's state;
:class:`StreamTail` reads them back in order, alone or as a consumer group;
:class:`RedisStreamFeed` keeps a picture from them, for a dashboard.
:class:`RedisRateLimiter` shares one rate limit and one 429 pause across a fleet.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "DEFAULT_STREAM",
    "RedisRateLimiter",
    "RedisStreamFeed",
    "RedisStreamSink",
    "StreamEntry",
    "StreamTail",
]

_LIMITER = "RedisRateLimiter"

if TYPE_CHECKING:
    from .redis_limiter import RedisRateLimiter
    from .redis_streams import (
        DEFAULT_STREAM,
        RedisStreamFeed,
        RedisStreamSink,
        StreamEntry,
        StreamTail,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        try:
            module = importlib.import_module(
                ".redis_limiter" if name == _LIMITER else ".redis_streams", __name__
            )
        except ImportError as exc:
            if exc.name is None or not exc.name.startswith("redis"):
                raise
            raise ImportError(
                f"flipkart_otc.sinks.{name} needs the redis package: "
                "pip install 'flipkart-otc[redis]'",
                name=exc.name,
            ) from None
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
