"""Asyncio client and watcher for Flipkart's Start OTC API.

>>> from flipkart_otc import OtcClient, ClientCredentials
>>> async def main():  # doctest: +SKIP
...     async with OtcClient(ClientCredentials(app_id, app_secret)) as client:
...         snap = await client.start_otc_details("LOC1")

Names load on first use (PEP 562): ``import flipkart_otc`` stays cheap, so the
command line can catch a Ctrl+C during its own start-up. The public names are listed
once, in the ``TYPE_CHECKING`` block below: a new one goes there, and nowhere else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

if TYPE_CHECKING:
    from ._fanout import (
        EventFeed as EventFeed,
    )
    from ._fanout import (
        ReliableSink as ReliableSink,
    )
    from ._fanout import (
        ResumableSink as ResumableSink,
    )
    from ._fanout import (
        SubscriberLagged as SubscriberLagged,
    )
    from ._fanout import (
        Subscription as Subscription,
    )
    from ._observe import (
        Observer as Observer,
    )
    from ._saved import (
        SavedLocation as SavedLocation,
    )
    from ._saved import (
        event_id as event_id,
    )
    from ._serialize import (
        SCHEMA_VERSION as SCHEMA_VERSION,
    )
    from ._serialize import (
        json_schema as json_schema,
    )
    from ._views import (
        LocationView as LocationView,
    )
    from ._views import (
        Picture as Picture,
    )
    from ._views import (
        Sequenced as Sequenced,
    )
    from ._views import (
        WatcherHealth as WatcherHealth,
    )
    from .auth import (
        PRODUCTION_TOKEN_URL as PRODUCTION_TOKEN_URL,
    )
    from .auth import (
        SANDBOX_TOKEN_URL as SANDBOX_TOKEN_URL,
    )
    from .auth import (
        ClientCredentials as ClientCredentials,
    )
    from .auth import (
        StaticToken as StaticToken,
    )
    from .auth import (
        TokenProvider as TokenProvider,
    )
    from .client import (
        PRODUCTION_BASE_URL as PRODUCTION_BASE_URL,
    )
    from .client import (
        SANDBOX_BASE_URL as SANDBOX_BASE_URL,
    )
    from .client import (
        OtcClient as OtcClient,
    )
    from .clock import (
        Clock as Clock,
    )
    from .clock import (
        ManualClock as ManualClock,
    )
    from .clock import (
        SystemClock as SystemClock,
    )
    from .errors import (
        ApiError as ApiError,
    )
    from .errors import (
        AuthenticationError as AuthenticationError,
    )
    from .errors import (
        BadGatewayError as BadGatewayError,
    )
    from .errors import (
        FeOtcBadRequestError as FeOtcBadRequestError,
    )
    from .errors import (
        FlipkartOtcError as FlipkartOtcError,
    )
    from .errors import (
        GatewayTimeoutError as GatewayTimeoutError,
    )
    from .errors import (
        InternalServerError as InternalServerError,
    )
    from .errors import (
        InvalidTaskTypeError as InvalidTaskTypeError,
    )
    from .errors import (
        NotOnEndOtcPageError as NotOnEndOtcPageError,
    )
    from .errors import (
        PageLimitError as PageLimitError,
    )
    from .errors import (
        RateLimitedError as RateLimitedError,
    )
    from .errors import (
        RequestTimeoutError as RequestTimeoutError,
    )
    from .errors import (
        ResponseFormatError as ResponseFormatError,
    )
    from .errors import (
        ServerError as ServerError,
    )
    from .errors import (
        ServiceUnavailableError as ServiceUnavailableError,
    )
    from .errors import (
        ShipmentSyncError as ShipmentSyncError,
    )
    from .errors import (
        SinkError as SinkError,
    )
    from .errors import (
        SinkFencedError as SinkFencedError,
    )
    from .errors import (
        TaskClosedError as TaskClosedError,
    )
    from .errors import (
        TaskNotFoundError as TaskNotFoundError,
    )
    from .errors import (
        TransportError as TransportError,
    )
    from .errors import (
        TripsheetClosedError as TripsheetClosedError,
    )
    from .errors import (
        Verdict as Verdict,
    )
    from .errors import (
        classify as classify,
    )
    from .events import (
        EVENT_KINDS as EVENT_KINDS,
    )
    from .events import (
        EndOtcReady as EndOtcReady,
    )
    from .events import (
        FeArrived as FeArrived,
    )
    from .events import (
        FeDeparted as FeDeparted,
    )
    from .events import (
        FeEvent as FeEvent,
    )
    from .events import (
        LocationStatusChanged as LocationStatusChanged,
    )
    from .events import (
        OtcEvent as OtcEvent,
    )
    from .events import (
        OtcExpired as OtcExpired,
    )
    from .events import (
        OtcRenewed as OtcRenewed,
    )
    from .events import (
        ScanningStarted as ScanningStarted,
    )
    from .events import (
        ShipmentScanned as ShipmentScanned,
    )
    from .events import (
        StartOtcEvent as StartOtcEvent,
    )
    from .events import (
        VisitCompleted as VisitCompleted,
    )
    from .events import (
        VisitEvent as VisitEvent,
    )
    from .events import (
        VisitLeft as VisitLeft,
    )
    from .events import (
        VisitWatchEvent as VisitWatchEvent,
    )
    from .events import (
        WatchEvent as WatchEvent,
    )
    from .events import (
        event_from_dict as event_from_dict,
    )
    from .limiter import (
        SharedLimiter as SharedLimiter,
    )
    from .models import (
        EndOtc as EndOtc,
    )
    from .models import (
        FlyerCheck as FlyerCheck,
    )
    from .models import (
        InitialLoad as InitialLoad,
    )
    from .models import (
        Lob as Lob,
    )
    from .models import (
        LocationStatus as LocationStatus,
    )
    from .models import (
        ObdCheck as ObdCheck,
    )
    from .models import (
        OtcDetail as OtcDetail,
    )
    from .models import (
        OtcSnapshot as OtcSnapshot,
    )
    from .models import (
        ScannedShipment as ScannedShipment,
    )
    from .models import (
        ShipmentPage as ShipmentPage,
    )
    from .models import (
        ShipmentStatus as ShipmentStatus,
    )
    from .models import (
        VisitFe as VisitFe,
    )
    from .models import (
        VisitView as VisitView,
    )
    from .policy import (
        PollPolicy as PollPolicy,
    )
    from .policy import (
        Urgency as Urgency,
    )
    from .ratelimit import (
        RateLimit as RateLimit,
    )
    from .retry import (
        RetryPolicy as RetryPolicy,
    )
    from .shard import (
        Shard as Shard,
    )
    from .shard import (
        shard_of as shard_of,
    )
    from .source import (
        OtcSource as OtcSource,
    )
    from .source import (
        VisitSource as VisitSource,
    )
    from .visit import (
        VisitWatcher as VisitWatcher,
    )
    from .watcher import (
        OtcWatcher as OtcWatcher,
    )

#: Each public name and the module it loads from, read from the ``TYPE_CHECKING`` block
#: above on first use: that block is the one list of public names (type checkers read it
#: as imports; this reads it to load each name when it is first asked for).
_EXPORTS: dict[str, str] = {}


def _exports() -> dict[str, str]:
    if not _EXPORTS:
        import ast  # only when a name is first asked for: `import flipkart_otc` stays cheap

        source: str | None
        try:
            with open(__file__, encoding="utf-8") as file:
                source = file.read()
        except (OSError, ValueError):  # in a zip, or no source: ask the loader
            get_source = getattr(__spec__.loader, "get_source", None) if __spec__ else None
            source = get_source(__name__) if get_source is not None else None
        if source is None:
            raise ImportError(f"{__name__}: its source is needed to list its names")
        for node in ast.parse(source).body:
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                _EXPORTS.update(
                    (alias.asname or alias.name, "." * stmt.level + (stmt.module or ""))
                    for stmt in node.body
                    if isinstance(stmt, ast.ImportFrom)
                    for alias in stmt.names
                )
    return _EXPORTS


def __getattr__(name: str) -> Any:
    if name == "__all__":  # for `from flipkart_otc import *`
        value: Any = [*sorted(_exports()), "__version__"]
    else:
        module = _exports().get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_exports()})
