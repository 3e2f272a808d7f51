"""The one JSON view of models and events: what the CLI prints, and what a dashboard or a
sink sends on. Pure.

Times are ISO-8601 UTC with a ``Z``; an OTC is ``"***"`` unless asked for. The
shape is the JSON Schema shipped beside this module (:func:`json_schema`), at
:data:`SCHEMA_VERSION`: within a version fields may be added, never removed or
retyped. An event's own form, and those of the values it carries (``detail_dict``,
``end_otc_dict``), are in :mod:`.events` (data does not depend on its view); they are
importable from here too.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ._checks import MASK
from .events import detail_dict, end_otc_dict, iso_utc
from .models import (
    EndOtc,
    InitialLoad,
    LocationStatus,
    OtcSnapshot,
    ScannedShipment,
    ShipmentStatus,
    VisitView,
)

__all__ = [
    "MASK",
    "SCHEMA_VERSION",
    "detail_dict",
    "end_otc_dict",
    "iso_utc",
    "json_line",
    "json_schema",
    "masked",
    "snapshot_dict",
    "visit_dict",
    "visit_view_dict",
]

#: The version of the JSON view, and of ``schema/flipkart-otc-v<N>.schema.json``.
SCHEMA_VERSION = 1


def snapshot_dict(
    location_id: str,
    snapshot: OtcSnapshot | None,
    status: LocationStatus | str,
    error: str | None,
    *,
    show_otc: bool,
) -> dict[str, Any]:
    """One location's answer as JSON-ready data."""
    return {
        "location_id": location_id,
        "status": status.value if isinstance(status, LocationStatus) else status,
        # `is not None`: an OtcSnapshot with no FE is falsy (it has a length)
        "fetched_at": iso_utc(snapshot.fetched_at) if snapshot is not None else None,
        "details": [detail_dict(d, show_otc=show_otc) for _, d in sorted(snapshot.details.items())]
        if snapshot is not None
        else [],
        "error": error,
    }


def visit_view_dict(view: VisitView, *, show_otc: bool) -> dict[str, Any]:
    """An FE past the Start OTC page as a visit watcher's picture shows it (what the
    dashboard draws)."""
    return {
        "fe_id": view.fe_id,
        "task_id": view.task_id,
        "fe_name": view.fe_name,
        "logistic_partner": view.logistic_partner,
        "stage": view.stage,
        "since": iso_utc(view.since),
        "scanned": view.scanned,
        "rejected": view.rejected,
        "end_otc": None if view.end is None else end_otc_dict(view.end, show_otc=show_otc),
    }


def visit_dict(
    location_id: str,
    load: InitialLoad | None,
    status: LocationStatus | str,
    error: str | None,
    scanned: dict[str, list[ScannedShipment]],
    ends: dict[str, EndOtc],
    *,
    show_otc: bool,
) -> dict[str, Any]:
    """One location's visit (``fetch --visit``): each FE's page, what it scanned (for
    FEs past the Start OTC page) and its End OTC (when asked for)."""
    fes = []
    for fe_id, fe in sorted(load.fes.items()) if load is not None else []:
        shipments = scanned.get(fe_id)
        end = ends.get(fe_id)
        fes.append(
            {
                "fe_id": fe_id,
                "fe_name": fe.fe_name,
                "logistic_partner": fe.logistic_partner,
                "lob": fe.lob.value,
                "lob_raw": fe.lob_raw,
                "task_id": fe.task_id,
                "page": fe.task_status,
                "task_created_at": iso_utc(fe.task_created_at),
                "scanned": None if shipments is None else len(shipments),
                "rejected": None
                if shipments is None
                else sum(s.status is ShipmentStatus.REJECTED for s in shipments),
                "end_otc": None if end is None else end_otc_dict(end, show_otc=show_otc),
            }
        )
    return {
        "location_id": location_id,
        "status": status.value if isinstance(status, LocationStatus) else status,
        "fetched_at": iso_utc(load.fetched_at) if load is not None else None,
        "enabled_for": load.enabled_for if load is not None else None,
        "visit": fes,
        "error": error,
    }


def json_line(data: dict[str, Any]) -> str:
    """NDJSON: one compact object per line (what the CLI prints and a sink stores)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def masked(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON form with every OTC in it (its own, a renewal's ``previous``, an End
    OTC's) replaced by :data:`MASK`: for forms written with the code shown."""
    out = dict(data)
    if "otc" in out:
        out["otc"] = MASK
    previous = out.get("previous")
    if isinstance(previous, dict) and "otc" in previous:
        out["previous"] = previous | {"otc": MASK}
    return out


@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every event's and snapshot's JSON form."""
    name = f"flipkart-otc-v{SCHEMA_VERSION}.schema.json"
    text = resources.files("flipkart_otc").joinpath("schema", name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
