"""The simulated Flipkart world: seller locations, their RETURN tasks, the FEs on the
Start OTC page, and a ground-truth log of every change. Pure state, no I/O.

Why one module of some 560 lines: the ground truth and every endpoint's answer are
read from the same records, and must change together.
"""

from __future__ import annotations

import base64
import enum
import json
import math
import random
from collections.abc import Iterable

import attrs

from ..clock import Clock

__all__ = [
    "SHIPMENTS_PAGE_PATH",
    "Change",
    "ChangeKind",
    "FeVisit",
    "Shipment",
    "Stage",
    "TaskState",
    "World",
]

#: Where a next page of scanned shipments is: the host-relative path the docs' sample
#: gives (it already holds ``/sellers``), then the base64 cursor.
SHIPMENTS_PAGE_PATH = "/sellers/v3/returns/tasks/shipments/"

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
    LEFT = "left"  # left the Start OTC page without using the code
    # the rest of the visit (the FE is no longer on the Start OTC page from the first on)
    SCANNING_STARTED = "scanning_started"
    SHIPMENT_SCANNED = "shipment_scanned"
    END_OTC_PAGE = "end_otc_page"
    END_OTC_ISSUED = "end_otc_issued"
    VISIT_COMPLETED = "visit_completed"


class Stage(enum.Enum):
    """Which page of the visit an FE is on."""

    START_OTC = "StartOtc"
    SCANNING = "Scanning"
    END_OTC = "EndOtc"


@attrs.frozen
class Change:
    """One change of the world, at simulated time ``at`` (epoch seconds)."""

    at: float
    kind: ChangeKind
    location_id: str
    fe_id: str | None = None
    otc: str | None = attrs.field(default=None, repr=False)
    expires_at: float | None = None
    #: The shipment's tracking id (SHIPMENT_SCANNED).
    tracking_id: str | None = None


@attrs.frozen
class Shipment:
    """One scanned shipment, as the scanning endpoint lists it."""

    tracking_id: str
    shipment_id: str
    status: str  # ACCEPTED or REJECTED
    reason: str | None
    scanned_at: int  # epoch seconds
    flyer_id: str | None  # the return bag's id, when it has one
    flyer_match: bool
    obd_eligible: bool
    obd_ok: bool

    def entry(self, seconds: bool) -> dict[str, object]:
        entry: dict[str, object] = {
            "trackingId": self.tracking_id,
            "shipmentId": self.shipment_id,
            "status": self.status,
            "reason": self.reason,
            "scannedAt": self.scanned_at * (1 if seconds else 1000),
            "obdDetails": {
                "eligible": self.obd_eligible,
                "remark": "NoIssues" if self.obd_ok else "Damaged",
                "imageLinks": [f"https://img.invalid/{self.tracking_id}.jpg"]
                if self.obd_eligible
                else [],
            },
        }
        if self.flyer_id is not None:
            entry["flyerDetails"] = {
                "actualFlyerId": self.flyer_id,
                "capturedFlyerId": self.flyer_id if self.flyer_match else "OTHER",
                "status": "FlyerMatch" if self.flyer_match else "FlyerMismatch",
            }
        return entry


@attrs.define
class FeVisit:
    """An FE at a location: on the Start OTC page with its current code, then scanning,
    then on the End OTC page."""

    fe_id: str
    fe_name: str
    task_id: str
    otc: str = attrs.field(repr=False)
    created_at: int  # epoch seconds
    expires_at: int
    logistic_partner: str
    lob: str
    stage: Stage = Stage.START_OTC
    task_created_at: int = 0
    shipments: list[Shipment] = attrs.Factory(list)
    scans_fetched: bool = False  # the scanning endpoint was asked at least once
    synced: bool = True  # every scan has reached Flipkart (End OTC needs it)

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
class _Site:
    """One seller location of the world (``watcher._Location`` is the watcher's own)."""

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
        #: How the scanning endpoint spells its paging keys: "camel" (``hasMore``,
        #: ``nextUrl``, the newest docs) or "snake" (``has_more``, ``next_url``).
        self.paging = "camel"
        #: What the scanning endpoint's has-more flag means, where the docs disagree:
        #: "scanning" (the FE is still scanning, so more may come: the last page keeps
        #: a next URL to poll on, and the flag turns false once scanning is over, as
        #: the docs say) or "page" (another page is there now, the usual paging).
        self.has_more = "scanning"
        self._rng = random.Random(seed)
        self._locations: dict[str, _Site] = {}
        self._visits: dict[tuple[str, str], str] = {}  # (task id, FE id) -> location id
        self._finished: set[tuple[str, str]] = set()  # visits completed
        # FEs that left while scanning: what they scanned can still be read [inferred]
        self._gone: dict[tuple[str, str], FeVisit] = {}

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
        if loc is None:
            return {}
        return {k: attrs.evolve(v) for k, v in loc.fes.items() if v.stage is Stage.START_OTC}

    def visitors(self, location_id: str) -> dict[str, FeVisit]:
        """Every FE at the location, on any page of the visit (a copy)."""
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
            details = {
                fe_id: fe.entry(self.seconds)
                for fe_id, fe in loc.fes.items()
                if fe.stage is Stage.START_OTC
            }
            loc.body = json.dumps({"otcDetails": details}).encode()
        return 200, loc.body

    def initial_load(self, location_id: str) -> tuple[int, bytes]:
        """What initial-load answers: the FEs on any page of the visit, and the config."""
        loc = self._locations.get(location_id)
        if loc is None or loc.state is TaskState.NONE:
            return 400, _error("TRIPSHEET_TASK_NOT_FOUND", "No RETURN task found for seller")
        scale = 1 if self.seconds else 1000
        fes = {
            fe_id: {
                "feName": fe.fe_name,
                "logisticPartner": fe.logistic_partner,
                "lob": fe.lob,
                "task": {
                    "id": fe.task_id,
                    "status": fe.stage.value,
                    "createdAt": fe.task_created_at * scale,
                },
            }
            for fe_id, fe in loc.fes.items()
        }  # a closed task has no FE left: an empty map [inferred]
        config = {"enabledFor": "DynamicStartEnd"}
        return 200, json.dumps({"sellerConfig": config, "feDetails": fes}).encode()

    def _find(
        self, task_id: str, fe_id: str, *, finished: str, stranger: str
    ) -> tuple[FeVisit | None, bytes | None]:
        """The visit of ``fe_id`` on ``task_id``, or the error body that says why not:
        the code ``finished`` for a visit that is over, ``stranger`` for an FE not on a
        task there is (each endpoint's own, from the codes its docs list)."""
        location_id = self._visits.get((task_id, fe_id))
        if location_id is not None:
            return self._locations[location_id].fes[fe_id], None
        if (task_id, fe_id) in self._finished:
            return None, _error(finished, "Task is closed")
        if any(task == task_id for task, _ in self._visits):  # the task, another FE
            return None, _error(stranger, "FE is not on this task")
        return None, _error("TRIPSHEET_TASK_NOT_FOUND", "No RETURN task found for seller")

    def location_of(self, task_id: str, fe_id: str) -> str | None:
        """Where the visit of ``fe_id`` on ``task_id`` is (None: nowhere now)."""
        return self._visits.get((task_id, fe_id))

    def shipments_page(
        self, task_id: str, fe_id: str, page_size: int, after: str | None
    ) -> tuple[int, bytes]:
        """A page of what the FE scanned: from the first, or after the shipment whose
        tracking id is ``after`` (the cursor in the next URL). An FE that left while
        scanning still has its scans read [inferred: the task keeps them]."""
        # the docs list no code for an FE not on the task: for this FE, no task is found
        fe, error = self._find(
            task_id, fe_id, finished="TASK_CLOSED", stranger="TRIPSHEET_TASK_NOT_FOUND"
        )
        if fe is None:
            fe = self._gone.get((task_id, fe_id))
        if fe is None:
            assert error is not None
            return 400, error
        fe.scans_fetched = True
        start = 0
        if after:  # "": a cursor before the first shipment
            ids = [s.tracking_id for s in fe.shipments]
            start = ids.index(after) + 1 if after in ids else len(ids)
        page = fe.shipments[start : start + page_size]
        more = start + page_size < len(fe.shipments)
        gone = (task_id, fe_id) in self._gone
        if self.has_more == "scanning" and fe.stage is Stage.SCANNING and not gone:
            more = True  # scanning goes on: the cursor after this page is polled next
        next_url = None
        if more:
            last = page[-1].tracking_id if page else (after or "")
            cursor = {"taskId": task_id, "feId": fe_id, "etag": last}
            cursor["pageSize"] = page_size  # type: ignore[assignment]
            token = base64.b64encode(json.dumps(cursor, indent=4).encode()).decode()
            next_url = SHIPMENTS_PAGE_PATH + token
        has_more, url_key = (
            ("hasMore", "nextUrl")
            if self.paging == "camel"
            else (
                "has_more",
                "next_url",
            )
        )
        body = {
            has_more: more,
            url_key: next_url,
            "scannedShipments": [s.entry(self.seconds) for s in page],
        }
        return 200, json.dumps(body).encode()

    def end_otc(self, fe_id: str, task_id: str) -> tuple[int, bytes]:
        """A new End OTC and the summary, when the FE is on the End OTC page with every
        scan synced and the scanning endpoint asked at least once."""
        # End OTC's docs list no TASK_CLOSED: a visit that is over, like an FE not on the
        # task, is an FE and task id that name no open task
        fe, error = self._find(
            task_id,
            fe_id,
            finished="FE_OTC_BAD_REQUEST_ERROR",
            stranger="FE_OTC_BAD_REQUEST_ERROR",
        )
        if fe is None:
            assert error is not None
            return 400, error
        if fe.stage is not Stage.END_OTC:
            return 400, _error("NOT_ON_END_OTC_PAGE_ERROR", "FE is not on the End OTC page")
        if not fe.synced or not fe.scans_fetched:  # the newest docs' precondition [inferred]
            return 400, _error("SHIPMENT_SYNC_ERROR", "All shipments are not synced")
        otc = self._otc()
        location_id = self._visits[(task_id, fe_id)]
        self.history.append(
            Change(self._now(None), ChangeKind.END_OTC_ISSUED, location_id, fe_id, otc)
        )
        shipments = fe.shipments
        summary = {
            "otc": otc,
            "totalScanned": len(shipments),
            "obdEligible": sum(s.obd_eligible for s in shipments),
            "obdFailed": sum(s.obd_eligible and not s.obd_ok for s in shipments),
            "flyerEligible": sum(s.flyer_id is not None for s in shipments),
            "flyerFailed": sum(s.flyer_id is not None and not s.flyer_match for s in shipments),
        }
        return 200, json.dumps(summary).encode()

    # -- changes -------------------------------------------------------------

    def _now(self, at: float | None) -> int:
        return math.floor(self.clock.time() if at is None else at)

    def _record(self, at: int, kind: ChangeKind, location_id: str, fe: FeVisit | None) -> None:
        if fe is None:
            self.history.append(Change(at, kind, location_id))
        else:
            self.history.append(Change(at, kind, location_id, fe.fe_id, fe.otc, fe.expires_at))

    def _open(self, location_id: str) -> _Site:
        loc = self._locations.get(location_id)
        if loc is None or loc.state is not TaskState.OPEN:
            raise ValueError(f"location {location_id!r} has no open task; call open_task first")
        return loc

    def open_task(self, location_id: str, *, at: float | None = None) -> None:
        """Give the location an open RETURN task (no-op if it has one)."""
        if not location_id or not location_id.strip():
            raise ValueError(f"location_id must not be empty or blank, got {location_id!r}")
        loc = self._locations.setdefault(location_id, _Site())
        if loc.state is not TaskState.OPEN:
            loc.state = TaskState.OPEN
            loc.body = None
            self._record(self._now(at), ChangeKind.TASK_OPENED, location_id, None)

    def _end_task(
        self, location_id: str, state: TaskState, kind: ChangeKind, at: float | None
    ) -> None:
        loc = self._locations.setdefault(location_id, _Site())
        if loc.state is state:
            return
        when = self._now(at)
        for fe_id in sorted(loc.fes):
            fe = loc.fes[fe_id]
            self._record(when, ChangeKind.LEFT, location_id, fe)
            self._visits.pop((fe.task_id, fe_id), None)
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
            task_created_at=now,
        )
        loc.fes[fe_id] = fe
        self._visits[(fe.task_id, fe_id)] = location_id
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
        fe = self._on(location_id, fe_id, Stage.START_OTC)
        now = self._now(at)
        fe.otc = otc or self._otc()
        fe.created_at = now
        fe.expires_at = now + max(1, round(ttl))
        self._locations[location_id].body = None
        self._record(now, ChangeKind.RENEWED, location_id, fe)

    def leave(self, location_id: str, fe_id: str, *, at: float | None = None) -> None:
        """The FE leaves (the Start OTC page, or any page of the visit) unfinished."""
        loc = self._locations.get(location_id)
        fe = loc.fes.pop(fe_id, None) if loc else None
        if loc is None or fe is None:
            raise ValueError(f"FE {fe_id!r} is not at location {location_id!r}")
        loc.body = None
        self._visits.pop((fe.task_id, fe_id), None)
        if fe.stage is not Stage.START_OTC:
            self._gone[(fe.task_id, fe_id)] = fe
        self._record(self._now(at), ChangeKind.LEFT, location_id, fe)

    # -- the rest of the visit -------------------------------------------------

    def _on(self, location_id: str, fe_id: str, stage: Stage) -> FeVisit:
        loc = self._open(location_id)
        fe = loc.fes.get(fe_id)
        if fe is None:
            raise ValueError(f"FE {fe_id!r} is not at location {location_id!r}")
        if fe.stage is not stage:
            raise ValueError(f"FE {fe_id!r} is on the {fe.stage.value} page, not {stage.value}")
        return fe

    def _move(
        self, location_id: str, fe: FeVisit, stage: Stage, kind: ChangeKind, at: float | None
    ) -> None:
        fe.stage = stage
        self._locations[location_id].body = None
        self._record(self._now(at), kind, location_id, fe)

    def start_scanning(self, location_id: str, fe_id: str, *, at: float | None = None) -> None:
        """The FE's Start OTC was used: it leaves the Start OTC page and starts scanning."""
        fe = self._on(location_id, fe_id, Stage.START_OTC)
        self._move(location_id, fe, Stage.SCANNING, ChangeKind.SCANNING_STARTED, at)

    def scan(
        self,
        location_id: str,
        fe_id: str,
        *,
        accepted: bool = True,
        reason: str | None = None,
        flyer: bool = True,
        flyer_match: bool = True,
        obd_eligible: bool = False,
        obd_ok: bool = True,
        at: float | None = None,
    ) -> str:
        """The FE scans a shipment; returns its tracking id."""
        fe = self._on(location_id, fe_id, Stage.SCANNING)
        n = len(fe.shipments) + 1
        tracking_id = f"FMP{fe.task_id}-{n:04d}"
        now = self._now(at)
        fe.shipments.append(
            Shipment(
                tracking_id=tracking_id,
                shipment_id=f"SH{fe.task_id}-{n:04d}",
                status="ACCEPTED" if accepted else "REJECTED",
                reason=None if accepted else (reason or "Damaged product"),
                scanned_at=now,
                flyer_id=f"FLY{fe.task_id}-{n:04d}" if flyer else None,
                flyer_match=flyer_match,
                obd_eligible=obd_eligible,
                obd_ok=obd_ok,
            )
        )
        self.history.append(
            Change(now, ChangeKind.SHIPMENT_SCANNED, location_id, fe_id, tracking_id=tracking_id)
        )
        return tracking_id

    def hold_sync(self, location_id: str, fe_id: str, held: bool = True) -> None:
        """Some scans have not reached Flipkart yet (End OTC answers SHIPMENT_SYNC_ERROR)."""
        fe = self._open(location_id).fes.get(fe_id)
        if fe is None:
            raise ValueError(f"FE {fe_id!r} is not at location {location_id!r}")
        fe.synced = not held

    def to_end_otc(self, location_id: str, fe_id: str, *, at: float | None = None) -> None:
        """Scanning is done: the FE moves to the End OTC page (there is no way back)."""
        fe = self._on(location_id, fe_id, Stage.SCANNING)
        self._move(location_id, fe, Stage.END_OTC, ChangeKind.END_OTC_PAGE, at)

    def complete(self, location_id: str, fe_id: str, *, at: float | None = None) -> None:
        """The FE verified the End OTC: the visit is over, its task closed."""
        fe = self._on(location_id, fe_id, Stage.END_OTC)
        loc = self._locations[location_id]
        del loc.fes[fe_id]
        loc.body = None
        self._visits.pop((fe.task_id, fe_id), None)
        self._finished.add((fe.task_id, fe_id))
        self._record(self._now(at), ChangeKind.VISIT_COMPLETED, location_id, fe)

    def changes(self, kinds: Iterable[ChangeKind] = tuple(ChangeKind)) -> list[Change]:
        """The ground-truth log, filtered by kind."""
        wanted = set(kinds)
        return [c for c in self.history if c.kind in wanted]


def _error(code: str, message: str) -> bytes:
    return json.dumps({"errorCode": code, "message": message}).encode()
