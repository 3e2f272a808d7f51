"""Who may see the dashboard: an access key, entered once, kept as a cookie; how often a
wrong one may be tried; which ``Host`` a keyless server answers. Pure.

The cookie holds a keyed hash of the key, never the key itself, so a copied cookie does
not reveal it, and it stays valid across a server restart with the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from collections.abc import Collection

__all__ = [
    "COOKIE",
    "LoginThrottle",
    "check_key",
    "client_of",
    "host_allowed",
    "key_matches",
    "retry_after",
    "session_value",
    "valid_session",
]

COOKIE = "flipkart_otc_session"
_CONTEXT = b"flipkart-otc dashboard session v1"
KEY_MIN = 16  # characters
KEY_DISTINCT_MIN = 8  # different characters: "aaaa...", "abab..." and "1212..." fall short


def check_key(key: object) -> str:
    """An access key is a string of at least 16 characters, with 8 or more different
    ones, that is not a shorter part repeated; else ValueError saying which (the key
    itself is never in the message)."""
    if not isinstance(key, str):
        raise TypeError(f"access_key must be a str, got {type(key).__name__}")
    key = key.strip()
    if len(key) < KEY_MIN:
        raise ValueError(f"access_key is shorter than {KEY_MIN} characters (it has {len(key)})")
    distinct = len(set(key))
    if distinct < KEY_DISTINCT_MIN:
        raise ValueError(
            f"access_key is too easy to guess: {distinct} different characters, "
            f"{KEY_DISTINCT_MIN} or more needed"
        )
    if key in (key + key)[1:-1]:  # a shorter part, repeated ("abcdefghabcdefgh")
        raise ValueError("access_key is too easy to guess: it is a shorter part repeated")
    return key


def session_value(key: str) -> str:
    """The cookie value that proves the key was entered."""
    return hmac.new(key.encode("utf-8", "replace"), _CONTEXT, hashlib.sha256).hexdigest()


def valid_session(expected: str, cookie: str | None) -> bool:
    """Whether ``cookie`` is the session value (compared in constant time)."""
    return cookie is not None and hmac.compare_digest(
        expected.encode(), cookie.encode("utf-8", "replace")
    )


def key_matches(key: str, offered: str) -> bool:
    """Whether an offered key is the access key (compared in constant time)."""
    return hmac.compare_digest(session_value(key), session_value(offered))


def client_of(remote: str | None) -> str:
    """Whom a login attempt counts against: the IPv4 address, or the IPv6 /64 (one
    host hands out addresses from its /64 at will)."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote or "?"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class LoginThrottle:
    """Wrong keys, counted per client and overall as token buckets: each attempt takes
    a token from both, a right key gives it back, and tokens come back at a steady
    rate. With none left, an attempt is refused unchecked (the right key too) until
    :meth:`wait` says. Times are the caller's monotonic seconds.

    The defaults allow a client 5 wrong keys at once then one per 12 s, and everyone
    together 60 at once then one a second: a 16-character key is out of reach.
    """

    def __init__(
        self,
        *,
        per_client: int = 5,
        client_every: float = 12.0,
        overall: int = 60,
        overall_every: float = 1.0,
        max_clients: int = 10_000,
    ) -> None:
        self._capacity = (float(per_client), float(overall))
        self._every = (client_every, overall_every)
        self._clients: dict[str, _Bucket] = {}
        self._overall: _Bucket | None = None
        self._max_clients = max_clients

    def _refill(self, bucket: _Bucket, which: int, now: float) -> _Bucket:
        earned = max(0.0, now - bucket.updated) / self._every[which]
        bucket.tokens = min(self._capacity[which], bucket.tokens + earned)
        bucket.updated = now
        return bucket

    def _buckets(self, client: str, now: float) -> tuple[_Bucket, _Bucket]:
        mine = self._clients.get(client)
        if mine is None:
            self._forget_some(now)
            mine = self._clients[client] = _Bucket(self._capacity[0], now)
        if self._overall is None:
            self._overall = _Bucket(self._capacity[1], now)
        return self._refill(mine, 0, now), self._refill(self._overall, 1, now)

    def _forget_some(self, now: float) -> None:
        """Keep the table bounded: full buckets first, then the oldest."""
        if len(self._clients) < self._max_clients:
            return
        for client, bucket in list(self._clients.items()):
            if self._refill(bucket, 0, now).tokens >= self._capacity[0]:
                del self._clients[client]
        while len(self._clients) >= self._max_clients:
            del self._clients[next(iter(self._clients))]

    def attempt(self, client: str, now: float) -> float:
        """Take a token for an attempt: 0.0 when it may be checked, else the seconds
        until one may (nothing taken)."""
        mine, everyone = self._buckets(client, now)
        waits = [
            (1.0 - bucket.tokens) * self._every[which]
            for which, bucket in enumerate((mine, everyone))
            if bucket.tokens < 1.0
        ]
        if waits:
            return max(waits)
        mine.tokens -= 1.0
        everyone.tokens -= 1.0
        return 0.0

    def succeeded(self, client: str, now: float) -> None:
        """The attempt had the right key: its tokens come back."""
        mine, everyone = self._buckets(client, now)
        mine.tokens = min(self._capacity[0], mine.tokens + 1.0)
        everyone.tokens = min(self._capacity[1], everyone.tokens + 1.0)


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


def _host_name(header: str) -> str:
    """The name or address in a ``Host`` header, without the port, lower case."""
    header = header.strip().lower()
    if header.startswith("["):  # [v6]:port
        inside, closed, _ = header[1:].partition("]")
        return inside if closed else header
    if header.count(":") == 1:
        header = header.partition(":")[0]
    return header.rstrip(".")


def host_allowed(header: str | None, local: str | None, extra: Collection[str] = ()) -> bool:
    """Whether a keyless server answers a request with this ``Host``: a loopback name
    (``localhost``, ``*.localhost``) or address, the address the request came in on
    (``local``), or one of ``extra``. A page of another name that resolves to this
    server (DNS rebinding) is refused. No ``Host`` (HTTP/1.0 probes): answered."""
    if header is None:
        return True
    name = _host_name(header)
    if name == "localhost" or name.endswith(".localhost") or name in extra:
        return True
    try:
        address = ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return True
    if local is None:
        return False
    try:
        return address == ipaddress.ip_address(local.partition("%")[0])
    except ValueError:
        return False
