"""The End OTC endpoint on the wire: the code that ends an FE's visit, and its summary. Pure.

``POST /v3/returns/otc/end/details`` with ``{"feId", "taskId", "taskType":
"RETURN"}``. It makes a code, so a client must not repeat it blindly (see
``OtcClient.end_otc_details``).
"""

from __future__ import annotations

import json

from ..models import EndOtc
from .common import TASK_TYPE, format_error, success_document
from .kinds import FieldError, count, field, obj, strict_str

__all__ = ["ENDPOINT", "PATH", "SUCCESS_KEY", "parse_end_otc", "request_body"]

ENDPOINT = "End OTC"
PATH = "/v3/returns/otc/end/details"
SUCCESS_KEY = "otc"


def request_body(fe_id: str, task_id: str) -> bytes:
    """The JSON body of an End OTC request."""
    return json.dumps({"feId": fe_id, "taskId": task_id, "taskType": TASK_TYPE}).encode()


def parse_end_otc(body: bytes, fe_id: str, task_id: str) -> EndOtc:
    """A 200 answer as an :class:`EndOtc`, the ApiError a 200 carrying an ``errorCode``
    means, or a ResponseFormatError naming the bad field (the body kept, OTC masked)."""
    document = success_document(body, ENDPOINT, SUCCESS_KEY)
    try:
        top = obj(document, "answer")
        return EndOtc(
            fe_id,
            task_id,
            field(top, "otc", strict_str, ""),
            field(top, "totalScanned", count, ""),
            field(top, "obdEligible", count, ""),
            field(top, "obdFailed", count, ""),
            field(top, "flyerEligible", count, ""),
            field(top, "flyerFailed", count, ""),
        )
    except FieldError as exc:
        raise format_error(ENDPOINT, exc.reason, body, status=200, field=exc.path) from None
