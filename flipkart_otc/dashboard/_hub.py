"""Between one watcher and many browsers: one shared, bounded log of recent events, each
serialized once, and a cursor per browser.

The hub reads the watcher through one subscription into a ring of the last ``replay``
events. A browser's stream is a cursor into it: on connect, a picture of every location
(or, when it reconnects with ``Last-Event-ID`` still in the ring, the events it missed),
then each event from the ring in order. A browser costs a cursor, not a copy of the
events. One that falls a whole ring behind (it stopped reading) is told to resync, and
never slows the watcher or another browser. When a browser connects, the hub first
takes in every event the watcher has published (no ``await``), so its picture and the
ring meet with no gap and no overlap.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import deque
from typing import Any

from .._fanout import EventFeed, Picture, Sequenced, SubscriberLagged, Subscription
from .._serialize import detail_dict, visit_view_dict

__all__ = ["Hub", "resume_from"]

_SEQ = re.compile(r"[0-9]{1,18}")


def resume_from(last_event_id: str | None, first: int, last: int) -> int | None:
    """Where a browser that last saw ``last_event_id`` resumes, given the ring holds
    events ``first..last``: the last event it has (``last``: nothing to replay), or None
    when it needs a fresh picture (no id, a bad one, or events already gone)."""
    # ASCII digits only: str.isdigit() also takes "²" and "٣", which int() refuses or reads
    if last_event_id is None or not _SEQ.fullmatch(last_event_id):
        return None
    seen = int(last_event_id)
    if seen > last or seen + 1 < first:  # from another run of the server, or too old
        return None
    return seen


class Lagged(Exception):
    """The browser's cursor fell out of the ring: it must start again from a picture."""


class Hub:
    """Fan one watcher's events out to browsers. Start with :meth:`run` as a task."""

    def __init__(self, watcher: EventFeed, *, show_otc: bool, replay: int) -> None:
        self.watcher = watcher
        self.show_otc = show_otc
        #: Tells a browser that reconnects whether it talks to the same run of the server.
        self.instance = secrets.token_hex(8)
        self._ring: deque[bytes] = deque(maxlen=replay)  # each event as an SSE message
        self._last = 0  # the seq of the newest event in the ring
        self._source: Subscription | None = None
        self._arrived = asyncio.Event()  # set (and replaced) when events arrive
        self._stopped: BaseException | None = None
        self._done = False
        # the last picture built, as (seq, JSON bytes): every browser that connects
        # while the ring still holds the events after it shares it (a reconnect storm
        # builds one picture, not one per browser)
        self._picture: tuple[int, bytes] | None = None
        #: Browsers that start at once take turns (see ``_events``).
        self.turns = asyncio.Semaphore(4)
        #: Pictures built so far.
        self.pictures_built = 0
        #: Browsers connected now.
        self.clients = 0

    @property
    def first(self) -> int:
        """The seq of the oldest event in the ring (``last + 1`` when it is empty)."""
        return self._last - len(self._ring) + 1

    @property
    def last(self) -> int:
        """The seq of the newest event taken in."""
        return self._last

    @property
    def done(self) -> bool:
        """The watcher has stopped: no more events."""
        return self._done

    @property
    def stopped(self) -> BaseException | None:
        """Why the watcher stopped, if it stopped with an error."""
        return self._stopped

    def _subscribe(self) -> None:
        self._source = self.watcher.subscribe(maxsize=1 << 16)
        # a (re)start: the ring must hold consecutive events from the picture on
        self._ring.clear()
        self._last = self._source.picture.seq

    async def run(self) -> None:
        """Read the watcher until it closes; then wake every browser to end its stream."""
        try:
            while True:
                if self._source is None:
                    self._subscribe()
                assert self._source is not None
                try:
                    item = await anext(self._source)
                except SubscriberLagged:  # the hub itself fell behind: everyone resyncs
                    self._source = None
                    self._wake()
                    continue
                if isinstance(item, Sequenced):
                    self._take(item)
                self.catch_up()
                self._wake()
        except StopAsyncIteration:
            pass
        except Exception as exc:  # the watcher's fatal error
            self._stopped = exc
        finally:
            self._done = True
            self._wake()

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = asyncio.Event()

    def catch_up(self) -> None:
        """Take in, with no ``await``, every event the watcher has published."""
        source = self._source
        while source is not None and (item := source.take_nowait()) is not None:
            self._take(item)

    def _take(self, item: Sequenced) -> None:
        data = item.event.to_dict(show_otc=self.show_otc)
        data["seq"] = item.seq
        # framed once, here, for every browser: JSON has no raw line break to split on.
        # No event name: a plain message, what EventSource's onmessage gets
        text = json.dumps(data, separators=(",", ":"))
        self._ring.append(f"id: {item.seq}\r\ndata: {text}\r\n\r\n".encode())
        self._last = item.seq

    def since(self, cursor: int, limit: int = 64) -> tuple[int, bytes]:
        """Up to ``limit`` events after ``cursor`` as SSE messages in one block, and the
        seq of the last of them (``cursor``: none); raises :class:`Lagged` when the next
        is no longer in the ring (or the ring restarted). A small block: a browser that
        stalls while taking one is caught at the next."""
        self.catch_up()
        first = self.first
        if cursor + 1 < first or cursor > self._last:
            raise Lagged(cursor)
        end = min(self._last, cursor + limit)
        ring = self._ring
        return end, b"".join([ring[seq - first] for seq in range(cursor + 1, end + 1)])

    def signal(self) -> asyncio.Event:
        """Set when the next events arrive (or the watcher stops)."""
        return self._arrived

    def attach(self, last_event_id: str | None) -> tuple[bytes | None, int]:
        """A browser connects: its picture as JSON bytes (None when it resumes) and its
        cursor, the seq the picture is of. The picture may be a little older than the
        newest event: the browser then gets the events after it from the ring.

        Raises RuntimeError when the watcher has stopped."""
        if self._done:
            raise RuntimeError("the watcher has stopped")
        if self._source is None:
            self._subscribe()
        self.catch_up()
        cursor = resume_from(last_event_id, self.first, self._last)
        if cursor is not None:
            return None, cursor
        shared = self._picture
        ring = self._ring
        # shared while the events after it are in the ring, and not too many of them
        # (a browser would replay them all); else built afresh, once
        if shared is None or not (
            self.first - 1 <= shared[0] <= self._last
            and self._last - shared[0] <= max(64, (ring.maxlen or 0) // 4)
        ):
            picture = self.watcher.picture()
            assert picture.seq == self._last, "the hub missed events"
            body = json.dumps(self.picture_dict(picture), separators=(",", ":")).encode()
            shared = self._picture = (picture.seq, body)
            self.pictures_built += 1
        return shared[1], shared[0]

    def now_ms(self) -> int:
        """The watcher's time, epoch milliseconds: browsers count down against it."""
        return round(self.watcher.now() * 1000)

    def picture_dict(self, picture: Picture) -> dict[str, Any]:
        """Every location of a picture as the page draws it."""
        locations = []
        for location_id, view in picture.locations.items():
            snapshot = view.snapshot
            details = sorted(snapshot.details.items()) if snapshot is not None else []
            locations.append(
                {
                    "location_id": location_id,
                    "status": view.status.value if view.status is not None else None,
                    "error": view.error,
                    "details": [detail_dict(d, show_otc=self.show_otc) for _, d in details],
                    "visits": [visit_view_dict(v, show_otc=self.show_otc) for v in view.visits],
                }
            )
        return {"seq": picture.seq, "locations": locations}
