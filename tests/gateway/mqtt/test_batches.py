"""Batches on a pool connection (``ocppj.batch``), against a real Mosquitto:
frames that queue travel together within the quota, in order, and come back
after a lost session; batches of downlinks are split per charger."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import orjson

from gateway.mqtt_bus import MqttBus
from ocppj import (
    decode_uplink_batch,
    downlink_batch_topic,
    encode_batch,
    encode_downlink_item,
    parse_uplink,
    uplink_batch_topic,
    uplink_subscription,
)

from .support import Backend, Broker, Proxy, eventually, running, settings
from .test_outage import first_occurrences
from .test_quotas import most_in_one_window


def heartbeat(cp: str, n: int) -> bytes:
    return f'[2,"{cp}-{n}","Heartbeat",{{}}]'.encode()


def by_charger(backend: Backend, prefix: str) -> dict[str, list[bytes]]:
    got: dict[str, list[bytes]] = defaultdict(list)
    for received in backend.received:
        if received.topic.startswith(f"{prefix}/in/"):
            got[parse_uplink(received.topic, prefix)[0]].append(received.payload)
    return got


async def test_frames_that_queue_travel_in_batches_within_the_quota_and_in_order(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    rate, limit = 5, 1_000
    bus = MqttBus(settings(broker, prefix, publish_rate=rate, batch_bytes=limit))
    chargers = ("A", "B+1", "C #2")
    expected = {cp: [heartbeat(cp, n) for n in range(100)] for cp in chargers}
    async with running(bus):
        for n in range(100):
            for cp in chargers:
                bus.publish(cp, "ocpp1.6", expected[cp][n])
        await eventually(lambda: bus.pending == 0)

    assert by_charger(backend, prefix) == expected  # each charger's, all, in order
    route = bus.settings.route(0)
    assert {b.topic for b in backend.batches} == {uplink_batch_topic(prefix, route)}
    # 300 frames of about 60 bytes: in batches of at most 1,000 bytes, so
    # about 20 publishes instead of 300, and never more than the quota.
    publishes = len(backend.batches) + sum(1 for r in backend.received if not r.batched)
    assert publishes <= 300 * 65 // (limit - 20) + 2
    assert all(len(b.payload) <= limit for b in backend.batches)
    moments = [r.at for r in backend.batches] + [r.at for r in backend.received if not r.batched]
    assert most_in_one_window(moments, 1.0) <= rate
    for batch in backend.batches:
        items, skipped = decode_uplink_batch(batch.payload)
        assert not skipped
        assert {item.kind for item in items} == {"ocpp1.6"}


async def test_a_frame_under_the_quota_goes_alone_at_once(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    bus = MqttBus(settings(broker, prefix))
    async with running(bus):
        for n in range(3):
            bus.publish("A", "ocpp2.0.1", heartbeat("A", n))
            await eventually(lambda n=n: len(backend.received) == n + 1)
    assert not backend.batches
    assert [r.batched for r in backend.received] == ["", "", ""]
    assert [parse_uplink(r.topic, prefix)[1] for r in backend.received] == ["ocpp2.0.1"] * 3


async def test_a_batch_window_gathers_frames_that_arrive_apart(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    bus = MqttBus(settings(broker, prefix, batch_window=0.3))
    async with running(bus):
        bus.publish("warm", "ocpp1.6", heartbeat("warm", 0))  # the connection is up
        await eventually(lambda: len(backend.received) == 1)
        bus.publish("A", "ocpp1.6", heartbeat("A", 0))
        bus.publish("B", "ocpp1.6", heartbeat("B", 0))  # two, still less than a batch
        await asyncio.sleep(0.1)
        bus.publish("C", "ocpp1.6", heartbeat("C", 0))
        await eventually(lambda: len(backend.received) == 4)
    assert len(backend.batches) == 1
    assert [(r.payload, bool(r.batched)) for r in backend.received[1:]] == [
        (heartbeat(cp, 0), True) for cp in "ABC"
    ]


async def test_a_batch_window_ends_once_a_batch_waits(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    frames = [heartbeat(f"{n}", 0) for n in range(10)]
    batch_bytes = 200  # a few of these frames, in the batch encoding
    assert sum(map(len, frames)) > batch_bytes
    bus = MqttBus(settings(broker, prefix, batch_window=1.0, batch_bytes=batch_bytes))
    async with running(bus):
        for n, frame in enumerate(frames):
            bus.publish(f"{n}", "ocpp1.6", frame)
        # More than a batch waited, so the first went without the window.
        await eventually(lambda: len(backend.received) >= 2, timeout=0.8)
        assert backend.received[0].batched
        await eventually(lambda: len(backend.received) == len(frames))
    assert [r.payload for r in backend.received] == frames


async def test_presence_and_frames_share_a_batch(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    await backend.subscribe(f"{prefix}/presence/+")
    bus = MqttBus(settings(broker, prefix, publish_rate=1))
    async with running(bus):
        bus.publish("warm", "ocpp1.6", heartbeat("warm", 0))  # spends this second's quota
        await eventually(lambda: len(backend.received) == 1)
        bus.announce("A", "ocpp1.6", connected=True)
        bus.publish("A", "ocpp1.6", heartbeat("A", 0))
        await eventually(lambda: len(backend.received) == 3)
    assert len(backend.batches) == 1
    presence, frame = backend.received[1:]
    assert presence.topic == f"{prefix}/presence/A" and presence.batched
    assert orjson.loads(presence.payload)["connected"] is True
    assert frame.payload == heartbeat("A", 0) and frame.batched


async def test_a_batch_in_flight_when_the_connection_drops_is_sent_again(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    proxy = Proxy(broker)
    await proxy.start()
    bus = MqttBus(settings(broker, prefix, url=proxy.url, max_inflight=1, batch_bytes=4_096))
    frames = [heartbeat("A", n) for n in range(20)]
    try:
        async with running(bus):
            proxy.hold = True  # the broker gets the batch; the gateway no PUBACK
            for frame in frames:
                bus.publish("A", "ocpp1.6", frame)
            await eventually(lambda: len(backend.received) >= 1)
            assert bus.pending == 20

            proxy.hold = False
            proxy.cut()
            await eventually(lambda: not bus.healthy)
            await eventually(lambda: bus.pending == 0)
    finally:
        await proxy.close()
    got = [r.payload for r in backend.received]
    assert first_occurrences(got) == frames
    assert len(got) > len(frames)  # what was unacknowledged went again


async def test_downlink_batches_are_split_per_charger_in_order(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    bus = MqttBus(settings(broker, prefix))
    async with running(bus) as delivered:
        for cp in ("A", "B/x"):
            bus.announce(cp, "ocpp1.6", connected=True)
        route = bus.route_of("A")
        assert route is not None
        topic = downlink_batch_topic(prefix, route)
        frames = [(cp, f'[3,"{cp}{n}",{{}}]'.encode()) for n in range(3) for cp in ("A", "B/x")]
        backend.publish(topic, encode_batch(encode_downlink_item(cp, f) for cp, f in frames))
        await eventually(lambda: len(delivered.frames) == 6)
        assert delivered.frames == frames

        # Unreadable items are dropped alone; what is not a batch at all is
        # dropped whole; the connection goes on reading either way.
        backend.publish(
            topic, b'{"frames": [["A"], ["", "[3,\\"x\\",{}]"], ["A", "[3,\\"ok\\",{}]"]]}'
        )
        backend.publish(topic, b"not a batch")
        backend.publish(topic, encode_batch([encode_downlink_item("B/x", b'[3,"last",{}]')]))
        await eventually(lambda: len(delivered.frames) == 8)
    assert delivered.frames[6:] == [("A", b'[3,"ok",{}]'), ("B/x", b'[3,"last",{}]')]
