"""Prometheus metrics of a client, a watcher and its sink (the ``metrics`` extra:
``pip install 'flipkart-otc[metrics]'``, which adds ``prometheus-client``).

A :class:`Metrics` is a thin observer. The client and the watcher tell it of each
request, 429, rate-limit wait and poll (``OtcClient(..., observer=metrics)``,
``OtcWatcher(..., observer=metrics)``); everything else is read from their public
state when Prometheus scrapes (``health()``, ``picture()``, the sink's counters), and
the events are counted through ``subscribe()``::

    metrics = Metrics()
    async with (
        OtcClient(credentials, observer=metrics) as client,
        OtcWatcher(client, locations, observer=metrics) as watcher,
        metrics.attached(watcher),
    ):
        ...  # serve metrics.render() at /metrics, e.g. with flipkart_otc.probes.Probes

Every name starts with ``flipkart_otc_``, and every label value comes from a short,
fixed list: never a location id (a fleet has thousands).

Why one module of some 410 lines: every metric beside the hook or collector that
feeds it, so that a name and its meaning are read together.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from typing import Protocol

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
    from prometheus_client import generate_latest as _generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "metrics need prometheus-client: pip install 'flipkart-otc[metrics]'"
    ) from exc

from ._fanout import (
    EventFeed,
    LocationView,
    ReliableSink,
    ResumableSink,
    Sequenced,
    SubscriberLagged,
)
from ._saved import SavedLocation
from ._wire import end_otc, initial_load, shipments, start_otc
from .events import WatchEvent
from .models import LocationStatus

__all__ = ["CONTENT_TYPE", "Metrics", "SinkState"]

#: The media type of :meth:`Metrics.render`'s text.
CONTENT_TYPE: str = CONTENT_TYPE_LATEST

_STATUSES = ("PENDING", *(s.value for s in LocationStatus))
_STAGES = ("scanning", "end_otc")
_OUTCOMES = ("answered", "no_task", "closed", "failed", "fatal")
# A request's endpoint, by the end of its path (a POST's URL is one of a few: cached)
_PATHS = (
    (start_otc.PATH, "start-otc"),
    (initial_load.PATH, "initial-load"),
    (end_otc.PATH, "end-otc"),
    (shipments.PATH, "shipments"),
)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class SinkState(Protocol):
    """What the metrics and the readiness probe read of a sink (a
    :class:`~flipkart_otc.sinks.RedisStreamSink` is one)."""

    @property
    def healthy(self) -> bool:
        """False while it cannot write, or after a fatal error."""
        ...

    @property
    def backlog(self) -> int:
        """Events handed to it and not written yet."""
        ...

    @property
    def outages(self) -> int:
        """Times its store was found unavailable so far."""
        ...


def _endpoint(method: str, url: str) -> str:
    if method == "GET":
        return "shipments-next"  # the only GET: a next page's URL
    path = url.split("?", 1)[0]
    for suffix, name in _PATHS:
        if path.endswith(suffix):
            return name
    return "other"


class Metrics:
    """The Prometheus metrics of one watcher (or dashboard feed) and its client.

    ``registry`` is where they are registered (a fresh ``CollectorRegistry`` by
    default, so two watchers in one process never clash); :meth:`render` gives the
    text exposition of it. Pass the object as ``observer=`` to
    :class:`~flipkart_otc.OtcClient` and :class:`~flipkart_otc.OtcWatcher`, and
    :meth:`attached` to the feed (and its sink) for the rest.

    Metrics (``flipkart_otc_`` prefix):

    - ``polls_total{outcome}``: ``answered``, ``no_task``, ``closed``, ``failed``,
      ``fatal``; ``poll_lag_seconds``: how late each poll started against its due time.
    - ``requests_total{endpoint, status}`` and ``request_seconds{endpoint}``: each HTTP
      attempt (retries included) by endpoint (``start-otc``, ``initial-load``,
      ``shipments``, ``shipments-next``, ``end-otc``) and HTTP status (or ``timeout``,
      ``error``); ``request_seconds{endpoint="end-otc"}`` is the End OTC latency.
    - ``throttled_total`` (429 answers), ``rate_limit_wait_seconds`` (each request's
      wait for its turn under a ``RateLimit``), ``rate_limit_hold_seconds`` (how long
      the last 429's pause has left).
    - ``events_total{event}`` (by the event's ``kind``), ``locations{status}``
      (``PENDING``: not polled yet), ``fes_present``, ``visit_fes{stage}``,
      ``running``, ``last_success_age_seconds``.
    - ``subscribers``, ``subscriber_drops_total``.
    - With a sink: ``sink_healthy``, ``sink_backlog``, ``sink_outages_total``,
      ``sink_write_seconds`` (each write as the poller waited for it).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        # Plain numbers, turned into metric families only when scraped: what a poll pays
        # is a dict lookup and an addition, not prometheus_client's locks.
        self._polls: dict[str, int] = dict.fromkeys(_OUTCOMES, 0)
        self._poll_lag = _Histogram(_LAG_BUCKETS)
        self._requests: Tally[tuple[str, int | str]] = Tally()
        self._seconds: dict[str, _Histogram] = {}
        self._throttled = 0
        self._waits = _Histogram(_WAIT_BUCKETS)
        self._events: Tally[str] = Tally()
        self._sink_seconds = _Histogram(_SECONDS_BUCKETS)
        self._endpoints: dict[str, str] = {}
        self._hold_until = 0.0  # time.monotonic() until which the last 429 asked for quiet
        self._feed: EventFeed | None = None
        self._sink: SinkState | None = None
        self.registry.register(_Collector(self))

    def __repr__(self) -> str:
        feed = type(self._feed).__name__ if self._feed is not None else None
        return f"<Metrics feed={feed}>"

    # -- the observer: told by the client and the watcher ----------------------------

    def request(self, method: str, url: str, status: int | str, seconds: float) -> None:
        """One HTTP attempt ended (the client calls this)."""
        endpoint = self._endpoints.get(url) if method == "POST" else None
        if endpoint is None:
            endpoint = _endpoint(method, url)
            if method == "POST" and len(self._endpoints) < 64:
                self._endpoints[url] = endpoint
        self._requests[endpoint, status] += 1
        timer = self._seconds.get(endpoint)
        if timer is None:
            timer = self._seconds[endpoint] = _Histogram(_SECONDS_BUCKETS)
        timer.observe(seconds)

    def throttled(self, retry_after: float | None) -> None:
        """A 429 (the client calls this)."""
        self._throttled += 1
        if retry_after:
            self._hold_until = max(self._hold_until, time.monotonic() + retry_after)

    def paced(self, seconds: float) -> None:
        """A request waited ``seconds`` for its turn (the client calls this)."""
        self._waits.observe(seconds)

    def poll(self, outcome: str, lag: float) -> None:
        """A poll ended (the watcher calls this)."""
        self._polls[outcome] += 1
        self._poll_lag.observe(lag if lag > 0.0 else 0.0)

    # -- the feed and the sink ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def attached(
        self, feed: EventFeed, *, sink: SinkState | None = None
    ) -> AsyncIterator[Metrics]:
        """While inside, read ``feed`` (and ``sink``) at each scrape and count the
        feed's events through a subscription (one that falls behind subscribes again).
        """
        if not isinstance(feed, EventFeed):
            raise TypeError(f"feed must be an EventFeed, got {type(feed).__name__}")
        self._feed, self._sink = feed, sink
        counting = asyncio.create_task(self._count_events(feed), name="flipkart-otc-metrics")
        try:
            yield self
        finally:
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counting
            self._feed = self._sink = None

    def timed_sink(self, sink: ReliableSink) -> ReliableSink:
        """``sink`` with each ``write`` timed into ``sink_write_seconds`` (a
        :class:`~flipkart_otc.ResumableSink` stays one): give this to the watcher."""
        if isinstance(sink, ResumableSink):
            return _TimedResumableSink(sink, self._sink_seconds)
        return _TimedSink(sink, self._sink_seconds)

    async def _count_events(self, feed: EventFeed) -> None:
        while True:
            try:
                async with feed.subscribe(maxsize=65536) as updates:
                    async for item in updates:
                        if isinstance(item, Sequenced):
                            self._count(item.event)
                return  # the feed closed
            except SubscriberLagged:
                continue  # the count misses what it fell behind by; follow again
            except Exception:  # not ours to report: the feed's owner does
                return  # the feed stopped, or closed before we subscribed

    def _count(self, event: WatchEvent) -> None:
        self._events[event.kind] += 1

    # -- exposition ------------------------------------------------------------------------

    def render(self) -> bytes:
        """The text exposition of every metric (its media type is :data:`CONTENT_TYPE`)."""
        return _generate_latest(self.registry)

    def _scrape(self) -> Iterator[Metric]:
        polls = CounterMetricFamily(
            "flipkart_otc_polls", "Polls of Start OTC by outcome", labels=["outcome"]
        )
        for outcome, count in self._polls.items():
            polls.add_metric([outcome], count)
        yield polls
        yield self._poll_lag.family(
            "flipkart_otc_poll_lag_seconds", "How late each poll started against its due time"
        )
        requests = CounterMetricFamily(
            "flipkart_otc_requests",
            "HTTP attempts to the API by endpoint and status",
            labels=["endpoint", "status"],
        )
        for (endpoint, status), count in sorted(self._requests.items(), key=str):
            requests.add_metric([endpoint, str(status)], count)
        yield requests
        seconds = HistogramMetricFamily(
            "flipkart_otc_request_seconds",
            "Duration of each HTTP attempt by endpoint",
            labels=["endpoint"],
        )
        for endpoint, histogram in sorted(self._seconds.items()):
            histogram.add_to(seconds, [endpoint])
        yield seconds
        yield CounterMetricFamily(
            "flipkart_otc_throttled", "HTTP 429 answers from the API", value=self._throttled
        )
        yield self._waits.family(
            "flipkart_otc_rate_limit_wait_seconds",
            "Each request's wait for its turn under the client's rate limit",
        )
        events = CounterMetricFamily(
            "flipkart_otc_events", "Events published by the feed, by kind", labels=["event"]
        )
        for kind, count in sorted(self._events.items()):
            events.add_metric([kind], count)
        yield events
        yield self._sink_seconds.family(
            "flipkart_otc_sink_write_seconds",
            "Each sink write, as long as the poller waited for it",
        )
        hold = GaugeMetricFamily(
            "flipkart_otc_rate_limit_hold_seconds",
            "Seconds left of the pause the last 429 asked for",
            value=max(0.0, self._hold_until - time.monotonic()),
        )
        yield hold
        feed = self._feed
        if feed is not None:
            yield from _feed_metrics(feed)
        sink = self._sink
        if sink is not None:
            yield GaugeMetricFamily(
                "flipkart_otc_sink_healthy", "1 while the sink writes", value=int(sink.healthy)
            )
            yield GaugeMetricFamily(
                "flipkart_otc_sink_backlog", "Events not written yet", value=sink.backlog
            )
            yield CounterMetricFamily(
                "flipkart_otc_sink_outages", "Times the store was found down", value=sink.outages
            )


def _feed_metrics(feed: EventFeed) -> Iterator[Metric]:
    health = feed.health()
    yield GaugeMetricFamily("flipkart_otc_running", "1 while the feed runs", value=health.running)
    locations = GaugeMetricFamily(
        "flipkart_otc_locations", "Watched locations by status", labels=["status"]
    )
    for status in _STATUSES:
        locations.add_metric([status], health.by_status.get(status, 0))
    yield locations
    age = health.last_success_age
    yield GaugeMetricFamily(
        "flipkart_otc_last_success_age_seconds",
        "Seconds since the last poll the API answered (NaN before any)",
        value=float("nan") if age is None else age,
    )
    yield GaugeMetricFamily(
        "flipkart_otc_subscribers", "Readers through subscribe()", value=health.subscribers
    )
    yield CounterMetricFamily(
        "flipkart_otc_subscriber_drops",
        "Subscribers dropped for falling behind",
        value=health.subscriber_drops,
    )
    fes, stages = _presence(feed.picture().locations)
    yield GaugeMetricFamily(
        "flipkart_otc_fes_present", "FEs on the Start OTC page (last known)", value=fes
    )
    visit = GaugeMetricFamily(
        "flipkart_otc_visit_fes", "FEs past the Start OTC page by stage", labels=["stage"]
    )
    for stage in _STAGES:
        visit.add_metric([stage], stages.get(stage, 0))
    yield visit


def _presence(views: Mapping[str, LocationView]) -> tuple[int, Tally[str]]:
    fes = 0
    stages: Tally[str] = Tally()
    for view in views.values():
        if view.snapshot is not None and view.status in (
            LocationStatus.ACTIVE,
            LocationStatus.FAILING,
        ):
            fes += len(view.snapshot.details)
        for visit in view.visits:
            stages[visit.stage] += 1
    return fes, stages


class _Histogram:
    """A histogram kept as plain numbers: per-bucket counts and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def _buckets(self) -> list[tuple[str, float]]:
        cumulative = list(itertools.accumulate(self.counts))
        les = [str(float(b)) for b in self.bounds] + ["+Inf"]
        return list(zip(les, cumulative, strict=True))

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        return HistogramMetricFamily(
            name, documentation, buckets=self._buckets(), sum_value=self.total
        )

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        family.add_metric(labels, self._buckets(), self.total)


class _Collector:
    """What is read at scrape time (prometheus_client's custom collector)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics._scrape()


class _TimedSink:
    def __init__(self, sink: ReliableSink, seconds: _Histogram) -> None:
        self.sink = sink
        self._seconds = seconds

    def __repr__(self) -> str:
        return f"<timed {self.sink!r}>"

    async def write(self, events: Sequence[WatchEvent], view: LocationView) -> None:
        started = time.perf_counter()
        try:
            await self.sink.write(events, view)
        finally:
            self._seconds.observe(time.perf_counter() - started)


class _TimedResumableSink(_TimedSink):
    sink: ResumableSink

    async def load(self, location_ids: Collection[str]) -> Mapping[str, SavedLocation]:
        return await self.sink.load(location_ids)
