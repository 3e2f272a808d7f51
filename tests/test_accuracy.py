"""The watcher's events against the simulator's ground truth, with faults injected."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import pytest

from flipkart_otc import (
    FeArrived,
    FeDeparted,
    ManualClock,
    OtcExpired,
    OtcRenewed,
    OtcWatcher,
    PollPolicy,
    RetryPolicy,
)
from flipkart_otc.simulator import TRANSIENT, ChangeKind, FaultKind, Scenario, Simulator

INTERVAL = 10
RUN = 1800  # simulated seconds
LOCATIONS = 24


@pytest.mark.parametrize("policy", [PollPolicy(), PollPolicy.fixed()], ids=["adaptive", "fixed"])
@pytest.mark.parametrize("seed", [11, 12])
async def test_events_match_ground_truth_under_faults(seed: int, policy: PollPolicy) -> None:
    # What lasts this long is seen: two intervals, plus, where the policy polls idle
    # locations slowly, one idle interval (a task that opened just after a poll).
    window = 2 * INTERVAL + (policy.idle or 0)
    clock = ManualClock()
    scenario = Scenario(locations=LOCATIONS, seed=seed, speed=5, mean_task_toggle=3000)
    start = clock.time()
    async with Simulator(clock=clock, scenario=scenario, seed=seed) as sim:
        sim.faults.random(0.25, TRANSIENT)  # healed by retries
        for location_id in scenario.location_ids[:6]:  # not retried: FAILING, then recovery
            sim.faults.script(
                FaultKind.TRUNCATED_JSON, FaultKind.INVALID_JSON, location=location_id
            )
        retry = RetryPolicy(max_tries=6, base_delay=0)
        async with (
            sim.client(retry=retry) as client,
            OtcWatcher(
                client,
                scenario.location_ids,
                interval=INTERVAL,
                jitter=0,
                clock=clock,
                policy=policy,
            ) as w,
        ):
            events: list[object] = []
            for _ in range(RUN):
                clock.advance(1)
                sim.advance_scenario()
                await w.wait_idle()
                events += [await anext(w) for _ in range(w.queued)]
        injected = len(sim.faults.injected)
        requests = sum(sim.requests.values())
        history = [c for c in sim.history if c.at < start + RUN]

    assert injected / requests >= 0.2
    assert sum(1 for _, kind in sim.faults.injected if kind is FaultKind.TRUNCATED_JSON) == 6

    # -- ground truth: the states each FE went through, and how long each lasted
    end = start + RUN
    states: list[
        tuple[str, str, str, float, float, float, str]
    ] = []  # loc, fe, otc, exp, from, to, how
    departures: list[tuple[str, str, float]] = []
    visits: dict[tuple[str, str], tuple[float, float]] = {}  # FE ids are not reused here
    open_state: dict[tuple[str, str], tuple[str, float, float, str]] = {}
    for change in history:
        if change.fe_id is None:
            continue
        key = (change.location_id, change.fe_id)
        if key in open_state:
            otc, exp, since, how = open_state.pop(key)
            states.append((*key, otc, exp, since, change.at, how))
        if change.kind is ChangeKind.ARRIVED:
            visits[key] = (change.at, end)
        if change.kind is ChangeKind.LEFT:
            departures.append((*key, change.at))
            visits[key] = (visits[key][0], change.at)
        else:
            assert change.otc is not None and change.expires_at is not None
            open_state[key] = (change.otc, change.expires_at, change.at, change.kind.value)
    for key, (otc, exp, since, how) in open_state.items():
        states.append((*key, otc, exp, since, end, how))

    arrived = [e for e in events if isinstance(e, FeArrived)]
    renewed = [e for e in events if isinstance(e, OtcRenewed)]
    expired = [e for e in events if isinstance(e, OtcExpired)]
    departed = [e for e in events if isinstance(e, FeDeparted)]
    assert min(len(arrived), len(renewed), len(expired), len(departed)) >= 20

    # -- no duplicates
    presence: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in events:
        if isinstance(e, (FeArrived, FeDeparted)):
            presence[(e.location_id, e.fe_id)].append(type(e).__name__)
    for key, seq in presence.items():
        assert seq[0] == "FeArrived", (key, seq)
        assert all(a != b for a, b in itertools.pairwise(seq)), (key, seq)
    renewal_keys = Counter((e.location_id, e.fe_id, e.detail.otc) for e in renewed)
    assert max(renewal_keys.values()) == 1
    expiry_keys = Counter(
        (e.location_id, e.fe_id, e.detail.otc, e.detail.expires_at.timestamp()) for e in expired
    )
    assert max(expiry_keys.values()) == 1

    # -- nothing missing that stayed visible for the window
    seen_arrivals = {(e.location_id, e.fe_id) for e in arrived}
    first_seen = {
        (e.location_id, e.fe_id, e.detail.otc): e.observed_at.timestamp()
        for e in [*arrived, *renewed]
    }
    missing = []
    for loc, fe, otc, exp, since, until, how in states:
        if until - since < window:
            continue
        # a code seen first after a quick renewal is reported by its arrival, so: every
        # code that stayed for the window is in an FeArrived or an OtcRenewed
        if (loc, fe, otc) not in first_seen:
            missing.append((how, loc, fe, since))
        if since < exp < until and exp < end:
            if expiry_keys[(loc, fe, otc, exp)] != 1:
                missing.append(("expiry", loc, fe, exp))
            elif first_seen[(loc, fe, otc)] < exp:
                (event,) = [
                    e for e in expired if (e.location_id, e.fe_id, e.detail.otc) == (loc, fe, otc)
                ]
                assert event.observed_at.timestamp() == exp  # the timer, not the next poll
    for (loc, fe), (since, until) in visits.items():
        if until - since >= window and (loc, fe) not in seen_arrivals:
            missing.append(("visit", loc, fe, since))
    seen_departures = Counter((e.location_id, e.fe_id) for e in departed)
    for loc, fe, at in departures:
        seen = (loc, fe) in seen_arrivals
        if seen and end - at >= window and seen_departures[(loc, fe)] != 1:
            missing.append(("departure", loc, fe, at))
    assert missing == []
