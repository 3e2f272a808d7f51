"""Shard workers as real processes (``flipkart-otc watch --sink --shard``) writing to one
stream of a real redis-server, against the simulator's ground truth, while a worker is
killed with SIGKILL at random moments and started again.

What must hold: deduplicated by event id, the stream is the ground truth (nothing lost,
nothing announced twice, no FE arriving again that never left, every departure
reported, even one that happened while its worker was dead), and the raw duplicates are
few and counted.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

from _helpers import INTERVAL, SHARDS, Worker, stream_entries, stream_length_reaches
from _redis_server import RedisServer

from flipkart_otc import shard_of
from flipkart_otc.simulator import ChangeKind, Scenario, Simulator

LOCATIONS = 160
EVENTS = 1_100  # the run ends once the stream holds this many (at least 1,000)
KILLS = 3
# a state that lasts this long with its worker up is seen: two polls, and slack for a
# busy machine (four processes on two cores) that stalls a worker for a moment (the
# world's history is in whole seconds: a state recorded as lasting d lasted > d - 1)
WINDOW = 2 * INTERVAL + 1.5


async def test_shard_workers_killed_at_random_moments_lose_and_repeat_nothing(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    rng = random.Random(2026)
    scenario = Scenario(locations=LOCATIONS, seed=7, speed=40)
    ids = tmp_path / "locations.txt"
    ids.write_text("\n".join(scenario.location_ids) + "\n")
    async with Simulator(scenario=scenario) as sim:
        started = time.time()
        workers = [Worker(i, sim, redis_server, ids) for i in range(SHARDS)]
        for worker in workers:
            await worker.start()
        for threshold in sorted(rng.sample(range(150, EVENTS - 150), KILLS)):
            await stream_length_reaches(redis_server, threshold)
            await rng.choice(workers).kill_and_restart()
        await stream_length_reaches(redis_server, EVENTS)
        end = time.time()
        for worker in workers:
            err = await worker.stop()
            assert "Traceback" not in err
        history = [c for c in sim.history if c.at < end]

    raw, events = await stream_entries(redis_server.url)
    duplicates = len(raw) - len(events)
    print(f"\n{len(raw)} entries, {len(events)} events, {duplicates} raw duplicates")
    assert len(events) >= 1_000
    assert duplicates <= len(events) // 100  # few, and counted above
    assert sum(w.resumed[-1] for w in workers) > 0  # they did resume from saved state
    assert sum(len(w.gaps) for w in workers) == SHARDS + KILLS

    owner = {loc: workers[shard_of(loc, SHARDS)] for loc in scenario.location_ids}

    def gap_at(location_id: str, since: float, until: float) -> bool:
        """Was the location's worker down (or just back) during [since, until]? (Both
        are whole seconds, floored: ``until`` may be a second later in fact.)"""
        gaps = owner[location_id].gaps
        return any(a - WINDOW < until + 1 and since < b + WINDOW for a, b in gaps)

    # -- nothing twice: per FE, arrivals and departures alternate, arrival first
    presence: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in events:
        if e["event"] in ("fe_arrived", "fe_departed"):
            presence[(e["location_id"], e["fe_id"])].append(e["event"])
    for key, seq in presence.items():
        assert seq[0] == "fe_arrived", (key, seq)
        assert all(a != b for a, b in itertools.pairwise(seq)), (key, seq)
    expiries = Counter(
        (e["location_id"], e["fe_id"], e["otc"], e["expires_at"])
        for e in events
        if e["event"] == "otc_expired"
    )
    assert max(expiries.values()) == 1
    recovered = [e for e in events if e.get("recovered")]
    assert recovered, "the gaps left nothing to recover"

    # -- nothing invented
    arrived_truth = {(c.location_id, c.fe_id) for c in history if c.kind is ChangeKind.ARRIVED}
    codes_truth = {(c.location_id, c.fe_id, c.otc) for c in history if c.otc is not None}
    for e in events:
        if e["event"] == "fe_arrived":
            assert (e["location_id"], e["fe_id"]) in arrived_truth
        if e["event"] in ("fe_arrived", "otc_renewed", "otc_expired"):
            assert (e["location_id"], e["fe_id"], e["otc"]) in codes_truth

    # -- nothing lost: every code that was visible long enough with its worker up, and
    # every departure of an FE that was seen, gaps or not
    seen_codes = {
        (e["location_id"], e["fe_id"], e["otc"])
        for e in events
        if e["event"] in ("fe_arrived", "otc_renewed")
    }
    departed = Counter(
        (e["location_id"], e["fe_id"]) for e in events if e["event"] == "fe_departed"
    )
    open_codes: dict[tuple[str, str], tuple[str, float]] = {}
    missing = []
    for change in history:
        if change.fe_id is None:
            continue
        key = (change.location_id, change.fe_id)
        if key in open_codes:
            otc, since = open_codes.pop(key)
            lasted = change.at - since - 1
            if (
                lasted >= WINDOW
                and not gap_at(key[0], since, change.at)
                and ((*key, otc) not in seen_codes)
            ):
                missing.append(("code", *key, since))
        if change.kind is ChangeKind.LEFT:
            was_seen = presence.get(key)
            # it left up to a second after its floored instant
            if was_seen and end - (change.at + 1) >= WINDOW and departed[key] != 1:
                missing.append(("departure", *key, change.at))
        else:
            assert change.otc is not None
            open_codes[key] = (change.otc, change.at)
    assert missing == [], [  # what the world did to each, and what the stream says
        (
            m,
            [(c.at, c.kind.value) for c in history if (c.location_id, c.fe_id) == m[1:3]],
            [
                (e["event"], e["observed_at"])
                for e in events
                if (e["location_id"], e.get("fe_id")) == m[1:3]
            ],
        )
        for m in missing
    ]
    assert started < end
