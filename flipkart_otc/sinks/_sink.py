"""``RedisStreamSink``: each poll's events on the stream with the location's state, in
one atomic write (see :mod:`flipkart_otc.sinks.redis_streams`)."""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs
from redis import exceptions as redis_errors

from .._checks import check_int, check_number, check_redis_url, safe_url
from .._fanout import LocationView
from .._lifecycle import Closing
from .._saved import SavedLocation, decode, encode, event_id
from .._serialize import json_line
from ..errors import SinkError, SinkFencedError
from ..events import WatchEvent
from ._redis import (
    _CLAIM,
    _REFUSED,
    _UNAVAILABLE,
    _WRITE,
    DEFAULT_STREAM,
    _connect,
    _Outage,
    _refused,
    _stop,
    logger,
)

__all__ = ["RedisStreamSink"]


@attrs.define(slots=True)
class _Write:
    location_id: str
    args: list[str | bytes]
    events: int
    done: asyncio.Future[None]


class RedisStreamSink(Closing):
    """A :class:`~flipkart_otc.ResumableSink` on Redis Streams: events and each
    location's state, written together.

    >>> async with RedisStreamSink("redis://127.0.0.1:6379/0") as sink:  # doctest: +SKIP
    ...     async with OtcWatcher(client, locations, sink=sink, shard=Shard(0, 2)) as watcher:
    ...         async for event in watcher:
    ...             ...

    Each stream entry has the fields ``id`` (:func:`event id <flipkart_otc.event_id>`,
    the same for the same event written twice: readers drop repeats by it),
    ``location`` and ``event`` (its JSON form, OTC masked unless ``show_otc``).
    ``maxlen`` trims the stream (approximately, as ``XADD MAXLEN ~`` does; None
    keeps everything): a reader further behind than that misses entries.
    ``max_backlog`` bounds the events held while Redis is down or slow,
    ``patience`` is how long a write waits for Redis before it is left queued,
    ``batch`` how many writes go in one pipeline. Run Redis with
    ``appendonly yes`` so that a restart of Redis keeps what it acknowledged.

    The saved state holds the current codes (to tell a renewal): guard the Redis
    as you guard the token. Needs the ``redis`` extra:
    ``pip install 'flipkart-otc[redis]'``.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = DEFAULT_STREAM,
        maxlen: int | None = 1_000_000,
        show_otc: bool = False,
        max_backlog: int = 100_000,
        patience: float = 1.0,
        batch: int = 256,
        retry_max: float = 5.0,
        close_timeout: float = 5.0,
    ) -> None:
        self._url = check_redis_url(url)
        if not isinstance(stream, str) or not stream.strip():
            raise ValueError(f"stream must be a non-empty name, got {stream!r}")
        if not isinstance(show_otc, bool):
            raise TypeError(f"show_otc must be a bool, got {type(show_otc).__name__}")
        if maxlen is not None:
            check_int("maxlen", maxlen)
        check_int("max_backlog", max_backlog)
        check_int("batch", batch)
        check_number("patience", patience, minimum=0.0)
        check_number("retry_max", retry_max, minimum=0.0)
        check_number("close_timeout", close_timeout, minimum=0.0)
        self.stream = stream
        self._maxlen = "" if maxlen is None else str(maxlen)
        self._show_otc = show_otc
        self._max_backlog = max_backlog
        self._patience = patience
        self._batch = batch
        self._retry_max = retry_max
        self._close_timeout = close_timeout
        self._redis = _connect(url, socket_timeout=10.0)
        self._write_script = self._redis.register_script(_WRITE)
        self._claim_script = self._redis.register_script(_CLAIM)
        self._token: int | None = None
        self._id_key = b""  # the stream's key for event ids (kept in Redis, shared)
        self._versions: dict[str, int] = {}
        self._queue: deque[_Write] = deque()
        self._held = 0  # events queued, not yet written
        self._wake: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._outage = _Outage(url, retry_max)
        self._fatal: SinkError | None = None
        self._closed = False
        #: Events written to the stream so far.
        self.written = 0

    def __repr__(self) -> str:
        state = "down" if self._outage.since is not None else "up"
        return (
            f"<RedisStreamSink {safe_url(self._url)} stream={self.stream!r} {state} "
            f"held={self._held}>"
        )

    @property
    def backlog(self) -> int:
        """Events handed to this sink and not written yet."""
        return self._held

    @property
    def outages(self) -> int:
        """Times Redis was found unavailable so far."""
        return self._outage.count

    @property
    def error(self) -> str | None:
        """Why the sink stopped for good (fenced, say), or None while it may write."""
        return str(self._fatal) if self._fatal is not None else None

    @property
    def healthy(self) -> bool:
        """False while Redis is found down (writes are held), or after a fatal error."""
        return self._outage.since is None and self._fatal is None

    def _key(self, location_id: str) -> str:
        return f"{self.stream}:loc:{location_id}"

    # -- loading and claiming ---------------------------------------------------

    async def load(self, location_ids: Collection[str]) -> Mapping[str, SavedLocation]:
        """Claim ``location_ids`` for this worker and give back their saved states.

        Waits (retrying with backoff) while Redis is unavailable.
        Raises :class:`~flipkart_otc.SinkFencedError` if a worker started later
        owns one of them.
        """
        ids = list(location_ids)
        saved: dict[str, SavedLocation] = {}
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            replies = await self._patiently(lambda chunk=chunk: self._claim(chunk))
            for location_id, reply in zip(chunk, replies, strict=True):
                version = int(reply[0])
                if version < 0:
                    raise self._fenced(location_id, -version)
                self._versions[location_id] = version
                if len(reply) > 1 and reply[1]:
                    try:
                        saved[location_id] = decode(reply[1])
                    except SinkError as exc:
                        raise SinkError(f"{exc} (location {location_id})") from None
        return saved

    async def _join(self) -> None:
        """Take a fencing token, and the stream's event id key (made by the first)."""
        if self._token is None:
            self._token = int(await self._redis.incr(f"{self.stream}:fence"))
        if not self._id_key:
            name = f"{self.stream}:idkey"
            await self._redis.set(name, secrets.token_hex(32), nx=True)
            key: Any = await self._redis.get(name)
            try:  # 64 hex digits, as the first writer made it
                self._id_key = bytes.fromhex(key.decode("ascii"))
            except (AttributeError, UnicodeDecodeError, ValueError):
                raise SinkError(f"{name} is not an id key a sink wrote; delete it") from None
            if len(self._id_key) != 32:
                self._id_key = b""
                raise SinkError(f"{name} is not an id key a sink wrote; delete it")

    async def _claim(self, chunk: Sequence[str]) -> list[Any]:
        await self._join()
        assert self._token is not None
        async with self._redis.pipeline(transaction=False) as pipe:  # released on errors
            pipe.scripts.add(self._claim_script)  # type: ignore[arg-type]  # typed for sync
            for location_id in chunk:
                pipe.evalsha(self._claim_script.sha, 1, self._key(location_id), self._token)
            return list(await pipe.execute())

    async def _patiently(self, attempt: Any) -> Any:
        """``await attempt()`` until Redis answers: backoff, one log line per outage."""
        while True:
            try:
                result = await attempt()
            except _REFUSED as exc:
                raise _refused(self._url, exc) from None
            except _UNAVAILABLE as exc:
                await self._outage.failed(exc)
                continue
            except redis_errors.RedisError as exc:  # refused: a misconfiguration
                raise _refused(self._url, exc) from None
            self._outage.ok(self._held)
            return result

    def _fenced(self, location_id: str, owner: int) -> SinkFencedError:
        return SinkFencedError(
            f"a worker started later (fencing token {owner}, ours {self._token}) took this "
            "location over; stopping",
            location_id=location_id,
        )

    # -- writing -------------------------------------------------------------------

    async def write(self, events: Sequence[WatchEvent], view: LocationView) -> None:
        """Queue ``events`` and ``view`` as one atomic write; wait for it at most
        ``patience`` seconds (not at all while Redis is down)."""
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise SinkError("this RedisStreamSink is closed")
        if not events:
            return  # nothing happened: the saved state stays as it is (see _saved)
        if not self._id_key:  # written to without a load first
            await self._patiently(self._join)
        if self._flusher is None:
            self._wake, self._room = asyncio.Event(), asyncio.Event()
            self._flusher = asyncio.create_task(self._flush(), name="redis-stream-sink")
        assert self._wake is not None and self._room is not None
        while self._held and self._held + len(events) > self._max_backlog:
            self._room.clear()  # full: hold this poller until the backlog drains
            await self._room.wait()
            if self._fatal is not None:
                raise self._fatal
        item = self._prepare(events, view)  # its version: only once it is queued
        self._queue.append(item)
        self._held += item.events
        self._wake.set()
        if self._outage.since is not None or not self._patience:
            return
        try:
            await asyncio.wait_for(asyncio.shield(item.done), self._patience)
        except TimeoutError:
            return  # slow: it stays queued, in order, and is written later

    def _prepare(self, events: Sequence[WatchEvent], view: LocationView) -> _Write:
        """One write: the location's next version, its state, its events."""
        location_id = view.location_id
        version = self._versions.get(location_id)
        if version is not None:
            version += 1
            self._versions[location_id] = version
        as_of = max(event.observed_at for event in events)
        args: list[str | bytes] = [
            "" if version is None else str(version),
            encode(location_id, view.status, view.snapshot, view.error, as_of, view.visits),
            self._maxlen,
            location_id,
            "1" if self._show_otc else "0",
        ]
        for event in events:
            args += [
                event_id(event, self._id_key),
                json_line(event.to_dict(show_otc=self._show_otc)),
            ]
        loop = asyncio.get_running_loop()
        return _Write(location_id, args, len(events), loop.create_future())

    async def _flush(self) -> None:
        assert self._wake is not None and self._room is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            items = [self._queue[i] for i in range(min(self._batch, len(self._queue)))]
            try:
                replies = await self._send(items)
            except _REFUSED as exc:
                self._stop(_refused(self._url, exc, "a write"))
                return
            except _UNAVAILABLE as exc:
                await self._outage.failed(exc)
                continue
            except redis_errors.RedisError as exc:
                self._stop(_refused(self._url, exc, "a write"))
                return
            self._outage.ok(self._held)
            for item, reply in zip(items, replies, strict=True):
                self._queue.popleft()
                if int(reply) < 0:
                    self._queue.appendleft(item)  # refused, with all after it
                    self._stop(self._fenced(item.location_id, -int(reply)))
                    return
                self._held -= item.events
                self._versions[item.location_id] = int(reply)
                self.written += item.events
                if not item.done.done():
                    item.done.set_result(None)
            self._room.set()

    async def _send(self, items: Sequence[_Write]) -> list[Any]:
        sha, stream, token = self._write_script.sha, self.stream, self._token
        assert token is not None  # taken by load() or write()
        async with self._redis.pipeline(transaction=False) as pipe:  # released on errors
            pipe.scripts.add(self._write_script)  # type: ignore[arg-type]  # typed for sync
            for item in items:
                pipe.evalsha(sha, 2, self._key(item.location_id), stream, token, *item.args)
            return list(await pipe.execute())

    def _stop(self, error: SinkError) -> None:
        """A write refused for good: every later write raises ``error``."""
        self._fatal = error
        logger.error("Redis sink stopped: %s", error)
        for item in self._queue:
            if not item.done.done():
                item.done.set_exception(error)
                item.done.exception()  # retrieved: a writer that left need not see it
        self._queue.clear()
        self._held = 0
        if self._room is not None:
            self._room.set()

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued write is written (or ``timeout``); True if so."""
        if self._fatal is not None:
            raise self._fatal
        if not self._queue:
            return True
        last = self._queue[-1].done
        try:
            await asyncio.wait_for(asyncio.shield(last), timeout)
        except TimeoutError:
            return False
        return True

    # -- lifecycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Write what is queued (for up to ``close_timeout`` seconds), then disconnect.
        What Redis did not take by then is lost, and logged; the saved state stays at
        the last write, so the next run reports the rest as recovered."""
        if self._closed:
            return
        self._closed = True
        if self._queue and self._fatal is None:
            await self.flush(self._close_timeout)
            if self._held:
                logger.error(
                    "Redis sink closed with %d events not written (Redis unavailable)",
                    self._held,
                )
        if self._flusher is not None:
            await _stop(self._flusher)
        await self._redis.aclose()
