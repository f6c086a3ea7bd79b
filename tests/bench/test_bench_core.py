"""Micro-benchmarks of the per-message hot path, without sockets.

Opt-in: pyproject's addopts carry ``--benchmark-skip``, so a plain ``pytest``
reports these as skipped. Run them with ``--benchmark-only``, which overrides
``--benchmark-skip``::

    .venv/bin/pytest tests/bench --benchmark-only

Every benchmark also checks what it measured, so a fast wrong answer fails.

The processor benchmarks drive ``Processor.handle`` with
``loop.run_until_complete`` on one long-lived uvloop loop (the loop the server
runs on). Entering the loop costs about 27 us on uvloop (8 us on asyncio's
own loop), more than handling a Heartbeat, while in the server ``handle`` is
awaited by a bus worker that is already running. So each round runs
``FRAMES_PER_ROUND`` (100) frames inside one ``run_until_complete``, and the
``_x100`` figures pytest-benchmark prints are per 100 frames: 900 us per
round is 9 us per frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import uvloop

from ocppj import Call, parse
from processor import Processor, ProcessorConfig, Services, build_router
from processor.shadow import apply_update

BOOT_201 = orjson.dumps(
    [
        2,
        "19223201-boot",
        "BootNotification",
        {
            "reason": "PowerUp",
            "chargingStation": {
                "model": "SingleSocketCharger",
                "vendorName": "VendorX",
                "serialNumber": "SN-0001-2024",
                "firmwareVersion": "1.4.2",
                "modem": {"iccid": "8931440400012345678", "imsi": "204043000012345"},
            },
        },
    ]
)
HEARTBEAT = b'[2,"19223201-hb","Heartbeat",{}]'
#: Frames handled per benchmark round, to amortise entering the event loop.
FRAMES_PER_ROUND = 100


class FixedClock:
    """A clock that always says the same moment: replies are then comparable."""

    def __init__(self) -> None:
        self.moment = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


class MemoryShadows:
    """A ``ShadowStore`` in a dict, with the rules of ``processor.shadow``:
    measures the processor, not SQLite."""

    def __init__(self, clock: FixedClock) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self._clock = clock

    async def get(self, thing: str) -> dict[str, Any] | None:
        return self.documents.get(thing)

    async def update(self, thing: str, state: dict[str, Any]) -> dict[str, Any]:
        timestamp = int(self._clock.now().timestamp())
        document = apply_update(self.documents.get(thing), state, timestamp)
        self.documents[thing] = document
        return document


class UntouchableShadows:
    """A ``ShadowStore`` for handlers that must not use one (Heartbeat)."""

    async def get(self, thing: str) -> dict[str, Any] | None:
        raise AssertionError(f"shadow of {thing} read")

    async def update(self, thing: str, state: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError(f"shadow of {thing} written")


@pytest.fixture(scope="module")
def bench_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = uvloop.new_event_loop()
    yield loop
    loop.close()


def _handle_many(
    loop: asyncio.AbstractEventLoop, processor: Processor, subprotocol: str, frame: bytes
) -> bytes | None:
    """Handle ``frame`` ``FRAMES_PER_ROUND`` times in one loop run; the last reply."""

    async def many() -> bytes | None:
        reply = None
        for _ in range(FRAMES_PER_ROUND):
            reply = await processor.handle("CP001", subprotocol, frame)
        return reply

    return loop.run_until_complete(many())


def _call_result(reply: bytes | None, message_id: str) -> dict[str, Any]:
    """The payload of ``reply`` if it is the CALLRESULT of ``message_id``."""
    assert reply is not None
    frame = orjson.loads(reply)
    assert frame[:2] == [3, message_id], frame
    assert isinstance(frame[2], dict)
    return frame[2]


def test_parse_boot_notification_201(benchmark: Any) -> None:
    message = benchmark(parse, BOOT_201)
    assert isinstance(message, Call)
    assert (message.message_id, message.action) == ("19223201-boot", "BootNotification")
    assert message.payload["chargingStation"]["vendorName"] == "VendorX"


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
def test_processor_heartbeat_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop, subprotocol: str
) -> None:
    clock = FixedClock()
    processor = Processor(build_router(), Services(ProcessorConfig(), UntouchableShadows(), clock))

    reply = benchmark(_handle_many, bench_loop, processor, subprotocol, HEARTBEAT)

    assert _call_result(reply, "19223201-hb") == {"currentTime": "2024-01-01T12:00:00.000Z"}


def test_processor_boot_notification_201_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop
) -> None:
    clock = FixedClock()
    shadows = MemoryShadows(clock)
    processor = Processor(build_router(), Services(ProcessorConfig(), shadows, clock))

    reply = benchmark(_handle_many, bench_loop, processor, "ocpp2.0.1", BOOT_201)

    assert _call_result(reply, "19223201-boot") == {
        "status": "Accepted",
        "currentTime": "2024-01-01T12:00:00.000Z",
        "interval": 300,
    }
    document = shadows.documents["CP001"]
    reported = document["state"]["reported"]
    assert reported["chargingStation"]["serialNumber"] == "SN-0001-2024"
    assert reported["ocppVersion"] == "2.0.1"
    assert reported["lastBoot"] == {"at": "2024-01-01T12:00:00.000Z", "reason": "PowerUp"}
    assert document["version"] >= FRAMES_PER_ROUND * benchmark.stats.stats.rounds
