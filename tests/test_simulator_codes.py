"""Every answer the simulator gives, endpoint by endpoint, over real HTTP: each error
code is one the docs list for that endpoint (the table in ``simulator._codes``)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from flipkart_otc import ManualClock
from flipkart_otc.simulator import ENDPOINTS, FaultKind, Simulator
from flipkart_otc.simulator._codes import DOCUMENTED, INJECTED, UNREADABLE

#: Faults that give no answer to read: a slow one (past any client's timeout) and a
#: dropped connection.
NO_ANSWER = {FaultKind.SLOW, FaultKind.DROP}

PATHS = {
    "start-otc": "/v3/returns/otc/start/details",
    "initial-load": "/v3/returns/tasks/initial-load",
    "shipments": "/v3/returns/tasks/shipments",
    "end-otc": "/v3/returns/otc/end/details",
}


class Walk:
    """Asks the simulator, and keeps every (endpoint, status, errorCode) it answered."""

    def __init__(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        self.sim, self.http = sim, http
        self.answers: list[tuple[str, str, int, str | None]] = []
        headers = {"Authorization": f"Bearer {sim.token}", "Content-Type": "application/json"}
        self.headers = headers

    async def ask(
        self,
        endpoint: str,
        case: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str | None]:
        sent = {**self.headers, **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if endpoint == "shipments-next":
            url = self.sim.origin + (token_path(body) if raw is None else raw.decode())
            request = self.http.get(url, headers=sent)
        else:
            data = raw if raw is not None else json.dumps(body).encode()
            request = self.http.post(self.sim.base_url + PATHS[endpoint], data=data, headers=sent)
        async with request as response:
            text = await response.read()
            status = response.status
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        code = document.get("errorCode") if isinstance(document, dict) else None
        self.answers.append((endpoint, case, status, code))
        return status, code


def token_path(cursor: Any) -> str:
    token = base64.b64encode(json.dumps(cursor).encode()).decode()
    return "/sellers/v3/returns/tasks/shipments/" + token


@pytest.fixture
async def walk() -> AsyncIterator[Walk]:
    async with Simulator(clock=ManualClock()) as sim, aiohttp.ClientSession() as http:
        yield Walk(sim, http)


async def test_every_answer_of_every_endpoint_carries_a_documented_code(walk: Walk) -> None:
    world = walk.sim.world
    world.open_task("LOC1")
    world.open_task("SHUT")
    world.close_task("SHUT")
    scanning = world.arrive("LOC1", fe_id="fe-scan", task_id="T1")
    world.start_scanning("LOC1", scanning)
    world.scan("LOC1", scanning)
    ending = world.arrive("LOC1", fe_id="fe-end", task_id="T2")
    world.start_scanning("LOC1", ending)
    world.to_end_otc("LOC1", ending)
    done = world.arrive("LOC1", fe_id="fe-done", task_id="T3")
    world.start_scanning("LOC1", done)
    world.to_end_otc("LOC1", done)
    world.complete("LOC1", done)

    location = {"sellerLocationId": "LOC1", "taskType": "RETURN"}
    good: dict[str, Any] = {
        "start-otc": location,
        "initial-load": location,
        "shipments": {"taskId": "T1", "feId": "fe-scan", "pageSize": 25},
        "shipments-next": {"taskId": "T1", "feId": "fe-scan", "etag": "", "pageSize": 25},
        "end-otc": {"taskId": "T2", "feId": "fe-end", "taskType": "RETURN"},
    }

    # End OTC needs the scanning endpoint asked once
    await walk.ask("shipments", "fine", {"taskId": "T2", "feId": "fe-end", "pageSize": 25})

    # What every endpoint checks, and every fault it can be given.
    for endpoint in ENDPOINTS:
        body = good[endpoint]
        for kind in FaultKind:
            if kind not in NO_ANSWER:
                walk.sim.faults.script(kind, endpoint=endpoint)
                await walk.ask(endpoint, f"fault {kind.name}", body)
                walk.sim.token = walk.sim.issue_token()  # EXPIRED_TOKEN took them all
                walk.headers["Authorization"] = f"Bearer {walk.sim.token}"
        await walk.ask(endpoint, "no such token", body, token="nope")
        await walk.ask(endpoint, "text/plain", body, headers={"Content-Type": "text/plain"})
        if endpoint != "shipments-next":
            await walk.ask(endpoint, "a JSON list", ["LOC1"])
            await walk.ask(endpoint, "not JSON", raw=b"{")
        assert (await walk.ask(endpoint, "fine", body))[0] == 200

    # What each endpoint says of the request and the world.
    for endpoint in ("start-otc", "initial-load"):
        await walk.ask(endpoint, "no location", {"taskType": "RETURN"})
        await walk.ask(endpoint, "blank location", {"sellerLocationId": " ", "taskType": "RETURN"})
        await walk.ask(endpoint, "no task type", {"sellerLocationId": "LOC1"})
        await walk.ask(endpoint, "task type PICKUP", {**location, "taskType": "PICKUP"})
        await walk.ask(endpoint, "no task", {**location, "sellerLocationId": "LOC9"})
        await walk.ask(endpoint, "closed task", {**location, "sellerLocationId": "SHUT"})

    visits: dict[str, dict[str, Any]] = {
        "unknown task": {"taskId": "T9", "feId": "fe-scan"},
        "FE not on the task": {"taskId": "T1", "feId": "fe-end"},
        "finished visit": {"taskId": "T3", "feId": "fe-done"},
        "no task id": {"feId": "fe-scan"},
        "no FE id": {"taskId": "T1"},
        "ids not strings": {"taskId": 1, "feId": ["fe-scan"]},
    }
    for case, ids in visits.items():
        await walk.ask("shipments", case, {**ids, "pageSize": 25})
        await walk.ask("shipments-next", case, {**ids, "etag": "", "pageSize": 25})
        await walk.ask("end-otc", case, {**ids, "taskType": "RETURN"})
    for size in (0, -1, 1001, "25", 2.5, None):
        await walk.ask("shipments", f"pageSize {size!r}", {**good["shipments"], "pageSize": size})
        cursor = {**good["shipments-next"], "pageSize": size}
        await walk.ask("shipments-next", f"pageSize {size!r}", cursor)
    await walk.ask("shipments-next", "no etag", {"taskId": "T1", "feId": "fe-scan", "pageSize": 2})
    await walk.ask("shipments-next", "not base64", raw=b"/sellers/v3/returns/tasks/shipments/%%%")
    await walk.ask("shipments-next", "not JSON", raw=b"/sellers/v3/returns/tasks/shipments/e30K")
    await walk.ask("end-otc", "no task type", {"taskId": "T2", "feId": "fe-end"})
    await walk.ask("end-otc", "task type PICKUP", {**good["end-otc"], "taskType": "PICKUP"})
    scan = {"taskId": "T1", "feId": "fe-scan", "taskType": "RETURN"}
    await walk.ask("end-otc", "still scanning", scan)
    world.hold_sync("LOC1", ending)
    assert await walk.ask("end-otc", "not synced", good["end-otc"]) == (400, "SHIPMENT_SYNC_ERROR")

    undocumented = [
        (endpoint, case, status, code)
        for endpoint, case, status, code in walk.answers
        if code is not None and code not in DOCUMENTED[endpoint] and code not in INJECTED
    ]
    assert undocumented == []
    # the statuses the docs list, beside those of injected faults (429, 499, 502 as HTML)
    statuses = {status for *_, status, _ in walk.answers}
    assert statuses <= {200, 400, 401, 429, 499, 500, 502, 503, 504}
    assert {code for *_, code in walk.answers if code in INJECTED} == INJECTED
    # and the walk met every listed code but one no request can earn
    never = {endpoint: set[str]() for endpoint in ENDPOINTS}
    never["shipments"] = never["shipments-next"] = {"INVALID_TASK_TYPE_ERROR"}  # no taskType
    for endpoint in ENDPOINTS:
        seen = {code for e, _, _, code in walk.answers if e == endpoint and code is not None}
        assert seen | never[endpoint] == DOCUMENTED[endpoint] | INJECTED, endpoint


def test_the_table_names_each_endpoint_and_its_unreadable_code_is_listed() -> None:
    assert set(DOCUMENTED) == set(ENDPOINTS) == set(UNREADABLE)
    for endpoint, code in UNREADABLE.items():
        assert code in DOCUMENTED[endpoint], endpoint


async def test_the_finished_visit_and_the_stranger_get_the_code_that_fits(walk: Walk) -> None:
    """End OTC once the visit is over, or for an FE not on the task, says the FE and task
    do not name an open task; the shipments of an FE not on the task: no such task."""
    world = walk.sim.world
    world.open_task("LOC1")
    fe = world.arrive("LOC1", fe_id="fe1", task_id="T1")
    other = world.arrive("LOC1", fe_id="fe2", task_id="T2")
    world.start_scanning("LOC1", fe)
    world.to_end_otc("LOC1", fe)
    await walk.ask("shipments", "read once", {"taskId": "T1", "feId": fe, "pageSize": 25})
    world.complete("LOC1", fe)
    end = {"taskId": "T1", "feId": fe, "taskType": "RETURN"}
    assert await walk.ask("end-otc", "finished", end) == (400, "FE_OTC_BAD_REQUEST_ERROR")
    shipments = {"taskId": "T1", "feId": fe, "pageSize": 25}
    assert await walk.ask("shipments", "finished", shipments) == (400, "TASK_CLOSED")
    stranger = {"taskId": "T2", "feId": fe, "pageSize": 25}
    assert await walk.ask("shipments", "stranger", stranger) == (400, "TRIPSHEET_TASK_NOT_FOUND")
    assert other in world.visitors("LOC1")
