"""The error codes Flipkart's docs list for each endpoint the simulator serves: the
simulator answers an endpoint only with codes from its list (docs/visit-endpoints.md)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DOCUMENTED", "INJECTED", "UNREADABLE"]

#: Listed under every non-200 status of every endpoint.
_COMMON = frozenset(
    {
        "UNAUTHORIZED_ERROR",
        "INTERNAL_SERVER_ERROR",
        "BAD_GATEWAY_ERROR",
        "SERVICE_UNAVAILABLE_ERROR",
        "GATEWAY_TIMEOUT_ERROR",
    }
)
_START_OTC = _COMMON | {
    "TRIPSHEET_TASK_NOT_FOUND",
    "INVALID_TASK_TYPE_ERROR",
    "TRIPSHEET_CLOSED_ERROR",
}
_SHIPMENTS = _COMMON | {"TASK_CLOSED", "TRIPSHEET_TASK_NOT_FOUND", "INVALID_TASK_TYPE_ERROR"}

#: Each endpoint (by the names of ``simulator.ENDPOINTS``) and the codes its docs list.
DOCUMENTED: Mapping[str, frozenset[str]] = {
    "start-otc": _START_OTC,
    "initial-load": _COMMON | {"TRIPSHEET_TASK_NOT_FOUND", "INVALID_TASK_TYPE_ERROR"},
    "shipments": _SHIPMENTS,
    "shipments-next": _SHIPMENTS,  # the next pages: "both requests" share one schema
    "end-otc": _COMMON
    | {
        "SHIPMENT_SYNC_ERROR",
        "NOT_ON_END_OTC_PAGE_ERROR",
        "TRIPSHEET_TASK_NOT_FOUND",
        "INVALID_TASK_TYPE_ERROR",
        "FE_OTC_BAD_REQUEST_ERROR",
    },
}

#: What an endpoint answers a request it cannot use (a wrong content type, a body that
#: is not a JSON object, an id missing, a page size or page token it cannot serve). The
#: docs give no code for these [gap]; this is the listed code nearest in meaning:
#: without a readable body there is no RETURN task type, no task, or no FE on one.
UNREADABLE: Mapping[str, str] = {
    "start-otc": "INVALID_TASK_TYPE_ERROR",
    "initial-load": "INVALID_TASK_TYPE_ERROR",
    "shipments": "TRIPSHEET_TASK_NOT_FOUND",
    "shipments-next": "TRIPSHEET_TASK_NOT_FOUND",
    "end-otc": "FE_OTC_BAD_REQUEST_ERROR",
}

#: Codes only a scripted fault sends, on purpose outside the lists: a 429 (the generic
#: response-codes page lists the status, no body), to test what the docs do not say.
INJECTED = frozenset({"TOO_MANY_REQUESTS"})
