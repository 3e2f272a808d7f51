"""What the watcher knows about a location, in one word: the vocabulary the exception
tree's classification (``errors.classify``) and the data (``models``, ``events``) share,
so that neither imports the other for it. Import it from ``flipkart_otc``."""

from __future__ import annotations

import enum

__all__ = ["LocationStatus"]


class LocationStatus(enum.Enum):
    """What the watcher knows about a seller location."""

    #: The last poll succeeded; its snapshot is current.
    ACTIVE = "ACTIVE"
    #: Flipkart answered ``TRIPSHEET_TASK_NOT_FOUND``: no RETURN task today.
    NO_TASK = "NO_TASK"
    #: Flipkart answered ``TRIPSHEET_CLOSED_ERROR``: the task is closed.
    CLOSED = "CLOSED"
    #: The last poll failed (retries exhausted or a malformed answer); the last
    #: good snapshot is kept.
    FAILING = "FAILING"
