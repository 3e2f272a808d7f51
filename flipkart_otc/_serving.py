"""Serving pages from the command line: the address rules (a key beyond loopback, TLS
or a warning), the listening socket, and the probes-and-metrics port of ``watch``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from ._cli_base import CommandError, UsageError
from ._fanout import EventFeed
from .policy import PollPolicy
from .probes import Probes

__all__ = [
    "access_key",
    "listen",
    "new_metrics",
    "probes_port",
    "probes_settings",
    "stall_after",
    "tls_context",
]

_warned = False  # the clear-text warning is said once per process


def loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (a host name other than localhost: no)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def access_key(host: str, name: str | None, *, option: str = "--host") -> str | None:
    """The access key in ``$name``; a usage error for a non-loopback ``host`` without
    one, or a key that is missing or shorter than 16 characters."""
    if name is None:
        if not loopback(host):
            raise UsageError(
                f"{option} {host} is not a loopback address: anyone who can reach it would "
                "see the page; pass --access-key-env NAME with a key of 16+ characters in $NAME"
            )
        return None
    key = os.environ.get(name, "").strip()
    if not key:
        raise UsageError(f"--access-key-env {name}: ${name} is not set or empty")
    from .dashboard._access import check_key  # pure: no aiohttp-sse needed

    try:  # a short or guessable key: said why, the key never shown
        return check_key(key)
    except ValueError as exc:
        raise UsageError(f"--access-key-env {name}: the key in ${name}: {exc}") from None


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """``--tls-cert``/``--tls-key`` as a server context (None without them)."""
    cert, key = args.tls_cert, args.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together")
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not os.path.isfile(path):  # ssl's own error does not say which file
            raise UsageError(f"{option} {path}: cannot read it (no such file)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"--tls-cert {cert} / --tls-key {key}: not a usable certificate and key "
            f"({getattr(exc, 'reason', None) or type(exc).__name__})"
        ) from None
    return context


def warn_if_clear(host: str, context: ssl.SSLContext | None, say: Callable[[str], None]) -> None:
    """Say once that a non-loopback address without TLS sends the key and the codes in
    clear."""
    global _warned
    if context is None and not loopback(host) and not _warned:
        _warned = True
        say(
            f"warning: serving plain HTTP on {host}: the access key and the codes cross the "
            "network in clear; pass --tls-cert/--tls-key, or put a proxy that terminates "
            "TLS in front"
        )


async def listen(
    app: web.Application, host: str, port: int, context: ssl.SSLContext | None
) -> tuple[web.AppRunner, str]:
    """``app`` listening on ``host:port`` (over TLS with ``context``); and its URL."""
    # on stop, requests still open (a browser's event stream, a request that raced
    # the stop) get 2 s, not aiohttp's 60: Ctrl+C and SIGTERM end the command soon
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:  # a backlog past aiohttp's 128: a warehouse of browsers reconnects at once
        await web.TCPSite(runner, host, port, ssl_context=context, backlog=1024).start()
    except OSError as exc:
        await runner.cleanup()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    scheme = "https" if context is not None else "http"
    return runner, f"{scheme}://{shown}:{bound_port}/"


def new_metrics(*, required: bool) -> Any:
    """A :class:`~flipkart_otc.metrics.Metrics`, or None (a usage error if ``required``)
    when the ``metrics`` extra is not installed."""
    try:
        module = importlib.import_module("flipkart_otc.metrics")
    except ImportError as exc:
        if not required:
            return None
        raise UsageError(str(exc)) from None
    return module.Metrics()


def stall_after(args: argparse.Namespace) -> float:
    """How long readiness waits for an answered poll: three of the longest interval the
    polling options give a healthy location."""
    longest = args.interval
    if not args.fixed_interval:
        longest = max(longest, PollPolicy().idle or 0.0)
    return 3.0 * max(float(longest), 1.0)


def probes_settings(args: argparse.Namespace) -> tuple[str | None, ssl.SSLContext | None]:
    """``--metrics-port``'s access key and TLS context, checked before anything starts
    (a usage error names what is wrong)."""
    if args.metrics_port is None:
        for option in ("metrics_host", "access_key_env", "tls_cert", "tls_key"):
            default = "127.0.0.1" if option == "metrics_host" else None
            if getattr(args, option) != default:
                flag = "--" + option.replace("_", "-")
                raise UsageError(f"{flag} goes with --metrics-port")
        return None, None
    key = access_key(args.metrics_host, args.access_key_env, option="--metrics-host")
    return key, tls_context(args)


@contextlib.asynccontextmanager
async def probes_port(
    args: argparse.Namespace,
    feed: EventFeed,
    metrics: Any,
    sink: Any,
    say: Callable[[str], None],
) -> AsyncIterator[str | None]:
    """``watch --metrics-port``: ``/metrics``, ``/healthz`` and ``/readyz`` of ``feed``
    while inside (nothing without the option); gives the URL."""
    if args.metrics_port is None:
        yield None
        return
    key, context = probes_settings(args)
    probes = Probes(
        feed, metrics=metrics, sink=sink, stall_after=stall_after(args), access_key=key
    )
    warn_if_clear(args.metrics_host, context, say)
    if metrics is None:
        say(
            "metrics need prometheus-client (pip install 'flipkart-otc[metrics]'): serving "
            "/healthz and /readyz only"
        )
    runner, url = await listen(probes.create_app(), args.metrics_host, args.metrics_port, context)
    try:
        async with (
            metrics.attached(feed, sink=sink) if metrics is not None else contextlib.nullcontext()
        ):
            yield url
    finally:
        await runner.cleanup()
