"""OtcClient against the simulator: real HTTP on 127.0.0.1, no mocks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import aiohttp
import attrs
import pytest

from flipkart_otc import (
    AuthenticationError,
    BadGatewayError,
    ClientCredentials,
    GatewayTimeoutError,
    InternalServerError,
    Lob,
    OtcClient,
    RateLimitedError,
    RequestTimeoutError,
    ResponseFormatError,
    RetryPolicy,
    ServiceUnavailableError,
    TaskNotFoundError,
    TransportError,
    TripsheetClosedError,
)
from flipkart_otc.clock import ManualClock
from flipkart_otc.simulator import (
    TRANSIENT,
    Change,
    ChangeKind,
    DayScenario,
    Fault,
    FaultKind,
    Scenario,
    ScenarioDriver,
    Simulator,
    World,
)

UTC = UTC
ONCE = RetryPolicy(max_tries=1)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=ManualClock()) as s:
        s.world.open_task("LOC1")
        yield s


async def test_answers_the_fes_on_the_page(sim: Simulator) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    ram = sim.world.arrive("LOC1", fe_name="Ram", otc="123456", ttl=240, lob="NON_LARGE")
    async with sim.client() as client:
        snap = await client.start_otc_details("LOC1")
    detail = snap.details[ram]
    assert (detail.fe_name, detail.otc, detail.lob) == ("Ram", "123456", Lob.NONLARGE)
    start = datetime.fromtimestamp(int(clock.time()), UTC)
    assert detail.created_at == start
    assert (detail.expires_at - detail.created_at).total_seconds() == 240
    assert sim.requests["LOC1"] == 1


async def test_empty_page_and_task_states(sim: Simulator) -> None:
    async with sim.client() as client:
        assert (await client.start_otc_details("LOC1")).details == {}
        with pytest.raises(TaskNotFoundError) as info:
            await client.start_otc_details("UNKNOWN")
        assert info.value.error_code == "TRIPSHEET_TASK_NOT_FOUND"
        sim.world.close_task("LOC1")
        with pytest.raises(TripsheetClosedError):
            await client.start_otc_details("LOC1")
        sim.world.remove_task("LOC1")
        with pytest.raises(TaskNotFoundError):
            await client.start_otc_details("LOC1")


async def test_checks_what_flipkart_checks(sim: Simulator) -> None:
    url = sim.base_url + "/v3/returns/otc/start/details"
    good = {"Authorization": f"Bearer {sim.token}", "Content-Type": "application/json"}
    cases = [
        (good, {"sellerLocationId": "LOC1", "taskType": "PICKUP"}, 400, "INVALID_TASK_TYPE_ERROR"),
        (good, {"sellerLocationId": " ", "taskType": "RETURN"}, 400, "TRIPSHEET_TASK_NOT_FOUND"),
        (good, {"taskType": "RETURN"}, 400, "TRIPSHEET_TASK_NOT_FOUND"),
        (good, ["LOC1"], 400, "INVALID_TASK_TYPE_ERROR"),
        ({**good, "Authorization": "Bearer nope"}, None, 401, "UNAUTHORIZED_ERROR"),
        ({"Content-Type": "application/json"}, None, 401, "UNAUTHORIZED_ERROR"),
        ({**good, "Content-Type": "text/plain"}, None, 400, "INVALID_TASK_TYPE_ERROR"),
    ]
    async with aiohttp.ClientSession() as session:
        for headers, body, status, code in cases:
            payload = (
                body if body is not None else {"sellerLocationId": "LOC1", "taskType": "RETURN"}
            )
            async with session.post(url, data=json.dumps(payload), headers=headers) as resp:
                assert (resp.status, (await resp.json(content_type=None))["errorCode"]) == (
                    status,
                    code,
                ), (headers, body)


async def test_bad_token_is_an_authentication_error(sim: Simulator) -> None:
    async with sim.client(auth="not-a-token") as client:
        with pytest.raises(AuthenticationError):
            await client.start_otc_details("LOC1")


async def test_token_endpoint_issues_and_refuses(sim: Simulator) -> None:
    creds = ClientCredentials(sim.app_id, sim.app_secret, token_url=sim.token_url)
    async with sim.client(auth=creds) as client:
        await client.start_otc_details("LOC1")
    assert (creds.fetches, sim.tokens_issued) == (1, 1)

    wrong = ClientCredentials(sim.app_id, "wrong", token_url=sim.token_url)
    async with sim.client(auth=wrong) as client:
        with pytest.raises(AuthenticationError, match="Bad credentials") as info:
            await client.start_otc_details("LOC1")
    assert info.value.status == 401
    assert sim.requests["LOC1"] == 1

    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.token_url, params={"grant_type": "password"}) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"] == "unsupported_grant_type"


async def test_a_token_the_simulator_expired_is_refreshed() -> None:
    clock = ManualClock()
    async with Simulator(clock=clock, token_lifetime=3600) as sim:
        sim.world.open_task("LOC1")
        creds = ClientCredentials(sim.app_id, sim.app_secret, token_url=sim.token_url)
        async with sim.client(auth=creds) as client:
            await client.start_otc_details("LOC1")
            clock.advance(3601)  # the server expires it; the client's cache does not know
            await client.start_otc_details("LOC1")
            sim.faults.script(FaultKind.EXPIRED_TOKEN)
            await client.start_otc_details("LOC1")
        assert sim.tokens_issued == 3
        assert sim.requests["LOC1"] == 5  # two answers of 401, each resent once


async def test_fifty_concurrent_requests_with_an_expired_token_refresh_once(
    sim: Simulator,
) -> None:
    creds = ClientCredentials(sim.app_id, sim.app_secret, token_url=sim.token_url)
    async with sim.client(auth=creds) as client:
        await client.start_otc_details("LOC1")
        sim.expire_tokens()
        results = await asyncio.gather(*(client.start_otc_details("LOC1") for _ in range(50)))
    assert len(results) == 50
    assert sim.tokens_issued == 2
    assert creds.fetches == 2


FAULT_ERRORS = [
    (FaultKind.INTERNAL_SERVER_ERROR, InternalServerError),
    (FaultKind.BAD_GATEWAY, BadGatewayError),
    (FaultKind.SERVICE_UNAVAILABLE, ServiceUnavailableError),
    (FaultKind.GATEWAY_TIMEOUT, GatewayTimeoutError),
    (FaultKind.RATE_LIMITED, RateLimitedError),
    (FaultKind.CONNECTION_TIMED_OUT, RequestTimeoutError),
    (FaultKind.HTML_BAD_GATEWAY, BadGatewayError),
    (FaultKind.DROP, TransportError),
    (FaultKind.TRUNCATED_JSON, ResponseFormatError),
    (FaultKind.INVALID_JSON, ResponseFormatError),
    (FaultKind.EXPIRED_TOKEN, AuthenticationError),
]


@pytest.mark.parametrize(("kind", "error"), FAULT_ERRORS)
async def test_each_fault_gives_the_exception_the_rules_say(
    sim: Simulator, kind: FaultKind, error: type
) -> None:
    sim.world.arrive("LOC1")
    sim.faults.script(kind, location="LOC1")
    async with sim.client(retry=ONCE) as client:
        with pytest.raises(error):
            await client.start_otc_details("LOC1")
        assert sim.faults.injected == [("LOC1", kind)]
        if kind is not FaultKind.EXPIRED_TOKEN:
            assert len((await client.start_otc_details("LOC1")).details) == 1


async def test_a_slow_answer_times_out(sim: Simulator) -> None:
    sim.faults.script(Fault(FaultKind.SLOW, delay=30), location="LOC1")
    async with sim.client(retry=ONCE, timeout=0.2) as client:
        with pytest.raises(RequestTimeoutError, match=r"no answer within 0\.2s"):
            await client.start_otc_details("LOC1")


@pytest.mark.parametrize("kind", [*TRANSIENT, FaultKind.SLOW])
async def test_retries_heal_transient_faults(sim: Simulator, kind: FaultKind) -> None:
    sim.world.arrive("LOC1", fe_id="fe1")
    sim.faults.script(*[Fault(kind, delay=30)] * 3, location="LOC1")
    async with sim.client(retry=RetryPolicy(max_tries=4, base_delay=0), timeout=0.2) as client:
        snap = await client.start_otc_details("LOC1")
    assert list(snap.details) == ["fe1"]
    assert sim.requests["LOC1"] == 4


async def test_random_faults_hit_about_their_rate(sim: Simulator) -> None:
    sim.faults.random(0.3, [FaultKind.SERVICE_UNAVAILABLE])
    async with sim.client(retry=ONCE) as client:
        outcomes = await asyncio.gather(
            *(client.start_otc_details("LOC1") for _ in range(400)), return_exceptions=True
        )
    failed = sum(isinstance(o, ServiceUnavailableError) for o in outcomes)
    assert failed == len(sim.faults.injected)
    assert 60 < failed < 180


def _scenario_history(seed: int, seconds: bool = False) -> Sequence[object]:
    clock = ManualClock()
    world = World(clock, seconds=seconds, seed=seed)
    driver = ScenarioDriver(world, Scenario(locations=8, seed=seed, speed=10), clock.time())
    # step the clock unevenly: the history must not depend on how time moves
    for step in (1, 7, 0.5, 30, 2, 100, 13, 400, 61, 900):
        clock.advance(step)
        driver.advance_to(clock.time())
    return world.history


def test_a_share_of_short_codes_mixes_lifetimes_and_without_it_nothing_changes() -> None:
    def lifetimes(scenario: Scenario) -> list[float]:
        clock = ManualClock()
        world = World(clock, seed=1)
        driver = ScenarioDriver(world, scenario, clock.time())
        clock.advance(3600)
        driver.advance_to(clock.time())
        return [
            round(c.expires_at - c.at)
            for c in world.history
            if c.kind in (ChangeKind.ARRIVED, ChangeKind.RENEWED) and c.expires_at is not None
        ]

    calm = Scenario(locations=6, seed=1, mean_arrival_gap=60.0, mean_stay=60.0)
    mixed = lifetimes(attrs.evolve(calm, short_otc_share=0.3, short_otc_ttl=6.0))
    assert set(mixed) == {6, 300}
    assert 0.15 < mixed.count(6) / len(mixed) < 0.45
    # no share, no draw: a seed's story is what it was
    assert set(lifetimes(calm)) == {300}
    with pytest.raises(ValueError, match="short_otc_share"):
        Scenario(short_otc_share=1.5)


def test_same_seed_same_scenario_and_ground_truth() -> None:
    first = _scenario_history(seed=3)
    assert first == _scenario_history(seed=3)
    assert first != _scenario_history(seed=4)
    kinds = {c.kind for c in first}  # type: ignore[attr-defined]
    assert {ChangeKind.ARRIVED, ChangeKind.RENEWED, ChangeKind.LEFT} <= kinds


def _day(seed: int, steps: list[float]) -> list[Change]:
    clock = ManualClock()
    world = World(clock, seed=seed)
    driver = DayScenario(locations=200, seed=seed).driver(world, clock.time())
    for step in steps:
        clock.advance(step)
        driver.advance_to(clock.time())
    return world.history


def test_the_day_scenario_is_a_plausible_day_and_the_same_for_a_seed() -> None:
    day = _day(5, [86_400.0])
    assert day == _day(5, [1.0, 3599.0, 0.5, 40_000.0, 42_799.5])  # however stepped
    assert day != _day(6, [86_400.0])
    start = ManualClock().time()
    by_location: dict[str, list[Change]] = {}
    for change in day:
        by_location.setdefault(change.location_id, []).append(change)
    idle = 200 - len(by_location)
    assert 40 <= idle <= 80  # about 30 % never have a task
    for changes in by_location.values():
        assert changes[0].kind is ChangeKind.TASK_OPENED
        assert changes[-1].kind is ChangeKind.TASK_CLOSED  # closed by the end of the day
        for change in changes:
            assert start <= change.at < start + 86_400
            if change.kind is ChangeKind.ARRIVED:  # a task opened 10 minutes before, at least
                opened = max(
                    c.at for c in changes if c.kind is ChangeKind.TASK_OPENED and c.at <= change.at
                )
                assert change.at - opened >= 600 - 1
    arrivals = sorted((c.at - start) / 3600 for c in day if c.kind is ChangeKind.ARRIVED)
    business = [h for h in arrivals if 8 <= h <= 19]
    assert len(business) >= 0.9 * len(arrivals)  # clustered on business hours
    kinds = {c.kind for c in day}
    assert {ChangeKind.ARRIVED, ChangeKind.RENEWED, ChangeKind.LEFT} <= kinds


def test_a_day_with_visits_plays_each_visit_in_order() -> None:
    clock = ManualClock()
    world = World(clock, seed=2)
    DayScenario(locations=100, seed=2, visits=True).driver(world, clock.time()).advance_to(
        clock.time() + 86_400
    )
    order = [
        ChangeKind.ARRIVED,
        ChangeKind.SCANNING_STARTED,
        ChangeKind.SHIPMENT_SCANNED,
        ChangeKind.END_OTC_PAGE,
        ChangeKind.VISIT_COMPLETED,
    ]
    by_fe: dict[str, list[ChangeKind]] = {}
    for change in world.history:
        if change.fe_id is not None and change.kind is not ChangeKind.RENEWED:
            by_fe.setdefault(change.fe_id, []).append(change.kind)
    assert by_fe
    for kinds in by_fe.values():
        steps = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
        assert steps == order, kinds  # every FE of the day finishes its visit
        assert 5 <= kinds.count(ChangeKind.SHIPMENT_SCANNED) <= 40


async def test_seconds_mode_parses_to_the_same_instants() -> None:
    runs = []
    for seconds in (False, True):
        clock = ManualClock()
        scenario = Scenario(locations=5, seed=5, speed=10)
        async with Simulator(clock=clock, seconds=seconds, scenario=scenario) as sim:
            clock.advance(120)
            sim.advance_scenario()
            snaps = {}
            async with sim.client() as client:
                for location_id in scenario.location_ids:
                    status, body = sim.world.answer(location_id)
                    if status == 200 and body != b'{"otcDetails": {}}':
                        assert (b"000," in body) is not seconds
                        snaps[location_id] = await client.start_otc_details(location_id)
            runs.append({k: v.details for k, v in snaps.items()})
    assert runs[0]
    assert runs[0] == runs[1]


async def test_handles_a_thousand_concurrent_requests(sim: Simulator) -> None:
    sim.world.arrive("LOC1")
    url = sim.base_url + "/v3/returns/otc/start/details"
    headers = {"Authorization": f"Bearer {sim.token}", "Content-Type": "application/json"}
    body = b'{"sellerLocationId": "LOC1", "taskType": "RETURN"}'
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> int:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(one() for _ in range(1000)))
    assert statuses == [200] * 1000
    assert sim.requests["LOC1"] == 1000


async def test_pytest_plugin_fixture(flipkart_simulator: Simulator) -> None:
    flipkart_simulator.world.open_task("LOC9")
    flipkart_simulator.world.arrive("LOC9", fe_name="Ram")
    async with flipkart_simulator.client() as client:
        snap = await client.start_otc_details("LOC9")
    assert [d.fe_name for d in snap.details.values()] == ["Ram"]


def test_world_refuses_impossible_changes() -> None:
    world = World(ManualClock())
    with pytest.raises(ValueError, match="no open task"):
        world.arrive("LOC1")
    world.open_task("LOC1")
    world.arrive("LOC1", fe_id="fe1")
    with pytest.raises(ValueError, match="already at"):
        world.arrive("LOC1", fe_id="fe1")
    with pytest.raises(ValueError, match="'fe2' is not at"):
        world.renew("LOC1", "fe2")
    world.close_task("LOC1")
    assert [c.kind for c in world.history] == [
        ChangeKind.TASK_OPENED,
        ChangeKind.ARRIVED,
        ChangeKind.LEFT,
        ChangeKind.TASK_CLOSED,
    ]


async def test_standalone_simulator_prints_what_a_client_needs() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flipkart_otc.simulator",
        "--port",
        "0",
        "--locations",
        "3",
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        lines: dict[str, str] = {}
        while len(lines) < 6:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "the simulator ended early"
            key, _, value = line.strip().partition("  ")
            lines[key.strip()] = value.strip()
        creds = ClientCredentials(
            lines["app id"], lines["app secret"], token_url=lines["token URL"]
        )
        async with OtcClient(creds, base_url=lines["base URL"], retry=ONCE) as client:
            snap = await client.start_otc_details("LOC1")
        assert snap.location_id == "LOC1"
    finally:
        proc.send_signal(2)
        assert await asyncio.wait_for(proc.wait(), 30) == 130
