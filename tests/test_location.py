"""The location state machine on its own: no sockets, no event loop, no clock.

A hypothesis state machine drives it with answers, failures and time, and checks
each step's events against a plain recomputation from the sequence of states.
"""

from __future__ import annotations

from datetime import datetime

from _helpers import FAILURES, T0, detail, step
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from flipkart_otc import (
    FeArrived,
    FeDeparted,
    LocationStatus,
    LocationStatusChanged,
    OtcDetail,
    OtcExpired,
    OtcRenewed,
)
from flipkart_otc._diff import expiry_key
from flipkart_otc._location import LocationState, answered, elapsed, failed
from flipkart_otc.events import OtcEvent

# -- unit: each rule of the contract --------------------------------------------------


def test_first_answer_reports_status_then_initial_arrivals_and_commits_only_on_request() -> None:
    state = LocationState("LOC1")
    details = {"fe2": detail("fe2", "1", T0 + 60), "fe1": detail("fe1", "2", T0 + 60)}
    transition = answered(state, details, None, T0, True)
    assert state.details is None  # nothing changes until the watcher commits
    events = step(state, transition, T0)
    assert [type(e).__name__ for e in events] == [
        "LocationStatusChanged",
        "FeArrived",
        "FeArrived",
    ]
    assert [e.fe_id for e in events[1:]] == ["fe1", "fe2"]  # type: ignore[attr-defined]
    assert all(e.initial for e in events[1:])  # type: ignore[attr-defined]
    assert state.status is LocationStatus.ACTIVE and state.fetched_at == T0
    snapshot = state.last()
    assert snapshot is not None and set(snapshot.details) == {"fe1", "fe2"}


def test_failing_keeps_the_last_state_and_invents_no_departure() -> None:
    state = LocationState("LOC1")
    step(state, answered(state, {"fe1": detail("fe1", "1", T0 + 60)}, None, T0, True), T0)
    events = step(
        state,
        failed(state, FAILURES[LocationStatus.FAILING], LocationStatus.FAILING, T0 + 10),
        T0 + 10,
    )
    assert [type(e) for e in events] == [LocationStatusChanged]
    assert state.details is not None and set(state.details) == {"fe1"}
    assert state.fetched_at == T0  # still the last good answer's
    # a code that expires while failing is still news, once
    assert step(state, elapsed(state, T0 + 60), T0 + 60)[0].__class__ is OtcExpired
    assert elapsed(state, T0 + 70) is None
    assert (
        step(
            state,
            failed(state, FAILURES[LocationStatus.FAILING], LocationStatus.FAILING, T0 + 80),
            T0 + 80,
        )
        == []
    )


def test_no_task_and_closed_depart_every_fe_once() -> None:
    state = LocationState("LOC1")
    step(state, answered(state, {"fe1": detail("fe1", "1", T0 + 60)}, None, T0, True), T0)
    events = step(
        state,
        failed(state, FAILURES[LocationStatus.CLOSED], LocationStatus.CLOSED, T0 + 10),
        T0 + 10,
    )
    assert [type(e) for e in events] == [LocationStatusChanged, FeDeparted]
    assert state.details == {}
    assert (
        step(
            state,
            failed(state, FAILURES[LocationStatus.CLOSED], LocationStatus.CLOSED, T0 + 20),
            T0 + 20,
        )
        == []
    )
    events = step(
        state,
        failed(state, FAILURES[LocationStatus.NO_TASK], LocationStatus.NO_TASK, T0 + 30),
        T0 + 30,
    )
    assert [type(e) for e in events] == [LocationStatusChanged]


def test_an_answer_showing_an_expired_code_reports_it_at_once() -> None:
    state = LocationState("LOC1")
    events = step(state, answered(state, {"fe1": detail("fe1", "1", T0 - 5)}, None, T0, True), T0)
    assert [type(e) for e in events] == [LocationStatusChanged, FeArrived, OtcExpired]


# -- stateful: against a plain model ----------------------------------------------------

fe_ids = st.sampled_from(["fe1", "fe2", "fe3"])
codes = st.tuples(st.sampled_from(["111111", "222222"]), st.integers(-30, 120))


class LocationMachine(RuleBasedStateMachine):
    """Random answers, failures and time; each step's events checked against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.state = LocationState("LOC1")
        self.now = T0
        self.listed: dict[str, OtcDetail] = {}  # the model: FEs of the last good state
        self.status: LocationStatus | None = None
        self.expired: set[tuple[str, str, datetime]] = set()  # codes reported expired
        self.present: set[str] = set()  # arrived and not departed, by the events

    def _check(self, events: list[OtcEvent], new: dict[str, OtcDetail] | None,
               status: LocationStatus) -> None:  # fmt: skip
        old = self.listed
        kinds = [type(e) for e in events]
        # a status change comes first, and only then
        assert (LocationStatusChanged in kinds) == (status is not self.status)
        if status is not self.status:
            assert kinds[0] is LocationStatusChanged
        self.status = status
        if new is not None:  # FEs now listed: the plain recomputation of the diff
            arrived = {e.fe_id for e in events if isinstance(e, FeArrived)}
            departed = {e.fe_id for e in events if isinstance(e, FeDeparted)}
            renewed = {e.fe_id for e in events if isinstance(e, OtcRenewed)}
            assert arrived == set(new) - set(old)
            assert departed == set(old) - set(new)
            assert renewed == {
                fe
                for fe in set(new) & set(old)
                if (new[fe].otc, new[fe].expires_at, new[fe].created_at, new[fe].task_id)
                != (old[fe].otc, old[fe].expires_at, old[fe].created_at, old[fe].task_id)
            }
            self.present = (self.present - departed) | arrived
            self.listed = dict(new)
        for event in events:
            if isinstance(event, OtcExpired):
                key = (event.fe_id, event.detail.otc, event.detail.expires_at)
                assert key not in self.expired  # once per code
                assert event.detail.expires_at.timestamp() <= self.now
                self.expired.add(key)
        if new is not None:
            # "once per code" holds while the code stays listed: after the step, keys of
            # a code no longer listed (its FE left, or got another) are forgotten (memory
            # stays bounded), so a code that comes back, digits and instant alike, is
            # told afresh
            self.expired = {
                k for k in self.expired if k[0] in new and expiry_key(new[k[0]]) == k
            }

    def _advance(self, seconds: int) -> None:
        self.now += seconds

    @rule(seconds=st.integers(0, 40), fes=st.dictionaries(fe_ids, codes, max_size=3))
    def answer(self, seconds: int, fes: dict[str, tuple[str, int]]) -> None:
        self._advance(seconds)
        details = {fe: detail(fe, otc, self.now + ttl) for fe, (otc, ttl) in fes.items()}
        for fe, known in self.listed.items():  # an unchanged code keeps its object
            if fe in details and details[fe] == known:
                details[fe] = known
        events = step(self.state, answered(self.state, details, None, self.now, True), self.now)
        self._check(events, details, LocationStatus.ACTIVE)

    @rule(seconds=st.integers(0, 40), status=st.sampled_from(list(FAILURES)))
    def failure(self, seconds: int, status: LocationStatus) -> None:
        self._advance(seconds)
        transition = failed(self.state, FAILURES[status], status, self.now)
        events = step(self.state, transition, self.now)
        self._check(events, None if status is LocationStatus.FAILING else {}, status)

    @rule(seconds=st.integers(0, 60))
    def time_passes(self, seconds: int) -> None:
        self._advance(seconds)
        events = step(self.state, elapsed(self.state, self.now), self.now)
        assert all(isinstance(e, OtcExpired) for e in events)
        self._check(events, None, self.status)  # type: ignore[arg-type]

    @invariant()
    def every_owed_expiry_is_reported_and_arrivals_match_the_listing(self) -> None:
        assert self.present == set(self.state.details or {})
        for d in (self.state.details or {}).values():
            if d.expires_at.timestamp() <= self.now and self.status is not None:
                assert (d.fe_id, d.otc, d.expires_at) in self.expired


LocationMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30)
test_location_state_machine_matches_its_model = LocationMachine.TestCase
