"""What :class:`~flipkart_otc.OtcWatcher` polls: any object with ``fetch_body``."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, runtime_checkable

__all__ = ["OtcSource"]


@runtime_checkable
class OtcSource(Protocol):
    """A source of Start OTC answers. :class:`~flipkart_otc.OtcClient` is one; a test
    or another transport can be another.

    ``fetch_body(location_id)`` returns (an awaitable of) the raw body of a
    successful Start OTC answer; a failure raises this library's exceptions
    (:class:`~flipkart_otc.TaskNotFoundError` for no task, and so on), which
    the watcher classes as it classes the client's.

    >>> class Canned:
    ...     async def fetch_body(self, location_id: str) -> bytes:
    ...         return b'{"otcDetails": {}}'
    >>> isinstance(Canned(), OtcSource)
    True
    """

    def fetch_body(self, location_id: str) -> Awaitable[bytes]:
        """The raw body of a successful Start OTC answer for ``location_id``."""
        ...
