"""``/healthz``, ``/readyz`` and ``/metrics`` for a watcher, in any aiohttp application.

``flipkart-otc watch --metrics-port P`` serves :meth:`Probes.create_app`; the
dashboard registers the same routes beside its page (:meth:`Probes.add_routes`)::

    from aiohttp import web
    from flipkart_otc.probes import Probes

    app = web.Application()
    Probes(watcher, metrics=metrics, sink=sink).add_routes(app)

- ``/healthz`` is liveness: 200 while the watcher runs, else 503.
- ``/readyz`` is readiness: 200 once every location was polled, while a poll was
  answered within ``stall_after`` seconds and the sink (if any) writes; else 503
  with ``reasons``.
- ``/metrics``: the Prometheus text of a :class:`~flipkart_otc.metrics.Metrics`
  (404 without one). With an ``access_key`` it needs ``Authorization: Bearer KEY``.

Each answers JSON (the metrics aside) and none shows a secret or an OTC.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._checks import check_number
from ._fanout import EventFeed
from ._readiness import liveness, readiness

if TYPE_CHECKING:
    from .metrics import Metrics, SinkState

__all__ = ["DEFAULT_STALL_AFTER", "Probes"]

#: Seconds with no poll answered before ``/readyz`` fails: three of the default
#: policy's longest regular interval (an idle location's 120 s).
DEFAULT_STALL_AFTER = 360.0


class Probes:
    """The probes (and metrics) of ``feed``: an :class:`~flipkart_otc.OtcWatcher` or
    any :class:`~flipkart_otc.EventFeed`.

    ``metrics`` is served at ``/metrics``; ``sink`` (a
    :class:`~flipkart_otc.sinks.RedisStreamSink`, or anything with ``healthy`` and
    ``backlog``) is part of readiness; ``stall_after`` is how long without an answered
    poll readiness holds (None: no limit, for a feed that reads a stream, where quiet is
    no failure); ``access_key`` (16 characters or more) guards ``/metrics``
    (the probes tell nothing secret and need no key).
    """

    def __init__(
        self,
        feed: EventFeed,
        *,
        metrics: Metrics | None = None,
        sink: SinkState | None = None,
        stall_after: float | None = DEFAULT_STALL_AFTER,
        access_key: str | None = None,
    ) -> None:
        if not isinstance(feed, EventFeed):
            raise TypeError(f"feed must be an EventFeed, got {type(feed).__name__}")
        if stall_after is not None:
            check_number("stall_after", stall_after, minimum=0.0)
        if access_key is not None and (not isinstance(access_key, str) or len(access_key) < 16):
            raise ValueError("access_key must be a string of at least 16 characters")
        self.feed = feed
        self.metrics = metrics
        self.sink = sink
        self.stall_after = None if stall_after is None else float(stall_after)
        self._bearer = None if access_key is None else ("Bearer " + access_key).encode()

    def __repr__(self) -> str:
        return f"<Probes of {type(self.feed).__name__} stall_after={self.stall_after}>"

    def live(self) -> tuple[bool, dict[str, Any]]:
        """Liveness and its JSON body."""
        return liveness(self.feed.health())

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Readiness and its JSON body (``reasons`` says why not)."""
        sink = self.sink
        return readiness(
            self.feed.health(),
            stall_after=self.stall_after,
            sink_healthy=None if sink is None else sink.healthy,
            sink_backlog=None if sink is None else sink.backlog,
            sink_error=getattr(sink, "error", None),
        )

    def bearer_ok(self, request: web.Request) -> bool:
        """Whether ``request`` carries the access key as a bearer token (or none is
        needed); compared in constant time."""
        if self._bearer is None:
            return True
        offered = request.headers.get("Authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(offered, self._bearer)

    def add_routes(
        self,
        app: web.Application,
        *,
        allowed: Callable[[web.Request], bool] | None = None,
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Register ``/healthz``, ``/readyz`` and ``/metrics`` on ``app``. ``allowed``
        decides who may read ``/metrics`` (the bearer key by default); ``extra()``
        adds fields to both probes' bodies."""
        gate = allowed if allowed is not None else self.bearer_ok

        def probe(check: Callable[[], tuple[bool, dict[str, Any]]]) -> Any:
            async def handler(request: web.Request) -> web.StreamResponse:
                ok, body = check()
                if extra is not None:
                    body |= extra()
                return web.json_response(body, status=200 if ok else 503)

            return handler

        async def metrics(request: web.Request) -> web.StreamResponse:
            if not gate(request):
                raise web.HTTPUnauthorized(
                    text="the access key is needed (Authorization: Bearer KEY)"
                )
            if self.metrics is None:
                raise web.HTTPNotFound(text="no metrics: pip install 'flipkart-otc[metrics]'")
            from .metrics import CONTENT_TYPE

            response = web.Response(body=self.metrics.render())
            response.headers["Content-Type"] = CONTENT_TYPE
            return response

        app.router.add_get("/healthz", probe(self.live))
        app.router.add_get("/readyz", probe(self.ready))
        app.router.add_get("/metrics", metrics)

    def create_app(self) -> web.Application:
        """An application serving only the three routes (what ``--metrics-port`` runs)."""
        app = web.Application()
        self.add_routes(app)
        return app
