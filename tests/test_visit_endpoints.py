"""initial-load and End OTC over real HTTP (a stand-in Flipkart on 127.0.0.1 serving
the spec's samples), and their parsers fuzzed with arbitrary JSON."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from _helpers import assert_no_secret, json_values, serve
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from flipkart_otc import (
    ApiError,
    EndOtc,
    FeOtcBadRequestError,
    InitialLoad,
    Lob,
    NotOnEndOtcPageError,
    OtcClient,
    ResponseFormatError,
    RetryPolicy,
    ShipmentSyncError,
    TaskClosedError,
    TaskNotFoundError,
    TripsheetClosedError,
)
from flipkart_otc._wire.end_otc import parse_end_otc
from flipkart_otc._wire.initial_load import parse_initial_load

INITIAL = "/sellers/v3/returns/tasks/initial-load"
END = "/sellers/v3/returns/otc/end/details"
NOW = datetime(2026, 11, 30, tzinfo=UTC)
# the spec's samples, placeholders as published
INITIAL_SAMPLE: dict[str, Any] = {
    "sellerConfig": {"enabledFor": "OldStatic | NewStatic | DynamicStartEnd | DynamicEnd"},
    "feDetails": {
        "fe12303": {
            "feName": "Ram",
            "logisticPartner": "eKart",
            "lob": "LARGE | NONLARGE",
            "task": {"id": "123", "status": "Scanning", "createdAt": 1873193801},
        }
    },
}
END_SAMPLE = {
    "otc": "123456",
    "totalScanned": 120,
    "obdEligible": 15,
    "obdFailed": 2,
    "flyerEligible": 12,
    "flyerFailed": 1,
}
FAST = RetryPolicy(max_tries=3, base_delay=0)


def answering(*answers: tuple[int, object]) -> tuple[list[dict[str, Any]], Any]:
    """A handler that gives the answers in turn (the last one again), and what it got."""
    got: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        got.append(await request.json())
        status, body = answers[min(len(got), len(answers)) - 1]
        return web.json_response(body, status=status)

    return got, handler


async def test_initial_load_reads_the_spec_sample() -> None:
    got, handler = answering((200, INITIAL_SAMPLE))
    async with (
        serve({("POST", INITIAL): handler}) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=FAST) as client,
    ):
        load = await client.initial_load(" LOC1 ")
    assert got == [{"sellerLocationId": "LOC1", "taskType": "RETURN"}]
    assert isinstance(load, InitialLoad) and load.location_id == "LOC1"
    assert load.enabled_for == INITIAL_SAMPLE["sellerConfig"]["enabledFor"]  # kept raw
    fe = load.fes["fe12303"]
    assert (fe.fe_name, fe.logistic_partner, fe.task_id, fe.task_status) == (
        "Ram",
        "eKart",
        "123",
        "Scanning",
    )
    assert (fe.lob, fe.lob_raw) == (Lob.UNKNOWN, "LARGE | NONLARGE")
    assert fe.task_created_at == datetime.fromtimestamp(1873193801, UTC)  # seconds


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"sellerConfig": {"enabledFor": "X"}}, "feDetails"),
        (
            {"feDetails": {"fe1": {"feName": "Ram", "logisticPartner": "e", "lob": "LARGE"}}},
            "feDetails.fe1.task",
        ),
        (
            {
                "feDetails": {
                    "fe1": {
                        **INITIAL_SAMPLE["feDetails"]["fe12303"],
                        "task": {"id": "1", "status": "S", "createdAt": "soon"},
                    }
                }
            },
            "feDetails.fe1.task.createdAt",
        ),
        ({"feDetails": []}, "feDetails"),
    ],
)
async def test_initial_load_names_the_bad_field(body: dict[str, Any], path: str) -> None:
    _, handler = answering((200, body))
    async with (
        serve({("POST", INITIAL): handler}) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=FAST) as client,
    ):
        with pytest.raises(ResponseFormatError) as info:
            await client.initial_load("LOC1")
    assert info.value.field == path and "initial-load" in str(info.value)


async def test_end_otc_reads_the_spec_sample_and_hides_the_code() -> None:
    got, handler = answering((200, END_SAMPLE))
    async with (
        serve({("POST", END): handler}) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=FAST) as client,
    ):
        end = await client.end_otc_details("fe12303", "123")
    assert got == [{"feId": "fe12303", "taskId": "123", "taskType": "RETURN"}]
    assert end == EndOtc("fe12303", "123", "123456", 120, 15, 2, 12, 1)
    assert "123456" not in repr(end)


async def test_a_malformed_end_otc_answer_keeps_no_code() -> None:
    _, handler = answering((200, {**END_SAMPLE, "otc": "987654", "totalScanned": -1}))
    async with (
        serve({("POST", END): handler}) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=FAST) as client,
    ):
        with pytest.raises(ResponseFormatError) as info:
            await client.end_otc_details("fe1", "1")
    assert info.value.field == "totalScanned"
    assert_no_secret(info.value, secrets=("987654",))


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("TASK_CLOSED", TaskClosedError),
        ("SHIPMENT_SYNC_ERROR", ShipmentSyncError),
        ("NOT_ON_END_OTC_PAGE_ERROR", NotOnEndOtcPageError),
        ("FE_OTC_BAD_REQUEST_ERROR", FeOtcBadRequestError),
        ("TRIPSHEET_TASK_NOT_FOUND", TaskNotFoundError),
    ],
)
async def test_each_error_code_of_the_visit_is_typed(code: str, cls: type[ApiError]) -> None:
    _, handler = answering((400, {"errorCode": code, "message": "no"}))
    async with (
        serve({("POST", END): handler, ("POST", INITIAL): handler}) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=FAST) as client,
    ):
        with pytest.raises(cls) as info:
            await client.end_otc_details("fe1", "1")
        assert info.value.error_code == code
        with pytest.raises(cls):
            await client.initial_load("LOC1")
    assert issubclass(TaskClosedError, TripsheetClosedError)  # the watcher says CLOSED


async def test_end_otc_is_not_retried_once_it_may_have_reached_flipkart() -> None:
    busy = (503, {"errorCode": "SERVICE_UNAVAILABLE_ERROR", "message": "busy"})
    got_end, end_handler = answering(busy, (200, END_SAMPLE))
    got_load, load_handler = answering(busy, (200, INITIAL_SAMPLE))
    async with (
        serve({("POST", END): end_handler, ("POST", INITIAL): load_handler}) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=FAST) as client,
    ):
        with pytest.raises(ApiError):
            await client.end_otc_details("fe1", "1")
        await client.initial_load("LOC1")  # idempotent: retried past the 503
    assert len(got_end) == 1 and len(got_load) == 2


near_misses = st.fixed_dictionaries(
    {
        "feDetails": st.dictionaries(
            st.text(), json_values | st.just(INITIAL_SAMPLE["feDetails"]["fe12303"])
        )
    },
    optional={"sellerConfig": json_values},
)


@given(json_values | near_misses)
def test_initial_load_parses_any_json_to_a_model_or_a_format_error(document: object) -> None:
    body = json.dumps(document).encode()
    with contextlib.suppress(ResponseFormatError, ApiError):  # anything else fails the test
        assert isinstance(parse_initial_load(body, "LOC1", NOW), InitialLoad)


@given(json_values | st.fixed_dictionaries(dict.fromkeys(END_SAMPLE, json_values)))
def test_end_otc_parses_any_json_to_a_model_or_a_format_error(document: object) -> None:
    body = json.dumps(document).encode()
    with contextlib.suppress(ResponseFormatError, ApiError):  # anything else fails the test
        assert isinstance(parse_end_otc(body, "fe1", "1"), EndOtc)
