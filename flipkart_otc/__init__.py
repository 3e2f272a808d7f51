"""Asyncio client and watcher for Flipkart's Start OTC API.

>>> from flipkart_otc import OtcClient, ClientCredentials
>>> async def main():  # doctest: +SKIP
...     async with OtcClient(ClientCredentials(app_id, app_secret)) as client:
...         snap = await client.start_otc_details("LOC1")
"""

from ._version import __version__
from .auth import (
    PRODUCTION_TOKEN_URL,
    SANDBOX_TOKEN_URL,
    ClientCredentials,
    StaticToken,
    TokenProvider,
)
from .client import PRODUCTION_BASE_URL, SANDBOX_BASE_URL, OtcClient
from .clock import Clock, ManualClock, SystemClock
from .errors import (
    ApiError,
    AuthenticationError,
    BadGatewayError,
    FlipkartOtcError,
    GatewayTimeoutError,
    InternalServerError,
    InvalidTaskTypeError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseFormatError,
    ServerError,
    ServiceUnavailableError,
    TaskNotFoundError,
    TransportError,
    TripsheetClosedError,
)
from .events import (
    FeArrived,
    FeDeparted,
    FeEvent,
    LocationStatusChanged,
    OtcEvent,
    OtcExpired,
    OtcRenewed,
    WatchEvent,
)
from .models import Lob, LocationStatus, OtcDetail, OtcSnapshot
from .retry import RetryPolicy
from .watcher import OtcWatcher

__all__ = [
    "PRODUCTION_BASE_URL",
    "PRODUCTION_TOKEN_URL",
    "SANDBOX_BASE_URL",
    "SANDBOX_TOKEN_URL",
    "ApiError",
    "AuthenticationError",
    "BadGatewayError",
    "ClientCredentials",
    "Clock",
    "FeArrived",
    "FeDeparted",
    "FeEvent",
    "FlipkartOtcError",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidTaskTypeError",
    "LocationStatus",
    "LocationStatusChanged",
    "Lob",
    "ManualClock",
    "OtcClient",
    "OtcDetail",
    "OtcEvent",
    "OtcExpired",
    "OtcRenewed",
    "OtcSnapshot",
    "OtcWatcher",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "StaticToken",
    "SystemClock",
    "TaskNotFoundError",
    "TokenProvider",
    "TransportError",
    "TripsheetClosedError",
    "WatchEvent",
    "__version__",
]
