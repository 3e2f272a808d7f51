"""Every event kind has a text line and a JSON form that the schema accepts and that reads
back: a new kind cannot be forgotten by the text renderer, the sinks or the feeds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from flipkart_otc import (
    EndOtc,
    EndOtcReady,
    FeArrived,
    FeDeparted,
    Lob,
    LocationStatus,
    LocationStatusChanged,
    OtcDetail,
    OtcEvent,
    OtcExpired,
    OtcRenewed,
    ScannedShipment,
    ScanningStarted,
    ShipmentScanned,
    ShipmentStatus,
    VisitCompleted,
    VisitLeft,
    WatchEvent,
    event_from_dict,
    json_schema,
)
from flipkart_otc._render import event_line
from flipkart_otc.events import EVENT_KINDS

AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
DETAIL = OtcDetail(
    "fe1", "Ram", "T1", "123456", AT + timedelta(minutes=4), AT, "eKart", Lob.LARGE, "LARGE"
)
VISIT = ("LOC1", AT, "fe1", "T1")
SHIPMENT = ScannedShipment("TRK1", "S1", ShipmentStatus.REJECTED, "REJECTED", "torn", AT)
END = EndOtc("fe1", "T1", "654321", 3, 0, 0, 3, 1)

#: One sample of every event kind; the test below fails on a kind missing here.
SAMPLES: dict[type[OtcEvent], Callable[[], WatchEvent]] = {
    FeArrived: lambda: FeArrived("LOC1", AT, "fe1", DETAIL, initial=True),
    OtcRenewed: lambda: OtcRenewed("LOC1", AT, "fe1", DETAIL, DETAIL),
    OtcExpired: lambda: OtcExpired("LOC1", AT, "fe1", DETAIL, recovered=True),
    FeDeparted: lambda: FeDeparted("LOC1", AT, "fe1", DETAIL, expired=False),
    LocationStatusChanged: lambda: LocationStatusChanged("LOC1", AT, LocationStatus.NO_TASK),
    ScanningStarted: lambda: ScanningStarted(*VISIT, "Ram", "eKart"),
    ShipmentScanned: lambda: ShipmentScanned(*VISIT, shipment=SHIPMENT),
    EndOtcReady: lambda: EndOtcReady(*VISIT, end=END),
    VisitCompleted: lambda: VisitCompleted(*VISIT, scanned=3),
    VisitLeft: lambda: VisitLeft(*VISIT, scanned=2, complete=False),
}


def test_every_kind_has_a_sample() -> None:
    assert set(SAMPLES) == set(EVENT_KINDS.values())


@pytest.mark.parametrize("kind", sorted(EVENT_KINDS))
def test_every_kind_renders_validates_and_reads_back(kind: str) -> None:
    event = SAMPLES[EVENT_KINDS[kind]]()
    line = event_line(event)
    assert event.location_id in line and "123456" not in line and "654321" not in line
    if isinstance(event, (FeArrived, OtcRenewed, OtcExpired)):
        assert "123456" in event_line(event, show_otc=True)
    if isinstance(event, EndOtcReady):
        assert "654321" in event_line(event, show_otc=True)
    data = event.to_dict(show_otc=True)
    jsonschema.Draft202012Validator(json_schema()).validate(data)
    back = event_from_dict(data)
    assert type(back) is type(event) and back.to_dict(show_otc=True) == data


def test_a_visit_left_short_says_so_and_an_fe_that_used_its_code_is_named() -> None:
    left = event_line(VisitLeft(*VISIT, scanned=2, complete=False))
    assert "maybe more" in left and "2 shipments" in left
    assert "1 shipment " in event_line(VisitCompleted(*VISIT, scanned=1)) + " "
    assert "Ram (fe1)" in event_line(ScanningStarted(*VISIT, "Ram", "eKart"))
    assert "departed" not in event_line(FeDeparted("LOC1", AT, "fe1", DETAIL))


@pytest.mark.parametrize(
    "data",
    [
        {"event": 5, "location_id": "L", "observed_at": "2026-12-06T09:30:00+00:00"},
        {"event": "visit_left", "location_id": "L", "observed_at": "2026-12-06T09:30:00+00:00"},
        {"event": "shipment_scanned", "location_id": "L", "observed_at": "x"},
        {"event": ["list"], "location_id": "L", "observed_at": "2026-12-06T09:30:00+00:00"},
        [1, 2],
    ],
)
def test_what_is_not_an_event_is_a_value_error(data: object) -> None:
    with pytest.raises(ValueError, match="not a watch event"):
        event_from_dict(data)  # type: ignore[arg-type]
