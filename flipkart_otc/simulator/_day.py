"""A seeded day at a network of warehouses, for measuring polling budgets.

What it assumes of a real network (each a field of :class:`DayScenario`): a share of
locations has no return pickup all day; the others get one or two visits, clustered
around the logistics partners' milk runs (late morning and late afternoon). A visit's
RETURN task opens a while before its FE arrives (when the trip is planned) and closes
a while after the last FE leaves. Sometimes a second FE, of another partner, comes
at about the same time. An FE waits on the Start OTC page until the seller reads the
code out (it leaves the page), or the code expires and the FE asks for a new one.

The whole day is planned at start from the seed, one random stream per location, so
a seed gives the same history however the clock is stepped.
"""

from __future__ import annotations

import bisect
import random

import attrs

from ._world import World

__all__ = ["DayDriver", "DayScenario"]

HOUR = 3600.0


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class DayScenario:
    """One day (from the clock's time at start, taken as midnight) at ``locations``
    warehouses. Times are seconds."""

    locations: int = 1000
    seed: int = 0
    #: Share of locations with no pickup all day (no task: TRIPSHEET_TASK_NOT_FOUND).
    idle_share: float = attrs.field(default=0.3, validator=_fraction)
    #: Share of the others that get a second visit.
    second_visit_share: float = attrs.field(default=0.4, validator=_fraction)
    #: The milk runs (hours after midnight) visits cluster around, and their spread.
    runs: tuple[float, ...] = (11.0, 16.0)
    run_spread: float = attrs.field(default=1.0 * HOUR, validator=_positive)
    #: From a task opening to its FE's arrival: at least ``min_lead``, mean ``lead``.
    min_lead: float = 10 * 60.0
    lead: float = attrs.field(default=60 * 60.0, validator=_positive)
    #: From the last FE leaving to the task closing (mean).
    close_after: float = attrs.field(default=15 * 60.0, validator=_positive)
    #: Share of visits where a second FE (another partner) comes at about the same time.
    pair_share: float = attrs.field(default=0.3, validator=_fraction)
    otc_ttl: float = attrs.field(default=300.0, validator=_positive)
    #: Chance that the seller reads a code out before it expires (the FE leaves the
    #: page); otherwise it expires and the FE asks again, after ``ask_again`` (mean).
    read_share: float = attrs.field(default=0.7, validator=_fraction)
    ask_again: float = attrs.field(default=30.0, validator=_positive)
    max_codes: int = 4
    #: Play the rest of the visit: an FE whose code is read out scans its shipments
    #: (``shipments``, one every ``scan_gap`` seconds on average, one in ten rejected),
    #: moves to the End OTC page and leaves a minute or two later. Off: it just leaves.
    visits: bool = False
    shipments: tuple[int, int] = (5, 40)
    scan_gap: float = attrs.field(default=15.0, validator=_positive)
    prefix: str = "LOC"

    def __attrs_post_init__(self) -> None:
        if self.locations < 0:
            raise ValueError(f"locations must be >= 0, got {self.locations!r}")

    @property
    def location_ids(self) -> list[str]:
        """``LOC1`` .. ``LOC<n>``."""
        return [f"{self.prefix}{i + 1}" for i in range(self.locations)]

    def driver(self, world: World, start: float) -> DayDriver:
        """Plan the day from ``start`` on ``world``."""
        return DayDriver(world, self, start)


#: (at, order, action, location id, FE id)
_Action = tuple[float, int, str, str, str]


class DayDriver:
    """Plays a :class:`DayScenario` on a :class:`World` as its clock moves."""

    def __init__(self, world: World, scenario: DayScenario, start: float) -> None:
        self.world = world
        self.scenario = scenario
        plan: list[_Action] = []
        for location_id in scenario.location_ids:
            plan += _plan_location(scenario, location_id, start)
        plan.sort()
        self._plan = plan
        self._next = 0

    @property
    def next_at(self) -> float | None:
        """When the next planned action happens."""
        return self._plan[self._next][0] if self._next < len(self._plan) else None

    @property
    def end(self) -> float:
        """When the last planned action happens."""
        return self._plan[-1][0] if self._plan else 0.0

    def advance_to(self, now: float) -> int:
        """Apply every action planned up to ``now``; returns how many ran."""
        stop = bisect.bisect_right(self._plan, (now, float("inf")))
        world, ttl = self.world, self.scenario.otc_ttl
        for at, _, action, location_id, fe_id in self._plan[self._next : stop]:
            if action == "open":
                world.open_task(location_id, at=at)
            elif action == "close":
                world.close_task(location_id, at=at)
            elif action == "arrive":
                world.arrive(location_id, fe_id=fe_id, ttl=ttl, at=at)
            elif action == "renew":
                world.renew(location_id, fe_id, ttl=ttl, at=at)
            elif action == "scanning":
                world.start_scanning(location_id, fe_id, at=at)
            elif action in ("scan", "scan-rejected"):
                world.scan(location_id, fe_id, accepted=action == "scan", at=at)
            elif action == "end-otc":
                world.to_end_otc(location_id, fe_id, at=at)
            elif action == "complete":
                world.complete(location_id, fe_id, at=at)
            else:
                world.leave(location_id, fe_id, at=at)
        ran = stop - self._next
        self._next = stop
        return ran


def _plan_location(sc: DayScenario, location_id: str, start: float) -> list[_Action]:
    """The day of one location: tasks around visits, FEs and their codes."""
    rng = random.Random(f"day:{sc.seed}:{location_id}")
    if rng.random() < sc.idle_share:
        return []
    visits = 2 if rng.random() < sc.second_visit_share else 1
    arrivals = sorted(
        min(max(rng.gauss(rng.choice(sc.runs) * HOUR, sc.run_spread), 2 * HOUR), 22 * HOUR)
        for _ in range(visits)
    )
    actions: list[_Action] = []
    order = iter(range(10**6))
    task_open_until = -1.0  # a task still open from the last visit is reused
    for visit, arrival in enumerate(arrivals):
        opens = arrival - sc.min_lead - rng.expovariate(1 / sc.lead)
        if opens > task_open_until:
            if actions:  # close the last visit's task first
                actions.append((start + task_open_until, next(order), "close", location_id, ""))
            actions.append((start + opens, next(order), "open", location_id, ""))
        fes = 2 if rng.random() < sc.pair_share else 1
        last_leave = arrival
        for n in range(fes):
            fe_id = f"fe-{location_id}-{visit}-{n}"
            at = arrival + (rng.uniform(0, 300) if n else 0.0)
            actions.append((start + at, next(order), "arrive", location_id, fe_id))
            for code in range(sc.max_codes):
                if code == sc.max_codes - 1 or rng.random() < sc.read_share:
                    at += rng.uniform(20, sc.otc_ttl - 5)  # read out in time: on to scanning
                    if not sc.visits:
                        actions.append((start + at, next(order), "leave", location_id, fe_id))
                        break
                    actions.append((start + at, next(order), "scanning", location_id, fe_id))
                    for _ in range(rng.randint(*sc.shipments)):
                        at += rng.expovariate(1 / sc.scan_gap)
                        scan = "scan-rejected" if rng.random() < 0.1 else "scan"
                        actions.append((start + at, next(order), scan, location_id, fe_id))
                    at += rng.expovariate(1 / 20)
                    actions.append((start + at, next(order), "end-otc", location_id, fe_id))
                    at += rng.uniform(30, 120)  # the FE checks the code: the visit is over
                    actions.append((start + at, next(order), "complete", location_id, fe_id))
                    break
                at += sc.otc_ttl + rng.expovariate(1 / sc.ask_again)
                actions.append((start + at, next(order), "renew", location_id, fe_id))
            last_leave = max(last_leave, at)
        # a visit that shares the task keeps it open until the later of the two ends
        task_open_until = max(task_open_until, last_leave + rng.expovariate(1 / sc.close_after))
    actions.append((start + task_open_until, next(order), "close", location_id, ""))
    return actions
