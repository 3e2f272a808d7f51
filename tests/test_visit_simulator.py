"""The rest of the FE visit against the simulator over real HTTP: initial-load, scanned
shipments with their pages, and End OTC, through each page of the visit, each error the
spec lists, and faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from flipkart_otc import (
    FeOtcBadRequestError,
    ManualClock,
    NotOnEndOtcPageError,
    OtcClient,
    RetryPolicy,
    ServiceUnavailableError,
    ShipmentStatus,
    ShipmentSyncError,
    TaskClosedError,
    TaskNotFoundError,
    TransportError,
)
from flipkart_otc.simulator import ChangeKind, Fault, FaultKind, Simulator

FAST = RetryPolicy(max_tries=3, base_delay=0)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=ManualClock()) as s:
        s.world.open_task("LOC1")
        yield s


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[OtcClient]:
    async with sim.client(retry=FAST) as c:
        yield c


async def all_shipments(client: OtcClient, task_id: str, fe_id: str, size: int) -> list[str]:
    return [s.tracking_id async for s in client.scanned_shipments(task_id, fe_id, page_size=size)]


async def test_a_whole_visit_page_by_page(sim: Simulator, client: OtcClient) -> None:
    world = sim.world
    fe = world.arrive("LOC1", fe_name="Ram", otc="123456", ttl=300)
    task = world.visitors("LOC1")[fe].task_id
    load = await client.initial_load("LOC1")
    assert (load.fes[fe].task_id, load.fes[fe].task_status) == (task, "StartOtc")
    assert load.enabled_for == "DynamicStartEnd"
    assert fe in (await client.start_otc_details("LOC1")).details

    world.start_scanning("LOC1", fe)  # the code was used: off the Start OTC page
    assert fe not in (await client.start_otc_details("LOC1")).details
    assert (await client.initial_load("LOC1")).fes[fe].task_status == "Scanning"
    assert await all_shipments(client, task, fe, 25) == []  # an empty page
    with pytest.raises(NotOnEndOtcPageError):
        await client.end_otc_details(fe, task)

    scanned = [
        world.scan("LOC1", fe),
        world.scan("LOC1", fe, accepted=False, reason="Wrong item"),
        world.scan("LOC1", fe, flyer_match=False),
        world.scan("LOC1", fe, obd_eligible=True, obd_ok=False),
        world.scan("LOC1", fe, obd_eligible=True),
        world.scan("LOC1", fe, flyer=False),
        world.scan("LOC1", fe),
    ]
    # several pages (3 + 3 + 1), the next URL already holding /sellers, both spellings
    world.has_more = "page"  # the flag means another page (where the docs disagree)
    for paging in ("camel", "snake"):
        world.paging = paging
        assert await all_shipments(client, task, fe, 3) == scanned
    shipments = [s async for s in client.scanned_shipments(task, fe)]
    assert shipments[1].status is ShipmentStatus.REJECTED
    assert shipments[1].reason == "Wrong item"
    assert shipments[2].flyer is not None and shipments[2].flyer.status == "FlyerMismatch"
    assert shipments[3].obd is not None and shipments[3].obd.eligible
    assert shipments[5].flyer is None
    assert sim.visit_requests["shipments-next"] == 4  # two pages after the first, twice

    world.to_end_otc("LOC1", fe)
    assert (await client.initial_load("LOC1")).fes[fe].task_status == "EndOtc"
    world.hold_sync("LOC1", fe)
    with pytest.raises(ShipmentSyncError):
        await client.end_otc_details(fe, task)
    world.hold_sync("LOC1", fe, held=False)
    end = await client.end_otc_details(fe, task)
    assert (end.total_scanned, end.obd_eligible, end.obd_failed) == (7, 2, 1)
    assert (end.flyer_eligible, end.flyer_failed) == (6, 1)
    again = await client.end_otc_details(fe, task)  # asking again makes another code
    issued = [c.otc for c in world.history if c.kind is ChangeKind.END_OTC_ISSUED]
    assert issued == [end.otc, again.otc]

    world.complete("LOC1", fe)
    assert fe not in (await client.initial_load("LOC1")).fes
    with pytest.raises(TaskClosedError):
        await all_shipments(client, task, fe, 25)
    with pytest.raises(FeOtcBadRequestError):  # End OTC's docs list no TASK_CLOSED
        await client.end_otc_details(fe, task)
    kinds = [c.kind for c in world.history if c.fe_id == fe]
    assert kinds == [
        ChangeKind.ARRIVED,
        ChangeKind.SCANNING_STARTED,
        *[ChangeKind.SHIPMENT_SCANNED] * 7,
        ChangeKind.END_OTC_PAGE,
        ChangeKind.END_OTC_ISSUED,
        ChangeKind.END_OTC_ISSUED,
        ChangeKind.VISIT_COMPLETED,
    ]


async def test_has_more_stays_true_while_the_fe_scans(sim: Simulator) -> None:
    """The docs' other reading (the default): the flag turns false, and the next URL
    null, "once all shipments are scanned"; until then the last page's next URL is
    where the next poll reads on from."""
    world = sim.world
    fe = world.arrive("LOC1", ttl=300)
    task = world.visitors("LOC1")[fe].task_id
    world.start_scanning("LOC1", fe)
    scanned = [world.scan("LOC1", fe) for _ in range(4)]
    headers = {"Authorization": f"Bearer {sim.token}", "Content-Type": "application/json"}
    origin = sim.base_url.removesuffix("/sellers")

    async def page(http: aiohttp.ClientSession, url: str | None) -> tuple[list[str], str | None]:
        if url is None:
            body = {"taskId": task, "feId": fe, "pageSize": 3}
            request = http.post(sim.base_url + "/v3/returns/tasks/shipments", json=body)
        else:
            request = http.get(origin + url)
        async with request as response:
            document = await response.json()
        assert document["hasMore"] is (document["nextUrl"] is not None)
        return [s["trackingId"] for s in document["scannedShipments"]], document["nextUrl"]

    async with aiohttp.ClientSession(headers=headers) as http:
        first, url = await page(http, None)
        second, cursor = await page(http, url)
        assert (first, second) == (scanned[:3], scanned[3:])
        assert cursor is not None  # scanning goes on
        assert await page(http, cursor) == ([], cursor)  # nothing new: the same cursor
        scanned.append(world.scan("LOC1", fe))
        latest, cursor = await page(http, cursor)
        assert latest == scanned[4:]
        world.to_end_otc("LOC1", fe)
        assert await page(http, cursor) == ([], None)  # scanning is over
        assert await page(http, None) == (scanned[:3], url)  # a fresh read: page 1


async def test_the_wrong_task_or_fe_and_no_task(sim: Simulator, client: OtcClient) -> None:
    fe = sim.world.arrive("LOC1", ttl=300)
    task = sim.world.visitors("LOC1")[fe].task_id
    with pytest.raises(FeOtcBadRequestError):
        await client.end_otc_details("fe-someone-else", task)
    with pytest.raises(TaskNotFoundError):
        await all_shipments(client, "no-such-task", fe, 25)
    with pytest.raises(TaskNotFoundError):
        await client.initial_load("LOC9")


async def test_a_wrong_task_type_is_refused(sim: Simulator) -> None:
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with aiohttp.ClientSession() as http:
        for path, body in (
            ("/v3/returns/tasks/initial-load", {"sellerLocationId": "LOC1", "taskType": "X"}),
            ("/v3/returns/otc/end/details", {"feId": "f", "taskId": "t", "taskType": "X"}),
        ):
            async with http.post(sim.base_url + path, json=body, headers=headers) as response:
                assert response.status == 400
                assert (await response.json())["errorCode"] == "INVALID_TASK_TYPE_ERROR"


async def test_a_cursor_that_repeats_ends_the_pages(sim: Simulator, client: OtcClient) -> None:
    fe = sim.world.arrive("LOC1", ttl=300)
    task = sim.world.visitors("LOC1")[fe].task_id
    sim.world.start_scanning("LOC1", fe)
    scanned = [sim.world.scan("LOC1", fe) for _ in range(7)]
    sim.repeat_cursor = True  # every page points at the second page again
    assert await all_shipments(client, task, fe, 2) == scanned[:4]
    assert sim.visit_requests["shipments-next"] == 1


async def test_faults_on_the_visit_endpoints(sim: Simulator) -> None:
    fe = sim.world.arrive("LOC1", ttl=300)
    task = sim.world.visitors("LOC1")[fe].task_id
    sim.world.start_scanning("LOC1", fe)
    sim.world.scan("LOC1", fe)
    sim.world.to_end_otc("LOC1", fe)
    async with sim.client(retry=FAST) as client:
        sim.faults.script(Fault(FaultKind.SERVICE_UNAVAILABLE), location="LOC1")
        assert len(await all_shipments(client, task, fe, 25)) == 1  # retried, healed
        sim.faults.script(*[Fault(FaultKind.SERVICE_UNAVAILABLE)] * 3, location="LOC1")
        with pytest.raises(ServiceUnavailableError):
            await client.initial_load("LOC1")
        # End OTC makes a code: a failure after sending is not retried, and made nothing
        sim.faults.script(Fault(FaultKind.DROP), location="LOC1")
        with pytest.raises(TransportError):
            await client.end_otc_details(fe, task)
        assert not [c for c in sim.world.history if c.kind is ChangeKind.END_OTC_ISSUED]
        assert sim.visit_requests["end-otc"] == 1
        sim.faults.script(Fault(FaultKind.SERVICE_UNAVAILABLE), location="LOC1")
        with pytest.raises(ServiceUnavailableError):
            await client.end_otc_details(fe, task)
        assert sim.visit_requests["end-otc"] == 2
        assert (await client.end_otc_details(fe, task)).total_scanned == 1
        sim.faults.script(FaultKind.SERVICE_UNAVAILABLE, location="LOC1", endpoint="end-otc")
        assert len(await all_shipments(client, task, fe, 25)) == 1  # another endpoint
        with pytest.raises(ServiceUnavailableError):  # kept for End OTC
            await client.end_otc_details(fe, task)
    with pytest.raises(ValueError, match="endpoint must be one of"):
        sim.faults.script(FaultKind.DROP, endpoint="start_otc")
