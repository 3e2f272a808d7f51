"""What a sink saves of a location, and the ids of events: pure, no Redis.

The property: a location restored from what was saved after its last step with
events behaves, from then on, exactly as the location that was never stopped.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from _helpers import FAILURES, T0, detail, step
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flipkart_otc import (
    FeArrived,
    LocationStatus,
    LocationStatusChanged,
    LocationView,
    OtcExpired,
    Shard,
    SinkError,
    event_from_dict,
    event_id,
    shard_of,
)
from flipkart_otc._diff import Details
from flipkart_otc._location import LocationState, answered, elapsed, failed
from flipkart_otc._mirror import apply as mirror
from flipkart_otc._saved import decode, encode, mark_recovered, restore
from flipkart_otc.events import OtcEvent

# -- the property ------------------------------------------------------------------

fes = st.dictionaries(
    st.sampled_from(["fe1", "fe2", "fe3"]),
    st.tuples(st.sampled_from(["111111", "222222"]), st.integers(1, 40)),
    max_size=3,
)
operation = st.one_of(
    st.tuples(st.just("answer"), fes, st.integers(1, 20)),
    st.tuples(st.just("fail"), st.sampled_from(list(FAILURES)), st.integers(1, 20)),
    st.tuples(st.just("time"), st.none(), st.integers(1, 20)),
)


def apply(state: LocationState, op: tuple[str, object, int], now: float) -> list[OtcEvent]:
    kind, arg, _ = op
    if kind == "answer":
        assert isinstance(arg, dict)
        details: Details = {
            fe: detail(fe, otc, T0 + ttl, created=T0) for fe, (otc, ttl) in arg.items()
        }
        return step(state, answered(state, details, None, now, True), now)
    if kind == "fail":
        assert isinstance(arg, LocationStatus)
        return step(state, failed(state, FAILURES[arg], arg, now), now)
    return step(state, elapsed(state, now), now)


def saved_copy(state: LocationState, events: list[OtcEvent]) -> LocationState:
    """What a sink saves after a step with ``events``, decoded into a fresh state."""
    raw = encode(
        state.location_id,
        state.status,
        state.last(),
        state.error,
        max(e.observed_at for e in events),
    )
    restored = LocationState(state.location_id)
    restore(restored, decode(raw))
    return restored


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, min_size=1, max_size=14), st.integers(0, 14))
# a code that expires at the very instant of the step that saved it
@example([("answer", {"fe1": ("111111", 10)}, 10), ("time", None, 5)], 1)
def test_a_restored_location_goes_on_as_the_one_never_stopped(
    ops: list[tuple[str, object, int]], crash: int
) -> None:
    crash = min(crash, len(ops))
    state = LocationState("LOC1")
    saved = LocationState("LOC1")  # nothing saved yet: a fresh start
    mirrored: LocationView | None = None  # a stream reader's view, from events alone
    now = T0
    for op in ops[:crash]:
        now += op[2]
        events = apply(state, op, now)
        if events:
            saved = saved_copy(state, events)
        for event in events:
            # what a reader of the stream gets back is the event itself
            assert event_from_dict(event.to_dict(show_otc=True)) == event
            mirrored = mirror(mirrored, event)
        if mirrored is not None:
            assert (mirrored.status, mirrored.error) == (state.status, state.error)
            kept = mirrored.snapshot.details if mirrored.snapshot is not None else None
            assert (kept or None) == (state.details or None)
    for op in ops[crash:]:
        now += op[2]
        assert apply(saved, op, now) == apply(state, op, now)


# -- the pieces --------------------------------------------------------------------


def test_saved_state_round_trips_exactly_and_hides_nothing_it_needs() -> None:
    state = LocationState("LOC1")
    details = {"fe1": detail("fe1", "123456", T0 + 300.001, created=T0 + 0.5)}
    events = step(state, answered(state, details, None, T0 + 1, True), T0 + 1)
    back = decode(encode("LOC1", state.status, state.last(), None, events[-1].observed_at))
    assert back.snapshot == state.last() and back.status is LocationStatus.ACTIVE


@pytest.mark.parametrize(
    "raw", [b"", b"{}", b'{"format": 2}', b'{"format": 1, "location_id": "L", "otc": "123456"}']
)
def test_unreadable_saved_state_is_a_sink_error_that_quotes_nothing(raw: bytes) -> None:
    with pytest.raises(SinkError) as caught:
        decode(raw)
    assert "123456" not in str(caught.value)


def test_event_ids_follow_what_happened_never_the_code() -> None:
    at = datetime.fromtimestamp(T0, UTC)
    later = datetime.fromtimestamp(T0 + 5, UTC)
    code = detail("fe1", "123456", T0 + 300)
    arrived = FeArrived("LOC1", at, "fe1", code)
    assert event_id(arrived) == event_id(FeArrived("LOC1", later, "fe1", code, initial=True))
    assert event_id(arrived) == event_id(mark_recovered([arrived], T0 + 9, whole=True)[0])
    assert event_id(arrived) != event_id(OtcExpired("LOC1", at, "fe1", code))
    assert event_id(arrived) != event_id(FeArrived("LOC2", at, "fe1", code))
    renewed_code = detail("fe1", "123456", T0 + 600)
    assert event_id(arrived) != event_id(FeArrived("LOC1", at, "fe1", renewed_code))
    assert "123456" not in event_id(arrived)
    # two codes issued in the same second: told apart only with the writers' key
    other = FeArrived("LOC1", at, "fe1", detail("fe1", "654321", T0 + 300))
    assert event_id(arrived) == event_id(other)
    assert event_id(arrived, b"k" * 32) != event_id(other, b"k" * 32)
    assert event_id(arrived, b"k" * 32) == event_id(arrived, b"k" * 32) != event_id(arrived)
    status = LocationStatusChanged("LOC1", at, LocationStatus.ACTIVE)
    again = LocationStatusChanged("LOC1", later, LocationStatus.ACTIVE)
    assert event_id(status) != event_id(again)
    assert len(event_id(status)) == 32


def test_recovered_marks_the_gap_and_gives_expiries_their_real_instant() -> None:
    at = datetime.fromtimestamp(T0 + 100, UTC)
    old = detail("fe1", "111111", T0 + 30)
    new = detail("fe2", "222222", T0 + 200)
    events = [OtcExpired("LOC1", at, "fe1", old), OtcExpired("LOC1", at, "fe2", new)]
    marked = mark_recovered(events, T0 + 50, whole=False)
    assert marked[0].recovered and marked[0].observed_at == old.expires_at
    assert marked[1] == events[1]  # after the resume: live
    assert marked[0].to_dict()["recovered"] is True and "recovered" not in events[1].to_dict()


# -- sharding --------------------------------------------------------------------------


def test_the_shard_hash_is_prometheus_hashmod() -> None:
    for location_id in ["LOC1", "LOC2", "Ünïcode-7", "x" * 200]:
        digest = hashlib.md5(location_id.encode()).hexdigest()
        for count in (1, 2, 3, 7, 1000):
            assert shard_of(location_id, count) == int(digest[16:], 16) % count


@given(st.lists(st.text(min_size=1, max_size=12), max_size=40), st.integers(1, 6))
def test_shards_split_the_locations_with_none_left_out_and_none_twice(
    ids: list[str], count: int
) -> None:
    shards = [Shard(i, count).select(ids) for i in range(count)]
    assert sorted(id_ for shard in shards for id_ in shard) == sorted(ids)


@pytest.mark.parametrize(
    ("text", "error"),
    [("2/2", "0..1"), ("1", "I/N"), ("0/0", ">= 1"), ("-1/3", "I/N"), ("a/b", "I/N")],
)
def test_a_bad_shard_is_named(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Shard.parse(text)
    assert Shard.parse(" 1 / 4 ") == Shard(1, 4) and str(Shard(1, 4)) == "1/4"
