"""Shared fixtures, and the aioresponses shim for aiohttp >= 3.14."""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aioresponses.core
import pytest
from _redis_server import RedisServer, require_redis_server


def _shim_aioresponses() -> None:
    """aioresponses 0.7.9 builds ClientResponse without ``stream_writer``, which
    aiohttp 3.14 requires (pnuckowski/aioresponses#289, fix pending in #288).
    Pass one only when the signature asks for it, so this goes quiet once
    upstream is fixed."""
    params = inspect.signature(aiohttp.ClientResponse.__init__).parameters
    if "stream_writer" not in params:
        return
    source = inspect.getsource(aioresponses.core.RequestMatch._build_response)
    if "stream_writer" in source:
        return

    class _Response(aiohttp.ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
            super().__init__(*args, **kwargs)

    aioresponses.core.ClientResponse = _Response  # type: ignore[attr-defined, unused-ignore]


_shim_aioresponses()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server on a free 127.0.0.1 port (skipped where none is installed,
    unless FLIPKART_OTC_REQUIRE_REDIS is set, as CI sets it)."""
    require_redis_server()
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.kill()
