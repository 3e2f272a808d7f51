"""The visit's state machine (``_visit``), pure: no sockets, no event loop."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from flipkart_otc import EndOtc, ScannedShipment, ScanningStarted, ShipmentScanned, ShipmentStatus
from flipkart_otc._visit import (
    Ask,
    FollowedFe,
    VisitPage,
    on_end_otc,
    on_page,
    on_shipments,
    page_check_due,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def shipment(tracking_id: str) -> ScannedShipment:
    return ScannedShipment(
        tracking_id, "SH" + tracking_id, ShipmentStatus.ACCEPTED, "ACCEPTED", None, NOW
    )


def page_of_visit(visit: FollowedFe) -> VisitPage:
    return visit.page  # read afresh after each step (not narrowed by an assert)


def scanning() -> FollowedFe:
    visit = FollowedFe("LOC1", "fe1", "task1")
    on_page(visit, VisitPage.SCANNING, NOW)
    return visit


def test_a_next_url_after_the_last_shipment_shows_the_fe_scans_on() -> None:
    visit = FollowedFe("LOC1", "fe1", "task1")
    assert page_check_due([visit])  # just off the Start OTC page: which page now?
    assert on_shipments(visit, [], False, NOW) == []  # nothing, and no sign of scanning
    assert page_of_visit(visit) is VisitPage.START_OTC and page_check_due([visit])
    (started,) = on_shipments(visit, [], True, NOW)  # nothing yet, but more to come
    assert isinstance(started, ScanningStarted) and page_of_visit(visit) is VisitPage.SCANNING
    assert not page_check_due([visit])
    on_shipments(visit, [shipment("A")], False, NOW)  # the flag turned false
    assert page_check_due([visit])
    other = scanning()
    on_shipments(other, [], True, NOW)
    assert page_check_due([visit, other]) and not page_check_due([other])
    on_page(other, VisitPage.END_OTC, NOW)
    assert page_check_due([other])  # on the End OTC page: is the FE gone yet?


def test_the_first_shipment_of_an_fe_off_the_start_otc_page_starts_its_scanning() -> None:
    visit = FollowedFe("LOC1", "fe1", "task1")
    events = on_shipments(visit, [shipment("A"), shipment("B")], False, NOW)
    assert [type(e) for e in events] == [ScanningStarted, ShipmentScanned, ShipmentScanned]
    assert on_shipments(visit, [shipment("B")], False, NOW) == []  # read again: not twice


@given(st.lists(st.lists(st.sampled_from("ABCDEFGH"), max_size=6), max_size=8))
def test_each_shipment_is_reported_once_whatever_the_reads_repeat(reads: list[list[str]]) -> None:
    visit = scanning()
    reported = [
        e.shipment.tracking_id
        for read in reads
        for e in on_shipments(visit, [shipment(t) for t in read], True, NOW)
        if isinstance(e, ShipmentScanned)
    ]
    assert sorted(reported) == sorted({t for read in reads for t in read})


def test_an_end_otc_that_counts_more_than_was_read_asks_for_every_page_again() -> None:
    visit = scanning()
    on_shipments(visit, [shipment("A")], True, NOW)
    visit.cursor = "/sellers/v3/returns/tasks/shipments/abc="
    on_page(visit, VisitPage.END_OTC, NOW)
    end = EndOtc("fe1", "task1", "123456", 2, 0, 0, 0, 0)
    events, ask = on_end_otc(visit, end, NOW)
    assert len(events) == 1 and ask is Ask.SHIPMENTS and visit.cursor is None
    assert on_end_otc(visit, end, NOW) == ([], Ask.NOTHING)  # reported once
    complete = scanning()
    on_shipments(complete, [shipment("A"), shipment("B")], True, NOW)
    assert on_end_otc(complete, end, NOW)[1] is Ask.NOTHING
