from __future__ import annotations

import asyncio

import pytest

from gateway import BusFull, InProcessBus
from ocppj import Downlink, MessageType


async def test_frames_reach_the_handler_and_answers_reach_deliver() -> None:
    delivered: list[tuple[str, Downlink]] = []

    async def handle(cp: str, protocol: str, frame: bytes) -> Downlink | None:
        if frame == b"quiet":
            return None
        return Downlink(MessageType.CALLRESULT, frame.decode(), protocol.encode() + b":" + frame)

    bus = InProcessBus(handle, workers=2)
    await bus.start(lambda cp, downlink: delivered.append((cp, downlink)) is None)
    bus.publish("CP1", "ocpp1.6", b"a")
    bus.publish("CP2", "ocpp2.0.1", b"quiet")
    bus.publish("CP2", "ocpp2.0.1", b"b")
    await bus.close(timeout=5)
    # The answer reaches deliver as the handler described it.
    assert sorted((cp, d.kind, d.message_id, d.frame) for cp, d in delivered) == [
        ("CP1", MessageType.CALLRESULT, "a", b"ocpp1.6:a"),
        ("CP2", MessageType.CALLRESULT, "b", b"ocpp2.0.1:b"),
    ]


async def test_a_full_bus_refuses_instead_of_growing() -> None:
    release = asyncio.Event()

    async def handle(cp: str, protocol: str, frame: bytes) -> Downlink | None:
        await release.wait()
        return None

    bus = InProcessBus(handle, workers=1, capacity=2)
    await bus.start(lambda cp, frame: True)
    bus.publish("CP1", "ocpp1.6", b"1")
    await asyncio.sleep(0)  # the worker takes frame 1 and waits
    bus.publish("CP1", "ocpp1.6", b"2")
    bus.publish("CP1", "ocpp1.6", b"3")
    with pytest.raises(BusFull):
        bus.publish("CP1", "ocpp1.6", b"4")
    assert bus.pending == 2
    release.set()
    await bus.close(timeout=5)
    assert bus.pending == 0


async def test_a_failing_handler_does_not_stop_the_workers() -> None:
    seen: list[bytes] = []

    async def handle(cp: str, protocol: str, frame: bytes) -> Downlink | None:
        if frame == b"boom":
            raise RuntimeError("handler bug")
        seen.append(frame)
        return None

    bus = InProcessBus(handle, workers=1)
    await bus.start(lambda cp, frame: True)
    for frame in (b"boom", b"ok", b"boom", b"ok"):
        bus.publish("CP1", "ocpp1.6", frame)
    await bus.close(timeout=5)
    assert seen == [b"ok", b"ok"]


async def test_close_gives_up_after_the_deadline() -> None:
    async def handle(cp: str, protocol: str, frame: bytes) -> Downlink | None:
        await asyncio.sleep(60)
        return None

    bus = InProcessBus(handle, workers=1)
    await bus.start(lambda cp, frame: True)
    bus.publish("CP1", "ocpp1.6", b"slow")
    bus.publish("CP1", "ocpp1.6", b"never")
    await asyncio.wait_for(bus.close(timeout=0.1), 5)
    assert bus.pending == 1


async def test_starting_without_a_handler_is_refused_with_a_reason() -> None:
    bus = InProcessBus()
    with pytest.raises(RuntimeError, match="set_handler"):
        await bus.start(lambda cp, frame: True)
