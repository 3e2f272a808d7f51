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

from ._feed import RedisStreamFeed
from ._redis import DEFAULT_STREAM
from ._sink import RedisStreamSink
from ._tail import StreamEntry, StreamTail

__all__ = ["DEFAULT_STREAM", "RedisStreamFeed", "RedisStreamSink", "StreamEntry", "StreamTail"]
