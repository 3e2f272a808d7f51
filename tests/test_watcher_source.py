"""The watcher fed by a scripted fake source (no sockets): what each kind of answer does."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from flipkart_otc import (
    AuthenticationError,
    FeArrived,
    FeDeparted,
    InvalidTaskTypeError,
    LocationStatus,
    LocationStatusChanged,
    ManualClock,
    OtcExpired,
    OtcSource,
    OtcWatcher,
    PollPolicy,
    ServiceUnavailableError,
    TaskNotFoundError,
    TripsheetClosedError,
    WatchEvent,
)

T0 = 1_767_225_600
FIXED = PollPolicy.fixed()  # these tests count polls at one interval


def body(**fes: int) -> bytes:
    """An answer listing each FE with a code expiring at T0 + the given seconds."""
    entries = {
        fe: {
            "feName": "Ram",
            "taskId": "1",
            "otc": "111111",
            "expiryTime": T0 + expires,
            "createdAt": T0,
            "logisticPartner": "eKart",
            "lob": "LARGE",
        }
        for fe, expires in fes.items()
    }
    return json.dumps({"otcDetails": entries}).encode()


class Script:
    """A source that answers from a script: each poll takes the next step."""

    def __init__(self, *steps: bytes | Exception) -> None:
        self.steps = list(steps)
        self.polls = 0

    async def fetch_body(self, location_id: str) -> bytes:
        self.polls += 1
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


async def watch(script: Script, seconds: int) -> list[WatchEvent]:
    clock = ManualClock(start=T0)
    assert isinstance(script, OtcSource)
    events: list[WatchEvent] = []
    async with OtcWatcher(
        script, ["LOC1"], interval=10, jitter=0, clock=clock, policy=FIXED
    ) as watcher:
        for _ in range(seconds):
            await watcher.wait_idle()
            events += [await anext(watcher) for _ in range(watcher.queued)]
            clock.advance(1)
    return events


def kinds(events: list[WatchEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


SERVER = ServiceUnavailableError(503, "SERVICE_UNAVAILABLE_ERROR")


async def test_failing_keeps_the_last_state_and_expiries_still_come() -> None:
    script = Script(body(fe1=25), SERVER, SERVER, SERVER, body(fe1=25))
    events = await watch(script, 45)
    assert kinds(events) == [
        "LocationStatusChanged",  # ACTIVE
        "FeArrived",
        "LocationStatusChanged",  # FAILING at t=10: no departure invented
        "OtcExpired",  # at t=25, during the failures, from its timer
        "LocationStatusChanged",  # ACTIVE again at t=40: the same FE, nothing new
    ]
    expired = events[3]
    assert isinstance(expired, OtcExpired) and expired.observed_at.timestamp() == T0 + 25


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (TaskNotFoundError(400, "TRIPSHEET_TASK_NOT_FOUND"), LocationStatus.NO_TASK),
        (TripsheetClosedError(400, "TRIPSHEET_CLOSED_ERROR"), LocationStatus.CLOSED),
    ],
)
async def test_no_task_and_closed_make_every_fe_depart(
    error: Exception, status: LocationStatus
) -> None:
    events = await watch(Script(body(fe1=300, fe2=300), error), 15)
    assert kinds(events) == [
        "LocationStatusChanged",
        "FeArrived",
        "FeArrived",
        "LocationStatusChanged",
        "FeDeparted",
        "FeDeparted",
    ]
    changed = events[3]
    assert isinstance(changed, LocationStatusChanged) and changed.status is status
    assert all(isinstance(e, FeDeparted) and not e.expired for e in events[4:])


@pytest.mark.parametrize(
    "fatal",
    [
        AuthenticationError(401, "UNAUTHORIZED_ERROR"),
        InvalidTaskTypeError(400, "X"),
        KeyError("bug"),
    ],
)
async def test_fatal_errors_stop_the_watcher_and_are_raised(fatal: Exception) -> None:
    script = Script(body(fe1=300), fatal)
    clock = ManualClock(start=T0)
    events: list[WatchEvent] = []

    async def read(watcher: OtcWatcher) -> None:
        for _ in range(30):  # the fatal poll at t=10 stops every poller
            await watcher.wait_idle()
            while watcher.queued:
                events.append(await anext(watcher))
            clock.advance(1)

    async with OtcWatcher(
        script, ["LOC1"], interval=10, jitter=0, clock=clock, policy=FIXED
    ) as watcher:
        with pytest.raises(type(fatal)):
            await read(watcher)
    assert [type(e) for e in events] == [LocationStatusChanged, FeArrived]
    assert script.polls == 2  # no poll after the fatal one


def test_an_object_without_fetch_body_is_refused() -> None:
    with pytest.raises(TypeError, match="fetch_body"):
        OtcWatcher(object())  # type: ignore[arg-type]


class WallOnlyClock:
    """A clock written to the protocol before monotonic(): time() and call_at on it."""

    def __init__(self) -> None:
        self.inner = ManualClock(start=T0)

    def time(self) -> float:
        return self.inner.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> object:
        return self.inner.call_at(self.inner.monotonic() + (when - self.inner.time()), callback)


async def test_a_clock_without_monotonic_still_drives_the_watcher() -> None:
    script, clock = Script(body(fe1=25)), WallOnlyClock()
    events: list[WatchEvent] = []
    watcher = OtcWatcher(script, ["LOC1"], interval=10, jitter=0, clock=clock, policy=FIXED)  # type: ignore[arg-type]
    async with watcher:
        for _ in range(30):
            await watcher.wait_idle()
            events += [await anext(watcher) for _ in range(watcher.queued)]
            clock.inner.advance(1)
    assert script.polls == 3  # t = 0, 10, 20
    assert kinds(events) == ["LocationStatusChanged", "FeArrived", "OtcExpired"]
