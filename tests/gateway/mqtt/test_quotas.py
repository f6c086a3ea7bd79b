"""Per-connection quotas, pool growth and the bounded buffer, against a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

import orjson
import pytest

from gateway import BusFull
from gateway.mqtt_bus import MqttBus
from ocppj import parse_uplink, uplink_subscription

from .support import Backend, Broker, Received, eventually, running, settings


@contextlib.asynccontextmanager
async def inflight_peak(bus: MqttBus) -> AsyncIterator[list[int]]:
    """Sample every connection's unacknowledged publishes; yields [peak]."""
    peak = [0]

    async def sample() -> None:
        while True:
            peak[0] = max([peak[0], *(s.inflight for s in bus.pool_status())])
            await asyncio.sleep(0.001)

    task = asyncio.create_task(sample())
    try:
        yield peak
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def route_of_message(received: Received, prefix: str) -> str:
    """The route that published a message: in the uplink topic, or the presence payload."""
    if received.topic.startswith(f"{prefix}/in/"):
        return parse_uplink(received.topic, prefix)[2]
    route: str = orjson.loads(received.payload)["route"]
    return route


def most_in_one_window(times: list[float], window: float) -> int:
    """The most messages received within any ``window`` seconds."""
    times = sorted(times)
    most = 0
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_the_pool_grows_under_a_burst_and_no_connection_exceeds_its_quota(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(f"{prefix}/#")
    rate, inflight = 20, 5
    bus = MqttBus(
        settings(
            broker,
            prefix,
            min_connections=1,
            max_connections=3,
            publish_rate=rate,
            max_inflight=inflight,
            batch_bytes=0,  # the quota in frames (test_batches.py: in batches)
        )
    )
    sent = {"A": 60, "B": 40, "C": 10}
    async with running(bus), inflight_peak(bus) as peak:
        assert bus.connections == 1
        bus.announce("A", "ocpp1.6", connected=True)
        for n in range(sent["A"]):
            bus.publish("A", "ocpp1.6", f'[2,"{n}","Heartbeat",{{}}]'.encode())
        # Three seconds of A's frames wait on gw-test.0: the pool opens another.
        await eventually(lambda: bus.connections_up == 2)
        bus.announce("B", "ocpp1.6", connected=True)
        assert bus.route_of("B") == "gw-test.1"  # the least loaded
        for n in range(sent["B"]):
            bus.publish("B", "ocpp1.6", f'[2,"{n}","Heartbeat",{{}}]'.encode())
        # Both full now: a third, and the most there may be.
        await eventually(lambda: bus.connections_up == 3)
        bus.announce("C", "ocpp1.6", connected=True)
        assert bus.route_of("C") == "gw-test.2"
        for n in range(sent["C"]):
            bus.publish("C", "ocpp1.6", f'[2,"{n}","Heartbeat",{{}}]'.encode())
        await eventually(lambda: bus.pending == 0, timeout=20)
        assert bus.connections == 3
        assert peak[0] <= inflight

    times: dict[str, list[float]] = defaultdict(list)
    for received in backend.received:
        times[route_of_message(received, prefix)].append(received.at)
    assert {route: len(t) for route, t in times.items()} == {
        "gw-test.0": sent["A"] + 1,  # and its presence
        "gw-test.1": sent["B"] + 1,
        "gw-test.2": sent["C"] + 1,
    }
    for route, moments in times.items():
        assert most_in_one_window(moments, 1.0) <= rate, route
    # A's 61 publishes needed at least three quota windows.
    assert max(times["gw-test.0"]) - min(times["gw-test.0"]) >= 3.0


@pytest.mark.parametrize("max_inflight", [5, 100], ids=["in-flight 5", "above the broker's 20"])
async def test_a_burst_larger_than_in_flight_never_raises_and_loses_nothing(
    broker: Broker, backend: Backend, prefix: str, max_inflight: int
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    bus = MqttBus(
        settings(
            broker,
            prefix,
            max_inflight=max_inflight,
            publish_rate=100_000,
            buffer_size=2_000,
            batch_bytes=0,  # one packet id per frame
        )
    )
    frames = [f'[2,"{n}","Heartbeat",{{}}]'.encode() for n in range(1_500)]
    async with running(bus), inflight_peak(bus) as peak:
        for frame in frames:
            bus.publish("CP001", "ocpp2.0.1", frame)
        assert bus.pending == len(frames)
        await eventually(lambda: bus.pending == 0)
        # Mosquitto's receive maximum is 20; gmqtt uses at most 19 packet ids.
        assert 1 <= peak[0] <= min(max_inflight, 19)
    assert [r.payload for r in backend.received] == frames


async def test_bus_full_only_beyond_the_buffer_and_saturated_between_the_marks(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    await broker.stop()  # the bus starts during an outage
    bus = MqttBus(settings(broker, prefix, buffer_size=40, connect_timeout=0.3))
    async with running(bus) as delivered:
        assert not bus.healthy
        for n in range(40):
            assert bus.saturated == (n >= 30)  # from 3/4 of the buffer
            bus.publish("CP001", "ocpp1.6", f"[{n}]".encode())
        assert bus.saturated
        with pytest.raises(BusFull):
            bus.publish("CP001", "ocpp1.6", b"[40]")
        with pytest.raises(BusFull):
            bus.publish("CP002", "ocpp1.6", b"[0]")
        bus.announce("CP003", "ocpp1.6", connected=True)  # presence is never refused
        assert bus.pending == 41

        await broker.start()
        await eventually(lambda: bus.pending == 0)
        assert not bus.saturated
        assert delivered.drained == 1
        bus.publish("CP001", "ocpp1.6", b"[41]")  # room again
        await eventually(lambda: len(backend.received) == 41)
    assert [r.payload for r in backend.received] == [f"[{n}]".encode() for n in range(40)] + [
        b"[41]"
    ]


async def test_publish_after_close_is_refused(broker: Broker, prefix: str) -> None:
    bus = MqttBus(settings(broker, prefix))
    async with running(bus):
        pass
    with pytest.raises(BusFull):
        bus.publish("CP001", "ocpp1.6", b"[]")


async def test_publish_before_start_is_refused(broker: Broker, prefix: str) -> None:
    bus = MqttBus(settings(broker, prefix))
    with pytest.raises(BusFull):
        bus.publish("CP001", "ocpp1.6", b"[]")
    bus.announce("CP001", "ocpp1.6", connected=True)  # nothing to announce on; no error
    assert bus.pending == 0
