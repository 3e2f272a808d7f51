"""What the Redis sink, tail and feed share: the stream's keys and Lua scripts, the
connection, and what a refusal or an outage of Redis means (written once here)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Final
from urllib.parse import urlsplit

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .._checks import safe_url
from .._lifecycle import cancel_and_wait
from .._serialize import MASK
from ..errors import SinkError

__all__ = ["DEFAULT_STREAM"]

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
