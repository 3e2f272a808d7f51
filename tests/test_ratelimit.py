"""The rate cap: a pure bucket under any sequence of requests and pauses, then the client
against a server on 127.0.0.1 that records when each request arrives."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from _helpers import serve
from aiohttp import web
from hypothesis import example, given
from hypothesis import strategies as st

from flipkart_otc import (
    ManualClock,
    OtcClient,
    OtcWatcher,
    PollPolicy,
    RateLimit,
    RateLimitedError,
    RetryPolicy,
)
from flipkart_otc.ratelimit import MAX_HOLD, RATE_MIN, Bucket
from flipkart_otc.simulator import Fault, FaultKind, Simulator

steps = st.lists(
    st.tuples(
        st.floats(0, 2, allow_nan=False),  # time passing before the step
        st.one_of(st.just(None), st.floats(0, 5, allow_nan=False)),  # a request, or a pause
    ),
    max_size=80,
)


@example(rate=1.0, burst=3, script=[(0.0, 5.0), (0.0, None), (0.0, None), (0.0, None)])
@given(st.floats(0.5, 50), st.integers(1, 6), steps)
def test_bookings_respect_the_cap_and_every_pause(
    rate: float, burst: int, script: list[tuple[float, float | None]]
) -> None:
    bucket = Bucket(RateLimit(rate, burst))
    now = 0.0
    booked: list[tuple[int, float]] = []  # (step, instant booked)
    pauses: list[tuple[int, float]] = []  # (step, end)
    for step, (dt, pause) in enumerate(script):
        now += dt
        if pause is None:
            at = bucket.book(now)
            assert at >= now
            booked.append((step, at))
        else:
            bucket.pause(now + pause)
            pauses.append((step, now + pause))
    times = sorted(at for _, at in booked)
    for i, start in enumerate(times):  # any one-second window from a booking on
        in_window = sum(1 for t in times[i:] if t < start + 1.0)
        assert in_window <= math.floor(rate) + burst
    for made, until in pauses:  # nothing booked after a pause goes before its end
        assert all(at >= until for step, at in booked if step > made)
        # and it resumes gently: in its first second, at most the rate and one more
        after = [at for step, at in booked if step > made and at < until + 1.0]
        assert len(after) <= math.floor(rate) + 1


def test_bad_rate_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate must be a positive"):
        RateLimit(0)
    with pytest.raises(ValueError, match="burst must be >= 1"):
        RateLimit(5, burst=0)
    with pytest.raises(TypeError, match="rate_limit must be a RateLimit"):
        OtcClient("t", rate_limit=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # 1/rate is inf, the tolerance NaN: nothing was capped (50 of 50 at once)
        ({"rate": 1e-320}, r"rate must be .* between 1e-06 and 1e\+06"),
        ({"rate": 1e300}, r"rate must be .* between"),
        ({"rate": math.nan}, r"rate must be .* between"),
        # OverflowError from OtcClient, not ValueError from RateLimit
        ({"rate": 5, "burst": 10**400}, r"burst must be >= 1 and <= 1,000,000"),
    ],
)
def test_rate_limits_out_of_range_are_refused_by_name_and_range(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_the_smallest_rate_accepted_still_caps() -> None:
    bucket = Bucket(RateLimit(RATE_MIN, burst=2))
    assert [bucket.book(0.0) for _ in range(3)] == [0.0, 0.0, 1 / RATE_MIN]


def test_retry_waits_stay_finite_however_many_tries() -> None:
    # base_delay * 2**attempt overflowed a float after 1,024 attempts
    policy = RetryPolicy(max_tries=5000, max_time=1e9, base_delay=0.001, max_delay=5.0)
    waits = policy.delays(started=time.monotonic())
    next(waits)
    assert all(0 <= waits.send(TimeoutError()) <= 5.0 for _ in range(2000))


async def test_the_server_never_sees_more_than_the_cap_in_a_second() -> None:
    arrivals: list[float] = []

    async def api(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.json_response({"otcDetails": {}})

    limit = RateLimit(rate=10, burst=3)
    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
        OtcClient("t", base_url=origin + "/sellers", rate_limit=limit) as client,
    ):
        await asyncio.gather(*(client.start_otc_details(f"LOC{i}") for i in range(30)))
    assert len(arrivals) == 30
    for i, start in enumerate(arrivals):
        assert sum(1 for t in arrivals[i:] if t < start + 1.0) <= 10 + 3
    assert (
        arrivals[-1] - arrivals[0] >= (30 - 3) / 10 - 0.05
    )  # the cap, not the server, paced them


async def test_a_429_pauses_every_request_of_the_client_then_resumes_gently() -> None:
    arrivals: list[tuple[str, float]] = []

    async def api(request: web.Request) -> web.Response:
        location = (await request.json())["sellerLocationId"]
        arrivals.append((location, time.monotonic()))
        if len(arrivals) == 1:
            return web.json_response(
                {"errorCode": "TOO_MANY", "message": "slow down"},
                status=429,
                headers={"Retry-After": "1"},
            )
        return web.json_response({"otcDetails": {}})

    retry = RetryPolicy(max_tries=1)  # the 429 comes back to the caller at once
    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
        OtcClient(
            "t", base_url=origin + "/sellers", retry=retry, rate_limit=RateLimit(50, 5)
        ) as c,
    ):
        with pytest.raises(RateLimitedError):
            await c.start_otc_details("LOC1")
        await asyncio.gather(*(c.start_otc_details(f"OTHER{i}") for i in range(6)))
    refused_at = arrivals[0][1]
    later = [at for _, at in arrivals[1:]]
    assert len(later) == 6
    assert min(later) >= refused_at + 1.0 - 0.01  # nobody went during the pause
    # no burst on resume: the six went at the rate after the pause (a late timer can only
    # delay them), not all at once
    assert max(later) >= refused_at + 1.0 + (6 - 1) / 50 - 0.01


async def test_a_pause_longer_than_the_policy_waits_raises_without_sending() -> None:
    sent: list[float] = []

    async def api(request: web.Request) -> web.Response:
        sent.append(time.monotonic())
        return web.json_response(
            {"errorCode": "TOO_MANY"}, status=429, headers={"Retry-After": "99999"}
        )

    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
        OtcClient("t", base_url=origin + "/sellers", rate_limit=RateLimit(5)) as client,
    ):
        for _ in range(3):
            with pytest.raises(RateLimitedError) as info:
                await client.start_otc_details("LOC1")
            # the pause kept is capped (MAX_HOLD), still beyond what the policy waits for
            assert info.value.retry_after is not None
            assert 60 < info.value.retry_after <= MAX_HOLD
    assert len(sent) == 1  # the two calls after the 429 sent nothing


# -- urgency: while the cap binds, the most urgent requests go first, none starves ------


async def test_while_the_cap_binds_urgent_requests_go_first() -> None:
    order: list[str] = []

    async def api(request: web.Request) -> web.Response:
        order.append((await request.json())["sellerLocationId"])
        return web.json_response({"otcDetails": {}})

    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
        OtcClient("t", base_url=origin + "/sellers", rate_limit=RateLimit(20)) as client,
    ):
        # the first takes the only token; the idle ones queue, then the urgent ones
        calls = [client.fetch_body(f"IDLE{i}", patience=60) for i in range(6)]
        calls += [client.fetch_body(f"FE{i}", patience=0) for i in range(3)]
        await asyncio.gather(*calls)
    assert order == ["IDLE0", "FE0", "FE1", "FE2", *(f"IDLE{i}" for i in range(1, 6))]


async def test_a_patient_request_waits_no_longer_than_its_patience() -> None:
    # A stream of urgent requests that never ends while the patient one waits: each
    # urgent one that reaches the server queues the next. The patient one goes before
    # every urgent one queued more than its patience after it.
    patience = 0.3
    queued: dict[str, float] = {}
    order: list[str] = []
    patient_done = asyncio.Event()
    tasks: list[asyncio.Task[bytes]] = []

    async def api(request: web.Request) -> web.Response:
        location = (await request.json())["sellerLocationId"]
        order.append(location)
        if location.startswith("FE") and not patient_done.is_set():
            queue(f"FE{len(queued)}", 0.0)
        if location == "PATIENT":
            patient_done.set()
        return web.json_response({"otcDetails": {}})

    def queue(location: str, patience: float) -> None:
        queued[location] = time.monotonic()
        tasks.append(asyncio.ensure_future(client.fetch_body(location, patience=patience)))

    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
        OtcClient("t", base_url=origin + "/sellers", rate_limit=RateLimit(20)) as client,
    ):
        for i in range(3):
            queue(f"FE{i}", 0.0)
        queue("PATIENT", patience)
        await patient_done.wait()
        await asyncio.gather(*tasks)
    served = order.index("PATIENT")
    later = [loc for loc in order[served + 1 :] if loc.startswith("FE")]
    assert later, "urgent requests kept coming after the patient one went"
    overtook = [loc for loc in order[:served] if queued[loc] > queued["PATIENT"] + patience]
    assert overtook == []
    assert len(order) > 6  # urgent ones did overtake it within its patience


async def test_a_watcher_under_a_binding_cap_polls_fe_locations_most_and_starves_none() -> None:
    fe_locs, active_locs, idle_locs = ["FE1", "FE2"], ["ACT1", "ACT2"], ["IDLE1", "IDLE2"]
    async with Simulator() as sim:
        for loc in [*fe_locs, *active_locs]:
            sim.world.open_task(loc)
        for loc in fe_locs:
            sim.world.arrive(loc, ttl=3600)
        policy = PollPolicy(idle=0, patience_active=0.25, patience_idle=0.5)
        async with (
            sim.client(rate_limit=RateLimit(40)) as client,
            OtcWatcher(client, [*fe_locs, *active_locs, *idle_locs], interval=0, policy=policy),
        ):
            await sim.wait_for_requests(120)  # three seconds at the cap
    counts = {loc: sim.requests[loc] for loc in [*fe_locs, *active_locs, *idle_locs]}
    fe, active, idle = (
        min(counts[loc] for loc in group) for group in (fe_locs, active_locs, idle_locs)
    )
    assert fe > max(counts[loc] for loc in active_locs)
    assert active > max(counts[loc] for loc in idle_locs)
    assert idle >= 2  # polled again after its first poll: not starved


async def test_a_429_holds_every_location_then_their_polls_resume_spread_out() -> None:
    clock = ManualClock()
    locations = [f"LOC{i}" for i in range(40)]
    async with Simulator(clock=clock) as sim:
        for loc in locations:
            sim.world.open_task(loc)
        sim.faults.script(Fault(FaultKind.RATE_LIMITED, retry_after=60), location="LOC0")
        async with (
            sim.client(retry=RetryPolicy(max_tries=1)) as client,
            # seeded: where the held polls fall in their interval is drawn at random
            OtcWatcher(client, locations, interval=10, jitter=0, clock=clock, seed=3) as watcher,
        ):
            await watcher.wait_idle()  # t=0: LOC0's poll, the 429
            assert sum(sim.requests.values()) == 1
            per_second: list[int] = []
            for _ in range(80):
                before = sum(sim.requests.values())
                clock.advance(1)
                await watcher.wait_idle()
                while watcher.queued:
                    await anext(watcher)
                per_second.append(sum(sim.requests.values()) - before)
    # nothing is sent until t=60, then the 40 held polls spread over the next
    # interval: about 4 a second, not 40 at once
    assert sum(per_second[:59]) == 0
    assert sum(per_second[59:70]) >= 40  # every location once (LOC0 maybe twice)
    assert max(per_second) <= 10


# -- issue 25, 8 and 9: a 429's pause is the application's, bounded, and shown -----------


async def test_a_429_pauses_every_request_of_a_client_without_a_rate_limit() -> None:
    # with no rate_limit (the default), a 429 held only its own location: the others
    # went on with 69 requests during its two seconds
    arrivals: list[tuple[str, float]] = []
    refused = asyncio.Event()

    class Seen429(logging.Handler):  # the client logs each answer before acting on it
        def emit(self, record: logging.LogRecord) -> None:
            if "status=429" in record.getMessage():
                refused.set()

    async def api(request: web.Request) -> web.Response:
        location = (await request.json())["sellerLocationId"]
        arrivals.append((location, time.monotonic()))
        if len(arrivals) == 1:
            return web.json_response(
                {"errorCode": "TOO_MANY"}, status=429, headers={"Retry-After": "1"}
            )
        return web.json_response({"otcDetails": {}})

    log = logging.getLogger("flipkart_otc")
    handler, level = Seen429(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        async with (
            serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
            OtcClient("t", base_url=origin + "/sellers", retry=RetryPolicy(base_delay=0)) as c,
        ):
            first = asyncio.ensure_future(c.start_otc_details("LOC0"))  # retried after 1 s
            await refused.wait()  # the 429 is in the client's hands
            await asyncio.gather(first, *(c.start_otc_details(f"OTHER{i}") for i in range(20)))
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    refused_at = arrivals[0][1]
    later = [at for _, at in arrivals[1:]]
    assert len(later) == 21  # LOC0 again, and the twenty others
    assert min(later) >= refused_at + 1.0 - 0.01  # nobody went during the pause


async def test_a_retry_after_date_is_read_against_the_servers_own_date() -> None:
    # a server whose clock runs an hour fast asks for 5 s by date: not an hour and 5 s
    fast = datetime.now(UTC) + timedelta(hours=1)

    async def api(request: web.Request) -> web.Response:
        return web.json_response(
            {"errorCode": "TOO_MANY"},
            status=429,
            headers={
                "Date": format_datetime(fast, usegmt=True),
                "Retry-After": format_datetime(fast + timedelta(seconds=5), usegmt=True),
            },
        )

    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=RetryPolicy(max_tries=1)) as c,
    ):
        with pytest.raises(RateLimitedError) as info:
            await c.start_otc_details("LOC1")
        assert info.value.retry_after is not None and 4 <= info.value.retry_after <= 5
        assert 3 <= c.paused_for() <= 5


async def test_a_huge_retry_after_holds_at_most_max_hold_says_so_once_and_shows_in_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Retry-After: 31536000 stopped every poll for a year, with no log line and health()
    # still "running" with nothing to say why
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        for loc in ("LOC1", "LOC2"):
            sim.world.open_task(loc)
        year = Fault(FaultKind.RATE_LIMITED, retry_after=31_536_000)
        sim.faults.script(year, year, location="LOC1")
        async with sim.client(retry=RetryPolicy(max_tries=1)) as client:
            watcher = OtcWatcher(client, ["LOC1", "LOC2"], interval=1, jitter=0, clock=clock)
            async with watcher:
                await watcher.wait_idle()  # LOC1 at t=0: the 429
                assert sim.requests["LOC1"] == 1
                assert watcher.health().hold == pytest.approx(MAX_HOLD)
                for _ in range(int(MAX_HOLD) + 5):
                    clock.advance(1)
                    await watcher.wait_idle()
                    while watcher.queued:
                        await anext(watcher)
                # polled again once the capped hold ended: a second 429, a second hold
                # (LOC2, due just after LOC1, is held again)
                assert sim.requests["LOC1"] == 2 and sim.requests["LOC2"] == 0
                assert 0 < watcher.health().hold <= MAX_HOLD
                for _ in range(int(MAX_HOLD) + 5):
                    clock.advance(1)
                    await watcher.wait_idle()
                    while watcher.queued:
                        await anext(watcher)
                assert sim.requests["LOC1"] >= 3 and sim.requests["LOC2"] >= 2
                assert watcher.health().hold == 0
    capped = [r for r in caplog.records if "holding" in r.getMessage()]
    assert [r.levelname for r in capped].count("WARNING") == 1  # said once, not per 429


async def test_interval_0_against_a_location_that_fails_at_once_is_no_hot_loop() -> None:
    # `watch --interval 0` against a 404 sent 6,408 requests in 3 s: the back-off
    # doubled from the base interval, and from 0 it stayed 0
    clock = ManualClock()
    hits: list[float] = []

    async def api(request: web.Request) -> web.Response:
        hits.append(clock.monotonic())
        return web.Response(status=404, text="no such endpoint")

    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
        OtcClient(
            "t", base_url=origin + "/sellers", retry=RetryPolicy(max_tries=1), clock=clock
        ) as client,
        OtcWatcher(client, ["LOC1"], interval=0, jitter=0, clock=clock) as watcher,
    ):
        for _ in range(16):  # four seconds in quarters
            # (a hot loop never lets the watcher be idle: the guard ends the test)
            await asyncio.wait_for(watcher.wait_idle(), 10)
            while watcher.queued:
                await anext(watcher)
            clock.advance(0.25)
    # at 0, then after 1 s and 2 s more (doubling from the floor): 3, not thousands
    assert len(hits) == 3
    assert [round(b - a, 1) for a, b in itertools.pairwise(hits)] == [1.0, 2.0]


class SlowFleet:
    """A SharedLimiter whose every first answer is a wait of ``wait`` seconds, then a
    turn: what a fleet's bucket says at a rate below one request a second."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.asked = 0

    @property
    def workers(self) -> int:
        return 2

    async def acquire(self) -> float:
        self.asked += 1
        return self.wait if self.asked % 2 else 0.0

    async def hold(self, seconds: float) -> None:
        raise AssertionError("no 429 here")


@pytest.mark.parametrize(("wait", "paused"), [(1.9, False), (30.0, True)])
async def test_a_fleets_wait_for_its_rate_is_not_a_pause(wait: float, paused: bool) -> None:
    """At 0.5 requests a second a turn may be 2 s away: that is the rate, not a 429's
    pause (health() must not report one); a wait past one request's spacing is."""
    clock = ManualClock()

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=b'{"otcDetails": {}}', content_type="application/json")

    async with serve({("POST", "/sellers/v3/returns/otc/start/details"): answer}) as origin:
        fleet = SlowFleet(wait)
        async with OtcClient(
            "t", base_url=origin + "/sellers", rate_limit=RateLimit(0.5), limiter=fleet,
            clock=clock,
        ) as client:  # fmt: skip
            poll = asyncio.ensure_future(client.fetch_body("LOC1"))
            for _ in range(1000):  # the poll's first steps, to its first ask (no clock moves)
                if fleet.asked:
                    break
                await asyncio.sleep(0)
            assert fleet.asked == 1
            assert (client.paused_for() > 0) is paused
            clock.advance(wait)
            await poll
