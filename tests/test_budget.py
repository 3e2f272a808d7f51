"""``PollPolicy(budget_share=s)``: the pure budget (no sockets, no event loop), a model of
the watcher's scheduling under the client's caps (hypothesis), then over HTTP."""

from __future__ import annotations

import asyncio
import heapq
import math
import time

import pytest
from _helpers import serve
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from flipkart_otc import LocationStatus, OtcClient, OtcWatcher, PollPolicy, RateLimit
from flipkart_otc._budget import IDLE_PART, RESERVE, Budget, idle_interval
from flipkart_otc.ratelimit import Bucket

BASE = 10.0
IDLE, WAITING, FE = LocationStatus.NO_TASK, LocationStatus.ACTIVE, "fe"


def note(budget: Budget, location_id: str, state: object) -> None:
    if state == FE:
        budget.note(location_id, LocationStatus.ACTIVE, fes=True, failures=0)
    else:
        assert isinstance(state, LocationStatus)
        budget.note(location_id, state, fes=False, failures=0)


# -- the pure arithmetic -----------------------------------------------------------------


def test_the_spare_budget_is_spread_evenly_over_the_idle_locations() -> None:
    # 20 req/s, half of it: 10; 2 a second for the states; 8 spare over 800 idle: 100 s
    assert idle_interval(rate=20, share=0.5, demand=2, idle=800, base=BASE) == 100
    # never faster than the base interval
    assert idle_interval(rate=20, share=0.5, demand=2, idle=8, base=BASE) == BASE
    # FEs at the door ask for more than the budget: the idle still plan on 70 % of it
    # (the cap's queue serves the FEs first; an interval set now would last long after)
    assert idle_interval(rate=20, share=0.5, demand=50, idle=100, base=BASE) == pytest.approx(
        100 / (IDLE_PART * 10)
    )
    # tasks waiting for their FE ask for more than the budget: the idle share the
    # reserve, none starves
    assert idle_interval(
        rate=20, share=0.5, demand=50, waiting=50, idle=100, base=BASE
    ) == pytest.approx(100 / (RESERVE * 10))
    assert idle_interval(
        rate=20, share=0.5, demand=math.inf, waiting=math.inf, idle=1, base=0
    ) == 1 / (RESERVE * 10)
    assert idle_interval(rate=20, share=0.5, demand=0, idle=0, base=BASE) == math.inf


def test_the_budget_follows_arrivals_departures_additions_and_removals() -> None:
    budget = Budget(PollPolicy(budget_share=0.5), rate=20, base=BASE)
    assert budget.target == 10
    for i in range(400):
        note(budget, f"IDLE{i}", IDLE)
    assert budget.idle_interval() == pytest.approx(400 / 10)
    # ten FEs arrive (each polled every 5 s: 2 a second): the idle slow down
    for i in range(10):
        note(budget, f"FE{i}", FE)
    assert budget.demand == pytest.approx(2.0)
    assert budget.idle_interval() == pytest.approx(400 / 8)
    # twenty tasks open and wait for their FEs (every 10 s each: 2 a second more)
    for i in range(20):
        note(budget, f"IDLE{i}", WAITING)
    assert budget.idle_interval() == pytest.approx(380 / 6)
    # the FEs leave, their tasks close: the idle speed up again
    for i in range(10):
        note(budget, f"FE{i}", IDLE)
    assert budget.idle_interval() == pytest.approx(390 / 8)
    # locations removed and added
    for i in range(20, 220):
        budget.forget(f"IDLE{i}")
    assert budget.idle == 190
    assert budget.idle_interval() == pytest.approx(190 / 8)
    for i in range(20):
        budget.forget(f"IDLE{i}")
    assert budget.demand == 0
    assert budget.idle_interval() == pytest.approx(190 / 10)


def test_the_looks_at_visits_are_spent_before_the_idle_polls() -> None:
    budget = Budget(PollPolicy(budget_share=0.5), rate=20, base=BASE)
    for i in range(400):
        note(budget, f"IDLE{i}", IDLE)
    assert budget.idle_interval() == pytest.approx(400 / 10)
    # two FEs scanning at one location, looked at every 1 s: 2 requests a second
    budget.note_looks("LOC1", 2.0)
    assert budget.demand == pytest.approx(2.0)
    assert budget.idle_interval() == pytest.approx(400 / 8)
    budget.note_looks("LOC1", 0.0)  # the visit is over
    assert budget.idle_interval() == pytest.approx(400 / 10)
    budget.note_looks("LOC2", 1.0)
    budget.forget("LOC2")  # a location removed takes its looks with it
    assert budget.demand == 0


def test_only_a_task_waiting_for_its_first_fe_is_served_before_the_idle_plan() -> None:
    budget = Budget(PollPolicy(budget_share=0.5), rate=20, base=BASE)
    for i in range(100):
        note(budget, f"IDLE{i}", IDLE)
    for i in range(90):  # 90 tasks open, waiting for their FE: 9 a second of 10
        note(budget, f"WAIT{i}", WAITING)
    assert budget.idle_interval() == pytest.approx(100 / 1.0)  # what they leave
    for i in range(90):  # their FEs come and go; the tasks stay open a while
        note(budget, f"WAIT{i}", FE)
        note(budget, f"WAIT{i}", WAITING)
    # the same 9 a second, but no FE is coming to them now: the idle plan on 70 %
    assert budget.demand == pytest.approx(9.0)
    assert budget.idle_interval() == pytest.approx(100 / (IDLE_PART * 10))
    for i in range(90):  # closed; a new task later waits for a new FE
        note(budget, f"WAIT{i}", IDLE)
        note(budget, f"WAIT{i}", WAITING)
    assert budget.idle_interval() == pytest.approx(100 / 1.0)


def test_each_state_keeps_its_own_interval_and_idle_ones_take_the_budget() -> None:
    policy = PollPolicy(budget_share=0.8)
    budget = Budget(policy, rate=5, base=BASE)
    for i in range(100):
        note(budget, f"IDLE{i}", IDLE)

    def gap(status: LocationStatus, *, fes: bool = False, failures: int = 0) -> float:
        return (
            budget.next_poll(
                "LOCX",
                status,
                fes=fes,
                failures=failures,
                started=0.0,
                now=0.0,
                next_expiry=math.inf,
            )
            - 0.0
        )

    assert gap(LocationStatus.ACTIVE, fes=True) == 5.0  # FE at the door: the policy's
    assert gap(LocationStatus.ACTIVE) == BASE  # a task waiting for its FE: the base
    assert gap(LocationStatus.FAILING, failures=3) == 40.0  # backing off, as ever
    assert gap(LocationStatus.NO_TASK) == pytest.approx(101 / 4)  # 101 idle over 4 req/s
    assert budget.spent(0.0) == pytest.approx(4 / 10)  # four polls in the last 10 s
    assert budget.spent(20.0) == 0.0


@pytest.mark.parametrize(
    ("share", "error", "message"),
    [
        (0, ValueError, r"budget_share must be > 0 and <= 1"),
        (1.5, ValueError, r"budget_share must be > 0 and <= 1"),
        (math.nan, ValueError, r"budget_share must be > 0 and <= 1"),
        ("0.5", TypeError, r"budget_share must be a number"),
    ],
)
def test_a_bad_budget_share_is_refused_by_name(share: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        PollPolicy(budget_share=share)  # type: ignore[arg-type]


def test_a_budget_without_a_rate_limit_is_refused() -> None:
    with pytest.raises(ValueError, match=r"needs a client with a rate_limit.*no budget"):
        OtcWatcher(OtcClient("t"), ["LOC1"], policy=PollPolicy(budget_share=0.5))
    # with one, its rate is the budget's
    client = OtcClient("t", rate_limit=RateLimit(20, burst=5))
    watcher = OtcWatcher(client, ["LOC1"], policy=PollPolicy(budget_share=0.5))
    health = watcher.health()
    assert health.target_rate == 10 and health.rate_spent == 0 and health.hold == 0


# -- a model of the watcher under the caps: random arrivals, departures, pauses ----------

STATES = st.sampled_from([IDLE, WAITING, FE, LocationStatus.CLOSED])
ACTIONS = st.lists(
    st.tuples(
        st.floats(0, 20, allow_nan=False),  # seconds before the action
        st.one_of(
            st.tuples(st.just("state"), st.integers(0, 59), STATES),
            st.tuples(st.just("add"), st.integers(0, 59), STATES),
            st.tuples(st.just("remove"), st.integers(0, 59), STATES),
            st.tuples(st.just("pause"), st.integers(1, 8), STATES),
        ),
    ),
    max_size=25,
)


class Model:
    """The watcher's loop in small steps of time: due locations queue for a turn under
    the share's bucket (``s x R``) and the client's (``R``), most urgent first (each
    waits at most its patience behind later ones), as the client's pacer hands them out;
    each poll's answer is the location's state now, and the budget says when next."""

    STEP = 0.05

    def __init__(self, rate: float, burst: int, share: float, base: float) -> None:
        self.policy = PollPolicy(budget_share=share, patience_active=2, patience_idle=10)
        self.budget = Budget(self.policy, rate, base)
        self.lane = Bucket(RateLimit(rate * share, burst))
        self.cap = Bucket(RateLimit(rate, burst))
        self.rate, self.burst, self.share, self.base = rate, burst, share, base
        self.truth: dict[str, object] = {}
        self.due: dict[str, float] = {}
        self.queued: list[tuple[float, int, str]] = []
        self.waiting: set[str] = set()
        self.sent: list[float] = []
        self.polls: dict[str, list[tuple[float, float]]] = {}  # loc -> (sent, next due)
        self.paused: list[tuple[float, float]] = []
        self.added: dict[str, float] = {}
        self.now = 0.0
        self.order = 0

    def add(self, loc: str, state: object) -> None:
        if loc not in self.truth:
            self.truth[loc] = state
            self.due[loc] = self.now + int(loc[1:]) % 100 / 100 * self.base
            self.added[loc] = self.now

    def remove(self, loc: str) -> None:
        if self.truth.pop(loc, None) is not None:
            self.due.pop(loc, None)
            self.budget.forget(loc)

    def pause(self, seconds: float) -> None:
        until = self.now + seconds
        self.lane.pause(until)
        self.cap.pause(until)
        self.paused.append((self.now, until))

    def run_until(self, end: float) -> None:
        while self.now < end:
            for loc, due in list(self.due.items()):
                if due <= self.now and loc not in self.waiting:
                    state = self.truth[loc]
                    status = LocationStatus.ACTIVE if state == FE else state
                    urgency = self.policy.urgency(status, fes=state == FE)  # type: ignore[arg-type]
                    patience = self.policy.patience(urgency)
                    self.order += 1
                    heapq.heappush(self.queued, (self.now + patience, self.order, loc))
                    self.waiting.add(loc)
            while (
                self.queued
                and self.lane.free_at(self.now) <= self.now
                and self.cap.free_at(self.now) <= self.now
            ):
                _, _, loc = heapq.heappop(self.queued)
                self.waiting.discard(loc)
                if loc not in self.truth:
                    continue  # removed while it waited
                self.lane.book(self.now)
                self.cap.book(self.now)
                self.sent.append(self.now)
                state = self.truth[loc]
                fes = state == FE
                status = LocationStatus.ACTIVE if fes else state
                assert isinstance(status, LocationStatus)
                when = self.budget.next_poll(
                    loc,
                    status,
                    fes=fes,
                    failures=0,
                    started=self.now,
                    now=self.now,
                    next_expiry=math.inf,
                )
                self.due[loc] = when
                self.polls.setdefault(loc, []).append((self.now, when))
            self.now = round(self.now + self.STEP, 9)


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(1, 40),
    burst=st.integers(1, 5),
    share=st.floats(0.1, 1),
    base=st.floats(1, 15),
    start=st.lists(STATES, min_size=1, max_size=60),
    actions=ACTIONS,
)
def test_no_second_exceeds_the_share_of_the_rate_and_no_location_starves(
    rate: float,
    burst: int,
    share: float,
    base: float,
    start: list[object],
    actions: list[tuple[float, tuple[str, int, object]]],
) -> None:
    model = Model(rate, burst, share, base)
    for i, state in enumerate(start):
        model.add(f"L{i}", state)
    for dt, (kind, n, state) in actions:
        model.run_until(model.now + dt)
        if kind == "state" and f"L{n}" in model.truth:
            model.truth[f"L{n}"] = state
        elif kind == "add":
            model.add(f"L{n}", state)
        elif kind == "remove":
            model.remove(f"L{n}")
        elif kind == "pause":
            model.pause(float(n))
    # the longest any location may wait: its idle interval with the budget all taken
    # (the reserve), behind every other location's poll, its patience, and the pauses
    worst = (
        60 / (RESERVE * share * rate)
        + 60 / (share * rate)
        + model.policy.patience_idle
        + sum(until - began for began, until in model.paused)
        + 1.0
    )
    model.run_until(model.now + min(worst, 240.0))

    sent = model.sent
    cap = math.floor(share * rate + 1e-9) + burst
    j = 0
    for i, at in enumerate(sent):  # every one-second window from a request on
        while j < len(sent) and sent[j] < at + 1.0 - 1e-9:
            j += 1
        assert j - i <= cap
    for began, until in model.paused:  # nothing during a pause
        assert not [at for at in sent if began <= at < until - 1e-9]
    # each state's interval stays in its range: idle never faster than the base, and
    # never slower than the reserve allows
    for polls in model.polls.values():
        for at, due in polls:
            assert due - at >= min(base, 5.0) - 1e-9
            assert due - at <= 60 / (RESERVE * share * rate) * 1.1 + base
    # none starves: a location watched for longer than the worst wait was polled in it
    for loc in model.truth:
        if model.now - model.added[loc] > worst:
            last = max(at for at, _ in model.polls[loc])
            assert model.now - last <= worst


# -- over HTTP ---------------------------------------------------------------------------


async def test_200_idle_locations_at_half_of_20_a_second_all_polled_under_the_cap() -> None:
    arrivals: list[float] = []
    polled: set[str] = set()
    enough = asyncio.Event()

    async def api(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        polled.add((await request.json())["sellerLocationId"])
        if len(polled) == 200 and len(arrivals) >= 230:
            enough.set()
        return web.json_response(
            {"errorCode": "TRIPSHEET_TASK_NOT_FOUND", "message": "no task"}, status=400
        )

    locations = [f"IDLE{i}" for i in range(200)]
    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin,
        OtcClient("t", base_url=origin + "/sellers", rate_limit=RateLimit(20, burst=5)) as c,
        OtcWatcher(c, locations, interval=1, policy=PollPolicy(budget_share=0.5)) as watcher,
    ):
        await enough.wait()
        health = watcher.health()
    assert polled == set(locations)  # every location polled
    most, j = 0, 0
    for i, at in enumerate(arrivals):  # every one-second window from a request on
        while j < len(arrivals) and arrivals[j] < at + 1.0:
            j += 1
        most = max(most, j - i)
    assert most <= 10 + 5  # s x R plus the burst, well under the client's 20 + 5
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert 8.5 <= rate <= 10.5  # about 10 a second
    assert health.target_rate == 10
    assert health.rate_spent is not None and 7 <= health.rate_spent <= 11
    # 200 idle over 10 a second: each every 20 s (at the base of 1 s it would be 200/s)
    assert health.idle_interval == pytest.approx(20, rel=0.05)
