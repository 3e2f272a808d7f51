"""The simulated Flipkart world: seller locations, their RETURN tasks, the FEs on the
Start OTC page, and a ground-truth log of every change. Pure state, no I/O."""

from __future__ import annotations

import enum
import json
import math
import random
from collections.abc import Iterable

import attrs

from ..clock import Clock

__all__ = ["Change", "ChangeKind", "FeVisit", "TaskState", "World"]

FE_NAMES = ("Ram", "Shyam", "Asha", "Ravi", "Meena", "Arjun", "Kavya", "Imran", "Divya", "Vikram")
PARTNERS = ("eKart", "eKart", "eKart", "Delhivery", "Shadowfax")
LOBS = ("LARGE", "NONLARGE")


class TaskState(enum.Enum):
    """Whether a location has a RETURN task today."""

    NONE = "NONE"  # answers TRIPSHEET_TASK_NOT_FOUND
    OPEN = "OPEN"
    CLOSED = "CLOSED"  # answers TRIPSHEET_CLOSED_ERROR


class ChangeKind(enum.Enum):
    """What a ground-truth :class:`Change` records."""

    TASK_OPENED = "task_opened"
    TASK_CLOSED = "task_closed"
    TASK_REMOVED = "task_removed"
    ARRIVED = "arrived"
    RENEWED = "renewed"
    LEFT = "left"


@attrs.frozen
class Change:
    """One change of the world, at simulated time ``at`` (epoch seconds)."""

    at: float
    kind: ChangeKind
    location_id: str
    fe_id: str | None = None
    otc: str | None = attrs.field(default=None, repr=False)
    expires_at: float | None = None


@attrs.define
class FeVisit:
    """An FE on a location's Start OTC page, with the current code."""

    fe_id: str
    fe_name: str
    task_id: str
    otc: str = attrs.field(repr=False)
    created_at: int  # epoch seconds
    expires_at: int
    logistic_partner: str
    lob: str

    def entry(self, seconds: bool) -> dict[str, object]:
        scale = 1 if seconds else 1000
        return {
            "feName": self.fe_name,
            "taskId": self.task_id,
            "otc": self.otc,
            "expiryTime": self.expires_at * scale,
            "createdAt": self.created_at * scale,
            "logisticPartner": self.logistic_partner,
            "lob": self.lob,
        }


@attrs.define
class _Location:
    state: TaskState = TaskState.NONE
    fes: dict[str, FeVisit] = attrs.Factory(dict)
    body: bytes | None = None  # the encoded answer, rebuilt after a change


class World:
    """Locations, FEs and their codes, plus :attr:`history`, the ground truth.

    Times are whole epoch seconds from ``clock`` unless an operation passes
    ``at``. In ``seconds`` mode answers carry epoch seconds, as the spec's
    sample does, instead of milliseconds.
    """

    def __init__(self, clock: Clock, *, seconds: bool = False, seed: int | None = None) -> None:
        self.clock = clock
        self.seconds = seconds
        self.history: list[Change] = []
        self._rng = random.Random(seed)
        self._locations: dict[str, _Location] = {}

    # -- queries -------------------------------------------------------------

    @property
    def location_ids(self) -> list[str]:
        """Every location the world knows, in creation order."""
        return list(self._locations)

    def task_state(self, location_id: str) -> TaskState:
        loc = self._locations.get(location_id)
        return loc.state if loc is not None else TaskState.NONE

    def fes(self, location_id: str) -> dict[str, FeVisit]:
        """The FEs now on the location's Start OTC page (a copy)."""
        loc = self._locations.get(location_id)
        return {k: attrs.evolve(v) for k, v in loc.fes.items()} if loc else {}

    def answer(self, location_id: str) -> tuple[int, bytes]:
        """(HTTP status, body) Flipkart would answer for this location now."""
        loc = self._locations.get(location_id)
        if loc is None or loc.state is TaskState.NONE:
            return 400, _error("TRIPSHEET_TASK_NOT_FOUND", "No RETURN task found for seller")
        if loc.state is TaskState.CLOSED:
            return 400, _error("TRIPSHEET_CLOSED_ERROR", "Task is closed")
        if loc.body is None:
            details = {fe_id: fe.entry(self.seconds) for fe_id, fe in loc.fes.items()}
            loc.body = json.dumps({"otcDetails": details}).encode()
        return 200, loc.body

    # -- changes -------------------------------------------------------------

    def _now(self, at: float | None) -> int:
        return math.floor(self.clock.time() if at is None else at)

    def _record(self, at: int, kind: ChangeKind, location_id: str, fe: FeVisit | None) -> None:
        if fe is None:
            self.history.append(Change(at, kind, location_id))
        else:
            self.history.append(Change(at, kind, location_id, fe.fe_id, fe.otc, fe.expires_at))

    def _open(self, location_id: str) -> _Location:
        loc = self._locations.get(location_id)
        if loc is None or loc.state is not TaskState.OPEN:
            raise ValueError(f"location {location_id!r} has no open task; call open_task first")
        return loc

    def open_task(self, location_id: str, *, at: float | None = None) -> None:
        """Give the location an open RETURN task (no-op if it has one)."""
        if not location_id or not location_id.strip():
            raise ValueError(f"location_id must not be empty or blank, got {location_id!r}")
        loc = self._locations.setdefault(location_id, _Location())
        if loc.state is not TaskState.OPEN:
            loc.state = TaskState.OPEN
            loc.body = None
            self._record(self._now(at), ChangeKind.TASK_OPENED, location_id, None)

    def _end_task(
        self, location_id: str, state: TaskState, kind: ChangeKind, at: float | None
    ) -> None:
        loc = self._locations.setdefault(location_id, _Location())
        if loc.state is state:
            return
        when = self._now(at)
        for fe_id in sorted(loc.fes):
            self._record(when, ChangeKind.LEFT, location_id, loc.fes[fe_id])
        loc.fes.clear()
        loc.state = state
        loc.body = None
        self._record(when, kind, location_id, None)

    def close_task(self, location_id: str, *, at: float | None = None) -> None:
        """Close the location's task: its FEs leave; it answers TRIPSHEET_CLOSED_ERROR."""
        self._end_task(location_id, TaskState.CLOSED, ChangeKind.TASK_CLOSED, at)

    def remove_task(self, location_id: str, *, at: float | None = None) -> None:
        """Take the task away: its FEs leave; it answers TRIPSHEET_TASK_NOT_FOUND."""
        self._end_task(location_id, TaskState.NONE, ChangeKind.TASK_REMOVED, at)

    def _otc(self) -> str:
        return f"{self._rng.randrange(10**6):06d}"

    def arrive(
        self,
        location_id: str,
        *,
        fe_id: str | None = None,
        fe_name: str | None = None,
        task_id: str | None = None,
        otc: str | None = None,
        ttl: float = 300.0,
        logistic_partner: str | None = None,
        lob: str | None = None,
        at: float | None = None,
    ) -> str:
        """An FE reaches the Start OTC page and gets a code valid for ``ttl`` seconds.

        Returns the FE id (generated when not given).
        """
        loc = self._open(location_id)
        if fe_id is None:
            fe_id = f"fe{self._rng.randrange(10**5):05d}"
            while fe_id in loc.fes:
                fe_id = f"fe{self._rng.randrange(10**5):05d}"
        elif fe_id in loc.fes:
            raise ValueError(f"FE {fe_id!r} is already at location {location_id!r}")
        now = self._now(at)
        fe = FeVisit(
            fe_id=fe_id,
            fe_name=fe_name or self._rng.choice(FE_NAMES),
            task_id=task_id or str(self._rng.randrange(10**8)),
            otc=otc or self._otc(),
            created_at=now,
            expires_at=now + max(1, round(ttl)),
            logistic_partner=logistic_partner or self._rng.choice(PARTNERS),
            lob=lob or self._rng.choice(LOBS),
        )
        loc.fes[fe_id] = fe
        loc.body = None
        self._record(now, ChangeKind.ARRIVED, location_id, fe)
        return fe_id

    def renew(
        self,
        location_id: str,
        fe_id: str,
        *,
        otc: str | None = None,
        ttl: float = 300.0,
        at: float | None = None,
    ) -> None:
        """The FE asks for a new code (a new OTC and expiry)."""
        loc = self._open(location_id)
        fe = loc.fes.get(fe_id)
        if fe is None:
            raise ValueError(f"FE {fe_id!r} is not at location {location_id!r}")
        now = self._now(at)
        fe.otc = otc or self._otc()
        fe.created_at = now
        fe.expires_at = now + max(1, round(ttl))
        loc.body = None
        self._record(now, ChangeKind.RENEWED, location_id, fe)

    def leave(self, location_id: str, fe_id: str, *, at: float | None = None) -> None:
        """The FE leaves the Start OTC page."""
        loc = self._locations.get(location_id)
        fe = loc.fes.pop(fe_id, None) if loc else None
        if loc is None or fe is None:
            raise ValueError(f"FE {fe_id!r} is not at location {location_id!r}")
        loc.body = None
        self._record(self._now(at), ChangeKind.LEFT, location_id, fe)

    def changes(self, kinds: Iterable[ChangeKind] = tuple(ChangeKind)) -> list[Change]:
        """The ground-truth log, filtered by kind."""
        wanted = set(kinds)
        return [c for c in self.history if c.kind in wanted]


def _error(code: str, message: str) -> bytes:
    return json.dumps({"errorCode": code, "message": message}).encode()
