"""The MQTT worker reads uplink batches and answers in batches per route
(``ocppj.batch``), against a real Mosquitto with real gmqtt sessions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ocppgw.mqtt_worker import MqttWorker
from processor.adapters.memory import MemoryShadowStore
from processor.clock import SystemClock

from .conftest import WAIT, Broker, FakeGateway, eventually, now_text
from .test_worker import EchoHandler, ExplodingHandler, fast_config, holds


def presence(connected: bool, route: str) -> dict[str, Any]:
    return {"connected": connected, "route": route, "protocol": "ocpp1.6", "at": now_text()}


@pytest.mark.parametrize("batch_bytes", [4_096, 0], ids=["answers in batches", "one per answer"])
async def test_a_batch_is_answered_per_charger_in_order_and_presence_recorded(
    broker: Broker, prefix: str, batch_bytes: int
) -> None:
    handler = EchoHandler()
    shadows = MemoryShadowStore(SystemClock())
    worker = MqttWorker(handler, shadows, prefix, fast_config(broker, batch_bytes=batch_bytes))
    worker.start()
    chargers = ["CP 1", "CP/2", "CP+3"]
    try:
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            items: list[tuple[str, str, Any]] = [
                ("CP 1", "presence", presence(True, gateway.route))
            ]
            items += [
                (cp, "ocpp1.6", [2, f"{cp}-{n}", "Heartbeat", {}])
                for n in range(5)
                for cp in chargers
            ]
            await gateway.send_batch(items)
            answers = await gateway.receive_many(15)
            assert await gateway.silence(0.2) == []

            async def recorded() -> bool:
                shadow = await shadows.get("CP 1")
                return shadow is not None and "connection" in shadow["state"]["reported"]

            await eventually(recorded, what="the presence recorded")
            shadow = await shadows.get("CP 1")
            assert shadow is not None
            record = shadow["state"]["reported"]["connection"]
    finally:
        await worker.stop(WAIT)

    by_charger: dict[str, list[str]] = {}
    for cp, answer in answers:
        by_charger.setdefault(cp, []).append(answer[1])
    assert by_charger == {cp: [f"{cp}-{n}" for n in range(5)] for cp in chargers}
    assert worker.stats.batches == 1
    assert worker.stats.frames == 15
    assert worker.stats.presence_recorded == 1
    assert record["connected"] is True
    if batch_bytes:
        # Ready together, so fewer publishes than answers, and all in batches.
        assert gateway.batches >= 1
        assert worker.stats.answer_publishes == gateway.batches + gateway.alone < 15
    else:
        assert (gateway.batches, gateway.alone, worker.stats.answer_publishes) == (0, 15, 15)


async def test_answers_of_separate_calls_each_go_alone(broker: Broker, prefix: str) -> None:
    worker = MqttWorker(
        EchoHandler(), MemoryShadowStore(SystemClock()), prefix, fast_config(broker)
    )
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            for n in range(3):
                await gateway.send("CP1", "ocpp1.6", [2, f"h{n}", "Heartbeat", {}])
                _, answer = await gateway.receive()
                assert answer[1] == f"h{n}"
    finally:
        await worker.stop(WAIT)
    assert (gateway.batches, gateway.alone) == (0, 3)


async def test_bad_batches_and_items_are_dropped_and_their_neighbours_answered(
    broker: Broker, prefix: str
) -> None:
    worker = MqttWorker(
        ExplodingHandler(), MemoryShadowStore(SystemClock()), prefix, fast_config(broker)
    )
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            topic = f"{prefix}/batch/in/{gateway.route}"
            await gateway.publish(topic, b"not json")
            await gateway.publish(topic, b'{"frames": 3}')
            good = orjson.dumps([2, "ok1", "Heartbeat", {}]).decode()
            bad_item = orjson.dumps({"frames": [["CP1"], ["", "ocpp1.6", good], 7]})
            await gateway.publish(topic, bad_item)
            await gateway.send_batch(
                [
                    ("CP1", "ocpp1.6", [2, "a", "Heartbeat", {}]),
                    ("CP1", "ocpp1.6", [2, "b", "explode", {}]),  # the handler raises
                    ("CP1", "ocpp1.6", [2, "c", "Heartbeat", {}]),
                ]
            )
            answers = await gateway.receive_many(2)
            assert await gateway.silence(0.2) == []
            await eventually(holds(lambda: worker.stats.failed == 1), what="the failure counted")
    finally:
        await worker.stop(WAIT)
    assert [answer[1] for _, answer in answers] == ["a", "c"]
    # Two payloads that are not batches, three unreadable items.
    assert worker.stats.dropped == 5
    assert worker.stats.batches == 2


async def test_the_pending_limit_counts_messages_so_batches_are_not_refused(
    broker: Broker, prefix: str
) -> None:
    # Two messages may be pending; each batch brings 30 items.
    handler = EchoHandler(delay=0.02)
    config = fast_config(broker, consumers=1, max_pending=2)
    worker = MqttWorker(handler, MemoryShadowStore(SystemClock()), prefix, config)
    worker.start()
    try:
        await worker.wait_subscribed(WAIT)
        async with FakeGateway(broker, prefix) as gateway:
            for b in range(2):
                await gateway.send_batch(
                    [(f"CP{b}", "ocpp1.6", [2, f"{b}-{n}", "Heartbeat", {}]) for n in range(30)]
                )
            answers = await gateway.receive_many(60)
    finally:
        await worker.stop(WAIT)
    assert worker.stats.refused == 0
    assert sorted(answer[1] for _, answer in answers) == sorted(
        f"{b}-{n}" for b in range(2) for n in range(30)
    )
