"""The initial-load endpoint on the wire: which FEs are at a location, on which page. Pure.

``POST /v3/returns/tasks/initial-load`` with ``{"sellerLocationId", "taskType":
"RETURN"}``; the answer lists ``feDetails`` by FE id (``task.createdAt`` in epoch
seconds or milliseconds, its unit undocumented) and ``sellerConfig.enabledFor``.
"""

from __future__ import annotations

from datetime import datetime

from ..models import InitialLoad, VisitFe
from .common import format_error, success_document
from .kinds import FieldError, epoch, field, lob, lob_raw, obj, shared_str, strict_str
from .start_otc import request_body

__all__ = ["ENDPOINT", "PATH", "SUCCESS_KEY", "parse_initial_load", "request_body"]

ENDPOINT = "initial-load"
PATH = "/v3/returns/tasks/initial-load"
SUCCESS_KEY = "feDetails"


def _fe(fe_id: str, raw: object) -> VisitFe:
    path = f"feDetails.{fe_id}"
    entry = obj(raw, path)
    if "task" not in entry:
        raise FieldError(f"{path}.task", "required field missing")
    task = obj(entry["task"], f"{path}.task")
    return VisitFe(
        fe_id,
        field(entry, "feName", shared_str, path),
        field(entry, "logisticPartner", shared_str, path),
        field(entry, "lob", lob, path),
        field(entry, "lob", lob_raw, path),
        field(task, "id", strict_str, f"{path}.task"),
        field(task, "status", strict_str, f"{path}.task"),
        field(task, "createdAt", epoch, f"{path}.task"),
    )


def parse_initial_load(body: bytes, location_id: str, fetched_at: datetime) -> InitialLoad:
    """A 200 answer as an :class:`InitialLoad` (``feDetails`` null or empty: no FE), or
    the ApiError a 200 carrying an ``errorCode`` means, or a ResponseFormatError naming
    the bad field."""
    document = success_document(body, ENDPOINT, SUCCESS_KEY, location_id=location_id)
    try:
        top = obj(document, "answer")
        if SUCCESS_KEY not in top:
            raise FieldError(SUCCESS_KEY, "required field missing")
        raw_fes = top[SUCCESS_KEY]
        fes = {} if raw_fes is None else obj(raw_fes, SUCCESS_KEY)
        config = top.get("sellerConfig")
        enabled_for = (
            ""
            if config is None
            else field(obj(config, "sellerConfig"), "enabledFor", strict_str, "sellerConfig")
        )
        visit_fes = {fe_id: _fe(fe_id, raw) for fe_id, raw in fes.items()}
    except FieldError as exc:
        raise format_error(
            ENDPOINT, exc.reason, body, location_id=location_id, status=200, field=exc.path
        ) from None
    return InitialLoad(location_id, fetched_at, enabled_for, visit_fes)
