"""``RedisStreamSink``: a watcher's events on a Redis stream, its state beside them.

Each location has one hash, ``<stream>:loc:<location id>``, with its saved state
(``state``, see ``_saved``), the number of writes so far (``ver``), the fencing
token of the worker that owns it (``owner``) and whether its events show the OTC
(``shown``: "1"; a reader of the stream masks the saved state's codes otherwise).
A write is one Lua script: it appends the poll's events to the stream and replaces
the state, both or neither.
Redis 7.0 has no idempotent ``XADD``, so the script makes a retried write a
no-op itself: it carries the version it creates, and a version already there is
not written again.

Fencing: a worker takes a token from ``INCR <stream>:fence`` when it first loads,
and claims each of its locations by writing that token as the owner (in the same
script that reads the saved state). A write finds a larger token there only when a
worker started later took the location over: it is refused, and this worker stops
with :class:`~flipkart_otc.SinkFencedError`.

Redis down or slow: writes are queued in order and written in pipelines by one
task; a writer waits for its write at most ``patience`` seconds, then goes on
while the write stays queued (the watcher keeps polling). Failed pipelines are
sent again with backoff; the first failure of an outage is logged once, and the
recovery. At most ``max_backlog`` events wait: past that, writers wait for room,
which holds the pollers (so memory stays bounded; nothing is dropped). A refusal
(a wrong or missing password, an ACL without the command) is not an outage: it is
raised at once as :class:`~flipkart_otc.SinkError`.

Foreign data (an entry that is not an event, a key under ``<stream>:loc:`` that is
not a location's hash, a saved state that does not decode) costs that entry or
that location, with a log line; never the reader.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections import Counter, deque
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Self
from urllib.parse import urlsplit

import attrs
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .._checks import check_int, check_number, check_redis_url, safe_url
from .._fanout import LocationView, Picture, Readers, Subscription, WatcherHealth
from .._lifecycle import Closing, cancel_and_wait
from .._mirror import apply
from .._saved import SavedLocation, decode, encode, event_id
from .._serialize import MASK, json_line
from ..clock import Clock, SystemClock
from ..errors import SinkError, SinkFencedError
from ..events import WatchEvent, event_from_dict

__all__ = ["DEFAULT_STREAM", "RedisStreamFeed", "RedisStreamSink", "StreamEntry", "StreamTail"]

logger = logging.getLogger("flipkart_otc.sinks")

#: The stream a sink writes, and ``tail`` and ``dashboard --source`` read, by default.
DEFAULT_STREAM: Final = "flipkart-otc:events"

# KEYS: the location's hash, the stream. ARGV: token, the version this write makes
# ("" when unknown: the next one), the state, MAXLEN ("" for none), the location id,
# whether the events show the OTC ("1" or "0"), then (event id, event JSON) pairs.
# Returns the location's version after it, or -owner when a later worker owns the
# location.
_WRITE = """
local owner = tonumber(redis.call('HGET', KEYS[1], 'owner') or '0')
local token = tonumber(ARGV[1])
if owner > token then return -owner end
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
local new = ver + 1
if ARGV[2] ~= '' then
  new = tonumber(ARGV[2])
  if ver >= new then return ver end
end
for i = 7, #ARGV, 2 do
  if ARGV[4] == '' then
    redis.call('XADD', KEYS[2], '*', 'id', ARGV[i], 'location', ARGV[5], 'event', ARGV[i + 1])
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
               'id', ARGV[i], 'location', ARGV[5], 'event', ARGV[i + 1])
  end
end
redis.call('HSET', KEYS[1], 'owner', token, 'ver', new, 'state', ARGV[3], 'shown', ARGV[6])
return new
"""

# KEYS: the location's hash. ARGV: token. Claims the location unless a later worker
# has; returns {version, state or nil}, or {-owner} when refused.
_CLAIM = """
local owner = tonumber(redis.call('HGET', KEYS[1], 'owner') or '0')
local token = tonumber(ARGV[1])
if owner > token then return {-owner} end
redis.call('HSET', KEYS[1], 'owner', token)
return {tonumber(redis.call('HGET', KEYS[1], 'ver') or '0'), redis.call('HGET', KEYS[1], 'state')}
"""

# Who we are or what we may do was refused (WRONGPASS, NOAUTH, NOPERM): waiting
# changes nothing. Some are ConnectionErrors to redis-py: caught before _UNAVAILABLE.
_REFUSED = (
    redis_errors.AuthenticationError,
    redis_errors.ExternalAuthProviderError,
    redis_errors.AuthenticationWrongNumberOfArgsError,
    redis_errors.AuthorizationError,
    redis_errors.NoPermissionError,
)

# Redis unreachable, restarting, out of memory or a replica: wait, and send again.
_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.MasterDownError,
    redis_errors.TryAgainError,
    OSError,
)


def _connect(url: str, socket_timeout: float = 5.0) -> Redis:
    """A client that tries each command once: the caller waits out outages itself
    (``_Outage``), in order, with backoff. (5 s: redis-py's own socket timeout.)

    The URL's options (``?socket_timeout=``, ...) are checked here, at once: a bad
    one is a ValueError naming it, not a failure at the first command."""
    try:
        client = Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=socket_timeout,
            socket_connect_timeout=5.0,
        )
        client.connection_pool.make_connection()  # type: ignore[no-untyped-call]  # builds, does not connect
    except TypeError as exc:  # an option redis-py does not know
        option = str(exc).rpartition(" ")[2].strip("'")
        raise ValueError(f"bad Redis URL {safe_url(url)!r}: unknown option {option!r}") from None
    except ValueError as exc:  # its messages name the option, never a value
        raise ValueError(f"bad Redis URL {safe_url(url)!r}: {_scrub(str(exc), url)}") from None
    return client


def _scrub(text: str, url: str) -> str:
    """``text`` without the URL's password, should a message ever carry it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, MASK) if password else text


def _refused(url: str, exc: BaseException, doing: str = "") -> SinkError:
    """A refusal as one line: the URL without its password, Redis's own words."""
    what = f" {doing}" if doing else ""
    return SinkError(
        f"Redis {safe_url(url)} refused{what}: {type(exc).__name__}: {_scrub(str(exc), url)}"
    )


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` (again, if redis-py swallows it) and wait for it to end."""
    await cancel_and_wait(task)
    if not task.cancelled() and task.exception() is not None:
        logger.debug("task %s ended with %r", task.get_name(), task.exception())


class _Outage:
    """While Redis is unavailable: backoff between attempts (full jitter, from 50 ms up
    to ``retry_max``), one log line when it goes and one when it is back."""

    def __init__(self, url: str, retry_max: float) -> None:
        self._url = safe_url(url)
        self._retry_max = retry_max
        self._delay = 0.05
        #: When the current outage began (monotonic), or None while Redis answers.
        self.since: float | None = None
        #: Outages so far.
        self.count = 0

    async def failed(self, exc: BaseException) -> None:
        """An attempt found Redis unavailable: say so (once), then wait before the next."""
        if self.since is None:
            self.since = time.monotonic()
            self.count += 1
            logger.warning(
                "Redis %s unavailable (%s: %s); holding on and retrying",
                self._url,
                type(exc).__name__,
                exc,
            )
        await asyncio.sleep(random.uniform(0, self._delay))
        self._delay = min(self._retry_max, self._delay * 2)

    def ok(self, still_held: int | None = None) -> None:
        """An attempt succeeded: the outage, if any, is over."""
        self._delay = 0.05
        if self.since is not None:
            held = "" if still_held is None else f"; {still_held} events still to write"
            logger.warning(
                "Redis %s is back after %.1f s%s", self._url, time.monotonic() - self.since, held
            )
            self.since = None


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


class RedisStreamFeed(Closing):
    """A sink's stream read back as a watcher's picture and subscribers: what
    ``flipkart-otc dashboard --source redis://...`` shows, so dashboards scale apart
    from the shard workers.

    At start it reads every location's saved state and the stream's last entry in
    one transaction (a consistent picture), then follows the stream from there,
    applying each event to its location. Use it as an async context manager; hand
    it to :func:`flipkart_otc.dashboard.create_app`.

    >>> async with RedisStreamFeed("redis://127.0.0.1:6379/0") as feed:  # doctest: +SKIP
    ...     app = create_app(feed)
    """

    def __init__(
        self, url: str, *, stream: str = DEFAULT_STREAM, clock: Clock | None = None
    ) -> None:
        self._url = check_redis_url(url)
        self.stream = stream
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._redis = _connect(url)
        self._views: dict[str, LocationView] = {}
        self._readers = Readers()
        self._task: asyncio.Task[None] | None = None
        self._last_event: float | None = None
        self._closed = False

    def __repr__(self) -> str:
        seq = self._readers.seq
        return f"<RedisStreamFeed {safe_url(self._url)} stream={self.stream!r} seq={seq}>"

    @property
    def clock(self) -> Clock:
        """The clock the page's countdowns run on."""
        return self._clock

    def now(self) -> float:
        """Epoch seconds on :attr:`clock`."""
        return self._clock.time()

    @property
    def locations(self) -> list[str]:
        """The locations known so far."""
        return list(self._views)

    def picture(self) -> Picture:
        """Every location after exactly the events numbered up to the picture's ``seq``."""
        return Picture(
            self._readers.seq, datetime.fromtimestamp(self.now(), UTC), dict(self._views)
        )

    def subscribe(self, maxsize: int = 1024) -> Subscription:
        """A picture, then every later event (see ``OtcWatcher.subscribe``)."""
        if self._closed:
            raise RuntimeError("this RedisStreamFeed is closed")
        return self._readers.subscribe(self.picture(), maxsize)

    def health(self) -> WatcherHealth:
        """Running, locations by status, and when the last event came (as the last success)."""
        by_status = Counter(
            view.status.value if view.status is not None else "PENDING"
            for view in self._views.values()
        )
        last = self._last_event
        return WatcherHealth(
            self._task is not None and not self._task.done() and not self._closed,
            dict(by_status),
            datetime.fromtimestamp(last, UTC) if last is not None else None,
            None if last is None else max(0.0, self.now() - last),
        )

    async def start(self) -> None:
        """Read the picture, and follow the stream from it."""
        if self._task is not None:
            return
        prefix = f"{self.stream}:loc:"
        try:
            keys = [key async for key in self._redis.scan_iter(match=prefix + "*", count=1000)]
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xrevrange(self.stream, count=1)
                for key in keys:
                    pipe.hmget(key, ["state", "shown"])
                # a key that is not a hash answers WRONGTYPE: that key's reply, not all
                last, *states = await pipe.execute(raise_on_error=False)
        except _REFUSED as exc:
            raise _refused(self._url, exc) from None
        except _UNAVAILABLE as exc:
            raise SinkError(
                f"Redis {safe_url(self._url)} unavailable: {type(exc).__name__}: {exc}"
            ) from None
        except redis_errors.RedisError as exc:
            raise _refused(self._url, exc) from None
        if isinstance(last, Exception):  # the stream's key is not a stream
            raise _refused(self._url, last)
        for key, reply in zip(keys, states, strict=True):
            self._take_saved(key, reply)
        cursor = last[0][0].decode() if last else "0-0"
        self._task = asyncio.create_task(self._follow(cursor), name="redis-stream-feed")

    def _take_saved(self, key: bytes, reply: Any) -> None:
        """One location's saved state into the picture; one that is not readable is
        said on one line and left out (its next event brings the location back)."""
        name = key.decode("utf-8", "backslashreplace")
        try:
            if isinstance(reply, Exception):  # WRONGTYPE: not a sink's hash
                raise SinkError(f"not a location's hash ({type(reply).__name__})")
            raw, shown = reply
            if not raw:
                return  # claimed, never written
            saved = decode(raw)
        except SinkError as exc:  # its text is never shown: it may hold codes
            logger.warning("stream %s: %s skipped: %s", self.stream, name[:200], exc)
            return
        snapshot, visits = saved.snapshot, saved.visits
        if shown != b"1":
            # its worker masked its events: the page must not show more than they do
            if snapshot is not None:
                details = {fe: attrs.evolve(d, otc=MASK) for fe, d in snapshot.details.items()}
                snapshot = attrs.evolve(snapshot, details=details)
            visits = tuple(
                v if v.end is None else attrs.evolve(v, end=attrs.evolve(v.end, otc=MASK))
                for v in visits
            )
        self._views[saved.location_id] = LocationView(
            saved.location_id, saved.status, snapshot, saved.error, visits
        )

    async def _follow(self, cursor: str) -> None:
        # from the picture's entry on: no gap, no overlap
        tail = StreamTail(self._url, stream=self.stream, after=cursor)
        try:
            async for entry in tail:
                try:
                    event = event_from_dict(entry.event)
                    view = apply(self._views.get(event.location_id), event)
                except (ValueError, TypeError, RecursionError) as exc:
                    # this entry only: the feed goes on
                    logger.warning(
                        "stream %s: entry %s skipped: %s", self.stream, entry.stream_id, exc
                    )
                    continue
                self._views[event.location_id] = view
                self._last_event = self.now()
                self._readers.publish([event])
        except SinkError as exc:  # refused (a password changed, an ACL): for good
            self._readers.finish(exc)  # the page says why; wait() raises it
            raise
        finally:
            await tail.aclose()
            self._readers.finish()

    async def wait(self) -> None:
        """Wait while the feed follows the stream: returns once it is closed, raises
        the :class:`~flipkart_otc.SinkError` that stopped it (Redis refused)."""
        task = self._task
        if task is None:
            raise RuntimeError("this RedisStreamFeed is not started")
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not (task.cancelled() and self._closed):
                raise  # this wait was cancelled, not the feed closed

    async def aclose(self) -> None:
        """Stop following; subscribers' iterations end."""
        self._closed = True
        if self._task is not None:
            await _stop(self._task)
        await self._redis.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self
