"""Uplinks, downlinks and presence over a real Mosquitto, seen by a real backend client."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
import pytest

from gateway.mqtt_bus import MqttBus
from ocppj import (
    Downlink,
    MessageType,
    downlink_topic,
    parse_presence,
    parse_uplink,
    presence_subscription,
    presence_topic,
    uplink_subscription,
    uplink_topic,
)

from .support import Backend, Broker, eventually, running, settings

#: Identities whose characters mean something to MQTT or to URLs.
AWKWARD = ("CP001", "RDAM 123", "plus+id", "hash#id", "slash/id", "100%", "Zürich 7")


async def test_uplink_frames_arrive_on_their_route_with_qos_1_byte_for_byte(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    bus = MqttBus(settings(broker, prefix, min_connections=2))
    frames = {
        cp: [
            b'[2,"1","Heartbeat",{}]',
            f'[2,"2","DataTransfer",{{"vendorId":"{n}","data":"caf\u00e9 \\u2603"}}]'.encode(),
            b'  [3,"x",{}]\n',  # odd whitespace: carried as sent, not re-encoded
        ]
        for n, cp in enumerate(AWKWARD)
    }
    async with running(bus):
        for cp in AWKWARD:
            bus.announce(cp, "ocpp2.0.1", connected=True)
        for cp, sent in frames.items():
            for frame in sent:
                bus.publish(cp, "ocpp2.0.1", frame)
        total = sum(map(len, frames.values()))
        await eventually(lambda: len(backend.received) >= total)
        await eventually(lambda: bus.pending == 0)  # every PUBACK counted

        routes = {cp: bus.route_of(cp) for cp in AWKWARD}
        # Two connections, and charge points spread over both.
        assert set(routes.values()) == {"gw-test.0", "gw-test.1"}
        for cp, sent in frames.items():
            route = routes[cp]
            assert route is not None
            topic = uplink_topic(prefix, cp, "ocpp2.0.1", route)
            got = [r for r in backend.received if r.topic == topic]
            assert [r.payload for r in got] == sent  # in order, byte for byte
            assert {r.qos for r in got} == {1}
            assert parse_uplink(topic, prefix) == (cp, "ocpp2.0.1", route)
    assert len(backend.received) == total


async def test_a_downlink_on_a_route_reaches_deliver_with_the_decoded_identity(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    bus = MqttBus(settings(broker, prefix, min_connections=2))
    async with running(bus) as delivered:
        for cp in AWKWARD:
            bus.announce(cp, "ocpp1.6", connected=True)
        expected = []
        for n, cp in enumerate(AWKWARD):
            route = bus.route_of(cp)
            assert route is not None
            frame = f'[2,"d{n}","Reset",{{"type":"Soft"}}]'.encode()
            backend.publish(downlink_topic(prefix, route, cp), frame)
            expected.append((cp, frame))
        await eventually(lambda: len(delivered.frames) >= len(expected))
        assert sorted(delivered.frames) == sorted(expected)
        # Described once, here: the gateway queues these CALLs by their ids.
        assert sorted((cp, d.kind, d.message_id) for cp, d in delivered.downlinks) == sorted(
            (cp, MessageType.CALL, f"d{n}") for n, cp in enumerate(AWKWARD)
        )


async def test_a_downlink_that_is_no_ocpp_j_message_is_dropped_with_a_warning(
    broker: Broker, backend: Backend, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = MqttBus(settings(broker, prefix))
    with caplog.at_level(logging.WARNING, logger="gateway.mqtt_bus"):
        async with running(bus) as delivered:
            bus.announce("CP001", "ocpp1.6", connected=True)
            topic = downlink_topic(prefix, "gw-test.0", "CP001")
            for junk in (b"not json", b"[]", b'[7,"m",{}]', b"[3,42,{}]", b'{"a":1}'):
                backend.publish(topic, junk)
            backend.publish(topic, b'[4,"e","GenericError","",{}]')
            await eventually(lambda: len(delivered.frames) >= 1)
    assert delivered.downlinks == [
        ("CP001", Downlink(MessageType.CALLERROR, "e", b'[4,"e","GenericError","",{}]'))
    ]
    warning = "downlink dropped: not an OCPP-J message"
    dropped = [r for r in caplog.records if r.getMessage() == warning]
    assert len(dropped) == 5
    assert {getattr(r, "chargePointId", None) for r in dropped} == {"CP001"}


async def test_a_downlink_for_another_route_or_a_malformed_topic_is_not_delivered(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    bus = MqttBus(settings(broker, prefix))
    async with running(bus) as delivered:
        bus.announce("CP001", "ocpp1.6", connected=True)
        backend.publish(downlink_topic(prefix, "gw-other.0", "CP001"), b"[]")
        # Not canonically encoded: "%41" is "A", which is never encoded.
        backend.publish(f"{prefix}/out/gw-test.0/%41", b"[]")
        backend.publish(downlink_topic(prefix, "gw-test.0", "CP001"), b'[2,"m","Reset",{}]')
        await eventually(lambda: len(delivered.frames) >= 1)
        assert delivered.frames == [("CP001", b'[2,"m","Reset",{}]')]


async def test_presence_says_who_is_connected_where_and_is_retained(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(presence_subscription(prefix))
    moments = iter(
        [datetime(2026, 11, 25, 13, 0, 26, 11_000, UTC), datetime(2026, 11, 25, 13, 5, tzinfo=UTC)]
    )
    bus = MqttBus(settings(broker, prefix), clock=lambda: next(moments))
    async with running(bus):
        bus.announce("RDAM 123", "ocpp2.0.1", connected=True)
        route = bus.route_of("RDAM 123")
        assert route == "gw-test.0"
        await eventually(lambda: len(backend.received) >= 1)
        bus.announce("RDAM 123", "ocpp2.0.1", connected=False)
        assert bus.route_of("RDAM 123") is None  # released
        await eventually(lambda: len(backend.received) >= 2)

        first, second = backend.received
        assert first.topic == second.topic == presence_topic(prefix, "RDAM 123")
        assert parse_presence(first.topic, prefix) == "RDAM 123"
        assert first.qos == 1
        assert orjson.loads(first.payload) == {
            "connected": True,
            "route": "gw-test.0",
            "protocol": "ocpp2.0.1",
            "at": "2026-11-25T13:00:26.011Z",
        }
        assert orjson.loads(second.payload) == {
            "connected": False,
            "route": "gw-test.0",
            "protocol": "ocpp2.0.1",
            "at": "2026-11-25T13:05:00.000Z",
        }

        # A consumer that subscribes later learns the last word from the broker.
        late = Backend("late-backend")
        await late.connect(broker)
        try:
            await late.subscribe(presence_subscription(prefix))
            await eventually(lambda: len(late.received) >= 1)
            (retained,) = late.received
            assert retained.retain
            assert orjson.loads(retained.payload)["connected"] is False
        finally:
            await late.close()


async def test_presence_can_be_left_unretained(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    bus = MqttBus(settings(broker, prefix, retain_presence=False))
    async with running(bus):
        bus.announce("CP001", "ocpp1.6", connected=True)
        await eventually(lambda: bus.pending == 0)
    await backend.subscribe(f"{prefix}/#")
    # Nothing retained to hand a late subscriber (a round trip proves the wait).
    backend.publish(f"{prefix}/probe", b"x")
    await eventually(lambda: len(backend.received) >= 1)
    assert [r.topic for r in backend.received] == [f"{prefix}/probe"]


async def test_a_charge_point_that_reconnects_keeps_its_route_while_its_presence_waits(
    broker: Broker, prefix: str
) -> None:
    bus = MqttBus(settings(broker, prefix, min_connections=3))
    async with running(bus):
        bus.announce("CP001", "ocpp1.6", connected=True)
        route = bus.route_of("CP001")
        bus.announce("CP001", "ocpp1.6", connected=False)
        bus.announce("CP001", "ocpp1.6", connected=True)
        # Its presences are on one connection's line, so they stay in order.
        assert bus.route_of("CP001") == route


async def test_a_new_subprotocol_keeps_the_route_and_changes_the_topic(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    await backend.subscribe(uplink_subscription(prefix))
    bus = MqttBus(settings(broker, prefix, min_connections=2))
    async with running(bus):
        bus.publish("CP001", "ocpp1.6", b"[1]")  # publish before announce assigns a route too
        route = bus.route_of("CP001")
        assert route is not None
        bus.publish("CP001", "ocpp2.0.1", b"[2]")
        assert bus.route_of("CP001") == route
        await eventually(lambda: len(backend.received) >= 2)
    assert [r.topic for r in backend.received] == [
        uplink_topic(prefix, "CP001", "ocpp1.6", route),
        uplink_topic(prefix, "CP001", "ocpp2.0.1", route),
    ]


async def test_deliver_answering_false_or_failing_does_not_stop_downlinks(
    broker: Broker, backend: Backend, prefix: str
) -> None:
    calls: list[str] = []

    def deliver(cp: str, frame: bytes) -> bool:
        calls.append(cp)
        if cp == "boom":
            raise RuntimeError("gateway bug")
        return cp != "gone"

    bus = MqttBus(settings(broker, prefix))
    await bus.start(deliver)
    try:
        for cp in ("gone", "boom", "CP001"):
            backend.publish(downlink_topic(prefix, "gw-test.0", cp), b'[2,"m","Reset",{}]')
        await eventually(lambda: len(calls) >= 3)
        assert calls == ["gone", "boom", "CP001"]
    finally:
        await bus.close(timeout=2)
