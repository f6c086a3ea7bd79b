"""``mqttio.Session`` and ``supervise`` against a real Mosquitto."""

from __future__ import annotations

import asyncio
import time

import pytest
from gmqtt.mqtt.constants import PubAckReasonCode

from mqttio import (
    Backoff,
    BrokerAddress,
    ConnectError,
    PubAck,
    Session,
    Subscription,
    supervise,
)
from tests.mosquitto import Mosquitto
from tests.waiting import wait_until

WAIT = 10.0


def nothing(topic: str | bytes, payload: bytes, qos: int) -> int:
    return 0


async def test_publishes_are_acknowledged_by_token_and_received(mosquitto: Mosquitto) -> None:
    received: list[tuple[str | bytes, bytes]] = []
    acked: list[object] = []
    reader = Session("reader", on_message=lambda t, p, q: received.append((t, p)) or 0)
    writer = Session("writer", on_message=nothing, on_ack=acked.append)
    address = BrokerAddress.parse(mosquitto.url)
    await reader.start(address, subscriptions=[Subscription("t/#")], timeout=WAIT)
    await writer.start(address, timeout=WAIT)
    try:
        for n in range(5):
            assert writer.publish(f"t/{n}", str(n).encode(), token=n)
        await wait_until(lambda: len(acked) == 5 and len(received) == 5)
        assert acked == [0, 1, 2, 3, 4]
        assert received == [(f"t/{n}", str(n).encode()) for n in range(5)]
        assert writer.inflight == 0
    finally:
        await reader.close()
        await writer.close()


async def test_a_lost_session_never_reconnects_by_itself_and_hands_back_what_it_held(
    mosquitto: Mosquitto,
) -> None:
    lost = asyncio.Event()
    session = Session("lonely", on_message=nothing, on_lost=lost.set)
    await session.start(BrokerAddress.parse(mosquitto.url), timeout=WAIT)
    mosquitto.stop()
    await asyncio.wait_for(lost.wait(), WAIT)
    assert session.lost and not session.usable
    # What gmqtt would have done by now (its default delay is 6 s, ours is
    # short): a session must stay down, or it comes back as a zombie client
    # that fights its successor for the client id.
    session._client.set_config({"reconnect_delay": 0})
    mosquitto.start()
    await asyncio.sleep(0.5)
    assert not session.usable
    assert session.unacknowledged() == []
    await session.close()


async def test_unacknowledged_publishes_come_back_in_order(mosquitto: Mosquitto) -> None:
    session = Session("holder", on_message=nothing)
    await session.start(BrokerAddress.parse(mosquitto.url), timeout=WAIT)
    mosquitto.stop()
    await wait_until(lambda: session.lost)
    # Written into a closing transport: nothing acknowledges them.
    for n in range(3):
        try:
            session.publish("t", b"x", token=n)
        except Exception:
            break
    assert session.unacknowledged() in ([], [0], [0, 1], [0, 1, 2])
    await session.close()


async def test_a_refused_subscription_fails_the_start_and_closes(mosquitto: Mosquitto) -> None:
    session = Session("bad-filter", on_message=nothing)
    # '#' must be the last level: Mosquitto refuses the filter, with a SUBACK
    # code or (as 2.0 does for a malformed filter) by closing the connection.
    with pytest.raises((ConnectError, ConnectionError)):
        await session.start(
            BrokerAddress.parse(mosquitto.url),
            subscriptions=[Subscription("a/#/b")],
            timeout=WAIT,
        )
    assert session.lost


async def test_an_unreachable_broker_fails_within_the_timeout() -> None:
    session = Session("nobody", on_message=nothing)
    started = time.monotonic()
    with pytest.raises((OSError, TimeoutError)):
        await session.start(BrokerAddress("127.0.0.1", 9), timeout=2.0)
    assert time.monotonic() - started < WAIT


async def test_supervise_reconnects_with_a_fresh_session_after_a_broker_restart(
    mosquitto: Mosquitto,
) -> None:
    address = BrokerAddress.parse(mosquitto.url)
    sessions: list[Session] = []
    served = asyncio.Event()

    async def connect() -> Session:
        session = Session("supervised", on_message=nothing)
        await session.start(address, timeout=2.0)
        sessions.append(session)
        return session

    async def serve(session: Session) -> None:
        served.set()
        await session.wait_lost()

    task = asyncio.create_task(supervise(connect, serve, Backoff.immediate()))
    try:
        await asyncio.wait_for(served.wait(), WAIT)
        served.clear()
        mosquitto.stop()
        await wait_until(lambda: sessions[0].lost)
        mosquitto.start()
        await asyncio.wait_for(served.wait(), WAIT)
        assert len(sessions) == 2 and sessions[1] is not sessions[0]
        assert sessions[1].usable and not sessions[0].usable
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert all(s.lost for s in sessions)  # cancelling closes the session it served


def test_puback_codes_are_mqtt_5s() -> None:
    for code in PubAck:
        assert int(code) == int(PubAckReasonCode[code.name])
