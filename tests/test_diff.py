"""The pure diff and expiry bookkeeping: no network, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import given
from hypothesis import strategies as st

from flipkart_otc import (
    FeArrived,
    FeDeparted,
    Lob,
    OtcDetail,
    OtcExpired,
    OtcRenewed,
    OtcSnapshot,
)
from flipkart_otc._diff import diff, expiry_key, next_expiry, poll_events

UTC = UTC
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def detail(fe_id: str, otc: str = "111111", ttl: float = 300, **kw: object) -> OtcDetail:
    base = {
        "fe_id": fe_id,
        "fe_name": "Ram",
        "task_id": "t1",
        "otc": otc,
        "expires_at": T0 + timedelta(seconds=ttl),
        "created_at": T0,
        "logistic_partner": "eKart",
        "lob": Lob.LARGE,
        "lob_raw": "LARGE",
    }
    base.update(kw)
    return OtcDetail(**base)  # type: ignore[arg-type]


def snap(*details: OtcDetail, at: float = 0) -> OtcSnapshot:
    return OtcSnapshot("LOC1", T0 + timedelta(seconds=at), {d.fe_id: d for d in details})


def names(events: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(type(e).__name__, e.fe_id) for e in events]


def test_first_poll_every_fe_arrives_initially_sorted_by_fe_id() -> None:
    events = diff(None, snap(detail("b"), detail("a")), initial=True)
    assert names(events) == [("FeArrived", "a"), ("FeArrived", "b")]
    assert all(isinstance(e, FeArrived) and e.initial for e in events)
    assert all(e.observed_at == T0 and e.location_id == "LOC1" for e in events)


def test_arrival_after_the_first_poll_is_not_initial() -> None:
    (event,) = diff(snap(), snap(detail("a"), at=10))
    assert isinstance(event, FeArrived)
    assert not event.initial
    assert event.observed_at == T0 + timedelta(seconds=10)


def test_renewal_on_each_code_field() -> None:
    old = detail("a")
    for change in (
        {"otc": "222222"},
        {"expires_at": T0 + timedelta(seconds=600)},
        {"created_at": T0 + timedelta(seconds=5)},
        {"task_id": "t2"},
    ):
        new = attrs.evolve(old, **change)
        (event,) = diff(snap(old), snap(new, at=10))
        assert isinstance(event, OtcRenewed)
        assert (event.previous, event.detail) == (old, new)


def test_changes_outside_the_code_are_not_renewals() -> None:
    old = detail("a")
    new = attrs.evolve(old, fe_name="Ram K", logistic_partner="Delhivery", lob=Lob.NONLARGE)
    assert diff(snap(old), snap(new, at=10)) == []


def test_departure_says_whether_the_code_had_expired() -> None:
    fresh, stale = detail("a", ttl=300), detail("b", ttl=5)
    events = diff(snap(fresh, stale), snap(at=10))
    departed = [e for e in events if isinstance(e, FeDeparted)]
    assert departed == events
    assert [(e.fe_id, e.expired) for e in departed] == [("a", False), ("b", True)]


def test_batch_order_is_departed_renewed_arrived_each_by_fe_id() -> None:
    before = snap(detail("d2"), detail("d1"), detail("r2"), detail("r1"), detail("same"))
    after = snap(
        detail("r2", otc="9"),
        detail("r1", otc="9"),
        detail("same"),
        detail("a2"),
        detail("a1"),
        at=10,
    )
    assert names(diff(before, after)) == [
        ("FeDeparted", "d1"),
        ("FeDeparted", "d2"),
        ("OtcRenewed", "r1"),
        ("OtcRenewed", "r2"),
        ("FeArrived", "a1"),
        ("FeArrived", "a2"),
    ]


def test_batch_order_without_departures_is_renewed_arrived_each_by_fe_id() -> None:
    before = snap(detail("r2"), detail("r1"), detail("same"))
    after = snap(
        detail("a2"), detail("r2", otc="9"), detail("a1"), detail("r1", otc="9"), detail("same")
    )
    assert names(diff(before, after)) == [
        ("OtcRenewed", "r1"),
        ("OtcRenewed", "r2"),
        ("FeArrived", "a1"),
        ("FeArrived", "a2"),
    ]


def test_poll_events_put_owed_expiries_first_and_new_expired_codes_last() -> None:
    old_a, old_b = detail("a", ttl=5), detail("b", ttl=5)
    before = snap(old_a, old_b, detail("c", ttl=5))
    after = snap(
        old_a,  # still listed with the expired code
        detail("c", otc="333333", ttl=300),  # renewed after its code expired
        detail("n", ttl=2),  # arrives with a code that already expired
        at=10,
    )
    events, keys = poll_events(before, after, frozenset())
    assert names(events) == [
        ("OtcExpired", "a"),
        ("OtcExpired", "b"),
        ("OtcExpired", "c"),
        ("FeDeparted", "b"),
        ("OtcRenewed", "c"),
        ("FeArrived", "n"),
        ("OtcExpired", "n"),
    ]
    departed = events[3]
    assert isinstance(departed, FeDeparted)
    assert departed.expired
    assert keys == {expiry_key(old_a), expiry_key(after.details["n"])}


def test_an_expiry_is_owed_once() -> None:
    a = detail("a", ttl=5)
    events, keys = poll_events(snap(a), snap(a, at=10), frozenset())
    assert names(events) == [("OtcExpired", "a")]
    again, keys_again = poll_events(snap(a, at=10), snap(a, at=20), keys)
    assert again == []
    assert keys_again == keys


def test_emit_initial_false_drops_only_initial_arrivals() -> None:
    events, _ = poll_events(
        None,
        snap(detail("a"), detail("x", ttl=1), at=5),
        frozenset(),
        emit_initial=False,
    )
    assert names(events) == [("OtcExpired", "x")]


def test_next_expiry_skips_codes_already_reported() -> None:
    a, b = detail("a", ttl=5), detail("b", ttl=50)
    assert next_expiry(snap(a, b), frozenset()) == (T0 + timedelta(seconds=5)).timestamp()
    assert next_expiry(snap(a, b), {expiry_key(a)}) == (T0 + timedelta(seconds=50)).timestamp()
    assert next_expiry(None, frozenset()) == float("inf")


# -- property ------------------------------------------------------------------

fe_ids = st.sampled_from(["fe1", "fe2", "fe3", "fe4", "fe5"])
otcs = st.sampled_from(["111111", "222222", "333333"])
ttls = st.sampled_from([-30, 5, 300])
task_ids = st.sampled_from(["t1", "t2"])
names_ = st.sampled_from(["Ram", "Shyam"])


@st.composite
def snapshots(draw: st.DrawFn, at: float = 0) -> OtcSnapshot:
    ids = draw(st.sets(fe_ids))
    details = [
        detail(i, draw(otcs), draw(ttls), task_id=draw(task_ids), fe_name=draw(names_))
        for i in sorted(ids)
    ]
    return snap(*details, at=at)


def apply(events: list, state: dict[str, str]) -> dict[str, str]:  # type: ignore[type-arg]
    state = dict(state)
    for event in events:
        if isinstance(event, FeDeparted):
            del state[event.fe_id]
        elif isinstance(event, (OtcRenewed, FeArrived)):
            state[event.fe_id] = event.detail.otc
    return state


def fes_and_otcs(s: OtcSnapshot) -> dict[str, str]:
    return {fe_id: d.otc for fe_id, d in s.details.items()}


@given(snapshots(), snapshots(at=10))
def test_applying_the_diff_gives_the_new_fes_and_codes(a: OtcSnapshot, b: OtcSnapshot) -> None:
    assert apply(diff(a, b), fes_and_otcs(a)) == fes_and_otcs(b)
    events, _ = poll_events(a, b, frozenset())
    assert apply(events, fes_and_otcs(a)) == fes_and_otcs(b)


@given(snapshots())
def test_diff_of_a_snapshot_with_itself_is_empty(a: OtcSnapshot) -> None:
    assert diff(a, a) == []
    assert diff(a, OtcSnapshot(a.location_id, a.fetched_at, dict(a.details))) == []


@given(snapshots(), snapshots(at=10), snapshots(at=20))
def test_no_expiry_is_reported_twice(a: OtcSnapshot, b: OtcSnapshot, c: OtcSnapshot) -> None:
    seen = []
    keys: frozenset = frozenset()  # type: ignore[type-arg]
    previous = None
    for current in (a, b, c):
        events, keys = poll_events(previous, current, keys)
        seen += [expiry_key(e.detail) for e in events if isinstance(e, OtcExpired)]
        previous = current
    # a key may come back only after its FE left or held another code in between
    for key in set(seen):
        if seen.count(key) > 1:
            other = [
                s
                for s in (a, b, c)
                if key[0] not in s.details or expiry_key(s.details[key[0]]) != key
            ]
            assert other, key
