"""Shard workers following whole visits (``watch --visit --sink --shard i/2``) as real
processes on one Redis stream, against the simulator's ground truth, while a worker is
killed with SIGKILL at random moments mid-visit and started again.

What must hold, after de-duplication by event id: every shipment scanned in a visit
that ended while its worker could see it is told once; exactly one ``end_otc_ready`` per
visit that reached the End OTC page, with one code (a second End OTC request would
show the desk a second code); at most one End OTC request per visit beyond one whose
answer was never published. The raw duplicates are counted and printed."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

from _helpers import Worker, stream_entries, stream_length_reaches
from _redis_server import RedisServer

from flipkart_otc.simulator import ChangeKind, Scenario, Simulator

LOCATIONS = 24
EVENTS = 700
KILLS = 3


async def test_visit_workers_killed_mid_visit_tell_each_shipment_and_code_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    rng = random.Random(2027)
    scenario = Scenario(
        locations=LOCATIONS, seed=11, speed=40, visits=True, shipments=(3, 12), leave_share=0.1
    )
    ids = tmp_path / "locations.txt"
    ids.write_text("\n".join(scenario.location_ids) + "\n")
    async with Simulator(scenario=scenario) as sim:
        workers = [Worker(i, sim, redis_server, ids) for i in range(2)]
        for worker in workers:
            worker.args += ["--visit", "--scan-interval", "0.5"]
            await worker.start()
        for threshold in sorted(rng.sample(range(120, EVENTS - 120), KILLS)):
            await stream_length_reaches(redis_server, threshold)
            await rng.choice(workers).kill_and_restart()
        await stream_length_reaches(redis_server, EVENTS)
        for worker in workers:
            err = await worker.stop()
            assert "Traceback" not in err and "a bug" not in err
        history = list(sim.history)

    raw, events = await stream_entries(redis_server.url)
    raw_shipments = [e for e in raw if e["event"] == "shipment_scanned"]
    print(
        f"\n{len(raw)} entries, {len(events)} events, {len(raw) - len(events)} raw duplicates "
        f"({len(raw_shipments)} shipment entries)"
    )
    assert sum(w.resumed[-1] for w in workers) > 0  # they did resume from saved state

    told = Counter(
        (e["fe_id"], e["tracking_id"]) for e in events if e["event"] == "shipment_scanned"
    )
    assert max(told.values(), default=1) == 1  # one event id per shipment
    codes: dict[str, set[str]] = defaultdict(set)  # the End OTCs published, per FE
    for e in raw:
        if e["event"] == "end_otc_ready":
            codes[e["fe_id"]].add(e["otc"])
    issued: dict[str, list[str]] = defaultdict(list)
    for c in history:
        if c.kind is ChangeKind.END_OTC_ISSUED:
            assert c.otc is not None and c.fe_id is not None
            issued[c.fe_id].append(c.otc)

    completed = [c for c in history if c.kind is ChangeKind.VISIT_COMPLETED]
    assert completed, "no visit was completed: nothing was tried"
    checked = 0
    for change in completed:
        fe = change.fe_id
        assert fe is not None
        if not codes.get(fe):
            continue  # it finished unseen (a worker down the whole time): not told
        checked += 1
        assert len(codes[fe]) == 1, (fe, codes[fe], issued[fe])  # one code on the desk
        # each End OTC request makes a code; beyond the one published, only codes whose
        # answer was never published (a worker killed before its write)
        unpublished = [otc for otc in issued[fe] if otc not in codes[fe]]
        assert len(issued[fe]) <= 1 + len(unpublished)
        assert len(unpublished) <= KILLS
        scanned = {c.tracking_id for c in history if c.fe_id == fe and c.tracking_id}
        assert {t for f, t in told if f == fe} == scanned, fe  # every scan, once
    assert checked > 0
