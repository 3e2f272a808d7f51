"""The scanned-shipments endpoint on the wire: pages of what an FE scanned. Pure.

The first page is ``POST /v3/returns/tasks/shipments`` with ``{"taskId", "feId",
"pageSize"}``; each later one a ``GET`` of the next URL the last page gave. Flipkart's
docs spell the paging keys two ways (``hasMore``/``nextUrl`` and ``has_more``/
``next_url``): both are read. A next URL is joined as the spec note says: an absolute
URL (also ``//host/...``) is used as it is, on the base URL's host only; a path that
starts ``/sellers/``
is joined to the base URL's scheme and host, any other path to the base URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from .._checks import safe_url
from ..errors import ResponseFormatError
from ..models import FlyerCheck, ObdCheck, ScannedShipment, ShipmentStatus
from .common import format_error, success_document
from .kinds import FieldError, epoch, field, obj, strict_str

__all__ = [
    "ENDPOINT",
    "PAGE_SIZE",
    "PATH",
    "SUCCESS_KEY",
    "Page",
    "first_body",
    "next_target",
    "parse_page",
]

ENDPOINT = "scanned-shipments"
PATH = "/v3/returns/tasks/shipments"
SUCCESS_KEY = "scannedShipments"
#: Shipments a page asks for, unless told (the docs' sample token says 20; no limit is
#: documented).
PAGE_SIZE = 25
_STATUSES = {s.value: s for s in ShipmentStatus}


class Page(NamedTuple):
    """One page: its shipments, and where the next one is (None: no more)."""

    shipments: list[ScannedShipment]
    next_url: str | None


def first_body(task_id: str, fe_id: str, page_size: int) -> bytes:
    """The JSON body of the first page's request."""
    return json.dumps({"taskId": task_id, "feId": fe_id, "pageSize": page_size}).encode()


def _optional_str(value: object, _: object) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError(f"expected a string or null, got {type(value).__name__}")


def _bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    raise TypeError(f"expected true or false, got {type(value).__name__}")


def _links(value: object, _: object) -> tuple[str, ...]:
    if type(value) is list and all(type(item) is str for item in value):
        return tuple(value)
    raise TypeError("expected a list of strings")


def _either(
    document: dict[str, Any],
    names: tuple[str, str],
    hook: Callable[[object, object], Any],
    path: str,
) -> Any:
    """The value under whichever spelling the page uses (None when neither is there)."""
    for name in names:
        if name in document:
            return field(document, name, hook, path)
    return None


def _shipment(raw: object, path: str) -> ScannedShipment:
    entry = obj(raw, path)
    status_raw = field(entry, "status", strict_str, path)
    flyer = obd = None
    if entry.get("flyerDetails") is not None:
        details = obj(entry["flyerDetails"], f"{path}.flyerDetails")
        where = f"{path}.flyerDetails"
        flyer = FlyerCheck(
            field(details, "actualFlyerId", strict_str, where),
            field(details, "capturedFlyerId", strict_str, where),
            field(details, "status", strict_str, where),
        )
    if entry.get("obdDetails") is not None:
        details = obj(entry["obdDetails"], f"{path}.obdDetails")
        where = f"{path}.obdDetails"
        obd = ObdCheck(
            field(details, "eligible", _bool, where),
            field(details, "remark", strict_str, where),
            field(details, "imageLinks", _links, where) if "imageLinks" in details else (),
        )
    return ScannedShipment(
        field(entry, "trackingId", strict_str, path),
        field(entry, "shipmentId", strict_str, path),
        _STATUSES.get(status_raw.strip().upper(), ShipmentStatus.UNKNOWN),
        status_raw,
        field(entry, "reason", _optional_str, path) if "reason" in entry else None,
        field(entry, "scannedAt", epoch, path),
        flyer,
        obd,
    )


def parse_page(body: bytes) -> Page:
    """A 200 page, the ApiError a 200 carrying an ``errorCode`` means, or a
    ResponseFormatError naming the bad field."""
    document = success_document(body, ENDPOINT, SUCCESS_KEY)
    try:
        top = obj(document, "answer")
        raw = field(top, SUCCESS_KEY, lambda v, _: v, "")
        items = [] if raw is None else raw
        if type(items) is not list:
            raise FieldError(SUCCESS_KEY, f"expected a list, got {type(items).__name__}")
        shipments = [_shipment(item, f"{SUCCESS_KEY}[{i}]") for i, item in enumerate(items)]
        more = _either(top, ("hasMore", "has_more"), _bool, "")
        next_url = _either(top, ("nextUrl", "next_url"), _optional_str, "")
    except FieldError as exc:
        raise format_error(ENDPOINT, exc.reason, body, status=200, field=exc.path) from None
    return Page(shipments, next_url if more is not False and next_url else None)


def next_target(base_url: str, next_url: str) -> str:
    """The URL to GET for ``next_url``; a ResponseFormatError if it leaves the base URL's
    host (the token would go with it)."""
    base = urlsplit(base_url)
    origin = f"{base.scheme}://{base.netloc}"
    if next_url.startswith(("http://", "https://")):
        target = next_url
    elif next_url.startswith("//"):  # a host of its own, the scheme of ours
        target = f"{base.scheme}:{next_url}"
    elif next_url.startswith("/sellers/"):
        target = origin + next_url
    else:
        target = base_url.rstrip("/") + "/" + next_url.lstrip("/")
    parts = urlsplit(urljoin(origin + "/", target))
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
        raise ResponseFormatError(
            f"malformed {ENDPOINT} answer: nextUrl: points at another host "
            f"({safe_url(target)}); not followed",
            field="nextUrl",
            status=200,
        )
    return target
