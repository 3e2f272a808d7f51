"""``flipkart-otc fetch``: each location once, as a table or JSON."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any, TextIO

from .. import _render
from .._cli_base import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
)
from .._serialize import snapshot_dict, visit_dict
from .._visit import VisitPage, page_of
from ..client import OtcClient
from ..errors import FlipkartOtcError, classify
from ..models import EndOtc, LocationStatus, ScannedShipment
from .common import _client, _locations, _print


async def _fetch(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    if args.end_otc and not args.visit:
        raise UsageError("--end-otc goes with --visit")
    if args.visit:
        return await _fetch_visit(args, out, say)
    locations = _locations(args, say)
    failed = False
    rows: list[list[str]] = []
    async with _client(args) as client:
        results = await asyncio.gather(
            *(client.start_otc_details(loc) for loc in locations), return_exceptions=True
        )
    for location_id, result in zip(locations, results, strict=True):
        error: str | None = None
        snapshot = None
        status: LocationStatus | str
        if isinstance(result, BaseException):
            verdict = classify(result)
            if verdict.fatal:
                raise result
            status = verdict.status
            if status is LocationStatus.FAILING:
                status, error, failed = "ERROR", str(result), True
        else:
            status, snapshot = LocationStatus.ACTIVE, result
        if args.format == "json":
            data = snapshot_dict(location_id, snapshot, status, error, show_otc=args.show_otc)
            _print(out, _render.json_line(data))
        else:
            rows += _render.snapshot_rows(location_id, snapshot, status, show_otc=args.show_otc)
            if error:
                rows[-1][2] = error
    if args.format == "table":
        header = ["LOCATION", "STATUS", "FE", "NAME", "PARTNER", "LOB", "OTC", "CODE"]
        _print(out, _render.table(header, rows))
    return EXIT_FAILED if failed else EXIT_OK


async def _fetch_visit(
    args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]
) -> int:
    locations = _locations(args, say)
    async with _client(args) as client:
        rows = await asyncio.gather(*(_visit(client, loc, args) for loc in locations))
    if args.format == "json":
        for data in rows:
            _print(out, _render.json_line(data))
    else:
        header = ["LOCATION", "STATUS", "FE", "NAME", "PARTNER", "PAGE", "SCANNED", "END OTC"]
        table = [row for data in rows for row in _render.visit_rows(data)]
        _print(out, _render.table(header, table))
    return EXIT_FAILED if any(data["status"] == "ERROR" for data in rows) else EXIT_OK


async def _visit(client: OtcClient, location_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """One location's visit as ``visit_dict`` gives it; a failure is its status."""
    load = None
    status: LocationStatus | str = LocationStatus.ACTIVE
    error = None
    scanned: dict[str, list[ScannedShipment]] = {}
    ends: dict[str, EndOtc] = {}
    try:
        load = await client.initial_load(location_id)
        for fe_id, fe in load.fes.items():
            page = page_of(fe.task_status)
            if page is not VisitPage.START_OTC:  # past the Start OTC page
                shipments = client.scanned_shipments(fe.task_id, fe_id)
                scanned[fe_id] = [shipment async for shipment in shipments]
            if args.end_otc and page is VisitPage.END_OTC:
                ends[fe_id] = await client.end_otc_details(fe_id, fe.task_id)
    except FlipkartOtcError as exc:
        verdict = classify(exc)
        if verdict.fatal:
            raise
        status = verdict.status
        if status is LocationStatus.FAILING:
            status, error = "ERROR", str(exc)
    return visit_dict(location_id, load, status, error, scanned, ends, show_otc=args.show_otc)
