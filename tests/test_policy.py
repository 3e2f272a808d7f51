"""``PollPolicy`` on the pure location state machine: no sockets, no event loop, no clock.

Each test walks one location through answers and failures (``_location``) and asks the
policy when it is polled next, as the watcher does after each poll.
"""

from __future__ import annotations

import math

import pytest
from _helpers import FAILURES, T0, detail
from hypothesis import given
from hypothesis import strategies as st

from flipkart_otc import LocationStatus, PollPolicy, Urgency
from flipkart_otc._location import LocationState, answered, commit, failed
from flipkart_otc.policy import FAILING_MIN

BASE = 10.0


class Walk:
    """One location, its failures in a row, and the policy's answer after each poll."""

    def __init__(self, policy: PollPolicy) -> None:
        self.policy = policy
        self.state = LocationState("LOC1")
        self.failures = 0

    def poll(self, now: float, result: object) -> float:
        """A poll at ``now`` gave ``result`` (a dict of FE id -> (otc, expiry), or a
        status it failed with); when is the next one?"""
        if isinstance(result, LocationStatus):
            step = failed(self.state, FAILURES[result], result, now)
        else:
            assert isinstance(result, dict)
            details = {fe: detail(fe, otc, exp) for fe, (otc, exp) in result.items()}
            step = answered(self.state, details, None, now, emit_initial=True)
        commit(self.state, step, now)
        status = self.state.status
        self.failures = self.failures + 1 if status is LocationStatus.FAILING else 0
        return self.policy.next_poll(
            BASE,
            status,
            fes=bool(self.state.details),
            failures=self.failures,
            started=now,
            now=now,
            next_expiry=self.state.next_expiry,
        )


def test_a_day_of_one_location_under_the_default_policy() -> None:
    walk = Walk(PollPolicy())
    t = T0
    assert walk.poll(t, LocationStatus.NO_TASK) == t + 120  # idle: slow
    t += 120
    assert walk.poll(t, {}) == t + BASE  # a task, waiting for its FE: the base interval
    t += BASE
    # an FE arrives with a code expiring in 12 s: faster, as long as it is there ...
    assert walk.poll(t, {"fe1": ("111111", t + 12)}) == t + 5
    t += 5
    # (its expiry poll, 1 s after the expiry 7 s away, comes after the next 5 s step)
    assert walk.poll(t, {"fe1": ("111111", t + 7)}) == t + 5
    t += 5
    # expiry 2 s away: the poll 1 s after it comes before the 5 s step
    assert walk.poll(t, {"fe1": ("111111", t + 2)}) == t + 3
    t += 3  # the code expired 1 s ago: reported; the FE, still listed, at the FE pace
    assert walk.poll(t, {"fe1": ("111111", t - 1)}) == t + 5
    assert walk.state.next_expiry == math.inf
    t += 5
    assert walk.poll(t, {}) == t + BASE  # it left
    t += BASE
    assert walk.poll(t, LocationStatus.CLOSED) == t + 120  # the task closed


def test_failing_backs_off_doubling_to_the_cap_and_recovers_at_once() -> None:
    walk = Walk(PollPolicy(failing_max=60))
    t = T0
    walk.poll(t, {})
    gaps = []
    for _ in range(6):
        t += 1
        gaps.append(walk.poll(t, LocationStatus.FAILING) - t)
    assert gaps == [10, 20, 40, 60, 60, 60]
    assert walk.poll(t, {}) == t + BASE


def test_fixed_polls_every_state_at_the_base_interval() -> None:
    walk = Walk(PollPolicy.fixed())
    t = T0
    for result in (
        LocationStatus.NO_TASK,
        {},
        {"fe1": ("111111", t + 2)},
        LocationStatus.FAILING,
        LocationStatus.FAILING,
        LocationStatus.CLOSED,
    ):
        assert walk.poll(t, result) == t + BASE
        t += BASE


def test_a_slow_poll_is_followed_at_once_and_the_spread_scales_the_interval() -> None:
    def when(now: float, spread: float = 1.0) -> float:
        return PollPolicy().next_poll(
            BASE,
            LocationStatus.ACTIVE,
            fes=False,
            failures=0,
            started=0,
            now=now,
            next_expiry=math.inf,
            spread=spread,
        )

    assert when(25) == 25
    assert when(1, spread=1.1) == pytest.approx(11)


def test_the_base_interval_bounds_the_fe_and_idle_intervals() -> None:
    policy = PollPolicy(idle=120, fe_present=5)
    assert policy.interval(300, LocationStatus.NO_TASK, fes=False, failures=0) == 300
    assert policy.interval(2, LocationStatus.ACTIVE, fes=True, failures=0) == 2
    assert policy.interval(0, LocationStatus.CLOSED, fes=False, failures=0) == 120


def test_urgency_and_patience_by_class() -> None:
    policy = PollPolicy(patience_active=7, patience_idle=70)
    assert policy.urgency(LocationStatus.ACTIVE, fes=True) is Urgency.FE_PRESENT
    assert policy.urgency(LocationStatus.ACTIVE, fes=False) is Urgency.ACTIVE
    assert policy.urgency(None, fes=False) is Urgency.ACTIVE
    assert policy.urgency(LocationStatus.FAILING, fes=True) is Urgency.ACTIVE
    assert policy.urgency(LocationStatus.NO_TASK, fes=False) is Urgency.IDLE
    assert policy.urgency(LocationStatus.CLOSED, fes=False) is Urgency.IDLE
    assert [policy.patience(u) for u in Urgency] == [0, 7, 70]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("idle", -1.0, ValueError),
        ("fe_present", math.nan, ValueError),
        ("after_expiry", "1", TypeError),
        ("failing_max", True, TypeError),
        ("patience_idle", math.inf, ValueError),
    ],
)
def test_bad_settings_are_refused_by_name(field: str, value: object, error: type) -> None:
    with pytest.raises(error, match=field):
        PollPolicy(**{field: value})  # type: ignore[arg-type]


@given(
    status=st.sampled_from([None, *LocationStatus]),
    fes=st.booleans(),
    failures=st.integers(0, 10_000),
    base=st.floats(0, 3600),
    started=st.floats(0, 1e6),
    late=st.floats(0, 1e4),
    expiry=st.one_of(st.just(math.inf), st.floats(0, 2e6)),
)
def test_the_next_poll_is_never_in_the_past_nor_later_than_its_interval(
    status: LocationStatus | None,
    fes: bool,
    failures: int,
    base: float,
    started: float,
    late: float,
    expiry: float,
) -> None:
    policy = PollPolicy()
    now = started + late
    when = policy.next_poll(
        base, status, fes=fes, failures=failures, started=started, now=now, next_expiry=expiry
    )
    interval = policy.interval(base, status, fes=fes, failures=failures)
    assert now <= when <= max(now, started + interval)
    assert math.isfinite(when)


@pytest.mark.parametrize("policy", [PollPolicy(), PollPolicy.fixed()], ids=["default", "fixed"])
def test_a_failing_location_backs_off_from_a_floor_even_at_interval_0(policy: PollPolicy) -> None:
    # interval=0 used to double 0 into 0: a location failing at once was re-polled in a
    # hot loop (10,745 requests in 3 s)
    gaps = [
        policy.interval(0.0, LocationStatus.FAILING, fes=False, failures=n) for n in range(1, 8)
    ]
    assert min(gaps) >= FAILING_MIN > 0
    if policy.failing_max is not None:
        assert gaps == [FAILING_MIN * 2**n for n in range(7)]  # doubling from the floor
    walk = Walk(policy)
    t = T0
    walk.poll(t, {})
    assert walk.poll(t, LocationStatus.FAILING) >= t + FAILING_MIN


@pytest.mark.parametrize("field", ["patience_active", "patience_idle"])
def test_a_patience_of_none_is_refused_where_it_enters(field: str) -> None:
    # it was accepted, then killed the watcher with a TypeError once the rate limit bound
    with pytest.raises(TypeError, match=f"{field} must be a number of seconds"):
        PollPolicy(**{field: None})  # type: ignore[arg-type]
