"""Rate limits, one outstanding command, keepalive and zombies, with real
clients against the embedded system configured with short times."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from ocppgw import EmbeddedSystem, run_embedded
from processor.commands import RemoteStart, RemoteStop

from ..conftest import _EPOCH, dev_settings
from ..waiting import wait_until


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[EmbeddedSystem]:
    settings = dev_settings(
        tmp_path,
        OCPP_RATE_LIMIT="20",
        OCPP_RATE_BURST="10",
        OCPP_FLOOD_STRIKES="5",
        OCPP_PING_INTERVAL="0.4",
        OCPP_PONG_TIMEOUT="0.4",
        OCPP_SWEEP_PERIOD="0.1",
        OCPP_CALL_TIMEOUT="1",
        OCPP_COMMAND_QUEUE_TTL="0.5",
    )
    async with run_embedded(settings) as system:
        system.registry.add(["CP001", "CP002"], _EPOCH)
        yield system


def url(system: EmbeddedSystem, cp: str) -> str:
    return f"ws://127.0.0.1:{system.port}/{cp}"


def expired_in_line(system: EmbeddedSystem) -> int:
    return system.gateway.metrics.errors["command expired in line"]


def pings_received(caplog: pytest.LogCaptureFixture) -> int:
    return sum(record.getMessage().startswith("< PING") for record in caplog.records)


async def test_a_flood_is_slowed_then_disconnected_without_hurting_others(
    quick: EmbeddedSystem,
) -> None:
    async with (
        websockets.connect(url(quick, "CP001"), subprotocols=["ocpp1.6"]) as flooder,  # type: ignore[list-item]
        websockets.connect(url(quick, "CP002"), subprotocols=["ocpp1.6"]) as neighbour,  # type: ignore[list-item]
    ):
        heartbeat = orjson.dumps([2, "h", "Heartbeat", {}]).decode()
        with pytest.raises(ConnectionClosed):
            for _ in range(2000):  # bounded: the gateway closes it long before
                await flooder.send(heartbeat)
                await asyncio.sleep(0)
            for _ in range(2000):  # read what was answered before the close
                await asyncio.wait_for(flooder.recv(), 5)
        assert flooder.close_code == 1008
        # The neighbour is served as usual, at its own pace.
        await neighbour.send(orjson.dumps([2, "n1", "Heartbeat", {}]).decode())
        assert orjson.loads(await asyncio.wait_for(neighbour.recv(), 5))[:2] == [3, "n1"]
    metrics = quick.gateway.render_metrics().decode()
    assert 'ocppgw_errors_total{kind="flood"} 1\n' in metrics
    assert 'ocppgw_errors_total{kind="rate limited"}' in metrics


async def test_a_burst_within_the_limit_is_all_answered(quick: EmbeddedSystem) -> None:
    async with websockets.connect(url(quick, "CP001"), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        for n in range(10):
            await ws.send(orjson.dumps([2, f"b{n}", "Heartbeat", {}]).decode())
        ids = sorted([orjson.loads(await asyncio.wait_for(ws.recv(), 5))[1] for _ in range(10)])
    assert ids == sorted(f"b{n}" for n in range(10))


async def test_commands_wait_for_the_previous_answer(quick: EmbeddedSystem) -> None:
    async with websockets.connect(url(quick, "CP001"), subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        first = await quick.commands.remote_start(RemoteStart("CP001", "tag-1"))
        second = await quick.commands.remote_stop(RemoteStop("CP001", "tx-1"))
        call = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert call[1] == first.message_id
        # Nothing else arrives while the first is unanswered.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
        await ws.send(orjson.dumps([3, first.message_id, {"status": "Accepted"}]).decode())
        call = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (call[1], call[2]) == (second.message_id, "RequestStopTransaction")


async def test_a_command_that_waits_too_long_is_dropped(quick: EmbeddedSystem) -> None:
    async with websockets.connect(url(quick, "CP001"), subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        first = await quick.commands.remote_start(RemoteStart("CP001", "tag-1"))
        await quick.commands.remote_stop(RemoteStop("CP001", "tx-1"))
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))[1] == first.message_id
        # The queued stop outlives its 0.5 s time-to-live: the sweep drops it.
        await wait_until(lambda: expired_in_line(quick) == 1, what="the stop expired")
        await ws.send(orjson.dumps([3, first.message_id, {"status": "Accepted"}]).decode())
        # The stale stop never reaches the charger (it would follow the answer
        # at once); websockets answers the gateway's pings without returning them.
        with pytest.raises(TimeoutError):
            frame = await asyncio.wait_for(ws.recv(), 0.3)
            raise AssertionError(f"stale command delivered: {frame!r}")
    metrics = quick.gateway.render_metrics().decode()
    assert 'ocppgw_errors_total{kind="command expired in line"} 1' in metrics


async def test_silent_chargers_are_pinged_and_zombies_dropped(
    quick: EmbeddedSystem, caplog: pytest.LogCaptureFixture
) -> None:
    # websockets logs every frame it receives at DEBUG: the live charger's pings.
    caplog.set_level(logging.DEBUG, logger="websockets.client")
    # A live charger: websockets answers pings by itself and stays connected.
    async with websockets.connect(url(quick, "CP001"), subprotocols=["ocpp1.6"]) as live:  # type: ignore[list-item]
        # The gateway pings again only once its last ping was answered
        # (gateway.keepalive): a second ping means the first pong counted.
        await wait_until(lambda: pings_received(caplog) >= 2, what="a second ping")
        await live.send(orjson.dumps([2, "still", "Heartbeat", {}]).decode())
        assert orjson.loads(await asyncio.wait_for(live.recv(), 5))[1] == "still"

    # A zombie: a raw socket that completed the handshake and never answers.
    reader, writer = await asyncio.open_connection("127.0.0.1", quick.port)
    writer.write(
        b"GET /CP002 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    assert b" 101 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    received: list[bytes] = []
    for _ in range(50):  # bounded: at most 5 s
        chunk = await asyncio.wait_for(reader.read(1024), 5)
        if not chunk:
            break
        received.append(chunk)
    assert received and received[0][0] == 0x89  # a PING frame came first
    assert 'ocppgw_errors_total{kind="no pong"} 1' in quick.gateway.render_metrics().decode()
    assert quick.gateway.connection_count == 0
    writer.close()


async def test_two_gateways_share_one_port_with_reuse_port(tmp_path: Path) -> None:
    first = dev_settings(tmp_path / "a", OCPP_GATEWAY_PORT="0")
    async with run_embedded(first) as one:
        port = one.port
        second = replace(
            dev_settings(tmp_path / "b"),
            gateway=replace(one.gateway.config, port=port, reuse_port=True),
        )
        with pytest.raises(OSError):  # without SO_REUSEPORT on the first socket
            async with run_embedded(second):
                pass
    shared = dev_settings(tmp_path / "c")
    config: Any = replace(shared.gateway, reuse_port=True)
    async with run_embedded(replace(shared, gateway=config)) as one:
        other = replace(dev_settings(tmp_path / "d"), gateway=replace(config, port=one.port))
        async with run_embedded(other) as two:
            assert two.port == one.port
            for system in (one, two):
                system.registry.add(["CP001"], _EPOCH)
            async with websockets.connect(  # type: ignore[list-item]
                f"ws://127.0.0.1:{one.port}/CP001", subprotocols=["ocpp1.6"]
            ) as ws:
                await ws.send(orjson.dumps([2, "r", "Heartbeat", {}]).decode())
                assert orjson.loads(await ws.recv())[1] == "r"
