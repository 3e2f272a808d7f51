"""``StreamTail``: the stream's events read back in order, alone or as a consumer group
(foreign entries skipped, and acknowledged in a group)."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import attrs
from redis import exceptions as redis_errors

from .._checks import check_redis_url, safe_url
from .._lifecycle import Closing
from ._redis import (
    _REFUSED,
    _UNAVAILABLE,
    DEFAULT_STREAM,
    _connect,
    _Outage,
    _refused,
    logger,
)

__all__ = ["StreamEntry", "StreamTail"]


@attrs.frozen
class StreamEntry:
    """One event read from the stream: ids, location and the event's JSON form."""

    stream_id: str
    event_id: str
    location_id: str
    event: dict[str, Any]


class StreamTail(Closing):
    """Read a sink's stream in order, as an async iterator of :class:`StreamEntry`.

    Without ``group``: from the first entry (``from_start``), after the entry
    ``after``, or from the end. With
    ``group`` and ``consumer``: a Redis consumer group (created if missing, at the
    start or the end of the stream); the entries this consumer was given and did not
    :meth:`ack` come first, so a reader that stopped goes on where it left off. Waits
    out Redis outages (one log line each).
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = DEFAULT_STREAM,
        group: str | None = None,
        consumer: str | None = None,
        from_start: bool = False,
        after: str | None = None,
        batch: int = 256,
        block: float = 1.0,
    ) -> None:
        self._url = check_redis_url(url)
        if (group is None) != (consumer is None):
            raise ValueError("group and consumer go together")
        self.stream = stream
        self._group = group
        self._consumer = consumer
        self._from_start = from_start
        self._batch = batch
        self._block_ms = max(1, round(block * 1000))
        self._redis = _connect(url)
        self._last = after  # without a group: the last entry read
        self._pending = True  # with a group: this consumer's unacknowledged entries first
        self._buffer: deque[StreamEntry] = deque()
        self._foreign: list[str] = []  # entries skipped, to acknowledge in a group
        self._outage = _Outage(url, 5.0)

    def __repr__(self) -> str:
        return f"<StreamTail {safe_url(self._url)} stream={self.stream!r}>"

    def __aiter__(self) -> StreamTail:
        return self

    async def __anext__(self) -> StreamEntry:
        while not self._buffer or self._foreign:
            try:
                if self._foreign:  # skipped in a group: acknowledged before going on
                    assert self._group is not None
                    await self._redis.xack(self.stream, self._group, *self._foreign)
                    self._foreign.clear()
                    continue
                rows = await self._read()
            except _REFUSED as exc:
                raise _refused(self._url, exc) from None
            except _UNAVAILABLE as exc:
                await self._outage.failed(exc)
                continue
            except redis_errors.RedisError as exc:
                raise _refused(self._url, exc) from None
            self._outage.ok()
            for stream_id, fields in rows:
                self._take(stream_id, fields)
        return self._buffer.popleft()

    def _take(self, stream_id: bytes, fields: dict[bytes, bytes] | None) -> None:
        entry_id = stream_id.decode()
        self._last = entry_id
        try:
            if not fields:  # deleted while pending in a group
                raise ValueError("no fields")
            event = json.loads(fields[b"event"])
            # an event's JSON form is an object that names its kind and location; other
            # JSON ("5", a list, an object nested past the parser's depth) is not one
            if not (
                isinstance(event, dict)
                and isinstance(event.get("event"), str)
                and isinstance(event.get("location_id"), str)
            ):
                raise ValueError("not an event's JSON form")
            entry = StreamEntry(
                entry_id, fields[b"id"].decode(), fields[b"location"].decode(), event
            )
        except (KeyError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            # not a sink's entry: said on one line, skipped (and acknowledged in a group)
            logger.warning(
                "stream %s: entry %s is not an event (%s); skipped",
                self.stream,
                entry_id,
                type(exc).__name__,
            )
            if self._group is not None:
                self._foreign.append(entry_id)
            return
        self._buffer.append(entry)

    async def _read(self) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        r = self._redis
        if self._group is None:
            if self._last is None:
                self._last = "0-0" if self._from_start else await self._end()
            reply: Any = await r.xread(
                {self.stream: self._last}, count=self._batch, block=self._block_ms
            )
            return reply[0][1] if reply else []
        assert self._consumer is not None
        if self._pending:  # first time: make sure the group exists
            try:
                start = "0" if self._from_start else "$"
                await r.xgroup_create(self.stream, self._group, id=start, mkstream=True)
            except redis_errors.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        cursor = "0" if self._pending else ">"
        reply = await r.xreadgroup(
            self._group,
            self._consumer,
            {self.stream: cursor},
            count=self._batch,
            block=None if self._pending else self._block_ms,
        )
        rows = reply[0][1] if reply else []
        if self._pending and not rows:
            self._pending = False  # given earlier, not acknowledged: all read again
        return list(rows)

    async def _end(self) -> str:
        last: Any = await self._redis.xrevrange(self.stream, count=1)
        return last[0][0].decode() if last else "0-0"

    async def ack(self, entry: StreamEntry) -> None:
        """Acknowledge ``entry`` to the group (nothing without one)."""
        if self._group is not None:
            await self._redis.xack(self.stream, self._group, entry.stream_id)

    async def aclose(self) -> None:
        """Disconnect."""
        await self._redis.aclose()
