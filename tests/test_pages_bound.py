"""A server whose scanned-shipment pages never end, over real HTTP: one read of the
pages is bounded (a stop at a page that brings nothing new, a typed error past
``max_pages``), never yields a tracking id twice, and ``fetch --visit`` ends."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import pytest
from _helpers import run
from aiohttp import web

from flipkart_otc import OtcClient, PageLimitError, RetryPolicy


def page(ids: list[str], token: str) -> bytes:
    shipments = [
        {"trackingId": t, "shipmentId": f"S{t}", "status": "ACCEPTED", "reason": None,
         "scannedAt": 1767225600000}
        for t in ids
    ]  # fmt: skip
    next_url = f"/sellers/v3/returns/tasks/shipments/{token}"
    body = {"hasMore": True, "nextUrl": next_url, "scannedShipments": shipments}
    return json.dumps(body).encode()


class Endless:
    """Full pages for ever, each with a fresh cursor: the same 25 ids (``repeat``), or
    new ones each time."""

    def __init__(self, repeat: bool) -> None:
        self.repeat = repeat
        self.requests = 0
        self._tokens = itertools.count()

    def _ids(self) -> list[str]:
        start = 0 if self.repeat else self.requests * 25
        return [f"T{n}" for n in range(start, start + 25)]

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.path.endswith("/initial-load"):
            task = {"id": "T1", "status": "Scanning", "createdAt": 1767225600000}
            fe = {"feName": "Ram", "logisticPartner": "eKart", "lob": "LARGE", "task": task}
            body = {"sellerConfig": {"enabledFor": "DynamicStartEnd"}, "feDetails": {"fe1": fe}}
            return web.json_response(body)
        answer = page(self._ids(), f"tok{next(self._tokens)}")
        return web.Response(body=answer, content_type="application/json")


@pytest.fixture(params=[True, False], ids=["same-ids", "new-ids"])
async def endless(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Endless, str]]:
    server = Endless(repeat=request.param)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield server, f"http://{host}:{port}/sellers"
    finally:
        await runner.cleanup()


async def test_one_read_of_endless_pages_is_bounded_and_repeats_no_id(
    endless: tuple[Endless, str],
) -> None:
    server, base_url = endless
    async with OtcClient("t", base_url=base_url, retry=RetryPolicy(max_tries=1)) as client:
        seen: list[str] = []
        if server.repeat:  # the second page brings nothing new: the read ends there
            seen = [s.tracking_id async for s in client.scanned_shipments("T1", "fe1")]
            assert seen == [f"T{n}" for n in range(25)] and server.requests == 2
        else:  # every page brings new ids: the bound is hit, and said

            async def read() -> None:
                async for p in client.shipment_pages("T1", "fe1", max_pages=7):
                    seen.extend(s.tracking_id for s in p.shipments)

            with pytest.raises(PageLimitError) as caught:
                await read()
            assert caught.value.pages == 7 and server.requests == 7
            assert len(seen) == len(set(seen)) == 7 * 25


async def test_fetch_visit_against_endless_pages_ends(endless: tuple[Endless, str]) -> None:
    server, base_url = endless
    code, out, err = await run("fetch", "LOC1", "--visit", "--base-url", base_url, "--token", "t")
    assert "Traceback" not in err and "a bug" not in err
    assert server.requests <= 1 + 400  # initial-load, then at most one read's bound
    if server.repeat:
        assert code == 0 and "fe1" in out
    else:  # the bound hit is the location's failure, said on its row
        assert code == 1 and "ERROR" in out, (out, err)
        code, out, err = await run(
            "fetch", "LOC1", "--visit", "--base-url", base_url, "--token", "t", "--format", "json"
        )
        assert code == 1 and "did not end within 400 pages" in json.loads(out)["error"]
