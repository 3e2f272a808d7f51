"""How the command line shows events and snapshots to people and to pipes. Pure."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from ._serialize import MASK, end_otc_dict, json_line
from .events import (
    EndOtcReady,
    FeArrived,
    FeDeparted,
    FeEvent,
    LocationStatusChanged,
    OtcExpired,
    OtcRenewed,
    ScanningStarted,
    ShipmentScanned,
    VisitCompleted,
    VisitEvent,
    VisitLeft,
    WatchEvent,
)
from .models import LocationStatus, OtcDetail, OtcSnapshot

__all__ = ["escape", "event_line", "json_line", "snapshot_rows", "table", "visit_rows"]

# What a terminal acts on instead of printing: C0 and C1 controls, DEL, and the
# Unicode line separators and bidirectional overrides that reorder what is shown.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` safe for a terminal line: each control character as a visible escape.

    Text from Flipkart (an FE's name, an error message) cannot forge a line or
    move the cursor. JSON output needs none of this: its encoder escapes them.

    >>> escape("Ram\\n\\x1b[2J")
    'Ram\\\\x0a\\\\x1b[2J'
    """
    return _UNPRINTABLE.sub(_escaped, text)


_VERBS = {
    FeArrived: "arrived",
    OtcRenewed: "renewed",
    OtcExpired: "expired",
    FeDeparted: "off page",
}


def _clock(when: datetime) -> str:
    return when.astimezone().strftime("%H:%M:%S")


def _left(detail: OtcDetail, now: datetime) -> str:
    left = detail.expires_at - now
    if left <= timedelta(0):
        return "expired"
    seconds = int(left.total_seconds())
    return f"expires in {seconds // 60}:{seconds % 60:02d}"


def _otc(detail: OtcDetail, show_otc: bool) -> str:
    return detail.otc if show_otc else MASK


def event_line(event: WatchEvent, *, show_otc: bool = False) -> str:
    """One readable line: time, location, event, FE, partner, lob, OTC and time left;
    control characters escaped."""
    return escape(_event_line(event, show_otc))


def _end_summary(end: dict[str, Any]) -> str:
    """An End OTC's totals (``end_otc_dict``) in words."""
    return (
        f"{end['total_scanned']} scanned, {end['obd_failed']} OBD and "
        f"{end['flyer_failed']} flyer checks failed"
    )


def _shipments(count: int) -> str:
    return f"{count} shipment" if count == 1 else f"{count} shipments"


def _visit_line(head: str, event: VisitEvent, show_otc: bool) -> str:
    fe = f"{event.fe_id} (task {event.task_id})"
    if isinstance(event, ScanningStarted):
        who = f"{event.fe_name} ({event.fe_id})" if event.fe_name else event.fe_id
        partner = event.logistic_partner or ""
        return f"{head}  {'scanning':<9}  {who:<22} {partner:<10} code used; task {event.task_id}"
    if isinstance(event, ShipmentScanned):
        shipment = event.shipment
        why = f": {shipment.reason}" if shipment.reason else ""
        return f"{head}  {'scanned':<9}  {fe}  {shipment.tracking_id} {shipment.status_raw}{why}"
    if isinstance(event, EndOtcReady):
        end = end_otc_dict(event.end, show_otc=show_otc)
        return f"{head}  {'end OTC':<9}  {fe}  OTC {end['otc']}  {_end_summary(end)}"
    if isinstance(event, VisitLeft):
        short = "" if event.complete else " (the last scans could not be read: maybe more)"
        count = _shipments(event.scanned)
        return f"{head}  {'left':<9}  {fe}  before its End OTC, {count}{short}"
    if isinstance(event, VisitCompleted):
        return f"{head}  {'completed':<9}  {fe}  {_shipments(event.scanned)}"
    raise TypeError(f"no text line for {type(event).__name__}")  # a new kind: add its line


def _event_line(event: WatchEvent, show_otc: bool) -> str:
    head = f"{_clock(event.observed_at)}  {event.location_id:<10}"
    if isinstance(event, VisitEvent):
        return _visit_line(head, event, show_otc)
    if isinstance(event, LocationStatusChanged):
        was = event.previous.value if event.previous else "unknown"
        line = f"{head}  {'status':<9}  {event.status.value} (was {was})"
        failing = event.status is LocationStatus.FAILING and event.error is not None
        return f"{line}: {event.error}" if failing else line
    assert isinstance(event, FeEvent)
    d = event.detail
    verb = _VERBS[type(event)]
    if isinstance(event, FeArrived) and event.initial:
        verb = "present"
    fe = f"{d.fe_name} ({d.fe_id})"
    lob = d.lob.value if d.lob.value != "UNKNOWN" else d.lob_raw or "?"
    tail = f"OTC {_otc(d, show_otc)}  {_left(d, event.observed_at)}"
    if isinstance(event, FeDeparted):  # it used its code, or went away: not known yet
        tail = "off the Start OTC page; " + (
            "its code had expired"
            if event.expired
            else f"its code was still valid ({_left(d, event.observed_at)})"
        )
    return f"{head}  {verb:<9}  {fe:<22} {d.logistic_partner:<10} {lob:<8}  {tail}"


def snapshot_rows(
    location_id: str,
    snapshot: OtcSnapshot | None,
    status: LocationStatus | str,
    *,
    show_otc: bool,
) -> list[list[str]]:
    """Table rows for one location's answer (one row per FE, or one for its status)."""
    label = status.value if isinstance(status, LocationStatus) else status
    if snapshot is None or not snapshot.details:
        return [[location_id, label, "", "", "", "", "", ""]]
    now = snapshot.fetched_at
    return [
        [
            location_id,
            label,
            fe_id,
            d.fe_name,
            d.logistic_partner,
            d.lob.value,
            _otc(d, show_otc),
            _left(d, now),
        ]
        for fe_id, d in sorted(snapshot.details.items())
    ]


def visit_rows(data: dict[str, Any]) -> list[list[str]]:
    """Table rows for one location's visit (``visit_dict``): one row per FE, or one for
    its status."""
    location_id, status = data["location_id"], data["status"]
    if not data["visit"]:
        return [[location_id, status, "", "", "", "", "", data["error"] or ""]]
    rows = []
    for fe in data["visit"]:
        scanned = "" if fe["scanned"] is None else f"{fe['scanned']}"
        if fe["rejected"]:
            scanned += f" ({fe['rejected']} rejected)"
        end = fe["end_otc"]
        code = "" if end is None else f"OTC {end['otc']} ({_end_summary(end)})"
        row = [location_id, status, fe["fe_id"], fe["fe_name"], fe["logistic_partner"]]
        rows.append([*row, fe["page"], scanned, code])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    """Rows aligned under a header; control characters escaped."""
    rows = [[escape(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
