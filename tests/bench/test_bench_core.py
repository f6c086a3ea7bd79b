"""Micro-benchmarks of the per-message hot path, without sockets.

Opt-in: pyproject's addopts carry ``--benchmark-skip``, so a plain ``pytest``
reports these as skipped. Run them with ``--benchmark-only``, which overrides
``--benchmark-skip``::

    .venv/bin/pytest tests/bench --benchmark-only

Every benchmark also checks what it measured (the reply is the CALLRESULT of
the CALL sent, and the shadow or the transaction history changed as it
should), so a fast wrong answer fails.

The processor benchmarks measure the core as deployed: ``Processor.handle``
with the real router and schema validation of request and response, over the
in-memory adapters of ``processor.adapters.memory`` (so the figures are the
processor's, not SQLite's or DynamoDB's). They drive ``Processor.handle`` with
``loop.run_until_complete`` on one long-lived uvloop loop (the loop the server
runs on). Entering the loop costs about 27 us on uvloop (8 us on asyncio's
own loop), more than handling a Heartbeat, while in the server ``handle`` is
awaited by a bus worker that is already running. So each round runs
``FRAMES_PER_ROUND`` (100) frames inside one ``run_until_complete``, and the
``_x100`` figures pytest-benchmark prints are per 100 frames: 900 us per
round is 9 us per frame.

Frames the processor must not treat as repeats (a TransactionEvent's
``seqNo``, a 1.6 transaction's meter reading time) are made fresh for each
round by ``benchmark.pedantic``'s untimed ``setup``, for ``FRESH_ROUNDS``
rounds; the others repeat one frame and let pytest-benchmark calibrate.

Messages per second: after its run each benchmark stores, from the median
round, ``extra_info["us_per_frame"]`` and ``extra_info["messages_per_s"]``
(= frames per round / median round time: what one core does, since the
benchmark runs on one thread). pytest-benchmark's own table does not show
``extra_info``; read it from ``--benchmark-json=FILE``
(``benchmarks[].extra_info``), or add ``-s`` to see the line each benchmark
prints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import uvloop

from ocppj import Call, parse
from processor import Processor, ProcessorConfig, Services, build_router
from processor.adapters.memory import (
    FixedClock,
    MemoryOutbound,
    MemoryPendingCalls,
    MemoryShadowStore,
    MemoryTransactions,
    SequentialIds,
)
from processor.adapters.static_id_tokens import StaticIdTokens

#: Frames handled per benchmark round, to amortise entering the event loop.
FRAMES_PER_ROUND = 100
#: Timed rounds of the benchmarks whose frames must differ (after 10 warm-up rounds).
FRESH_ROUNDS = 300
FRESH_WARMUP_ROUNDS = 10

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
NOW_TEXT = "2024-01-01T12:00:00.000Z"

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
STATUS_16 = orjson.dumps(
    [
        2,
        "19223201-status",
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Charging",
            "timestamp": "2024-01-01T11:59:30.000Z",
        },
    ]
)
STATUS_201 = orjson.dumps(
    [
        2,
        "19223201-status",
        "StatusNotification",
        {
            "timestamp": "2024-01-01T11:59:30.000Z",
            "connectorStatus": "Occupied",
            "evseId": 1,
            "connectorId": 1,
        },
    ]
)


def _sampled_values_16() -> list[dict[str, Any]]:
    """One periodic reading of an AC charger, 1.6 style: values are strings."""
    return [
        {
            "value": "12345.6",
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        },
        {
            "value": "7360.2",
            "context": "Sample.Periodic",
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        },
        {
            "value": "32.0",
            "context": "Sample.Periodic",
            "measurand": "Current.Import",
            "phase": "L1",
            "location": "Outlet",
            "unit": "A",
        },
        {
            "value": "230.1",
            "context": "Sample.Periodic",
            "measurand": "Voltage",
            "phase": "L1-N",
            "location": "Outlet",
            "unit": "V",
        },
    ]


def _sampled_values_201() -> list[dict[str, Any]]:
    """The same reading, 2.0.1 style: values are numbers, units an object."""
    return [
        {
            "value": 12345.6,
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "Wh"},
        },
        {
            "value": 7360.2,
            "context": "Sample.Periodic",
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "W"},
        },
        {
            "value": 32.0,
            "context": "Sample.Periodic",
            "measurand": "Current.Import",
            "phase": "L1",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "A"},
        },
        {
            "value": 230.1,
            "context": "Sample.Periodic",
            "measurand": "Voltage",
            "phase": "L1-N",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "V"},
        },
    ]


METER_201 = orjson.dumps(
    [
        2,
        "19223201-meter",
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {"timestamp": "2024-01-01T11:59:45.000Z", "sampledValue": _sampled_values_201()}
            ],
        },
    ]
)
TRANSACTION_ID_201 = "TX-0001"


def _meter_values_16(transaction_id: int, n: int) -> bytes:
    """A 1.6 MeterValues of a transaction; ``n`` sets the reading's time, which
    identifies it in the transaction's history."""
    return orjson.dumps(
        [
            2,
            "19223201-meter",
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": transaction_id,
                "meterValue": [{"timestamp": _at(n), "sampledValue": _sampled_values_16()}],
            },
        ]
    )


def _transaction_event_201(event_type: str, seq_no: int) -> bytes:
    """A 2.0.1 TransactionEvent of ``TX-0001`` on EVSE 1, with one reading."""
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": _at(seq_no),
        "triggerReason": "Authorized" if event_type == "Started" else "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": TRANSACTION_ID_201, "chargingState": "Charging"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": _at(seq_no), "sampledValue": _sampled_values_201()}],
    }
    if event_type == "Started":
        payload["idToken"] = {"idToken": "04A1B2C3D4E5F6", "type": "ISO14443"}
    return orjson.dumps([2, "19223201-tx", "TransactionEvent", payload])


def _at(n: int) -> str:
    """``n`` seconds after 2024-01-01T00:00:00Z, as OCPP writes it."""
    moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Core:
    """The processor over the in-memory adapters, with a fixed clock."""

    def __init__(self) -> None:
        self.clock = FixedClock(NOW)
        self.shadows = MemoryShadowStore(self.clock)
        self.transactions = MemoryTransactions()
        self.processor = Processor(
            build_router(),
            Services(
                config=ProcessorConfig(),
                shadows=self.shadows,
                clock=self.clock,
                ids=SequentialIds(),
                id_tokens=StaticIdTokens(None),
                transactions=self.transactions,
                pending=MemoryPendingCalls(),
                outbound=MemoryOutbound(),
            ),
        )

    def send(self, loop: asyncio.AbstractEventLoop, subprotocol: str, frame: bytes) -> Any:
        """Handle one frame outside the measurement; the payload of its CALLRESULT."""
        reply = loop.run_until_complete(self.processor.handle("CP001", subprotocol, frame))
        assert reply is not None
        answer = orjson.loads(reply)
        assert answer[0] == 3, answer
        return answer[2]

    def document(self) -> dict[str, Any]:
        document = self.shadows.documents["CP001"]
        return document

    def reported(self) -> dict[str, Any]:
        reported: dict[str, Any] = self.document()["state"]["reported"]
        return reported


class FreshFrames:
    """Rounds of ``FRAMES_PER_ROUND`` frames ``make(n)`` with ever new ``n``,
    built in ``benchmark.pedantic``'s untimed setup."""

    def __init__(self, make: Callable[[int], bytes], first: int) -> None:
        self._make = make
        self.next = first
        self.made = 0

    def batch(self) -> list[bytes]:
        frames = [self._make(n) for n in range(self.next, self.next + FRAMES_PER_ROUND)]
        self.next += FRAMES_PER_ROUND
        self.made += FRAMES_PER_ROUND
        return frames


@pytest.fixture(scope="module")
def bench_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = uvloop.new_event_loop()
    yield loop
    loop.close()


def _handle_all(
    loop: asyncio.AbstractEventLoop, processor: Processor, subprotocol: str, frames: Sequence[bytes]
) -> bytes | None:
    """Handle ``frames`` in order in one loop run; the last reply."""

    async def all_of_them() -> bytes | None:
        reply = None
        for frame in frames:
            reply = await processor.handle("CP001", subprotocol, frame)
        return reply

    return loop.run_until_complete(all_of_them())


def _bench_repeated(
    benchmark: Any, loop: asyncio.AbstractEventLoop, core: Core, subprotocol: str, frame: bytes
) -> bytes | None:
    """Rounds of the same frame ``FRAMES_PER_ROUND`` times; the last reply."""
    frames = [frame] * FRAMES_PER_ROUND
    reply: bytes | None = benchmark(_handle_all, loop, core.processor, subprotocol, frames)
    _record_rate(benchmark, FRAMES_PER_ROUND)
    return reply


def _bench_fresh(
    benchmark: Any,
    loop: asyncio.AbstractEventLoop,
    core: Core,
    subprotocol: str,
    fresh: FreshFrames,
) -> bytes | None:
    """``FRESH_ROUNDS`` rounds of new frames from ``fresh``; the last reply."""

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (loop, core.processor, subprotocol, fresh.batch()), {}

    reply: bytes | None = benchmark.pedantic(
        _handle_all, setup=setup, rounds=FRESH_ROUNDS, warmup_rounds=FRESH_WARMUP_ROUNDS
    )
    _record_rate(benchmark, FRAMES_PER_ROUND)
    return reply


def _record_rate(benchmark: Any, frames_per_round: int) -> None:
    """Store (and print) the per-frame time and messages per second of the median round."""
    if benchmark.stats is None:  # --benchmark-disable: run once, untimed
        return
    per_frame = benchmark.stats.stats.median / frames_per_round
    benchmark.extra_info["frames_per_round"] = frames_per_round
    benchmark.extra_info["us_per_frame"] = round(per_frame * 1e6, 3)
    benchmark.extra_info["messages_per_s"] = round(1 / per_frame)
    print(
        f"\n{benchmark.name}: {per_frame * 1e6:.2f} us per frame, "
        f"{1 / per_frame:,.0f} messages/s on one core"
    )


def _rounds(benchmark: Any) -> int:
    """Timed rounds run (1 when benchmarking is disabled)."""
    return 1 if benchmark.stats is None else int(benchmark.stats.stats.rounds)


def _call_result(reply: bytes | None, message_id: str) -> dict[str, Any]:
    """The payload of ``reply`` if it is the CALLRESULT of ``message_id``."""
    assert reply is not None
    frame = orjson.loads(reply)
    assert frame[:2] == [3, message_id], frame
    assert isinstance(frame[2], dict)
    return frame[2]


def test_parse_boot_notification_201(benchmark: Any) -> None:
    message = benchmark(parse, BOOT_201)
    _record_rate(benchmark, 1)
    assert isinstance(message, Call)
    assert (message.message_id, message.action) == ("19223201-boot", "BootNotification")
    assert message.payload["chargingStation"]["vendorName"] == "VendorX"


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
def test_processor_heartbeat_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop, subprotocol: str
) -> None:
    core = Core()

    reply = _bench_repeated(benchmark, bench_loop, core, subprotocol, HEARTBEAT)

    assert _call_result(reply, "19223201-hb") == {"currentTime": NOW_TEXT}
    assert core.shadows.documents == {}, "a Heartbeat wrote to the shadow"


def test_processor_boot_notification_201_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop
) -> None:
    core = Core()

    reply = _bench_repeated(benchmark, bench_loop, core, "ocpp2.0.1", BOOT_201)

    assert _call_result(reply, "19223201-boot") == {
        "status": "Accepted",
        "currentTime": NOW_TEXT,
        "interval": 300,
    }
    reported = core.reported()
    assert reported["chargingStation"]["serialNumber"] == "SN-0001-2024"
    assert reported["ocppVersion"] == "2.0.1"
    assert reported["lastBoot"] == {"at": NOW_TEXT, "reason": "PowerUp"}
    assert core.document()["version"] >= FRAMES_PER_ROUND * _rounds(benchmark)


def test_processor_status_notification_16_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop
) -> None:
    core = Core()

    reply = _bench_repeated(benchmark, bench_loop, core, "ocpp1.6", STATUS_16)

    assert _call_result(reply, "19223201-status") == {}
    connector = core.reported()["connectors"]["1"]
    assert (connector["status"], connector["errorCode"]) == ("Charging", "NoError")
    assert core.document()["version"] >= FRAMES_PER_ROUND * _rounds(benchmark)


def test_processor_status_notification_201_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop
) -> None:
    core = Core()

    reply = _bench_repeated(benchmark, bench_loop, core, "ocpp2.0.1", STATUS_201)

    assert _call_result(reply, "19223201-status") == {}
    assert core.reported()["evses"]["1"]["connectors"]["1"] == {
        "status": "Occupied",
        "timestamp": "2024-01-01T11:59:30.000Z",
    }
    assert core.document()["version"] >= FRAMES_PER_ROUND * _rounds(benchmark)


def test_processor_meter_values_16_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop
) -> None:
    """Readings of a running transaction: each new, so each joins its history."""
    core = Core()
    start = {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 12000, "timestamp": _at(0)}
    started = core.send(
        bench_loop, "ocpp1.6", orjson.dumps([2, "start", "StartTransaction", start])
    )
    transaction_id = started["transactionId"]
    fresh = FreshFrames(lambda n: _meter_values_16(transaction_id, n), first=1)

    reply = _bench_fresh(benchmark, bench_loop, core, "ocpp1.6", fresh)

    assert _call_result(reply, "19223201-meter") == {}
    history = bench_loop.run_until_complete(core.transactions.events("CP001", str(transaction_id)))
    assert len(history) == 1 + fresh.made  # the start, then every reading
    assert fresh.made >= FRAMES_PER_ROUND * _rounds(benchmark)
    reading = core.reported()["meterValues"]["1"]
    assert reading["transactionId"] == transaction_id
    assert reading["timestamp"] == _at(fresh.next - 1)
    assert reading["sampledValue"] == _sampled_values_16()


def test_processor_meter_values_201_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop
) -> None:
    core = Core()

    reply = _bench_repeated(benchmark, bench_loop, core, "ocpp2.0.1", METER_201)

    assert _call_result(reply, "19223201-meter") == {}
    reading = core.reported()["meterValues"]["1"]
    assert reading["timestamp"] == "2024-01-01T11:59:45.000Z"
    assert reading["sampledValue"] == _sampled_values_201()
    assert core.document()["version"] >= FRAMES_PER_ROUND * _rounds(benchmark)


def test_processor_transaction_event_updated_201_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop
) -> None:
    """Updated events with a reading, each with a new seqNo: all recorded."""
    core = Core()
    core.send(bench_loop, "ocpp2.0.1", _transaction_event_201("Started", 0))
    fresh = FreshFrames(lambda n: _transaction_event_201("Updated", n), first=1)

    reply = _bench_fresh(benchmark, bench_loop, core, "ocpp2.0.1", fresh)

    assert _call_result(reply, "19223201-tx") == {}
    history = bench_loop.run_until_complete(core.transactions.events("CP001", TRANSACTION_ID_201))
    assert len(history) == 1 + fresh.made  # Started, then every Updated
    assert fresh.made >= FRAMES_PER_ROUND * _rounds(benchmark)
    reported = core.reported()
    assert reported["lastTransactionEvent"]["seqNo"] == fresh.next - 1
    assert reported["activeTransaction"]["transactionId"] == TRANSACTION_ID_201
    assert reported["activeTransaction"]["chargingState"] == "Charging"


def test_processor_transaction_event_updated_201_duplicate_x100(
    benchmark: Any, bench_loop: asyncio.AbstractEventLoop
) -> None:
    """The duplicate path: one Updated redelivered (same seqNo) over and over.
    The history has it already, so the handler answers without touching the
    shadow: cheaper than the fresh case, and not what a charger normally sends."""
    core = Core()
    core.send(bench_loop, "ocpp2.0.1", _transaction_event_201("Started", 0))
    updated = _transaction_event_201("Updated", 1)
    core.send(bench_loop, "ocpp2.0.1", updated)
    version = core.document()["version"]

    reply = _bench_repeated(benchmark, bench_loop, core, "ocpp2.0.1", updated)

    assert _call_result(reply, "19223201-tx") == {}
    history = bench_loop.run_until_complete(core.transactions.events("CP001", TRANSACTION_ID_201))
    assert [event.event_key for event in history] == ["seq:0", "seq:1"]
    assert core.document()["version"] == version, "a duplicate changed the shadow"
