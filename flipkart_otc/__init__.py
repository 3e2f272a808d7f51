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
from .models import Lob, LocationStatus, OtcDetail, OtcSnapshot
from .retry import RetryPolicy

__all__ = [
    "PRODUCTION_BASE_URL",
    "PRODUCTION_TOKEN_URL",
    "SANDBOX_BASE_URL",
    "SANDBOX_TOKEN_URL",
    "ApiError",
    "AuthenticationError",
    "BadGatewayError",
    "ClientCredentials",
    "FlipkartOtcError",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidTaskTypeError",
    "LocationStatus",
    "Lob",
    "OtcClient",
    "OtcDetail",
    "OtcSnapshot",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "StaticToken",
    "TaskNotFoundError",
    "TokenProvider",
    "TransportError",
    "TripsheetClosedError",
    "__version__",
]
