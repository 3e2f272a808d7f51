"""``OtcClient``: the one place that sends Start OTC requests.

Why one module of some 700 lines: one request path (``_attempt``, in steps) and one
short method per endpoint, most of it their docstrings and argument checks; the
pacing is ``_pacer``'s, the wire ``_wire``'s, the transport's errors ``_transport``'s.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Self, TypeVar
from urllib.parse import urlsplit

import aiohttp

from ._channel import Gate
from ._checks import (
    check_credential,
    check_id,
    check_int,
    check_location_id,
    check_number,
    check_url,
)
from ._lifecycle import Closing
from ._observe import Observer
from ._pacer import Pacer, paused_error
from ._transport import (
    MAX_BODY,
    read_body,
    redirect_error,
    timeout_error,
    too_long,
    transport_error,
)
from ._version import USER_AGENT
from ._wire import end_otc, initial_load, shipments, start_otc
from ._wire.common import (
    ERROR_KEY,
    TASK_TYPE,
    error_from_answer,
    error_in_success,
    retry_after_seconds,
)
from .auth import StaticToken, TokenProvider
from .clock import Clock, SystemClock, monotonic_of
from .errors import (
    AuthenticationError,
    FlipkartOtcError,
    PageLimitError,
    TransportError,
)
from .limiter import SharedLimiter
from .models import EndOtc, InitialLoad, OtcSnapshot, ScannedShipment, ShipmentPage
from .ratelimit import MAX_HOLD, RATE_MIN, Bucket, RateLimit, check_share
from .retry import RetryPolicy, is_retryable

__all__ = [
    "PRODUCTION_BASE_URL",
    "SANDBOX_BASE_URL",
    "START_OTC_PATH",
    "USER_AGENT",
    "OtcClient",
    "check_location_id",
]

PRODUCTION_BASE_URL = "https://api.flipkart.net/sellers"
SANDBOX_BASE_URL = "https://sandbox-api.flipkart.net/sellers"
START_OTC_PATH = start_otc.PATH
DEFAULT_MAX_CONNECTIONS = 100
#: How many pages one read of the scanned shipments follows at most (25 a page: 10,000).
DEFAULT_MAX_PAGES = 400

T = TypeVar("T")

logger = logging.getLogger("flipkart_otc")
logger.addHandler(logging.NullHandler())


class OtcClient(Closing):
    """Async client for the FE visit's endpoints: Start OTC (``start_otc_details``,
    ``fetch_body``), ``initial_load``, ``scanned_shipments`` and ``end_otc_details``.

    ``auth`` is a bearer token string or a :class:`~flipkart_otc.TokenProvider`
    such as :class:`~flipkart_otc.ClientCredentials`. A ``session`` you pass is
    borrowed and never closed; one the client creates is closed by
    :meth:`aclose` or by leaving ``async with``. ``timeout`` bounds each
    attempt (not the wait for a connection); ``retry`` says which failures are
    retried and how; at most ``max_connections`` requests are in flight;
    ``rate_limit`` (a :class:`~flipkart_otc.RateLimit`) caps requests per second.
    A 429 pauses every request of the client for its ``Retry-After`` (read against
    the server's own ``Date`` when it is a date; at most
    :data:`~flipkart_otc.ratelimit.MAX_HOLD` seconds), with a rate limit or without:
    Flipkart throttles per application. ``observer`` (such as a
    :class:`~flipkart_otc.metrics.Metrics`) is told of each attempt, 429 and wait.
    ``clock`` (a :class:`~flipkart_otc.clock.Clock`) times the pacing and pauses, so
    tests can move it by hand. ``limiter`` (a :class:`~flipkart_otc.SharedLimiter`,
    such as :class:`~flipkart_otc.sinks.RedisRateLimiter`) shares the rate limit and
    the 429's pauses with the other processes of the application.

    >>> async with OtcClient(ClientCredentials(app_id, app_secret)) as client:  # doctest: +SKIP
    ...     snap = await client.start_otc_details("LOC1")
    ...     for fe_id, detail in snap.details.items():
    ...         print(fe_id, detail.fe_name, detail.expires_at)
    """

    def __init__(
        self,
        auth: str | TokenProvider,
        *,
        base_url: str = PRODUCTION_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        rate_limit: RateLimit | None = None,
        observer: Observer | None = None,
        clock: Clock | None = None,
        limiter: SharedLimiter | None = None,
    ) -> None:
        if isinstance(auth, str):
            auth = StaticToken(auth)
        elif not isinstance(auth, TokenProvider):
            raise TypeError(
                f"auth must be a token string or a TokenProvider, got {type(auth).__name__}"
            )
        base_url = check_url("base_url", base_url)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if retry is None:
            retry = RetryPolicy()
        elif not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        check_int("max_connections", max_connections)
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit, got {type(rate_limit).__name__}")
        if observer is not None and not isinstance(observer, Observer):
            raise TypeError(f"observer must be an Observer, got {type(observer).__name__}")
        self._observer = observer
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock must be a Clock, got {type(clock).__name__}")
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._monotonic = monotonic_of(self._clock)
        # With a rate limit, every request books its turn; a 429 pauses them all, with a
        # rate limit or without (the throttle is the application's).
        self._rate_limit = rate_limit
        self._max_pause = retry.max_retry_after
        self._pacer = Pacer(
            Bucket(rate_limit) if rate_limit is not None else None, self._clock, self._max_pause
        )
        self._lanes: dict[float, Pacer] = {}  # by share of the rate limit
        if limiter is not None:
            if not isinstance(limiter, SharedLimiter):
                raise TypeError(f"limiter must be a SharedLimiter, got {type(limiter).__name__}")
            if rate_limit is None:
                raise ValueError("a limiter needs a rate_limit (this process's own cap)")
        self._limiter = limiter
        self._hold_capped = False  # a capped pause was logged (once at WARNING)
        self._auth = auth
        # read as is on each request: one coroutine fewer than auth.token()
        self._static = auth.value if type(auth) is StaticToken else None
        self._checked: str | None = self._static  # the last provider token found usable
        self._base_url = base_url.rstrip("/")
        self._url = self._base_url + START_OTC_PATH
        self._timeout = aiohttp.ClientTimeout(total=float(timeout))
        self._session = session
        self._owns_session = session is None
        # Requests wait here, before their timeout starts, so that aiohttp's pool never
        # queues one: time spent waiting for a connection is not charged to the request.
        self._gate = Gate(max_connections if session is None else _pool_size(session))
        self._closed = False
        self._policy = retry
        self._send = retry.wrap(self._attempt)

    def __repr__(self) -> str:
        return f"<OtcClient url={self._url!r} auth={type(self._auth).__name__}>"

    @property
    def auth(self) -> TokenProvider:
        """The token provider this client uses."""
        return self._auth

    @property
    def url(self) -> str:
        """The full Start OTC URL requests go to."""
        return self._url

    @property
    def rate_limit(self) -> RateLimit | None:
        """The cap on requests per second, if any."""
        return self._rate_limit

    @property
    def max_connections(self) -> int:
        """How many requests may be in flight at once (more wait, untimed, for a turn)."""
        return self._gate.size

    def ensure_connections(self, count: int) -> None:
        """Let at least ``count`` requests be in flight at once, when the session is the
        client's own (a borrowed session's pool is the lender's to size). The watcher
        calls this with its ``max_concurrency``."""
        if self._owns_session:
            self._gate.widen(count)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has run."""
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this OtcClient is closed")
        if self._session is None:
            # the gate bounds connections: the pool itself must not queue (limit=0)
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def __aenter__(self) -> Self:
        self._get_session()
        return self

    async def aclose(self) -> None:
        """Close the session if the client created it. Safe to call twice."""
        self._closed = True
        self._pacer.close()
        for lane in self._lanes.values():
            lane.close()
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def start_otc_details(
        self, location_id: str, *, task_type: str = TASK_TYPE
    ) -> OtcSnapshot:
        """The FEs now on the Start OTC page of ``location_id``, with their codes.

        Transient failures are retried per the client's :class:`RetryPolicy`;
        what is left raises a :class:`~flipkart_otc.FlipkartOtcError`.
        """
        location_id = check_location_id(location_id)
        body = await self.fetch_body(location_id, task_type=task_type)
        return start_otc.parse_snapshot(body, location_id, self._now())

    async def initial_load(
        self, location_id: str, *, patience: float = 0.0, share: float = 1.0
    ) -> InitialLoad:
        """The FEs now at ``location_id`` on any page of the visit (Start OTC, scanning,
        End OTC), with their task ids, and the seller's OTC flow. Retried like
        :meth:`start_otc_details`; ``patience`` and ``share`` as for :meth:`fetch_body`.
        """
        location_id = check_location_id(location_id)
        return await self._call(
            "POST",
            initial_load.PATH,
            initial_load.request_body(location_id),
            lambda body: initial_load.parse_initial_load(body, location_id, self._now()),
            success_key=initial_load.SUCCESS_KEY,
            location_id=location_id,
            patience=_patience(patience),
            share=share,
        )

    async def end_otc_details(self, fe_id: str, task_id: str, *, share: float = 1.0) -> EndOtc:
        """The End OTC for an FE's task, and the summary of what was scanned.

        Asking makes a code, so no failure that may have reached Flipkart is
        retried: only a connection that could not be made (nothing was sent) is
        tried again, up to the client's policy; anything else is raised for the
        caller to decide. The OTC is left out of the result's ``repr()``. Under a
        rate limit it yields its turn to nothing: the desk waits for this code.
        """
        fe_id, task_id = check_id("fe_id", fe_id), check_id("task_id", task_id)
        return await self._call(
            "POST",
            end_otc.PATH,
            end_otc.request_body(fe_id, task_id),
            lambda body: end_otc.parse_end_otc(body, fe_id, task_id),
            success_key=end_otc.SUCCESS_KEY,
            retryable=_unsent,
            share=share,
        )

    async def scanned_shipments(
        self, task_id: str, fe_id: str, *, page_size: int = shipments.PAGE_SIZE
    ) -> AsyncIterator[ScannedShipment]:
        """Every shipment the FE has scanned for the task, page after page, each once:
        ``async for shipment in client.scanned_shipments(task_id, fe_id): ...``.

        The pages of :meth:`shipment_pages` from the first. Flipkart asks for a poll
        every 30 s while the FE scans; a fresh call starts again from the first page.
        """
        async for page in self.shipment_pages(task_id, fe_id, page_size=page_size):
            for shipment in page.shipments:
                yield shipment

    async def shipment_pages(
        self,
        task_id: str,
        fe_id: str,
        *,
        cursor: str | None = None,
        page_size: int = shipments.PAGE_SIZE,
        stop_short: bool = False,
        max_pages: int = DEFAULT_MAX_PAGES,
        patience: float = 0.0,
        share: float = 1.0,
    ) -> AsyncIterator[ShipmentPage]:
        """The pages of the FE's scanned shipments, from the first, or from ``cursor``
        (a :attr:`ShipmentPage.cursor` this gave before: the watcher reads on from where
        its last read ended, so a poll costs one request however many pages came
        before [inferred from the spec note's decoded page token]).

        The first page is a POST, each later one a GET of the URL the page before gave
        (only on this client's host). A read ends at a page that says there is no more,
        has no shipment, brings no shipment this read had not yielded (a server that
        hands out the same shipments under fresh cursors), or gives a URL already
        followed; with ``stop_short``, also at a page shorter than ``page_size``
        (nothing more now, whichever way the has-more flag is read: another page, or
        the FE still scanning). Past ``max_pages`` pages it raises
        :class:`~flipkart_otc.PageLimitError`. No tracking id is yielded twice in one
        read. ``patience`` and ``share`` as for :meth:`fetch_body`.
        """
        task_id, fe_id = check_id("task_id", task_id), check_id("fe_id", fe_id)
        check_int("page_size", page_size)
        check_int("max_pages", max_pages)
        patience = _patience(patience)
        url = cursor
        followed: set[str] = set()
        yielded: set[str] = set()
        for _ in range(max_pages):
            if url is None:
                method, target, payload = (
                    "POST",
                    shipments.PATH,
                    shipments.first_body(task_id, fe_id, page_size),
                )
            else:
                method, target, payload = "GET", url, None
                followed.add(url)
            page = await self._call(
                method,
                target,
                payload,
                shipments.parse_page,
                success_key=shipments.SUCCESS_KEY,
                patience=patience,
                share=share,
            )
            new = [s for s in page.shipments if s.tracking_id not in yielded]
            yielded.update(s.tracking_id for s in new)
            if page.next_url is None:
                yield ShipmentPage(tuple(new), url, False)
                return
            target = shipments.next_target(self._base_url, page.next_url)
            yield ShipmentPage(tuple(new), target, True)
            if target in followed or not new:
                return  # a cursor that repeats, or pages that bring nothing new
            if stop_short and len(page.shipments) < page_size:
                return  # nothing more now: what the FE scans next comes at the next read
            url = target
        raise PageLimitError(
            f"the scanned shipments of FE {fe_id!r} (task {task_id!r}) did not end within "
            f"{max_pages} pages",
            pages=max_pages,
        )

    def fetch_body(
        self,
        location_id: str,
        *,
        task_type: str = TASK_TYPE,
        patience: float = 0.0,
        share: float = 1.0,
    ) -> Awaitable[bytes]:
        """The raw body of a successful (HTTP 200) answer, retried like any call:
        ``body = await client.fetch_body("LOC1")``.

        Under a binding ``rate_limit``, the request yields its turn to requests
        queued up to ``patience`` seconds after it (the watcher's idle locations
        yield to those with an FE at the door), and no longer; with ``share`` below 1
        it also takes its turn among the requests that may use only that share of
        the rate (a watcher's ``PollPolicy(budget_share=...)``).

        For callers that parse incrementally (the watcher does); most code
        wants :meth:`start_otc_details`. Bad arguments raise at the call. It
        hands back the request's own coroutine, so that a poll does not pay
        for one more coroutine layer at each of the request's waits.
        """
        location_id = check_location_id(location_id)
        if task_type != TASK_TYPE:
            raise ValueError(f"task_type must be {TASK_TYPE!r}, got {task_type!r}")
        return self._send(
            "POST",
            self._url,
            start_otc.request_body(location_id),
            start_otc.SUCCESS_KEY,
            location_id,
            _patience(patience),
            self._lane_of(share),
        )

    def _lane_of(self, share: float) -> Pacer | None:
        """The lane of requests that may use only ``share`` of the rate (None: all of it)."""
        if share == 1.0:
            return None
        check_share("share", share)
        if self._rate_limit is None:
            raise ValueError("share needs a rate_limit on the client (there is no rate)")
        return self._lane(share)

    async def _call(
        self,
        method: str,
        path: str,
        payload: bytes | None,
        parse: Callable[[bytes], T],
        *,
        success_key: str,
        location_id: str | None = None,
        retry: RetryPolicy | None = None,
        retryable: Callable[[BaseException], bool] | None = None,
        patience: float = 0.0,
        share: float = 1.0,
    ) -> T:
        """One API call: ``method`` on ``path`` (below the base URL, or an absolute URL
        on its host) with a JSON ``payload``, its 200 body handed to ``parse``.

        ``retry`` replaces the client's policy for this call, and ``retryable`` what it
        retries: an endpoint that makes something (an End OTC) retries only what
        cannot have reached the server. Every endpoint method is this and a wire
        module.
        """
        url = path if path.startswith(("http://", "https://")) else self._base_url + path
        send = self._send
        if retry is not None or retryable is not None:
            send = (retry or self._policy).wrap(self._attempt, retryable=retryable or is_retryable)
        lane = self._lane_of(share)
        body = await send(method, url, payload, success_key, location_id, patience, lane)
        return parse(body)

    async def _take_turn(
        self, location_id: str | None, patience: float, lane: Pacer | None
    ) -> None:
        """Wait for this request's turn: its share's, the rate limit's (a 429's pause
        included) and the other processes' (``limiter``)."""
        started = self._monotonic()
        if lane is not None:
            await lane.turn(location_id, patience)
        pacer = self._pacer
        if not pacer.idle:
            await pacer.turn(location_id, patience)
        if self._limiter is not None:
            await self._shared_turn(self._limiter, location_id)
        if self._observer is not None and self._rate_limit is not None:
            self._observer.paced(self._monotonic() - started)

    def _lane(self, share: float) -> Pacer:
        """The turns of requests that may use only ``share`` of the rate limit (one lane
        per share, kept: a watcher asks for the same one at every poll)."""
        lane = self._lanes.get(share)
        if lane is None:
            assert self._rate_limit is not None
            limit = self._rate_limit
            bucket = Bucket(RateLimit(max(RATE_MIN, limit.rate * share), limit.burst))
            lane = self._lanes[share] = Pacer(bucket, self._clock, self._max_pause)
            if self._pacer.resume_at > -math.inf:
                lane.pause(self._pacer.resume_at)
        return lane

    @property
    def limiter(self) -> SharedLimiter | None:
        """The limiter shared with other processes, if any."""
        return self._limiter

    @property
    def budget_rate(self) -> float | None:
        """The requests a second this process's watcher may aim a budget at: the rate
        limit, divided among the limiter's workers (None: no rate limit)."""
        if self._rate_limit is None:
            return None
        workers = self._limiter.workers if self._limiter is not None else 1
        return self._rate_limit.rate / workers

    async def _shared_turn(self, limiter: SharedLimiter, location_id: str | None) -> None:
        """Wait for the turn the other processes leave this request."""
        # A wait for the rate is at most one request's spacing (the bucket's emission
        # interval); a longer one is a pause that a worker's 429 asked for.
        spacing = 1.0 / self._rate_limit.rate if self._rate_limit is not None else 0.0
        while (wait := await limiter.acquire()) > 0:
            if wait > self._max_pause:
                raise paused_error(location_id, wait)
            if wait > spacing * 1.01 + 1e-3:  # another worker's 429: the queue waits too
                self._pacer.pause(self._monotonic() + wait)
            await self._pacer.sleep(self._monotonic() + wait)

    def _now(self) -> datetime:
        """Now on the client's clock, as an aware datetime (an answer's ``fetched_at``)."""
        return datetime.fromtimestamp(self._clock.time(), UTC)

    def paused_for(self) -> float:
        """Seconds left of the pause a 429 asked for (0: none): no request of this client
        is sent before it ends."""
        return max(0.0, self._pacer.resume_at - self._monotonic())

    def _hold(self, wait: float) -> float:
        """A 429 asked for ``wait`` seconds: pause every request of the client, for at
        most :data:`~flipkart_otc.ratelimit.MAX_HOLD` (said once in the log). The
        pause kept."""
        if wait > MAX_HOLD:
            level = logging.DEBUG if self._hold_capped else logging.WARNING
            self._hold_capped = True
            logger.log(
                level,
                "the API asked for a pause of %.0fs; holding %.0fs (the longest kept), "
                "then trying again",
                wait,
                MAX_HOLD,
            )
            wait = MAX_HOLD
        until = self._monotonic() + wait
        self._pacer.pause(until)
        for lane in self._lanes.values():
            lane.pause(until)
        return wait

    def _usable(self, token: str) -> str:
        """A provider's token, checked once: a header cannot carry a control character."""
        if token is not self._checked:
            try:
                token = check_credential("token", token)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"the token provider gave an unusable token: {exc}") from None
            self._checked = token
        return token

    async def _attempt(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        success_key: str,
        location_id: str | None,
        patience: float = 0.0,
        lane: Pacer | None = None,
    ) -> bytes:
        """One attempt: its turn, its token, its connection, the request (sent again once
        with a fresh token after a 401), and what the answer means."""
        # The request is written out here, in one coroutine with its 401 refresh: every
        # frame between the caller and aiohttp is resumed again at each of a request's
        # waits, so the steps it calls are plain functions, never coroutines.
        if lane is not None or not self._pacer.idle or self._limiter is not None:
            await self._take_turn(location_id, patience, lane)
        session = self._session if self._session is not None else self._get_session()
        token = self._static
        if token is None:
            token = self._usable(await self._auth.token(session, self._timeout))
        gate = self._gate
        if not gate.enter_nowait():
            await gate.enter()
        error: FlipkartOtcError | None = None
        try:
            refreshed = False
            while True:
                started = time.perf_counter()
                outcome: object = "-"
                failure: FlipkartOtcError | None = None
                try:
                    async with session.request(
                        method,
                        url,
                        data=payload,
                        headers={
                            "Authorization": "Bearer " + token,
                            "Content-Type": "application/json",
                            "User-Agent": USER_AGENT,
                        },
                        timeout=self._timeout,
                        allow_redirects=False,  # a 301 would turn the POST into a GET
                        raise_for_status=False,  # a borrowed session's setting must not class
                    ) as response:
                        status = outcome = response.status
                        length = response.content_length
                        if length is not None and length <= MAX_BODY:  # no extra coroutine
                            body = await response.read()
                        else:
                            body = await read_body(response)
                        headers = response.headers
                except TimeoutError as exc:
                    outcome = "timeout"
                    failure = timeout_error(
                        exc, "request", self._timeout.total or 0, location_id=location_id
                    )
                except aiohttp.ClientError as exc:
                    outcome = type(exc).__name__
                    failure = transport_error(
                        exc, "request", location_id=location_id, secrets=(token,)
                    )
                finally:
                    if outcome != "-":  # "-": cancelled
                        self._told(method, url, location_id, outcome, started)
                if failure is not None:  # raised outside its handler: no request __context__
                    raise failure from failure.__cause__
                error = None
                if status == 200:
                    if ERROR_KEY not in body and len(body) <= MAX_BODY:  # the usual success
                        return body
                    error = self._error_in_200(body, url, success_key, location_id, token)
                    if error is None:
                        return body
                    # a 200 carrying UNAUTHORIZED_ERROR is refused like a 401
                    if refreshed or not isinstance(error, AuthenticationError):
                        raise error
                elif status != 401 or refreshed:
                    break
                fresh = await self._auth.refresh(session, self._timeout, token)
                if fresh is None:
                    break
                token, refreshed = self._usable(fresh), True
        finally:
            gate.leave()
        if error is not None:
            raise error
        wait = self._throttled(status, headers)
        if wait and self._limiter is not None:  # every worker of the fleet waits too
            await self._limiter.hold(wait)
        raise self._refusal(status, headers, body, url, location_id, wait, token)

    def _told(
        self, method: str, url: str, location_id: str | None, outcome: object, started: float
    ) -> None:
        """An attempt's outcome (a status, "timeout" or the transport error's name), to
        the observer and the debug log."""
        if self._observer is not None:
            kind = outcome if type(outcome) is int or outcome == "timeout" else "error"
            self._observer.request(method, url, kind, time.perf_counter() - started)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s location=%s status=%s %.1fms",
                method,
                urlsplit(url).path,
                location_id,
                outcome,
                (time.perf_counter() - started) * 1000,
            )

    @staticmethod
    def _error_in_200(
        body: bytes, url: str, success_key: str, location_id: str | None, token: str
    ) -> FlipkartOtcError | None:
        """What a 200 that is not the usual success means: too long (raised), an error
        it carries, or None (a success after all)."""
        if len(body) > MAX_BODY:
            raise too_long(urlsplit(url).path, body, location_id, (token,))
        return error_in_success(body, success_key, location_id, secrets=(token,))

    def _throttled(self, status: int, headers: Mapping[str, str]) -> float | None:
        """A 429's ``Retry-After`` in seconds (read against the answer's ``Date``), held
        by every request of the client (capped); None for another status."""
        if status != 429:
            return None
        wait = retry_after_seconds(
            headers.get("Retry-After"),
            datetime.fromtimestamp(self._clock.time(), UTC),
            headers.get("Date"),
        )
        if self._observer is not None:
            self._observer.throttled(wait)
        return self._hold(wait) if wait else wait  # the throttle is the application's

    @staticmethod
    def _refusal(
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        url: str,
        location_id: str | None,
        wait: float | None,
        token: str,
    ) -> FlipkartOtcError:
        """The exception for an answer that is not a success."""
        if 300 <= status < 400:
            return redirect_error(status, headers.get("Location"), url, location_id=location_id)
        return error_from_answer(status, body, location_id, wait, secrets=(token,), url=url)

def _patience(patience: float) -> float:
    if patience:
        check_number("patience", patience, minimum=0.0)
    return patience


def _unsent(exc: BaseException) -> bool:
    """Whether a failure happened before the request could reach the server: no
    connection could be made (refused, no route, no such host)."""
    return isinstance(exc, TransportError) and isinstance(
        exc.__cause__, aiohttp.ClientConnectorError
    )


def _pool_size(session: aiohttp.ClientSession) -> int:
    """How many connections a borrowed session's pool gives at once (0: no limit)."""
    connector = session.connector
    if connector is None:
        return 0
    limits = [n for n in (connector.limit, getattr(connector, "limit_per_host", 0)) if n]
    return min(limits, default=0)
