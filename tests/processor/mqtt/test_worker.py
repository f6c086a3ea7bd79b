"""The MQTT worker against a real Mosquitto, with real gmqtt clients as gateways."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from ocppgw.mqtt_worker import MqttWorker
from ocppgw.mqtt_worker_config import WorkerConfig
from ocppgw.worker import WorkerSystem, run_worker
from processor import Processor, ProcessorConfig, Services, build_router
from processor.adapters.memory import (
    MemoryOutbound,
    MemoryPendingCalls,
    MemoryShadowStore,
    MemoryTransactions,
    SequentialIds,
)
from processor.adapters.routed_outbound import PublishError
from processor.adapters.static_id_tokens import StaticIdTokens
from processor.clock import SystemClock
from tests.conftest import BOOT_V16, BOOT_V201

from .conftest import WAIT, Broker, FakeGateway, eventually, free_port, worker_settings


@pytest.fixture
async def system(broker: Broker, prefix: str, tmp_path: Path) -> AsyncIterator[WorkerSystem]:
    async with run_worker(worker_settings(broker, tmp_path / "state", prefix)) as running:
        await running.worker.wait_subscribed(WAIT)
        yield running


def fast_config(broker: Broker, **overrides: Any) -> WorkerConfig:
    """A worker config that reconnects quickly (tests stop and start brokers)."""
    fields: dict[str, Any] = {
        "url": broker.url,
        "consumers": 4,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        "publish_wait": 2.0,
        **overrides,
    }
    return WorkerConfig(**fields)


class EchoHandler:
    """Answers every frame with an empty CALLRESULT after a random short delay,
    recording how many frames it handled at once."""

    def __init__(self, delay: float = 0.003) -> None:
        self.delay = delay
        self.running = 0
        self.peak = 0
        self.seen: list[tuple[str, str]] = []

    async def handle(self, charge_point_id: str, subprotocol: str, frame: bytes) -> bytes | None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(random.uniform(0, self.delay))
            message_id = orjson.loads(frame)[1]
            self.seen.append((charge_point_id, message_id))
            return orjson.dumps([3, message_id, {}])
        finally:
            self.running -= 1


class ExplodingHandler:
    async def handle(self, charge_point_id: str, subprotocol: str, frame: bytes) -> bytes | None:
        if b"explode" in frame:
            raise RuntimeError("boom")
        return orjson.dumps([3, orjson.loads(frame)[1], {}])


# -- answers on the route a CALL came from -------------------------------------------


async def test_boot_and_heartbeat_in_16_are_answered_on_the_route(
    system: WorkerSystem, broker: Broker, prefix: str
) -> None:
    async with FakeGateway(broker, prefix, route="gw-a.1") as gateway:
        await gateway.send("CP001", "ocpp1.6", [2, "b1", "BootNotification", BOOT_V16])
        charge_point_id, answer = await gateway.receive()
        assert charge_point_id == "CP001"
        assert answer[:2] == [3, "b1"]
        assert answer[2]["status"] == "Accepted"
        assert answer[2]["interval"] == 300

        await gateway.send("CP001", "ocpp1.6", [2, "h1", "Heartbeat", {}])
        charge_point_id, answer = await gateway.receive()
        assert (charge_point_id, answer[:2]) == ("CP001", [3, "h1"])
        assert answer[2]["currentTime"].endswith("Z")

    shadow = await system.shadows.get("CP001")
    assert shadow is not None
    assert shadow["state"]["reported"]["chargingStation"]["vendorName"] == "ACME Charging"


async def test_boot_and_heartbeat_in_201(system: WorkerSystem, broker: Broker, prefix: str) -> None:
    async with FakeGateway(broker, prefix, route="gw-b.3") as gateway:
        await gateway.send("CS-201", "ocpp2.0.1", [2, "b1", "BootNotification", BOOT_V201])
        charge_point_id, answer = await gateway.receive()
        assert (charge_point_id, answer[:2]) == ("CS-201", [3, "b1"])
        assert answer[2]["status"] == "Accepted"

        await gateway.send("CS-201", "ocpp2.0.1", [2, "h1", "Heartbeat", {}])
        _, answer = await gateway.receive()
        assert answer[:2] == [3, "h1"]
        assert "currentTime" in answer[2]


async def test_each_answer_goes_to_the_route_its_call_came_from(
    system: WorkerSystem, broker: Broker, prefix: str
) -> None:
    async with (
        FakeGateway(broker, prefix, route="gw-a.1") as first,
        FakeGateway(broker, prefix, route="gw-b.2") as second,
    ):
        await first.send("CP-A", "ocpp1.6", [2, "a1", "Heartbeat", {}])
        await second.send("CP-B", "ocpp1.6", [2, "b1", "Heartbeat", {}])
        assert (await first.receive())[0] == "CP-A"
        assert (await second.receive())[0] == "CP-B"
        assert await first.silence(0.2) == []
        assert await second.silence(0.0) == []


@pytest.mark.parametrize("identity", ["a/b+c#d e%f", "RDAM 123", "plus+id", "#", "é-CP"])
async def test_identities_with_mqtt_characters_travel_unchanged(
    system: WorkerSystem, broker: Broker, prefix: str, identity: str
) -> None:
    async with FakeGateway(broker, prefix) as gateway:
        await gateway.send(identity, "ocpp1.6", [2, "h1", "Heartbeat", {}])
        charge_point_id, answer = await gateway.receive()
        assert charge_point_id == identity
        assert answer[:2] == [3, "h1"]
        await gateway.presence(identity, True)
        await eventually(
            lambda: _connected(system, identity), what=f"presence of {identity!r} recorded"
        )


async def _connected(system: WorkerSystem, identity: str) -> bool:
    shadow = await system.shadows.get(identity)
    return bool(shadow and shadow["state"]["reported"].get("connection", {}).get("connected"))


# -- what cannot be processed ------------------------------------------------------------


async def test_malformed_topics_and_frames_are_dropped_and_the_worker_goes_on(
    system: WorkerSystem, broker: Broker, prefix: str
) -> None:
    async with FakeGateway(broker, prefix, route="r1") as gateway:
        # Not canonically encoded, so not any charger's topic.
        await gateway.publish(f"{prefix}/in/bad%zz/ocpp1.6/r1", b'[2,"x","Heartbeat",{}]')
        await gateway.publish(f"{prefix}/in/CP%2f1/ocpp1.6/r1", b'[2,"x","Heartbeat",{}]')
        # An unknown subprotocol: the processor drops it.
        await gateway.send("CP001", "ocpp9.9", [2, "x", "Heartbeat", {}])
        # Malformed presence.
        await gateway.publish(f"{prefix}/presence/CP001", b"not json")
        await gateway.publish(f"{prefix}/presence/CP001", b'{"connected": "yes"}')
        # Not JSON: the processor answers with the unreadable-id CALLERROR.
        await gateway.send("CP001", "ocpp1.6", b"not json at all")
        _, answer = await gateway.receive()
        assert answer[0] == 4
        assert answer[1] == "-1"

        await gateway.send("CP001", "ocpp1.6", [2, "h1", "Heartbeat", {}])
        _, answer = await gateway.receive()
        assert answer[:2] == [3, "h1"]
        assert await gateway.silence(0.1) == []
    assert system.worker.stats.dropped == 4


async def test_a_failing_handler_gets_the_charger_an_internal_error(
    broker: Broker, prefix: str
) -> None:
    class BrokenShadows(MemoryShadowStore):
        async def update(self, thing: str, state: dict[str, Any]) -> None:
            raise OSError("disk on fire")

    clock = SystemClock()
    services = Services(
        config=ProcessorConfig(),
        shadows=BrokenShadows(clock),
        clock=clock,
        ids=SequentialIds(),
        id_tokens=StaticIdTokens(None),
        transactions=MemoryTransactions(),
        pending=MemoryPendingCalls(),
        outbound=MemoryOutbound(),
    )
    processor = Processor(build_router(), services)
    worker = MqttWorker(processor, services.shadows, prefix, fast_config(broker))
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            await gateway.send("CP001", "ocpp1.6", [2, "b1", "BootNotification", BOOT_V16])
            _, answer = await gateway.receive()
            assert answer[:3] == [4, "b1", "InternalError"]
            await gateway.send("CP001", "ocpp1.6", [2, "h1", "Heartbeat", {}])
            _, answer = await gateway.receive()
            assert answer[:2] == [3, "h1"]
    finally:
        await worker.stop(WAIT)


async def test_an_exception_escaping_the_handler_is_logged_and_the_worker_goes_on(
    broker: Broker, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    worker = MqttWorker(
        ExplodingHandler(), MemoryShadowStore(SystemClock()), prefix, fast_config(broker)
    )
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            await gateway.send("CP001", "ocpp1.6", [2, "m1", "explode", {}])
            await gateway.send("CP001", "ocpp1.6", [2, "m2", "Heartbeat", {}])
            _, answer = await gateway.receive()
            assert answer[:2] == [3, "m2"]
    finally:
        await worker.stop(WAIT)
    assert worker.stats.failed == 1
    assert any(r.getMessage() == "message failed" for r in caplog.records)


# -- concurrency and order -----------------------------------------------------------


async def test_frames_of_one_charger_are_answered_in_order_while_chargers_run_concurrently(
    broker: Broker, prefix: str
) -> None:
    handler = EchoHandler()
    worker = MqttWorker(handler, MemoryShadowStore(SystemClock()), prefix, fast_config(broker))
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            chargers = [f"CP{n:02}" for n in range(20)]
            # Everything at once, without waiting for answers.
            for round_ in range(10):
                for cp in chargers:
                    await gateway.send(cp, "ocpp1.6", [2, f"{cp}-{round_}", "Heartbeat", {}])
            answers = await gateway.receive_many(200)
            assert await gateway.silence(0.2) == []
    finally:
        await worker.stop(WAIT)

    by_charger: dict[str, list[str]] = {}
    for cp, answer in answers:
        by_charger.setdefault(cp, []).append(answer[1])
    assert by_charger == {cp: [f"{cp}-{n}" for n in range(10)] for cp in chargers}
    assert 1 < handler.peak <= 4, handler.peak  # concurrent, never more than the consumers


async def test_messages_beyond_the_pending_limit_are_refused_not_queued(
    broker: Broker, prefix: str
) -> None:
    handler = EchoHandler(delay=0.05)
    config = fast_config(broker, consumers=1, max_pending=3)
    worker = MqttWorker(handler, MemoryShadowStore(SystemClock()), prefix, config)
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            for n in range(30):
                await gateway.send("CP001", "ocpp1.6", [2, f"m{n}", "Heartbeat", {}])
            await eventually(
                holds(lambda: worker.stats.frames + worker.stats.refused == 30),
                what="every message handled or refused",
            )
    finally:
        await worker.stop(WAIT)
    # Mosquitto 2.0 does not hold back at the announced Receive Maximum, so the
    # worker's own limit is what keeps memory bounded.
    assert worker.stats.frames >= 3
    assert worker.stats.frames + worker.stats.refused == 30


def holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """``condition`` as the async check ``eventually`` polls."""

    async def check() -> bool:
        return condition()

    return check


# -- lifecycle -------------------------------------------------------------------------


async def test_stop_lets_admitted_messages_finish_then_unsubscribes(
    broker: Broker, prefix: str
) -> None:
    handler = EchoHandler(delay=0.2)
    worker = MqttWorker(handler, MemoryShadowStore(SystemClock()), prefix, fast_config(broker))
    worker.start()
    await worker.wait_subscribed(WAIT)
    async with FakeGateway(broker, prefix) as gateway:
        for n in range(8):
            await gateway.send(f"CP{n}", "ocpp1.6", [2, f"m{n}", "Heartbeat", {}])
        await eventually(holds(lambda: handler.running > 0), what="handling started")
        await worker.stop(WAIT)
        answers = await gateway.receive_many(8)
        assert sorted(answer[1] for _, answer in answers) == [f"m{n}" for n in range(8)]
        # Nobody consumes any more.
        await gateway.send("CP0", "ocpp1.6", [2, "late", "Heartbeat", {}])
        assert await gateway.silence(0.3) == []
    assert not worker.connected


async def test_worker_reconnects_and_resubscribes_after_losing_the_broker(
    broker: Broker, prefix: str
) -> None:
    worker = MqttWorker(
        EchoHandler(), MemoryShadowStore(SystemClock()), prefix, fast_config(broker)
    )
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        await asyncio.to_thread(broker.stop)
        await eventually(holds(lambda: not worker.connected), what="loss noticed")
        await asyncio.sleep(0.3)  # a few failed attempts, with backoff
        await asyncio.to_thread(broker.start)
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            await gateway.send("CP001", "ocpp1.6", [2, "after", "Heartbeat", {}])
            _, answer = await gateway.receive()
            assert answer[:2] == [3, "after"]
    finally:
        await worker.stop(WAIT)


async def test_publish_fails_clearly_when_the_broker_stays_away(
    broker: Broker, prefix: str
) -> None:
    config = fast_config(broker, publish_wait=0.3)
    worker = MqttWorker(EchoHandler(), MemoryShadowStore(SystemClock()), prefix, config)
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        await asyncio.to_thread(broker.stop)
        with pytest.raises(PublishError, match="did not take a frame"):
            await worker.publish(f"{prefix}/out/r/CP001", b"[]")
    finally:
        await worker.stop(1.0)


async def test_stop_before_any_connection_returns_promptly(tmp_path: Path, prefix: str) -> None:
    # Nothing listens on this port: the worker keeps retrying until stopped.
    config = WorkerConfig(url=f"mqtt://127.0.0.1:{free_port()}", backoff_initial=0.05)
    worker = MqttWorker(EchoHandler(), MemoryShadowStore(SystemClock()), prefix, config)
    worker.start()
    await asyncio.sleep(0.2)
    assert not worker.connected
    await asyncio.wait_for(worker.stop(1.0), WAIT)
