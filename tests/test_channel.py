"""The watcher's Channel: a FIFO that never strands an item, whatever is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from flipkart_otc._channel import Channel


async def _steps(n: int) -> None:
    """Let the event loop run ``n`` rounds of ready callbacks (no time passes)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_items_come_out_in_order_and_nowait_calls_say_why_they_cannot() -> None:
    channel: Channel[int] = Channel(2)
    with pytest.raises(asyncio.QueueEmpty):
        channel.get_nowait()
    channel.put_nowait(1)
    await channel.put(2)
    assert channel.full()
    with pytest.raises(asyncio.QueueFull):
        channel.put_nowait(3)
    assert [channel.get_nowait(), await channel.get()] == [1, 2]
    assert len(channel) == 0


async def test_put_waits_for_room_and_get_waits_for_an_item() -> None:
    channel: Channel[str] = Channel(1)
    channel.put_nowait("a")
    putter = asyncio.create_task(channel.put("b"))
    getter_done = asyncio.Event()
    await asyncio.sleep(0)
    assert not putter.done()  # no room yet
    assert channel.get_nowait() == "a"
    await putter  # the get made room
    assert channel.get_nowait() == "b"

    async def get() -> str:
        item = await channel.get()
        getter_done.set()
        return item

    getter = asyncio.create_task(get())
    await asyncio.sleep(0)
    assert not getter.done()  # nothing to get yet
    channel.put_nowait("c")
    await getter_done.wait()
    assert getter.result() == "c"


async def test_a_getter_cancelled_after_being_woken_hands_the_item_on() -> None:
    channel: Channel[str] = Channel()
    first = asyncio.create_task(channel.get())
    second = asyncio.create_task(channel.get())
    await asyncio.sleep(0)  # both wait
    channel.put_nowait("x")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    await _steps(3)  # the loop runs `first`'s cancellation, then `second`
    assert second.done()
    assert second.result() == "x"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_putter_cancelled_after_being_woken_hands_the_room_on() -> None:
    channel: Channel[str] = Channel(1)
    channel.put_nowait("a")
    first = asyncio.create_task(channel.put("b"))
    second = asyncio.create_task(channel.put("c"))
    await asyncio.sleep(0)  # both wait for room
    assert channel.get_nowait() == "a"  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    await _steps(3)
    assert second.done()
    assert channel.get_nowait() == "c"
    with pytest.raises(asyncio.CancelledError):
        await first
