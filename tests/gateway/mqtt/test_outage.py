"""Broker outages and shutdown: reconnect with backoff, resubscribe, lose nothing."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.mqtt_bus import MqttBus
from ocppj import downlink_topic, parse_uplink, uplink_subscription

from .support import Backend, Broker, Proxy, eventually, running, settings


def first_occurrences(payloads: list[bytes]) -> list[bytes]:
    """Payloads in the order they first arrived (QoS 1 may repeat one)."""
    seen: dict[bytes, None] = {}
    for payload in payloads:
        seen.setdefault(payload, None)
    return list(seen)


# One frame per publish, and batches of about three frames at a lower rate:
# either way frames still wait, and publishes are in flight, when the broker stops.
@pytest.mark.parametrize(
    ("batch_bytes", "rate"), [(0, 20), (160, 4)], ids=["one-per-frame", "batches"]
)
async def test_a_broker_restart_loses_nothing_and_restores_the_subscriptions(
    broker: Broker, backend: Backend, prefix: str, batch_bytes: int, rate: int
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    # Slow enough that frames are still waiting, and in flight, when the broker stops.
    bus = MqttBus(
        settings(
            broker,
            prefix,
            min_connections=2,
            max_connections=2,
            publish_rate=rate,
            max_inflight=5,
            batch_bytes=batch_bytes,
        )
    )
    healthy: list[bool] = []

    async def watch() -> None:
        while True:
            if not healthy or healthy[-1] != bus.healthy:
                healthy.append(bus.healthy)
            await asyncio.sleep(0.002)

    chargers = ("A", "B")
    expected: dict[str, list[bytes]] = {cp: [] for cp in chargers}

    def send(count: int) -> None:
        for cp in chargers:
            for _ in range(count):
                frame = f'[2,"{len(expected[cp])}","Heartbeat",{{}}]'.encode()
                expected[cp].append(frame)
                bus.publish(cp, "ocpp1.6", frame)

    async with running(bus) as delivered:
        watcher = asyncio.create_task(watch())
        for cp in chargers:
            bus.announce(cp, "ocpp1.6", connected=True)
        routes = {cp: bus.route_of(cp) for cp in chargers}
        assert sorted(map(str, routes.values())) == ["gw-test.0", "gw-test.1"]
        send(30)
        await eventually(lambda: len(backend.received) >= 5)

        await broker.stop()
        await eventually(lambda: not bus.healthy)
        send(20)  # during the outage: buffered
        assert bus.pending > 40

        await broker.start()
        await eventually(lambda: bus.connections_up == 2)
        # Subscriptions are back: a downlink on each route arrives.
        await eventually(lambda: bool(backend.client.is_connected))
        for cp, route in routes.items():
            assert route is not None
            frame = f'[2,"d","Reset",{{"to":"{cp}"}}]'.encode()
            backend.publish(downlink_topic(prefix, route, cp), frame)
        await eventually(lambda: len(delivered.frames) == 2)
        assert sorted(cp for cp, _ in delivered.frames) == ["A", "B"]

        await eventually(lambda: bus.pending == 0, timeout=15)
        watcher.cancel()

    assert healthy[:3] == [True, False, True]
    for cp in chargers:
        got = [r.payload for r in backend.received if parse_uplink(r.topic, prefix)[0] == cp]
        assert first_occurrences(got) == expected[cp]  # all of them, in order
    assert bool(backend.batches) == bool(batch_bytes)


async def test_a_bus_that_starts_before_the_broker_connects_when_it_comes(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    await broker.stop()
    bus = MqttBus(settings(broker, prefix, connect_timeout=0.3, reconnect_max=0.2))
    started = time.monotonic()
    async with running(bus):
        assert time.monotonic() - started < 2  # start waits connect_timeout, no longer
        assert not bus.healthy
        bus.publish("CP001", "ocpp1.6", b"[1]")
        await asyncio.sleep(0.5)  # several attempts, each refused
        await broker.start()
        await eventually(lambda: bus.healthy)
        await eventually(lambda: len(backend.received) == 1)
    assert backend.received[0].payload == b"[1]"


async def test_close_flushes_what_waits_within_its_deadline(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    bus = MqttBus(settings(broker, prefix, publish_rate=20))
    await bus.start(lambda cp, frame: True)
    frames = [f"[{n}]".encode() for n in range(30)]  # a second and a half at 20/s
    for frame in frames:
        bus.publish("CP001", "ocpp1.6", frame)
    await bus.close(timeout=5)
    assert bus.pending == 0
    assert not bus.healthy
    await eventually(lambda: len(backend.received) == 30)
    assert [r.payload for r in backend.received] == frames


async def test_close_during_an_outage_gives_up_at_its_deadline(broker: Broker, prefix: str) -> None:
    bus = MqttBus(settings(broker, prefix))
    await bus.start(lambda cp, frame: True)
    await broker.stop()
    await eventually(lambda: not bus.healthy)
    bus.publish("CP001", "ocpp1.6", b"[1]")
    started = time.monotonic()
    await bus.close(timeout=0.5)
    assert 0.4 < time.monotonic() - started < 2.5
    assert bus.pending == 1  # reported, not pretended delivered


async def test_publishes_in_flight_when_a_connection_drops_are_sent_again(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    proxy = Proxy(broker)
    await proxy.start()
    # One frame per publish: what is in flight is counted in frames here
    # (tests/gateway/mqtt/test_batches.py sends batches again).
    bus = MqttBus(settings(broker, prefix, url=proxy.url, max_inflight=5, batch_bytes=0))
    frames = [f"[{n}]".encode() for n in range(20)]
    try:
        async with running(bus):
            proxy.hold = True  # the broker gets the frames; the gateway no PUBACK
            for frame in frames:
                bus.publish("CP001", "ocpp1.6", frame)
            await eventually(lambda: len(backend.received) == 5)
            assert [s.inflight for s in bus.pool_status()] == [5]

            proxy.hold = False
            proxy.cut()
            await eventually(lambda: not bus.healthy)
            await eventually(lambda: bus.pending == 0)
    finally:
        await proxy.close()
    got = [r.payload for r in backend.received]
    assert got[:5] == frames[:5]
    assert len(got) == 25  # the five unacknowledged ones went again
    assert first_occurrences(got) == frames
