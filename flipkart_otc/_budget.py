"""Spend a rate budget on idle locations: ``PollPolicy(budget_share=s)``. Pure: no
asyncio, no I/O, no clock (callers pass the times).

Without knowing when an FE will come, the best a poller can do for an idle location
is to poll it at even intervals; with a spare budget of B requests a second over N
idle locations, that interval is N/B (and an arrival's delay p95 is 0.95 N/B). The
budget is ``s x R`` requests a second in all (R the client's rate, per worker of a
fleet): the polls the policy's states call for come first (an FE at the door, a task
waiting for its FE, a location not polled yet or failing), at their own intervals;
the rest is spread evenly over the idle locations, never faster than the base
interval.

An idle location's interval is set when it is polled and lasts until its next poll,
so one set while FEs crowd the budget would leave it unpolled long after they left.
The idle locations therefore plan on at least :data:`IDLE_PART` of what the tasks
waiting for their first FE leave (the polls for FEs at the door, and for tasks whose
FE has come and gone, that go beyond it queue in the client's cap for the share, where
the most urgent go first); and on :data:`RESERVE` of the budget in any case, so none
starves: an idle location is polled at least every ``N_idle / (RESERVE x s x R)``
seconds. The cap for the share keeps what is sent at or under ``s x R`` plus its burst
whatever the plan.

>>> idle_interval(rate=20, share=0.5, demand=2.0, idle=80, base=10.0)
10.0
>>> idle_interval(rate=20, share=0.5, demand=2.0, idle=800, base=10.0)
100.0
"""

from __future__ import annotations

import collections
import math

from .models import LocationStatus
from .policy import PollPolicy

__all__ = ["IDLE_PART", "RESERVE", "SPENT_WINDOW", "Budget", "budget_for", "idle_interval"]

#: The least part of the budget the idle locations share, however much the states ask.
RESERVE = 0.1
#: The least part of what the tasks waiting for their FE leave of the budget that the
#: idle locations plan on: an FE at the door is served first by the cap's queue anyway,
#: while an idle location's interval, once set at a busy moment, would last long after.
IDLE_PART = 0.7
#: The span (seconds) over which the rate spent is measured.
SPENT_WINDOW = 10.0


def idle_interval(
    *,
    rate: float,
    share: float,
    demand: float,
    idle: int,
    base: float,
    waiting: float = 0.0,
) -> float:
    """Seconds between polls of each of ``idle`` idle locations, so that with the polls
    the states call for (``demand`` per second, ``waiting`` of it for tasks waiting for
    their FE) the total is ``share x rate`` a second: never below ``base``; inf when no
    location is idle. The idle plan on at least :data:`IDLE_PART` of what the waiting
    tasks leave, and :data:`RESERVE` of the budget in any case."""
    if idle <= 0:
        return math.inf
    target = share * rate
    left = target - waiting
    spare = max(target - demand, IDLE_PART * left, RESERVE * target)
    return max(base, idle / spare)


def _is_idle(status: LocationStatus | None) -> bool:
    return status is LocationStatus.NO_TASK or status is LocationStatus.CLOSED


class Budget:
    """A watcher's budget: what each location's state calls for, the idle interval that
    spends the rest, and the rate spent (polls made in the last :data:`SPENT_WINDOW`
    seconds).

    ``rate`` is the requests a second this watcher may aim its share at (its client's
    rate limit, divided among a fleet's workers).
    """

    __slots__ = (
        "_demand",
        "_idle",
        "_interval",
        "_looks",
        "_spent",
        "_total",
        "_visited",
        "_waits",
        "base",
        "policy",
        "rate",
    )

    def __init__(self, policy: PollPolicy, rate: float, base: float) -> None:
        if policy.budget_share is None:
            raise ValueError("this policy has no budget_share")
        self.policy = policy
        self.rate = rate
        self.base = base
        self._demand: dict[str, float] = {}  # location -> polls a second its state asks
        self._waits: dict[str, float] = {}  # the same, for tasks waiting for their FE
        self._visited: set[str] = set()  # an FE came since the location's task opened
        self._idle: set[str] = set()
        self._looks: dict[str, float] = {}  # location -> visit requests a second
        self._total = 0.0
        self._interval = math.inf
        self._spent: collections.deque[float] = collections.deque()

    @property
    def target(self) -> float:
        """Requests a second the watcher aims at in all."""
        assert self.policy.budget_share is not None
        return self.policy.budget_share * self.rate

    @property
    def demand(self) -> float:
        """Requests a second the locations' states call for (the idle ones left out):
        their polls, and the looks at FEs past the Start OTC page (``visits=True``)."""
        looks = math.fsum(self._looks.values()) if self._looks else 0.0
        return max(0.0, self._total) + looks

    def note_looks(self, location_id: str, rate: float) -> None:
        """The requests a second a location's visits now call for (0: none followed)."""
        if rate > 0:
            self._looks[location_id] = rate
        else:
            self._looks.pop(location_id, None)

    @property
    def idle(self) -> int:
        """Idle locations (no task, or a closed one)."""
        return len(self._idle)

    def idle_interval(self) -> float:
        """Seconds between polls of each idle location now (inf: none is idle)."""
        assert self.policy.budget_share is not None
        return idle_interval(
            rate=self.rate,
            share=self.policy.budget_share,
            demand=self.demand,
            waiting=math.fsum(self._waits.values()) if self._waits else 0.0,
            idle=len(self._idle),
            base=self.base,
        )

    def note(
        self, location_id: str, status: LocationStatus | None, *, fes: bool, failures: int
    ) -> None:
        """A location's state now (after a poll, or when it is added)."""
        self._drop(location_id)
        if _is_idle(status):
            self._idle.add(location_id)
            self._visited.discard(location_id)
            return
        if fes:
            self._visited.add(location_id)
        interval = self.policy.interval(self.base, status, fes=fes, failures=failures)
        rate = 1.0 / interval if interval > 0 else math.inf
        self._demand[location_id] = rate
        if status is LocationStatus.ACTIVE and location_id not in self._visited:
            self._waits[location_id] = rate  # its first FE is coming
        self._total += rate
        if not math.isfinite(self._total):  # inf - inf later would be NaN: sum afresh
            self._total = math.fsum(self._demand.values())

    def forget(self, location_id: str) -> None:
        """A location no longer watched."""
        self._drop(location_id)
        self._visited.discard(location_id)
        self._looks.pop(location_id, None)

    def _drop(self, location_id: str) -> None:
        self._idle.discard(location_id)
        self._waits.pop(location_id, None)
        rate = self._demand.pop(location_id, None)
        if rate is not None:
            if math.isfinite(rate) and math.isfinite(self._total):
                self._total -= rate
            else:
                self._total = math.fsum(self._demand.values())
            if not self._demand:
                self._total = 0.0  # no drift left behind

    def spend(self, at: float) -> None:
        """A poll made at ``at``."""
        spent = self._spent
        spent.append(at)
        while spent and spent[0] <= at - SPENT_WINDOW:
            spent.popleft()

    def spent(self, now: float) -> float:
        """Polls a second made over the last :data:`SPENT_WINDOW` seconds."""
        return sum(1 for at in self._spent if at > now - SPENT_WINDOW) / SPENT_WINDOW

    def next_poll(
        self,
        location_id: str,
        status: LocationStatus | None,
        *,
        fes: bool,
        failures: int,
        started: float,
        now: float,
        next_expiry: float,
        spread: float = 1.0,
    ) -> float:
        """:meth:`PollPolicy.next_poll`, an idle location at the budget's interval; the
        poll just made is counted as spent (when it ended: it may have waited for its
        turn) and the location's state noted."""
        self.spend(now)
        self.note(location_id, status, fes=fes, failures=failures)
        return self.policy.next_poll(
            self.base,
            status,
            fes=fes,
            failures=failures,
            started=started,
            now=now,
            next_expiry=next_expiry,
            spread=spread,
            idle=self.idle_interval() if _is_idle(status) else None,
        )


def budget_for(policy: PollPolicy, client: object, interval: float) -> Budget | None:
    """The budget a watcher of ``client`` spends (None: the policy has no
    ``budget_share``), at the client's ``budget_rate``; a client without a rate limit
    has none to share."""
    if policy.budget_share is None:
        return None
    rate = getattr(client, "budget_rate", None)
    if rate is None:
        raise ValueError(
            "PollPolicy(budget_share=...) needs a client with a rate_limit: without one "
            "there is no budget to share"
        )
    return Budget(policy, float(rate), interval)
