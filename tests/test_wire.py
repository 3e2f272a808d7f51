"""Parsing answers: pure functions, no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from _helpers import CANARY_OTC, answer, entry
from hypothesis import given
from hypothesis import strategies as st

from flipkart_otc import (
    ApiError,
    AuthenticationError,
    BadGatewayError,
    GatewayTimeoutError,
    InternalServerError,
    InvalidTaskTypeError,
    Lob,
    OtcDetail,
    RateLimitedError,
    RequestTimeoutError,
    ResponseFormatError,
    ServerError,
    ServiceUnavailableError,
    TaskNotFoundError,
    TripsheetClosedError,
)
from flipkart_otc._wire import common, kinds, start_otc

UTC = UTC
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def parse(body: bytes, **kwargs: object) -> object:
    return start_otc.parse_snapshot(body, "LOC1", NOW, **kwargs)  # type: ignore[arg-type]


def test_spec_sample_parses_to_typed_details() -> None:
    snap = start_otc.parse_snapshot(
        answer(fe12303=entry(), fe45601=entry(feName="Shyam", otc="567890")), "LOC1", NOW
    )
    assert snap.location_id == "LOC1"
    assert snap.fetched_at == NOW
    assert set(snap.details) == {"fe12303", "fe45601"}
    ram = snap.details["fe12303"]
    assert (ram.fe_id, ram.fe_name, ram.task_id, ram.otc) == ("fe12303", "Ram", "123", "123456")
    assert ram.expires_at == datetime(2025, 2, 12, 17, 56, 21, tzinfo=UTC)
    assert ram.created_at == ram.expires_at - timedelta(minutes=5)
    assert ram.logistic_partner == "eKart"
    assert ram.lob is Lob.LARGE
    assert snap.details["fe45601"].fe_name == "Shyam"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1739382981, datetime(2025, 2, 12, 17, 56, 21, tzinfo=UTC)),
        (1739382981000, datetime(2025, 2, 12, 17, 56, 21, tzinfo=UTC)),
        (1739382981123, datetime(2025, 2, 12, 17, 56, 21, 123000, tzinfo=UTC)),
        ("1739382981", datetime(2025, 2, 12, 17, 56, 21, tzinfo=UTC)),
        ("1739382981123", datetime(2025, 2, 12, 17, 56, 21, 123000, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (99_999_999_999, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=99_999_999_999)),
        (100_000_000_000, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=100_000_000)),
    ],
)
def test_epoch_seconds_and_millis_give_aware_utc(value: object, expected: datetime) -> None:
    got = kinds.epoch_to_datetime(value)
    assert got == expected
    assert got.tzinfo is UTC


@given(st.integers(min_value=10**8, max_value=10**11 - 1))  # 1973 .. 5138: where both forms are
def test_seconds_and_millis_of_the_same_instant_agree(seconds: int) -> None:
    assert kinds.epoch_to_datetime(seconds) == kinds.epoch_to_datetime(seconds * 1000)


@given(st.integers(min_value=0, max_value=2 * 10**14))  # up to the year 8307
def test_fast_and_exact_conversions_agree(millis: int) -> None:
    exact = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    value = millis if millis >= 10**11 else millis // 1000
    if millis < 10**11:
        exact = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=millis // 1000)
    assert kinds.epoch_to_datetime(value) == exact


@pytest.mark.parametrize(
    ("raw", "lob"),
    [
        ("LARGE", Lob.LARGE),
        ("large", Lob.LARGE),
        (" Large ", Lob.LARGE),
        ("NONLARGE", Lob.NONLARGE),
        ("nonlarge", Lob.NONLARGE),
        ("NON_LARGE", Lob.NONLARGE),
        ("non_large", Lob.NONLARGE),
        ("LARGE | NONLARGE", Lob.UNKNOWN),
        ("BULKY", Lob.UNKNOWN),
        ("", Lob.UNKNOWN),
    ],
)
def test_lob_spellings(raw: str, lob: Lob) -> None:
    detail = start_otc.parse_snapshot(answer(fe1=entry(lob=raw)), "LOC1", NOW).details["fe1"]
    assert detail.lob is lob
    assert detail.lob_raw == raw


@pytest.mark.parametrize(("raw", "kept"), [(None, ""), (7, "7"), ({"a": 1}, '{"a": 1}')])
def test_odd_lob_values_never_break_a_parse(raw: object, kept: str) -> None:
    detail = start_otc.parse_snapshot(answer(fe1=entry(lob=raw)), "LOC1", NOW).details["fe1"]
    assert (detail.lob, detail.lob_raw) == (Lob.UNKNOWN, kept)


def test_missing_lob_is_unknown() -> None:
    raw = entry()
    del raw["lob"]
    detail = start_otc.parse_snapshot(answer(fe1=raw), "LOC1", NOW).details["fe1"]
    assert (detail.lob, detail.lob_raw) == (Lob.UNKNOWN, "")


def test_unknown_keys_are_ignored() -> None:
    body = json.dumps(
        {"otcDetails": {"fe1": entry(newField=[1, 2], feId="ignored")}, "requestId": "r1"}
    ).encode()
    snap = start_otc.parse_snapshot(body, "LOC1", NOW)
    assert snap.details["fe1"].fe_id == "fe1"


@pytest.mark.parametrize("body", [b'{"otcDetails": {}}', b'{"otcDetails": null}'])
def test_no_fe_on_the_page_is_an_empty_snapshot(body: bytes) -> None:
    snap = start_otc.parse_snapshot(body, "LOC1", NOW)
    assert snap.details == {}
    assert len(snap) == 0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"", None, "not valid JSON"),
        (b'{"otcDetails": {"fe1": ', None, "not valid JSON"),
        (b"\xff\xfe{}", None, "not UTF-8"),
        (b"[]", None, "expected a JSON object, got list"),
        (b'"text"', None, "expected a JSON object, got str"),
        (b"{}", "otcDetails", "required field missing"),
        (b'{"otcDetails": []}', "otcDetails", "expected an object, got list"),
        (b'{"otcDetails": {"fe1": 5}}', "otcDetails.fe1", "expected an object, got int"),
        (b'{"otcDetails": {"": {}}}', "otcDetails", "empty FE id"),
    ],
)
def test_malformed_bodies_raise_response_format_error(
    body: bytes, field: str | None, words: str
) -> None:
    with pytest.raises(ResponseFormatError) as info:
        start_otc.parse_snapshot(body, "LOC1", NOW)
    assert info.value.field == field
    assert words in str(info.value)
    assert "LOC1" in str(info.value)


@pytest.mark.parametrize(
    ("field", "key", "value", "words"),
    [
        ("feName", "feName", None, "expected a string, got NoneType"),
        ("taskId", "taskId", 123, "expected a string, got int"),
        ("otc", "otc", 123456, "expected a string, got int"),
        ("expiryTime", "expiryTime", "soon", "expected an epoch timestamp"),
        ("expiryTime", "expiryTime", -5, "non-negative"),
        ("createdAt", "createdAt", [1], "expected an epoch timestamp, got list"),
        ("createdAt", "createdAt", 10**30, "out of range"),
        ("logisticPartner", "logisticPartner", {}, "expected a string, got dict"),
    ],
)
def test_ill_typed_field_names_fe_and_field(
    field: str, key: str, value: object, words: str
) -> None:
    with pytest.raises(ResponseFormatError) as info:
        start_otc.parse_snapshot(answer(fe9=entry(**{key: value})), "LOC1", NOW)
    assert info.value.field == f"otcDetails.fe9.{field}"
    assert words in str(info.value)


@pytest.mark.parametrize("key", ["feName", "taskId", "otc", "expiryTime", "createdAt"])
def test_missing_required_field_names_it(key: str) -> None:
    raw = entry()
    del raw[key]
    with pytest.raises(ResponseFormatError) as info:
        start_otc.parse_snapshot(answer(fe9=raw), "LOC1", NOW)
    assert info.value.field == f"otcDetails.fe9.{key}"
    assert "required field missing" in str(info.value)


def test_format_error_keeps_a_truncated_masked_body() -> None:
    body = answer(
        fe1=entry(otc=CANARY_OTC, expiryTime="x"), **{f"f{i}": entry() for i in range(50)}
    )
    with pytest.raises(ResponseFormatError) as info:
        start_otc.parse_snapshot(body, "LOC1", NOW)
    assert 0 < len(info.value.body) <= 512
    assert info.value.body.startswith('{"otcDetails": {"fe1"')
    assert CANARY_OTC not in info.value.body
    assert CANARY_OTC not in str(info.value)


def test_incremental_parse_reuses_unchanged_details() -> None:
    first = start_otc.parse_snapshot(answer(a=entry(), b=entry(otc="1")), "LOC1", NOW)
    second = start_otc.parse_snapshot(
        answer(a=entry(), b=entry(otc="2")), "LOC1", NOW, previous=first
    )
    assert second.details["a"] is first.details["a"]
    assert second.details["b"] is not first.details["b"]
    assert second.details["b"].otc == "2"


@given(st.text())
def test_request_body_is_the_json_of_the_spec_request(location_id: str) -> None:
    expected = json.dumps({"sellerLocationId": location_id, "taskType": "RETURN"}).encode()
    assert start_otc.request_body(location_id) == expected


# -- error answers -----------------------------------------------------------

SPEC_CODES = [
    ("TRIPSHEET_TASK_NOT_FOUND", 400, TaskNotFoundError),
    ("INVALID_TASK_TYPE_ERROR", 400, InvalidTaskTypeError),
    ("TRIPSHEET_CLOSED_ERROR", 400, TripsheetClosedError),
    ("UNAUTHORIZED_ERROR", 401, AuthenticationError),
    ("INTERNAL_SERVER_ERROR", 500, InternalServerError),
    ("BAD_GATEWAY_ERROR", 502, BadGatewayError),
    ("SERVICE_UNAVAILABLE_ERROR", 503, ServiceUnavailableError),
    ("GATEWAY_TIMEOUT_ERROR", 504, GatewayTimeoutError),
]


@pytest.mark.parametrize(("code", "status", "cls"), SPEC_CODES)
def test_every_spec_code_maps_to_its_class(code: str, status: int, cls: type) -> None:
    body = json.dumps({"errorCode": code, "message": "why"}).encode()
    exc = common.error_from_answer(status, body, "LOC7")
    assert type(exc) is cls
    assert isinstance(exc, ApiError)
    assert (exc.status, exc.error_code, exc.message, exc.location_id) == (
        status,
        code,
        "why",
        "LOC7",
    )
    assert code in str(exc) and "LOC7" in str(exc) and str(status) in str(exc)


def test_unknown_code_stays_an_api_error_keeping_it() -> None:
    exc = common.error_from_answer(400, b'{"errorCode": "NEW_THING", "message": "m"}', "L")
    assert type(exc) is ApiError
    assert exc.error_code == "NEW_THING"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (500, InternalServerError),
        (502, BadGatewayError),
        (503, ServiceUnavailableError),
        (504, GatewayTimeoutError),
        (507, ServerError),
        (401, AuthenticationError),
        (404, ApiError),
        (429, RateLimitedError),
        (408, RequestTimeoutError),
        (499, RequestTimeoutError),
    ],
)
def test_non_json_error_bodies_are_classed_by_status(status: int, cls: type) -> None:
    exc = common.error_from_answer(status, b"<html><body>Bad Gateway</body></html>", "L")
    assert type(exc) is cls
    assert exc.status == status


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Fri, 27 Nov 2026 12:00:30 GMT", 30.0),
        ("Fri, 27 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_seconds_or_http_date(header: str | None, seconds: float | None) -> None:
    assert common.retry_after_seconds(header, NOW) == seconds


def test_a_200_carrying_an_error_code_raises_that_error() -> None:
    with pytest.raises(TaskNotFoundError):
        start_otc.parse_snapshot(b'{"errorCode": "TRIPSHEET_TASK_NOT_FOUND"}', "L", NOW)


# -- property: the parser never fails with anything but ResponseFormatError ----

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
entry_values = st.fixed_dictionaries(
    {},
    optional={
        "feName": json_values,
        "taskId": json_values,
        "otc": json_values,
        "expiryTime": st.integers() | st.text(max_size=15) | json_values,
        "createdAt": st.integers() | st.text(max_size=15) | json_values,
        "logisticPartner": json_values,
        "lob": json_values,
    },
)
documents = (
    json_values
    | st.fixed_dictionaries({"otcDetails": json_values})
    | st.fixed_dictionaries(
        {"otcDetails": st.dictionaries(st.text(max_size=8), entry_values | json_values)}
    )
)


def _parses_or_format_error(body: bytes) -> None:
    try:
        snap = start_otc.parse_snapshot(body, "LOC1", NOW)
    except ResponseFormatError:
        return
    except ApiError:
        # only a 200 that carries an errorCode may say so
        assert b"errorCode" in body
        return
    assert all(d.expires_at.tzinfo is UTC for d in snap.details.values())


@given(documents)
def test_arbitrary_json_parses_or_raises_response_format_error(document: object) -> None:
    _parses_or_format_error(json.dumps(document).encode())


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_response_format_error(body: bytes) -> None:
    _parses_or_format_error(body)


@given(documents, st.booleans())
def test_incremental_parse_equals_full_parse(document: object, reuse: bool) -> None:
    body = json.dumps(document).encode()
    try:
        full = start_otc.parse_snapshot(body, "LOC1", NOW)
    except (ResponseFormatError, ApiError):
        return
    previous = full if reuse else None
    again = start_otc.parse_snapshot(body, "LOC1", NOW, previous=previous)
    assert again == full


# -- property: the hand-written hot path structures exactly as the converter does --

_PLAIN_KEYS = ["feName", "taskId", "otc", "expiryTime", "createdAt", "logisticPartner", "lob"]
good_entries = st.fixed_dictionaries(
    {
        "feName": st.text(max_size=8),
        "taskId": st.text(max_size=8),
        "otc": st.text(max_size=8),
        "expiryTime": st.integers(min_value=0, max_value=2**32 * 1000 - 1),
        "createdAt": st.sampled_from([0, 10**11 - 1, 10**11, 2**32 * 1000 - 1]),
        "logisticPartner": st.text(max_size=8),
        "lob": st.sampled_from(["LARGE", "NONLARGE", "non_large", " Large ", "BULKY", ""]),
    },
    optional={"feId": json_values, "extra": json_values},
)
odd_values = json_values | st.sampled_from(
    [-1, True, 2**32 * 1000, 10**15, 10**30, 1.0, 1.5, "1739382981", "x", None]
)


@st.composite
def one_odd_field(draw: st.DrawFn) -> dict[str, object]:
    """A good entry with one field dropped, or set to any JSON value."""
    raw: dict[str, object] = draw(good_entries)
    key = draw(st.sampled_from(_PLAIN_KEYS))
    if draw(st.booleans()):
        del raw[key]
    else:
        raw[key] = draw(odd_values)
    return raw


def _plain_as_converted(fe_id: str, raw: dict[str, object]) -> None:
    plain = start_otc._plain_detail(fe_id, dict(raw))
    try:
        converted = start_otc._converter.structure({**raw, start_otc._FE_ID_KEY: fe_id}, OtcDetail)
    except Exception:
        assert plain is None  # the converter's refusal names the field: never bypass it
        return
    if plain is not None:
        assert plain == converted
        for name in attrs.fields_dict(OtcDetail):
            assert type(getattr(plain, name)) is type(getattr(converted, name))
        assert plain.expires_at.tzinfo is converted.expires_at.tzinfo is UTC


@given(st.text(min_size=1, max_size=8), good_entries | one_odd_field() | entry_values)
def test_plain_path_structures_as_the_converter_does(fe_id: str, raw: dict[str, object]) -> None:
    _plain_as_converted(fe_id, raw)


@pytest.mark.parametrize("key", ["expiryTime", "createdAt"])
@pytest.mark.parametrize(
    "value",
    [-1, 0, 10**11 - 1, 10**11, 2**32 * 1000 - 1, 2**32 * 1000, 10**30, True, 1.0, "1739382981"],
)
def test_plain_path_takes_epochs_at_their_edges_as_the_converter_does(
    key: str, value: object
) -> None:
    _plain_as_converted("fe1", entry(**{key: value}))


def test_entries_as_flipkart_sends_them_take_the_plain_path() -> None:
    for raw in (entry(), entry(lob="NON_LARGE"), entry(expiryTime=1739382981)):
        converted = start_otc._converter.structure({**raw, start_otc._FE_ID_KEY: "fe1"}, OtcDetail)
        assert start_otc._plain_detail("fe1", raw) == converted


def test_partners_names_and_lobs_repeated_across_fes_share_one_string() -> None:
    # what keeps 100,000 watched locations small: json.loads makes a new str each time
    snap = start_otc.parse_snapshot(
        answer(a=entry(), b=entry(), c=entry(lob=7), d=entry(expiryTime="1739382981")), "LOC1", NOW
    )
    a, b, c, d = snap.details.values()
    assert a.logistic_partner is b.logistic_partner is c.logistic_partner is d.logistic_partner
    assert a.fe_name is b.fe_name is c.fe_name is d.fe_name
    assert a.lob_raw is b.lob_raw
