"""The scheduler on its own, with a ManualClock and entries that are not locations."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable

from flipkart_otc._scheduler import Scheduler
from flipkart_otc.clock import ManualClock


class Job:
    __slots__ = ("due", "every", "name", "removed", "runs")

    def __init__(self, name: str, every: float) -> None:
        self.name, self.every = name, every
        self.runs: list[float] = []
        self.due, self.removed = math.inf, False

    def __lt__(self, other: Job) -> bool:
        return self.due < other.due


async def test_entries_run_when_due_one_worker_each_at_most_and_never_overlap() -> None:
    clock = ManualClock()
    busy: set[str] = set()

    async def run(job: Job, now: float) -> None:
        assert job.name not in busy  # one entry is never served twice at once
        busy.add(job.name)
        job.runs.append(now)
        await asyncio.sleep(0)  # a wait inside the work, as a request has
        busy.discard(job.name)

    def serve(job: Job, now: float) -> Awaitable[None]:
        return run(job, now)

    scheduler: Scheduler[Job] = Scheduler(
        clock, serve, lambda job, now: now + job.every, workers=10**6
    )
    jobs = [Job("a", 10), Job("b", 15), Job("c", 30)]
    scheduler.start()
    start = scheduler.now()
    for job in jobs:
        scheduler.schedule(job, start)
    await scheduler.wait_idle()
    for _ in range(60):
        clock.advance(1)
        await scheduler.wait_idle()
    assert [len(j.runs) for j in jobs] == [7, 5, 3]  # t=0..60 every 10, 15 and 30 s
    assert [r - start for r in jobs[1].runs] == [0, 15, 30, 45, 60]
    workers = [t for t in asyncio.all_tasks() if t.get_name().startswith("scheduler-worker")]
    assert len(workers) <= 3 == len(jobs)  # no more workers than due work
    jobs[0].removed = True
    for _ in range(30):
        clock.advance(1)
        await scheduler.wait_idle()
    assert len(jobs[0].runs) == 7  # removed: never served again
    assert [len(j.runs) for j in jobs[1:]] == [7, 4]
    await scheduler.aclose()


async def test_a_stepped_wall_clock_moves_no_deadline() -> None:
    clock = ManualClock()
    seen: list[float] = []

    async def run(job: Job, now: float) -> None:
        seen.append(clock.monotonic())

    scheduler: Scheduler[Job] = Scheduler(
        clock, lambda job, now: run(job, now), lambda job, now: now + 10, workers=1
    )
    scheduler.start()
    scheduler.schedule(Job("a", 10), scheduler.now())
    await scheduler.wait_idle()
    clock.step_wall(-3600)
    for _ in range(30):
        clock.advance(1)
        await scheduler.wait_idle()
    clock.step_wall(7200)
    for _ in range(30):
        clock.advance(1)
        await scheduler.wait_idle()
    assert seen == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    await scheduler.aclose()
