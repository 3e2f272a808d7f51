"""What the client and the watcher tell an observer (metrics), when one is given.

Pure: a protocol and the bounded names it is told. Without an observer nothing here
runs (each hook point is one ``is not None`` test), so a user without the ``metrics``
extra pays nothing.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .models import LocationStatus

__all__ = ["Observer", "poll_outcome"]


@runtime_checkable
class Observer(Protocol):
    """Told of each request, pause and poll (:class:`~flipkart_otc.metrics.Metrics` is
    one). Each call must be cheap and must not raise: it runs in the poll's path."""

    def request(self, method: str, url: str, status: int | str, seconds: float) -> None:
        """One HTTP attempt ended: its status (a number, ``"timeout"`` or
        ``"error"``) after ``seconds``."""
        ...

    def throttled(self, retry_after: float | None) -> None:
        """An answer was 429, asking for ``retry_after`` seconds of quiet (None: unsaid)."""
        ...

    def paced(self, seconds: float) -> None:
        """A request waited ``seconds`` for its turn under the client's rate limit."""
        ...

    def poll(self, outcome: str, lag: float) -> None:
        """A watcher's poll ended with ``outcome`` (see :func:`poll_outcome`), having
        started ``lag`` seconds after it was due."""
        ...


def poll_outcome(status: LocationStatus | None, *, fatal: bool = False) -> str:
    """A poll's outcome as a bounded label: ``answered`` (an answer with FEs or none),
    ``no_task``, ``closed``, ``failed`` (retries spent or a malformed answer) or
    ``fatal`` (the watcher stops)."""
    if fatal:
        return "fatal"
    if status is LocationStatus.NO_TASK:
        return "no_task"
    if status is LocationStatus.CLOSED:
        return "closed"
    if status is LocationStatus.FAILING or status is None:
        return "failed"
    return "answered"
