"""The watcher's incremental parsing gives exactly what a full parse gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flipkart_otc import ApiError, OtcSnapshot, ResponseFormatError
from flipkart_otc._diff import ExpiryKey, poll_events
from flipkart_otc._wire import start_otc, start_otc_incremental

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)

# Small value pools, so that answers often repeat entries, whole or in part; odd values
# (bools, floats, numeric strings, unhashable extras) probe the shortcuts.
timestamps = st.sampled_from(
    [1764237600, 1764237600000, 1764237900000, "1764237900000", 1764237900.0, 1, True, 0, -5]
)
entries = st.fixed_dictionaries(
    {
        # braces and commas in a string probe the cutting of the text into FE parts
        "feName": st.sampled_from(["Ram", "Shyam", "Ram ", "R}am", "{Ram", 'Ram", "x": {']),
        "taskId": st.sampled_from(["1", "2"]),
        "otc": st.sampled_from(["111111", "222222"]),
        "expiryTime": timestamps,
        "createdAt": timestamps,
        "logisticPartner": st.sampled_from(["eKart", "Delhivery"]),
    },
    optional={
        "lob": st.sampled_from(["LARGE", "NONLARGE", "large", None, 1, 1.0, True, ["x"]]),
        "extra": st.sampled_from([1, [1, 2], {"a": 1}]),
    },
)
layouts = st.sampled_from([{}, {"indent": 1}, {"separators": (",", ":")}, {"indent": "\t"}])
answers = st.builds(
    lambda fes, layout: json.dumps({"otcDetails": fes}, **layout).encode(),
    st.dictionaries(st.sampled_from(["fe1", "fe2", "fe3", "f\u00e9}"]), entries, max_size=3),
    layouts,
)


def _with_repeats(pairs: list[tuple[str, dict[str, object]]], separator: str) -> bytes:
    """An answer whose FE ids may repeat (JSON keeps the last copy): json.dumps cannot."""
    members = separator.join(f"{json.dumps(fe)}: {json.dumps(e)}" for fe, e in pairs)
    return ('{"otcDetails": {' + members + "}}").encode()


# An FE id given twice, its earlier copy lacking a field or holding a bad one: the one-shot
# parser keeps the last copy, and so must the incremental parser (found by mutation fuzzing).
partial_entries = entries.flatmap(
    lambda e: st.sampled_from(sorted(e)).map(lambda k: {n: v for n, v in e.items() if n != k})
)
answers_with_repeats = st.builds(
    _with_repeats,
    st.lists(st.tuples(st.sampled_from(["fe1", "fe2"]), entries | partial_entries), max_size=4),
    st.sampled_from([", ", ",\n  "]),
)


def full_then_incremental(bodies: list[bytes]) -> None:
    previous_full: OtcSnapshot | None = None
    previous_incr: OtcSnapshot | None = None
    keys_full: frozenset[ExpiryKey] = frozenset()
    keys_incr: frozenset[ExpiryKey] = frozenset()
    memo = None
    for step, body in enumerate(bodies):
        at = T0 + timedelta(seconds=10 * step)
        last = previous_incr.details if previous_incr is not None else None
        refusal: Exception | None = None
        try:
            full = start_otc.parse_snapshot(body, "LOC1", at)
        except (ResponseFormatError, ApiError) as exc:
            refusal = exc
        if refusal is not None:
            with pytest.raises(type(refusal)) as refused:
                start_otc_incremental.parse_incremental(body, "LOC1", last, memo)
            assert str(refused.value) == str(refusal)  # the same reason, the same field
            continue  # both refuse it; the watcher keeps its last good state
        details, memo = start_otc_incremental.parse_incremental(body, "LOC1", last, memo)
        assert list(details.items()) == list(full.details.items())  # order too
        assert len(memo) in (1, len(details) + 1)  # FE fingerprints line up with the FEs
        incr = OtcSnapshot("LOC1", at, details)
        events_full, keys_full = poll_events(previous_full, full, keys_full)
        events_incr, keys_incr = poll_events(previous_incr, incr, keys_incr)
        assert events_incr == events_full
        assert keys_incr == keys_full
        previous_full, previous_incr = full, incr


@settings(max_examples=300)
@given(st.lists(answers | answers_with_repeats, min_size=1, max_size=6))
def test_incremental_parse_and_events_equal_a_full_parse(bodies: list[bytes]) -> None:
    full_then_incremental(bodies)


@given(st.lists(st.sampled_from([0, 1]), min_size=2, max_size=8), answers, answers)
def test_repeated_and_alternating_answers(order: list[int], a: bytes, b: bytes) -> None:
    full_then_incremental([(a, b)[i] for i in order])


@settings(max_examples=300)
@given(answers, st.data())
def test_an_answer_damaged_anywhere_after_a_good_one_parses_as_a_full_parse_does(
    body: bytes, data: st.DataObject
) -> None:
    # mostly where the text is cut into FE parts, or where a part is checked
    marks = [i for i, byte in enumerate(body) if byte in b'{},:"'] or [0]
    at = data.draw(st.sampled_from(marks) | st.integers(0, len(body)), label="at")
    cut = data.draw(st.integers(0, 2), label="cut")
    put = data.draw(st.sampled_from([b"", b"}", b"{", b",", b'"', b" ", b"x", b"]", b"1"]))
    full_then_incremental([body, body[:at] + put + body[at + cut :]])


def entry_dict(**values: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "feName": "Ram",
        "taskId": "1",
        "otc": "111111",
        "expiryTime": 1764237900000,
        "createdAt": 1764237600000,
        "logisticPartner": "eKart",
        "lob": "LARGE",
    }
    entry.update(values)
    return entry


def _answer(**values: object) -> bytes:
    return json.dumps({"otcDetails": {"fe1": entry_dict(**values)}}).encode()


def test_values_that_compare_equal_but_parse_apart_are_not_reused() -> None:
    # True == 1 and hash(True) == hash(1): a fingerprint alone would take one for the other
    full_then_incremental([_answer(createdAt=1), _answer(createdAt=True)])
    full_then_incremental([_answer(lob=1), _answer(lob=True)])
    full_then_incremental([_answer(lob=True), _answer(lob=1)])
    full_then_incremental([_answer(lob=1), _answer(lob=1.0)])  # 1.0 == 1 as well


def test_the_same_values_under_other_keys_are_not_reused() -> None:
    first = b'{"otcDetails": {"fe1": {"feName": "1", "taskId": "2", "otc": "111111", '
    second = b'{"otcDetails": {"fe1": {"taskId": "1", "feName": "2", "otc": "111111", '
    rest = (
        b'"expiryTime": 1764237900000, "createdAt": 1764237600000, '
        b'"logisticPartner": "eKart", "lob": "LARGE"}}}'
    )
    full_then_incremental([first + rest, second + rest])


def test_an_answer_that_changes_no_fe_returns_the_last_details_themselves() -> None:
    first, memo = start_otc_incremental.parse_incremental(_answer(), "LOC1", None, None)
    again, memo = start_otc_incremental.parse_incremental(_answer(), "LOC1", first, memo)
    assert again is first  # the same bytes
    spaced = _answer().replace(b", ", b",  ")
    assert spaced != _answer()
    again, memo = start_otc_incremental.parse_incremental(spaced, "LOC1", first, memo)
    assert again is first  # other bytes, the same FEs
    renewed, _ = start_otc_incremental.parse_incremental(
        _answer(otc="222222"), "LOC1", first, memo
    )
    assert renewed is not first
    assert renewed["fe1"].otc == "222222"


def test_whitespace_around_an_answer_and_extra_data_after_it_parse_as_json_does() -> None:
    body = _answer()
    full_then_incremental([b" \n" + body + b"\r\n ", body, b"\t" + body])
    for bad in (body + b"x", body + body, b"\xef\xbb\xbf" + body):
        with pytest.raises(ResponseFormatError):
            start_otc.parse_snapshot(bad, "LOC1", T0)
        with pytest.raises(ResponseFormatError):
            start_otc_incremental.parse_incremental(bad, "LOC1", None, None)


def test_nested_objects_and_arrays_in_an_entry_parse_as_a_full_parse_does() -> None:
    full_then_incremental(
        [
            _answer(lob={"a": [1, {"b": None}]}),
            _answer(lob={"a": [1, {"b": None}]}, extra={"x": 1}),
            _answer(lob=["{"]),
            _answer(feName="Ram {[ "),
        ]
    )


def _two(first: str = "111111", second: str = "222222", **layout: Any) -> bytes:
    entry = json.loads(_answer())["otcDetails"]["fe1"]
    fes = {"fe1": {**entry, "otc": first}, "fe2": {**entry, "otc": second}}
    return json.dumps({"otcDetails": fes}, **layout).encode()


def test_what_lies_between_the_fe_parts_is_checked_when_only_one_fe_changed() -> None:
    good = _two()
    assert json.loads(good)["otcDetails"]["fe2"]["otc"] == "222222"
    # each damage leaves FE 1's part as it was and changes FE 2's or what follows it
    for bad in (
        good + b"x",
        good[:-1] + b"x}",
        good[:-2] + b",}}",
        good.replace(b'}, "fe2"', b'}x, "fe2"'),
        good.replace(b'}, "fe2"', b'} "fe2"'),
        good.replace(b'}, "fe2"', b'},, "fe2"'),
        good.replace(b'}, "fe2": {', b'}, "fe2": ['),
        good.replace(b'"222222"', b'"222222}"'),
        good.replace(b'}, "fe2"', b'}, "x": 5, "fe2"'),
        good.replace(b'"otcDetails"', b'"otcDetailz"'),  # FE 1's part, the first, changes
        good.replace(b'{"fe1"', b'{"x": 5, "fe1"'),
        good[: good.index(b'"fe2": ') + 7] + b'"{"}}}',  # FE 2's part closes early
    ):
        full_then_incremental([good, bad])
        full_then_incremental([good, bad.replace(b'"222222"', b'"333333"')])


def test_a_changed_fe_part_that_repeats_another_fe_id_parses_as_json_does() -> None:
    # the last of two equal keys wins in JSON, so the unchanged FE 2 must win here
    good = _two()
    full_then_incremental([good, good.replace(b'"fe1"', b'"fe2"').replace(b"111111", b"333333")])
    full_then_incremental([good.replace(b'"fe2"', b'"fe1"')])


def test_an_fe_id_given_twice_parses_as_json_does_when_its_first_copy_is_partial() -> None:
    good = _with_repeats([("fe1", entry_dict()), ("fe2", entry_dict())], ", ")
    first, memo = start_otc_incremental.parse_incremental(good, "LOC1", None, None)
    partial = {k: v for k, v in entry_dict(otc="222222").items() if k != "taskId"}
    repeated = _with_repeats([("fe1", partial), ("fe1", entry_dict(otc="333333"))], ", ")
    full = start_otc.parse_snapshot(repeated, "LOC1", T0)
    details, _ = start_otc_incremental.parse_incremental(repeated, "LOC1", first, memo)
    assert details == full.details
    assert [d.otc for d in details.values()] == ["333333"]


def test_a_reformatted_answer_keeps_each_fe_object() -> None:
    first, memo = start_otc_incremental.parse_incremental(_two(), "LOC1", None, None)
    again, memo = start_otc_incremental.parse_incremental(_two(indent=2), "LOC1", first, memo)
    assert again is first
    changed, _ = start_otc_incremental.parse_incremental(
        _two(second="333333"), "LOC1", again, memo
    )
    assert changed["fe1"] is first["fe1"]
    assert changed["fe2"].otc == "333333"


def test_each_first_answer_gets_a_mapping_of_its_own() -> None:
    empty = b'{"otcDetails": {}}'
    first, _ = start_otc_incremental.parse_incremental(empty, "LOC1", None, None)
    second, _ = start_otc_incremental.parse_incremental(empty, "LOC2", None, None)
    first["fe9"] = first.get("fe9")  # type: ignore[index]  # a careless caller
    assert dict(second) == {}
