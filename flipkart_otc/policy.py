"""How often each location is polled, from what its last poll said. Pure: no asyncio, no
I/O, no clock (callers pass the times).

Most of a seller's locations are idle most of the day, so polling them all at one
interval spends nearly every call on nothing. :class:`PollPolicy` spends them where
the desk needs them: slowly where there is no task, at the base interval where a task
waits for an FE, faster while an FE is at the door, once just after each code's expiry
instant (when a renewal comes), and backing off while a location fails.

>>> policy = PollPolicy()
>>> policy.interval(10.0, LocationStatus.NO_TASK, fes=False, failures=0)
120.0
>>> policy.interval(10.0, LocationStatus.ACTIVE, fes=True, failures=0)
5.0
>>> PollPolicy.fixed().interval(10.0, LocationStatus.NO_TASK, fes=False, failures=0)
10.0
"""

from __future__ import annotations

import enum
import math
from typing import Any

import attrs

from ._checks import check_number
from .models import LocationStatus
from .ratelimit import check_share

__all__ = ["FAILING_MIN", "PollPolicy", "Urgency"]

#: The shortest wait (seconds) before a failing location is polled again, whatever the
#: base interval: its back-off doubles from here, so ``interval=0`` cannot spin on a
#: location that fails at once.
FAILING_MIN = 1.0


class Urgency(enum.IntEnum):
    """Which polls go first when a rate limit binds (lower first)."""

    FE_PRESENT = 0  # an FE at the door: renewals and departures are what the desk needs
    ACTIVE = 1  # a task waiting for its FE (or a location not yet polled, or failing)
    IDLE = 2  # no task, or a closed one


def _seconds_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_number(attribute.name, value, minimum=0.0)


def _positive_seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_number(attribute.name, value, minimum=0.001)


def _seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:  # only the intervals have a None (the base interval)
        raise TypeError(f"{attribute.name} must be a number of seconds >= 0, got None")
    check_number(attribute.name, value, minimum=0.0)


def _share_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_share(attribute.name, value)


@attrs.frozen
class PollPolicy:
    """When each watched location is polled next. ``OtcWatcher(policy=...)``.

    Seconds, each None to use the watcher's base ``interval`` instead:

    - ``idle``: a location with no task or a closed one (never faster than the base);
    - ``fe_present``: a location with an FE on the Start OTC page (never slower than
      the base);
    - ``after_expiry``: one poll this long after each code's expiry instant, to see
      its renewal at once;
    - ``failing_max``: a failing location's interval doubles from the base (at least
      :data:`FAILING_MIN`) at each failure, up to this.

    A task that waits for its FE is polled at the base interval. When the client's
    rate limit binds, a poll waits behind more urgent ones queued up to ``patience``
    seconds after it (``active`` for a task with no FE, ``idle`` for no task; an FE's
    location yields to none), so none starves: a poll is sent at most its patience
    plus ``locations / rate`` seconds after it is due (plus any 429 pause). The two
    patiences are seconds (never None).

    ``budget_share`` (0 < s <= 1; None, the default: off) spends a rate budget: with
    the client's ``rate_limit`` of R, the watcher aims at ``s x R`` requests a second
    in all (a fleet worker at its part, ``s x R / N``): first the polls the states
    above call for, then the rest spread evenly over the idle locations (never
    faster than the base interval; slower than ``idle`` only when the budget cannot
    pay for it, since the cap would hold those polls anyway). The idle locations plan
    on at least 70 % of what tasks waiting for their first FE leave: polls for FEs at
    the door beyond it wait in the cap's queue, where they go first. A client without
    a rate limit has no budget to share: the watcher refuses the policy.

    The defaults come from ``benchmarks/bench_budget.py`` (``docs/budget.md``).
    :meth:`fixed` polls every location at the base interval, as the watcher did
    before it had a policy.

    >>> OtcWatcher(client, locations, interval=10, policy=PollPolicy.fixed())  # doctest: +SKIP
    """

    idle: float | None = attrs.field(default=120.0, validator=_seconds_or_none)
    fe_present: float | None = attrs.field(default=5.0, validator=_seconds_or_none)
    after_expiry: float | None = attrs.field(default=1.0, validator=_seconds_or_none)
    failing_max: float | None = attrs.field(default=300.0, validator=_seconds_or_none)
    patience_active: float = attrs.field(default=10.0, validator=_seconds)
    patience_idle: float = attrs.field(default=60.0, validator=_seconds)
    #: Seconds between looks at an FE past the Start OTC page, while it scans
    #: (Flipkart's advice for the scanning endpoint: 30), for ``OtcWatcher(visits=True)``.
    scanning: float = attrs.field(default=30.0, validator=_positive_seconds)
    #: Seconds to the next look while an FE is on the End OTC page without its code yet
    #: (asking failed): the desk is waiting for it.
    end_otc: float = attrs.field(default=5.0, validator=_positive_seconds)
    budget_share: float | None = attrs.field(default=None, validator=_share_or_none)

    @classmethod
    def fixed(cls) -> PollPolicy:
        """Every location at the base interval, whatever its state; no expiry polls."""
        return cls(idle=None, fe_present=None, after_expiry=None, failing_max=None)

    def interval(
        self,
        base: float,
        status: LocationStatus | None,
        *,
        fes: bool,
        failures: int,
        idle: float | None = None,
    ) -> float:
        """Seconds from a poll's start to the next, for a location whose last poll said
        ``status`` (with FEs present or not), after ``failures`` failures in a row.
        ``idle`` replaces the policy's idle interval (a budget's; never below ``base``)."""
        if status is LocationStatus.ACTIVE:
            if fes and self.fe_present is not None:
                return min(base, self.fe_present)
            return base
        if status is LocationStatus.FAILING:
            floor = base if base > FAILING_MIN else FAILING_MIN
            if self.failing_max is None or failures <= 1:
                return floor
            # doubling from the floor; the exponent is capped so that it cannot overflow
            return max(floor, min(self.failing_max, floor * 2.0 ** min(failures - 1, 64)))
        if status is None:  # not polled yet
            return base
        if idle is not None:  # NO_TASK or CLOSED, at a budget's interval
            return max(base, idle)
        if self.idle is None:
            return base
        return max(base, self.idle)  # NO_TASK or CLOSED

    def next_poll(
        self,
        base: float,
        status: LocationStatus | None,
        *,
        fes: bool,
        failures: int,
        started: float,
        now: float,
        next_expiry: float,
        spread: float = 1.0,
        idle: float | None = None,
    ) -> float:
        """When to poll a location next: its :meth:`interval` (times ``spread``, the
        jitter) from the poll's start, never before ``now`` (a slow poll is followed at
        once, not by a burst), or sooner, just after its next code expires
        (``next_expiry``, the earliest expiry not yet reported; inf: none). ``idle``
        as for :meth:`interval`."""
        interval = self.interval(base, status, fes=fes, failures=failures, idle=idle) * spread
        when = started + interval if started + interval > now else now
        if self.after_expiry is not None and next_expiry != math.inf:
            renewal = next_expiry + self.after_expiry
            if now < renewal < when:
                return renewal
        return when

    def visit_interval(self, *, waiting_end_otc: bool, failed: int = 0) -> float:
        """Seconds to the next look at a location's FEs past the Start OTC page: sooner
        while one of them is on the End OTC page without its code, or after ``failed``
        looks in a row failed (an FE's page is then in doubt: it may be waiting for its
        End OTC), from ``end_otc`` doubling up to ``scanning``."""
        if waiting_end_otc:
            return min(self.scanning, self.end_otc)
        if failed:
            return min(self.scanning, self.end_otc * 2.0 ** min(failed - 1, 16))
        return self.scanning

    def longest(self, base: float) -> float:
        """The longest a location may wait between two polls (a probe's yardstick)."""
        waits = (base, self.idle, self.failing_max, self.scanning)
        return max(w for w in waits if w is not None)

    def urgency(self, status: LocationStatus | None, *, fes: bool) -> Urgency:
        """The class of a location's next poll."""
        if status is LocationStatus.ACTIVE and fes:
            return Urgency.FE_PRESENT
        if status is LocationStatus.NO_TASK or status is LocationStatus.CLOSED:
            return Urgency.IDLE
        return Urgency.ACTIVE

    def patience(self, urgency: Urgency) -> float:
        """How long a poll of this class yields to more urgent ones under a rate limit."""
        if urgency is Urgency.FE_PRESENT:
            return 0.0
        return self.patience_active if urgency is Urgency.ACTIVE else self.patience_idle
