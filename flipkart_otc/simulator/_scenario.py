"""A seeded random driver that makes FEs arrive, renew, let codes expire and leave.

Each location has its own random stream derived from the seed, and every action
has a planned time, so a seed gives the same world history however the clock
is stepped.
"""

from __future__ import annotations

import heapq
import itertools
import random

import attrs

from ._world import TaskState, World

__all__ = ["Scenario", "ScenarioDriver"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


@attrs.frozen
class Scenario:
    """How busy the simulated warehouses are. Times are in seconds at ``speed=1``.

    The defaults are realistic: an FE every ten minutes or so at an open task, a
    code valid for five minutes. ``speed=20`` makes the same story twenty times
    faster, for demos.
    """

    locations: int = attrs.field(default=10)
    seed: int = 0
    speed: float = attrs.field(default=1.0, validator=_positive)
    #: Share of locations with an open RETURN task at the start.
    open_share: float = attrs.field(default=0.9, validator=_fraction)
    #: Mean time between FE arrivals at an open location.
    mean_arrival_gap: float = attrs.field(default=600.0, validator=_positive)
    #: How long a code is valid.
    otc_ttl: float = attrs.field(default=300.0, validator=_positive)
    #: Share of codes issued with ``short_otc_ttl`` instead (a demo's urgent and expired
    #: codes among calm ones).
    short_otc_share: float = attrs.field(default=0.0, validator=_fraction)
    short_otc_ttl: float = attrs.field(default=20.0, validator=_positive)
    #: Mean time until an FE does something again (renews or leaves).
    mean_stay: float = attrs.field(default=240.0, validator=_positive)
    #: Mean time between a task closing or opening at a location.
    mean_task_toggle: float = attrs.field(default=7200.0, validator=_positive)
    max_fes: int = 3
    prefix: str = "LOC"
    #: Play the rest of the visit: an FE that does not renew uses its code, scans
    #: ``shipments`` (one every ``scan_gap`` on average, one in ten rejected), moves to
    #: the End OTC page and finishes a little later; ``leave_share`` of them leave while
    #: scanning. Off: an FE that does not renew just leaves the Start OTC page.
    visits: bool = False
    shipments: tuple[int, int] = (3, 12)
    scan_gap: float = attrs.field(default=20.0, validator=_positive)
    #: Mean time an FE spends on the End OTC page before it finishes.
    end_otc_stay: float = attrs.field(default=60.0, validator=_positive)
    leave_share: float = attrs.field(default=0.1, validator=_fraction)

    def __attrs_post_init__(self) -> None:
        if self.locations < 0:
            raise ValueError(f"locations must be >= 0, got {self.locations!r}")
        if self.max_fes < 1:
            raise ValueError(f"max_fes must be >= 1, got {self.max_fes!r}")

    @property
    def location_ids(self) -> list[str]:
        """``LOC1`` .. ``LOC<n>``."""
        return [f"{self.prefix}{i + 1}" for i in range(self.locations)]

    def driver(self, world: World, start: float) -> ScenarioDriver:
        """Play this scenario on ``world`` from ``start``."""
        return ScenarioDriver(world, self, start)


class ScenarioDriver:
    """Plays a :class:`Scenario` on a :class:`World` as its clock moves."""

    def __init__(self, world: World, scenario: Scenario, start: float) -> None:
        self.world = world
        self.scenario = scenario
        self._heap: list[tuple[float, int, str, str, str | None]] = []
        self._seq = itertools.count()
        self._rngs: dict[str, random.Random] = {}
        self._renewals: dict[tuple[str, str], int] = {}
        # FEs scanning: scans to come, and whether they leave unfinished after them
        self._scans_left: dict[tuple[str, str], tuple[int, bool]] = {}
        self._arrivals_planned: set[str] = set()  # one arrival chain per location
        for location_id in scenario.location_ids:
            rng = self._rngs[location_id] = random.Random(f"{scenario.seed}:{location_id}")
            if rng.random() < scenario.open_share:
                world.open_task(location_id, at=start)
                self._plan_arrival(location_id, start, scenario.mean_arrival_gap / 4)
            self._plan(location_id, start, "toggle", None, scenario.mean_task_toggle)

    def _plan(
        self, location_id: str, now: float, action: str, fe_id: str | None, mean: float
    ) -> None:
        gap = self._rngs[location_id].expovariate(self.scenario.speed / mean)
        heapq.heappush(self._heap, (now + gap, next(self._seq), location_id, action, fe_id))

    def _plan_arrival(self, location_id: str, now: float, mean: float) -> None:
        if location_id not in self._arrivals_planned:
            self._arrivals_planned.add(location_id)
            self._plan(location_id, now, "arrive", None, mean)

    @property
    def next_at(self) -> float | None:
        """When the next planned action happens."""
        return self._heap[0][0] if self._heap else None

    def advance_to(self, now: float) -> int:
        """Apply every action planned up to ``now``; returns how many ran."""
        ran = 0
        while self._heap and self._heap[0][0] <= now:
            at, _, location_id, action, fe_id = heapq.heappop(self._heap)
            getattr(self, f"_{action}")(location_id, at, fe_id)
            ran += 1
        return ran

    def _ttl(self, location_id: str) -> float:
        sc = self.scenario
        # no draw without short codes: a seed's story stays what it was
        if sc.short_otc_share and self._rngs[location_id].random() < sc.short_otc_share:
            return sc.short_otc_ttl / sc.speed
        return sc.otc_ttl / sc.speed

    def _arrive(self, location_id: str, at: float, _: str | None) -> None:
        sc, world, rng = self.scenario, self.world, self._rngs[location_id]
        self._arrivals_planned.discard(location_id)
        if world.task_state(location_id) is not TaskState.OPEN:
            return  # the toggle that reopens the task plans the next arrival
        if len(world.fes(location_id)) < sc.max_fes:
            fe_id = world.arrive(
                location_id, ttl=self._ttl(location_id), otc=f"{rng.randrange(10**6):06d}", at=at
            )
            self._renewals[(location_id, fe_id)] = 0
            self._plan(location_id, at, "step", fe_id, sc.mean_stay)
        self._plan_arrival(location_id, at, sc.mean_arrival_gap)

    def _step(self, location_id: str, at: float, fe_id: str | None) -> None:
        assert fe_id is not None
        world, rng = self.world, self._rngs[location_id]
        key = (location_id, fe_id)
        if key not in self._renewals or fe_id not in world.fes(location_id):
            self._renewals.pop(key, None)
            return  # the task closed under it
        if self._renewals[key] < 2 and rng.random() < 0.5:
            self._renewals[key] += 1
            world.renew(
                location_id,
                fe_id,
                ttl=self._ttl(location_id),
                otc=f"{rng.randrange(10**6):06d}",
                at=at,
            )
            self._plan(location_id, at, "step", fe_id, self.scenario.mean_stay)
        else:
            del self._renewals[key]
            if not self.scenario.visits:
                world.leave(location_id, fe_id, at=at)
                return
            world.start_scanning(location_id, fe_id, at=at)  # the code was read out
            leaves = rng.random() < self.scenario.leave_share
            self._scans_left[key] = (rng.randint(*self.scenario.shipments), leaves)
            self._plan(location_id, at, "scan", fe_id, self.scenario.scan_gap)

    def _scan(self, location_id: str, at: float, fe_id: str | None) -> None:
        assert fe_id is not None
        world, rng, sc = self.world, self._rngs[location_id], self.scenario
        key = (location_id, fe_id)
        if key not in self._scans_left or fe_id not in world.visitors(location_id):
            self._scans_left.pop(key, None)
            return  # the task closed under it
        left, leaves = self._scans_left[key]
        if left <= 0:
            del self._scans_left[key]
            if leaves:
                world.leave(location_id, fe_id, at=at)  # gone unfinished
                return
            world.to_end_otc(location_id, fe_id, at=at)
            self._plan(location_id, at, "complete", fe_id, sc.end_otc_stay)
            return
        self._scans_left[key] = (left - 1, leaves)
        world.scan(location_id, fe_id, accepted=rng.random() >= 0.1, at=at)
        self._plan(location_id, at, "scan", fe_id, sc.scan_gap)

    def _complete(self, location_id: str, at: float, fe_id: str | None) -> None:
        assert fe_id is not None
        if fe_id in self.world.visitors(location_id):
            self.world.complete(location_id, fe_id, at=at)

    def _toggle(self, location_id: str, at: float, _: str | None) -> None:
        sc, world = self.scenario, self.world
        state = world.task_state(location_id)
        if state is TaskState.OPEN:
            if self._rngs[location_id].random() < 0.5:
                world.close_task(location_id, at=at)
            else:
                world.remove_task(location_id, at=at)
            self._plan(location_id, at, "toggle", None, sc.mean_task_toggle / 6)
        else:
            world.open_task(location_id, at=at)
            self._plan_arrival(location_id, at, sc.mean_arrival_gap / 4)
            self._plan(location_id, at, "toggle", None, sc.mean_task_toggle)
