"""The exception tree.

Everything this library raises on purpose derives from
:class:`FlipkartOtcError`. Messages name the location and the HTTP status but
never a token, an app secret or an OTC.

::

    FlipkartOtcError
    ├── ApiError(status, error_code, message)
    │   ├── TaskNotFoundError          TRIPSHEET_TASK_NOT_FOUND
    │   ├── InvalidTaskTypeError       INVALID_TASK_TYPE_ERROR
    │   ├── TripsheetClosedError       TRIPSHEET_CLOSED_ERROR
    │   │   └── TaskClosedError        TASK_CLOSED
    │   ├── ShipmentSyncError          SHIPMENT_SYNC_ERROR
    │   ├── NotOnEndOtcPageError       NOT_ON_END_OTC_PAGE_ERROR
    │   ├── FeOtcBadRequestError       FE_OTC_BAD_REQUEST_ERROR
    │   ├── AuthenticationError        UNAUTHORIZED_ERROR, token endpoint failures
    │   ├── RateLimitedError           HTTP 429 (retry_after)
    │   └── ServerError                retried
    │       ├── InternalServerError    INTERNAL_SERVER_ERROR
    │       ├── BadGatewayError        BAD_GATEWAY_ERROR
    │       ├── ServiceUnavailableError SERVICE_UNAVAILABLE_ERROR
    │       └── GatewayTimeoutError    GATEWAY_TIMEOUT_ERROR
    ├── TransportError                 connection failures (retried)
    │   └── RequestTimeoutError        timeouts, HTTP 408, 499 and 599 (retried)
    └── ResponseFormatError            a body that is not what the spec says
"""

from __future__ import annotations

from typing import NamedTuple

from ._checks import quote
from ._status import LocationStatus

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadGatewayError",
    "FlipkartOtcError",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidTaskTypeError",
    "RateLimitedError",
    "RequestTimeoutError",
    "PageLimitError",
    "ResponseFormatError",
    "ServerError",
    "ServiceUnavailableError",
    "TaskNotFoundError",
    "TransportError",
    "TripsheetClosedError",
    "TaskClosedError",
    "ShipmentSyncError",
    "NotOnEndOtcPageError",
    "SinkError",
    "SinkFencedError",
    "FeOtcBadRequestError",
    "Verdict",
    "classify",
]


def _where(location_id: str | None, status: int | None) -> str:
    parts = []
    if location_id is not None:
        parts.append(f"location {quote(location_id)}")
    if status is not None:
        parts.append(f"HTTP {status}")
    return f" ({', '.join(parts)})" if parts else ""


class FlipkartOtcError(Exception):
    """Base of every error this library raises on purpose.

    :ivar location_id: the seller location of the failed request, if any.
    :ivar status: the HTTP status of the answer, if there was one.
    """

    def __init__(
        self, message: str, *, location_id: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message + _where(location_id, status))
        self.location_id = location_id
        self.status = status


class ApiError(FlipkartOtcError):
    """Flipkart (or a proxy in front of it) answered with an error.

    An ``errorCode`` this library does not know still becomes an ``ApiError``
    that keeps it in :attr:`error_code`; a body without one (an HTML page from
    a proxy) is classed by HTTP status and has ``error_code=None``.
    """

    def __init__(
        self,
        status: int,
        error_code: str | None,
        message: str = "",
        *,
        location_id: str | None = None,
    ) -> None:
        self.error_code = error_code
        self.message = message
        text = error_code or "HTTP error"
        if message:
            text = f"{text}: {message}"
        super().__init__(text, location_id=location_id, status=status)


class TaskNotFoundError(ApiError):
    """``TRIPSHEET_TASK_NOT_FOUND``: the location has no RETURN task. Not retried."""


class InvalidTaskTypeError(ApiError):
    """``INVALID_TASK_TYPE_ERROR``: the task type is not RETURN. Not retried."""


class TripsheetClosedError(ApiError):
    """``TRIPSHEET_CLOSED_ERROR``: the location's task is closed. Not retried."""


class TaskClosedError(TripsheetClosedError):
    """``TASK_CLOSED``: the FE's task is over (the visit endpoints' word for it)."""


class ShipmentSyncError(ApiError):
    """``SHIPMENT_SYNC_ERROR``: not every scanned shipment is synced yet (End OTC).
    Not retried blindly: ask again once scanning has settled."""


class NotOnEndOtcPageError(ApiError):
    """``NOT_ON_END_OTC_PAGE_ERROR``: the FE is still scanning, not on the End OTC page."""


class FeOtcBadRequestError(ApiError):
    """``FE_OTC_BAD_REQUEST_ERROR``: the FE id and task id do not name an open task."""


class AuthenticationError(ApiError):
    """The token was refused (after one refresh) or no token could be had."""


class RateLimitedError(ApiError):
    """HTTP 429. Retried after :attr:`retry_after` seconds when that is not too long.

    :ivar retry_after: seconds from the ``Retry-After`` header, or ``None``.
    """

    def __init__(
        self,
        status: int,
        error_code: str | None,
        message: str = "",
        *,
        location_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, error_code, message, location_id=location_id)
        self.retry_after = retry_after


class ServerError(ApiError):
    """A 5xx answer. Retried with backoff."""


class InternalServerError(ServerError):
    """``INTERNAL_SERVER_ERROR`` (HTTP 500)."""


class BadGatewayError(ServerError):
    """``BAD_GATEWAY_ERROR`` (HTTP 502), including a proxy's HTML 502 page."""


class ServiceUnavailableError(ServerError):
    """``SERVICE_UNAVAILABLE_ERROR`` (HTTP 503)."""


class GatewayTimeoutError(ServerError):
    """``GATEWAY_TIMEOUT_ERROR`` (HTTP 504)."""


class TransportError(FlipkartOtcError):
    """The request did not get an answer: connection refused, reset or dropped. Retried."""


class RequestTimeoutError(TransportError):
    """An attempt timed out, or the server said so (HTTP 408, Flipkart's 499/599). Retried."""


class SinkError(FlipkartOtcError):
    """A sink (e.g. :class:`~flipkart_otc.sinks.RedisStreamSink`) cannot keep events:
    refused writes, unreadable saved state. Redis being down or slow is not one: the
    sink holds what it is given and retries."""


class SinkFencedError(SinkError):
    """Another worker, started later, took over a location this one watches (two
    workers claimed the same shard, or an old one outlived a re-sharding). The
    later one wins; this one's watcher stops with this error and writes nothing
    more. ``location_id`` names the location."""


class ResponseFormatError(FlipkartOtcError):
    """An answer that is not what the spec describes.

    :ivar field: where the problem is, e.g. ``otcDetails.fe1.expiryTime``.
    :ivar body: the start of the body (OTC values masked), for diagnosis.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        body: str = "",
        location_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, location_id=location_id, status=status)
        self.field = field
        self.body = body


class PageLimitError(ResponseFormatError):
    """The scanned shipments' pages did not end within one read's bound
    (``max_pages``): a server that hands out a next page for ever. ``pages`` says how
    many were read; what they held was yielded."""

    def __init__(self, message: str, *, pages: int, location_id: str | None = None) -> None:
        super().__init__(message, field="nextPageUrl", location_id=location_id)
        self.pages = pages


#: Every error code of the spec, and the class it raises.
ERROR_CODES: dict[str, type[ApiError]] = {
    "TRIPSHEET_TASK_NOT_FOUND": TaskNotFoundError,
    "INVALID_TASK_TYPE_ERROR": InvalidTaskTypeError,
    "TRIPSHEET_CLOSED_ERROR": TripsheetClosedError,
    "UNAUTHORIZED_ERROR": AuthenticationError,
    "INTERNAL_SERVER_ERROR": InternalServerError,
    "BAD_GATEWAY_ERROR": BadGatewayError,
    "SERVICE_UNAVAILABLE_ERROR": ServiceUnavailableError,
    "GATEWAY_TIMEOUT_ERROR": GatewayTimeoutError,
    "TASK_CLOSED": TaskClosedError,
    "SHIPMENT_SYNC_ERROR": ShipmentSyncError,
    "NOT_ON_END_OTC_PAGE_ERROR": NotOnEndOtcPageError,
    "FE_OTC_BAD_REQUEST_ERROR": FeOtcBadRequestError,
}

#: How an error answer without a known code is classed.
STATUS_CLASSES: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    429: RateLimitedError,
    500: InternalServerError,
    502: BadGatewayError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}

#: Statuses that mean "the request timed out", not "the server refused it".
#: (499 and 599 are Flipkart's "connection timed out", named differently across its docs.)
TIMEOUT_STATUSES = frozenset({408, 499, 599})


class Verdict(NamedTuple):
    """What a failure means: see :func:`classify`."""

    #: Transient: worth another attempt after a wait.
    retried: bool
    #: The status a watched location takes after it.
    status: LocationStatus
    #: Polling cannot go on: the watcher stops and raises it.
    fatal: bool


_NO_TASK = Verdict(retried=False, status=LocationStatus.NO_TASK, fatal=False)
_CLOSED = Verdict(retried=False, status=LocationStatus.CLOSED, fatal=False)
_TRANSIENT = Verdict(retried=True, status=LocationStatus.FAILING, fatal=False)
_FAILED = Verdict(retried=False, status=LocationStatus.FAILING, fatal=False)
_FATAL = Verdict(retried=False, status=LocationStatus.FAILING, fatal=True)


def classify(exc: BaseException) -> Verdict:
    """The one place that says what a failure means, for the client's retries, the
    watcher and the command line alike.

    ===========================================  =======  =========  =====
    failure                                      retried  status     fatal
    ===========================================  =======  =========  =====
    TaskNotFoundError                            no       NO_TASK    no
    TripsheetClosedError                         no       CLOSED     no
    ServerError, RateLimitedError, TransportError yes     FAILING    no
    AuthenticationError, InvalidTaskTypeError    no       FAILING    yes
    SinkFencedError                              no       FAILING    yes
    any other FlipkartOtcError                   no       FAILING    no
    anything else (a bug)                        no       FAILING    yes
    ===========================================  =======  =========  =====

    >>> classify(TaskNotFoundError(400, "TRIPSHEET_TASK_NOT_FOUND")).status
    <LocationStatus.NO_TASK: 'NO_TASK'>
    """
    if isinstance(exc, TaskNotFoundError):
        return _NO_TASK
    if isinstance(exc, TripsheetClosedError):
        return _CLOSED
    if isinstance(exc, (ServerError, RateLimitedError, TransportError)):
        return _TRANSIENT
    if isinstance(exc, (AuthenticationError, InvalidTaskTypeError, SinkFencedError)):
        return _FATAL
    if isinstance(exc, FlipkartOtcError):
        return _FAILED
    return _FATAL
