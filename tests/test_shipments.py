"""Scanned shipments, page after page, from a stand-in Flipkart on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from _helpers import json_values, serve
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from flipkart_otc import (
    ApiError,
    OtcClient,
    ResponseFormatError,
    RetryPolicy,
    ScannedShipment,
    ShipmentStatus,
)
from flipkart_otc._wire.shipments import next_target, parse_page

FIRST = "/sellers/v3/returns/tasks/shipments"


def shipment(n: int, status: str = "ACCEPTED") -> dict[str, Any]:
    return {
        "trackingId": f"FMP{n:03d}",
        "shipmentId": f"SH{n}",
        "status": status,
        "reason": None if status == "ACCEPTED" else "Damaged",
        "flyerDetails": {"actualFlyerId": "F1", "capturedFlyerId": "F1", "status": "FlyerMatch"},
        "obdDetails": {"eligible": True, "remark": "NoIssues", "imageLinks": ["https://i/1"]},
        "scannedAt": 1739382981000 + n,
    }


def cursor(n: int) -> str:
    return base64.b64encode(json.dumps({"taskId": "123", "etag": f"FMP{n}"}).encode()).decode()


class Pages:
    """Serves pages of shipments: each a list of ids, the next URL in the given form."""

    def __init__(self, pages: list[list[int]], *, snake: bool = False, repeat_last: bool = False):
        self.pages, self.snake, self.repeat_last = pages, snake, repeat_last
        self.requests: list[tuple[str, str]] = []

    def page(self, i: int) -> web.Response:
        last = i == len(self.pages) - 1
        more = not last or self.repeat_last
        url = f"/sellers/v3/returns/tasks/shipments/{cursor(i + 1 if not last else i)}"
        keys = ("has_more", "next_url") if self.snake else ("hasMore", "nextUrl")
        body = {
            keys[0]: more,
            keys[1]: url if more else None,
            "scannedShipments": [shipment(n) for n in self.pages[i]],
        }
        return web.json_response(body)

    async def first(self, request: web.Request) -> web.Response:
        self.requests.append(("POST", await request.text()))
        return self.page(0)

    async def later(self, request: web.Request) -> web.Response:
        token = request.match_info["cursor"]
        self.requests.append(("GET", token))
        n = json.loads(base64.b64decode(token))["etag"]
        return self.page(min(int(n[3:]), len(self.pages) - 1))

    def routes(self) -> dict[tuple[str, str], Any]:
        return {("POST", FIRST): self.first, ("GET", FIRST + "/{cursor}"): self.later}


async def collect(pages: Pages) -> list[ScannedShipment]:
    async with (
        serve(pages.routes()) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=RetryPolicy(max_tries=1)) as client,
    ):
        return [s async for s in client.scanned_shipments("123", "fe12303", page_size=2)]


@pytest.mark.parametrize("snake", [False, True], ids=["camelCase", "snake_case"])
async def test_pages_are_followed_to_the_end_in_either_spelling(snake: bool) -> None:
    pages = Pages([[1, 2], [3, 4], [5]], snake=snake)
    got = await collect(pages)
    assert [s.tracking_id for s in got] == ["FMP001", "FMP002", "FMP003", "FMP004", "FMP005"]
    assert pages.requests[0] == (
        "POST",
        json.dumps({"taskId": "123", "feId": "fe12303", "pageSize": 2}),
    )
    assert [method for method, _ in pages.requests] == ["POST", "GET", "GET"]
    first = got[0]
    assert first.status is ShipmentStatus.ACCEPTED and first.reason is None
    assert first.flyer is not None and first.flyer.status == "FlyerMatch"
    assert first.obd is not None and first.obd.image_links == ("https://i/1",)


async def test_a_cursor_that_repeats_ends_the_pages() -> None:
    pages = Pages([[1], [2]], repeat_last=True)  # the last page names itself again
    got = await collect(pages)
    assert [s.tracking_id for s in got] == ["FMP001", "FMP002"]
    assert (
        len(pages.requests) == 2
    )  # the POST and the second page: its own URL is not fetched again


async def test_an_empty_page_ends_quietly() -> None:
    assert await collect(Pages([[]])) == []


async def test_a_page_with_no_shipment_ends_the_pages_whatever_its_next_url() -> None:
    """While the FE scans, the has-more flag may stay true (the docs: until "all
    shipments are scanned"), and a server may hand out a fresh token each time."""
    pages = Pages([[1, 2], []])
    fresh = iter(range(3, 10))

    async def later(request: web.Request) -> web.Response:
        pages.requests.append(("GET", request.match_info["cursor"]))
        url = f"{FIRST}/{cursor(next(fresh))}"  # another token for the same place
        return web.json_response({"hasMore": True, "nextUrl": url, "scannedShipments": []})

    routes = pages.routes()
    routes[("GET", FIRST + "/{cursor}")] = later
    async with (
        serve(routes) as origin,
        OtcClient("t", base_url=origin + "/sellers", retry=RetryPolicy(max_tries=1)) as client,
    ):
        got = [s.tracking_id async for s in client.scanned_shipments("123", "fe", page_size=2)]
    assert got == ["FMP001", "FMP002"]
    assert [method for method, _ in pages.requests] == ["POST", "GET"]


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        (
            "/sellers/v3/returns/tasks/shipments/abc=",
            "https://api.test/sellers/v3/returns/tasks/shipments/abc=",
        ),
        (
            "/v3/returns/tasks/shipments/abc=",
            "https://api.test/sellers/v3/returns/tasks/shipments/abc=",
        ),
        ("https://api.test/sellers/x", "https://api.test/sellers/x"),
    ],
)
def test_next_urls_join_as_the_spec_note_says(next_url: str, expected: str) -> None:
    assert next_target("https://api.test/sellers", next_url) == expected


@pytest.mark.parametrize(
    "elsewhere", ["https://evil.test/sellers/x", "//evil.test/x", "http://api.test/x"]
)
def test_a_next_url_on_another_host_is_refused(elsewhere: str) -> None:
    with pytest.raises(ResponseFormatError, match="another host"):
        next_target("https://api.test/sellers", elsewhere)


@given(
    json_values
    | st.fixed_dictionaries({"scannedShipments": st.lists(json_values | st.just(shipment(1)))})
)
def test_a_page_parses_to_shipments_or_a_format_error(document: object) -> None:
    with contextlib.suppress(ResponseFormatError, ApiError):  # anything else fails the test
        page = parse_page(json.dumps(document).encode())
        assert all(isinstance(s, ScannedShipment) for s in page.shipments)
