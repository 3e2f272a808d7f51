"""What a watcher's lifecycle looks like to its user, written once for every watcher:
``async with`` starts and closes it; ``async for`` inside it iterates with no extra
layer; a bare ``async for`` (no ``async with``) owns it, and leaving the loop by break,
error or cancellation closes it."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

__all__ = ["Closing", "Lifecycle", "cancel_and_wait"]

T = TypeVar("T")


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again every 0.1 s: a
    library may swallow a cancellation (redis-py does, while it connects), and one
    cancel would then leave the caller waiting for ever."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)


class Closing(abc.ABC):
    """``async with`` for anything with ``aclose()``: entering gives it back, leaving
    closes it."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop, and release everything. Safe to call more than once."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Lifecycle(Closing, Generic[T]):
    """``start()``, ``aclose()`` and ``__anext__()`` are the subclass's; ``_started``
    says whether ``start()`` ran."""

    _started: bool

    @abc.abstractmethod
    async def start(self) -> None:
        """Start (``async with`` and ``async for`` do this)."""

    @abc.abstractmethod
    async def __anext__(self) -> T: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    def __aiter__(self) -> AsyncIterator[T]:
        if self._started:
            return self  # `async with` owns the lifecycle: iterate with no extra layer
        return self._owning_iterator()

    async def _owning_iterator(self) -> AsyncGenerator[T, None]:
        await self.start()
        try:
            while True:
                try:
                    event = await self.__anext__()
                except StopAsyncIteration:
                    return
                yield event
        finally:
            await self.aclose()
