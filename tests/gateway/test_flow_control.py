"""Backpressure both ways and the registry cache, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path

import orjson
import websockets

from gateway import GatewayConfig, GatewayServer, InProcessBus
from ocppgw import run_embedded
from ocppj import ChargePointAccess, Downlink, MessageType

from ..conftest import _EPOCH, dev_settings


async def test_a_reconnect_storm_reads_the_registry_once_per_charger(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, OCPP_REGISTRY_TTL="300", OCPP_REGISTRY_NEGATIVE_TTL="300")
    async with run_embedded(settings) as system:
        fleet = [f"CP{n:03d}" for n in range(40)]
        system.registry.add(fleet, _EPOCH)

        async def visit(cp: str) -> None:
            url = f"ws://127.0.0.1:{system.port}/{cp}"
            async with websockets.connect(url, subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                pass

        for _ in range(3):  # the fleet connects, drops and comes back, twice
            await asyncio.gather(*(visit(cp) for cp in fleet))
        assert system.gateway.registry_reads == len(fleet)


async def find_any(charge_point_id: str) -> ChargePointAccess | None:
    return ChargePointAccess(charge_point_id)


async def test_a_saturated_bus_pauses_reading_until_it_drains() -> None:
    release = asyncio.Event()
    handled: list[bytes] = []

    async def slow_processor(cp: str, protocol: str, frame: bytes) -> Downlink | None:
        await release.wait()
        handled.append(frame)
        message_id = orjson.loads(frame)[1]
        answer = orjson.dumps([3, message_id, {"currentTime": "2026-01-01T00:00:00Z"}])
        return Downlink(MessageType.CALLRESULT, message_id, answer)

    bus = InProcessBus(slow_processor, workers=1, capacity=8)
    gateway = GatewayServer(GatewayConfig(host="127.0.0.1", port=0), find_any, bus)
    await bus.start(gateway.deliver, gateway.bus_drained)
    await gateway.start()
    try:
        url = f"ws://127.0.0.1:{gateway.port}/CP1"
        async with websockets.connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            for n in range(40):
                await ws.send(orjson.dumps([2, f"m{n}", "Heartbeat", {}]).decode())
            for _ in range(100):  # bounded wait for the gateway to stop reading
                if "ocppgw_paused_readers 1" in gateway.render_metrics().decode():
                    break
                await asyncio.sleep(0.01)
            assert "ocppgw_paused_readers 1" in gateway.render_metrics().decode()
            # Paused: the rest waits in the kernel, not in the bus.
            assert bus.pending <= 8
            release.set()
            answers = [orjson.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(40)]
        # Every CALL is answered exactly once: processed, or (for the few that
        # were already read when the bus filled) told to retry, never lost.
        assert sorted(a[1] for a in answers) == sorted(f"m{n}" for n in range(40))
        busy = [a for a in answers if a[0] == 4]
        assert all(a[2] == "GenericError" for a in busy)
        assert len(handled) + len(busy) == 40
        # Pausing acts between reads, and one read may hold many small
        # frames: those beyond the bus's room get the busy answer.
        assert len(handled) >= 8
        assert "ocppgw_paused_readers 0" in gateway.render_metrics().decode()
    finally:
        await gateway.shutdown()
        await bus.close(timeout=1)


async def test_a_storm_of_first_frames_waits_for_the_bus_instead_of_being_refused() -> None:
    """Every charger of a reconnect storm sends one BootNotification: pausing
    only the senders would let thousands of first frames overflow the bus."""
    release = asyncio.Event()
    handled: list[bytes] = []

    async def slow_processor(cp: str, protocol: str, frame: bytes) -> Downlink | None:
        await release.wait()
        handled.append(frame)
        message_id = orjson.loads(frame)[1]
        answer = orjson.dumps([3, message_id, {"currentTime": "2026-01-01T00:00:00Z"}])
        return Downlink(MessageType.CALLRESULT, message_id, answer)

    bus = InProcessBus(slow_processor, workers=1, capacity=8)
    # Pings every 0.2 s with 0.2 s to answer: the hold below outlasts both.
    config = GatewayConfig(
        host="127.0.0.1", port=0, ping_interval=0.2, pong_timeout=0.2, sweep_period=0.05
    )
    gateway = GatewayServer(config, find_any, bus)
    await bus.start(gateway.deliver, gateway.bus_drained)
    await gateway.start()
    fleet = [f"CP{n:02d}" for n in range(30)]
    try:
        chargers = [
            await websockets.connect(
                f"ws://127.0.0.1:{gateway.port}/{cp}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            )
            for cp in fleet
        ]
        await asyncio.gather(
            *(
                ws.send(orjson.dumps([2, cp, "Heartbeat", {}]).decode())
                for ws, cp in zip(chargers, fleet, strict=True)
            )
        )
        for _ in range(100):  # bounded wait until every charger is held
            if f"ocppgw_paused_readers {len(fleet)}" in gateway.render_metrics().decode():
                break
            await asyncio.sleep(0.01)
        assert f"ocppgw_paused_readers {len(fleet)}" in gateway.render_metrics().decode()
        # A charger that connects while the others are held is held too: its
        # CALL stays in the kernel, not in the bus.
        pending = bus.pending
        fleet.append("LATE")
        chargers.append(
            await websockets.connect(
                f"ws://127.0.0.1:{gateway.port}/LATE",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            )
        )
        await chargers[-1].send(orjson.dumps([2, "LATE", "Heartbeat", {}]).decode())
        # Held for longer than ping interval + pong timeout + a sweep period
        # (0.45 s), in which an unread pong would have been taken for none.
        await asyncio.sleep(0.6)
        assert f"ocppgw_paused_readers {len(fleet)}" in gateway.render_metrics().decode()
        assert bus.pending == pending
        release.set()
        answers = [orjson.loads(await asyncio.wait_for(ws.recv(), 5)) for ws in chargers]
        assert [a[:2] for a in answers] == [[3, cp] for cp in fleet]
        assert len(handled) == len(fleet)
        assert gateway.metrics.errors["bus full"] == 0
        assert gateway.metrics.errors["no pong"] == 0
        assert gateway.connection_count == len(fleet)
        for ws in chargers:
            await ws.close()
    finally:
        await gateway.shutdown()
        await bus.close(timeout=1)


async def test_a_charger_that_does_not_read_is_disconnected() -> None:
    async def nothing(cp: str, protocol: str, frame: bytes) -> Downlink | None:
        return None

    bus = InProcessBus(nothing)
    config = GatewayConfig(host="127.0.0.1", port=0, max_write_buffer=256 * 1024)
    gateway = GatewayServer(config, find_any, bus)
    await bus.start(gateway.deliver, gateway.bus_drained)
    await gateway.start()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", gateway.port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(
            sock,
            (
                "GET /SLOW HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
            ).encode(),
        )
        assert b"101" in await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
        # Answers, not commands: commands would wait in line one at a time.
        frame = orjson.dumps([3, "x", {"status": "Accepted", "data": "y" * 60_000}])
        answer = Downlink(MessageType.CALLRESULT, "x", frame)
        for _ in range(400):  # at most 24 MB, far more than any socket buffer
            if not gateway.deliver("SLOW", answer):
                break
            await asyncio.sleep(0)
        assert gateway.metrics.errors["slow reader"] == 1
        for _ in range(100):  # the abort completes within a loop iteration or two
            if gateway.connection_count == 0:
                break
            await asyncio.sleep(0.01)
        assert gateway.connection_count == 0
        assert gateway.deliver("SLOW", answer) is False
        assert gateway.metrics.errors["downlink for a charge point not here"] >= 1
    finally:
        sock.close()
        await gateway.shutdown()
        await bus.close(timeout=1)


class DownBus:
    """A bus whose broker is unreachable."""

    saturated = False
    healthy = False
    pending = 3

    async def start(self, deliver: object, on_drained: object) -> None:
        pass

    def publish(self, charge_point_id: str, subprotocol: str, frame: bytes) -> None:
        pass

    def announce(self, charge_point_id: str, subprotocol: str, connected: bool) -> None:
        pass

    async def close(self, timeout: float) -> None:
        pass


async def test_health_is_503_and_metrics_say_so_while_the_bus_is_down() -> None:
    gateway = GatewayServer(GatewayConfig(host="127.0.0.1", port=0), find_any, DownBus())
    await gateway.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert orjson.loads(body) == {"status": "unhealthy", "connections": 0, "bus": "down"}

        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert b"text/plain; version=0.0.4" in response
        assert b"\nocppgw_bus_up 0\n" in response
        assert b"\nocppgw_bus_pending_frames 3\n" in response
    finally:
        await gateway.shutdown()


async def test_a_request_that_is_not_http_gets_400_and_a_huge_one_431() -> None:
    gateway = GatewayServer(GatewayConfig(host="127.0.0.1", port=0), find_any, DownBus())
    await gateway.start()
    try:
        for request, status in [
            (b"HELLO\r\n\r\n", b"400"),
            (b"GET / HTTP/1.1\r\nBroken header\r\n\r\n", b"400"),
            (b"GET / HTTP/1.1\r\nX: " + b"y" * 9000, b"431"),
        ]:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            writer.write(request)
            response = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert response.startswith(b"HTTP/1.1 " + status), response
            assert orjson.loads(response.partition(b"\r\n\r\n")[2])["error"]
    finally:
        await gateway.shutdown()


async def test_a_resumed_charger_gets_its_whole_pong_timeout_before_the_sweep_judges() -> None:
    """A charger paused while our ping was out cannot have its pong read: once
    reading resumes, the sweep may visit before the read does, and must not
    take the unread pong for none (this raced in a loaded CI run)."""

    async def nothing(cp: str, protocol: str, frame: bytes) -> Downlink | None:
        return None

    bus = InProcessBus(nothing)
    config = GatewayConfig(host="127.0.0.1", port=0, ping_interval=0.2, pong_timeout=0.2)
    gateway = GatewayServer(config, find_any, bus)
    await bus.start(gateway.deliver, gateway.bus_drained)
    await gateway.start()
    try:
        url = f"ws://127.0.0.1:{gateway.port}/CP1"
        async with websockets.connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            connection = gateway._table.get("CP1")
            assert connection is not None
            loop = asyncio.get_running_loop()
            # As after a long hold: pinged a second ago, nothing read since.
            connection.last_received = loop.time() - 2.0
            connection.ping_sent = loop.time() - 1.0
            connection.resume_reading()
            gateway._relay._visit(connection, loop.time())  # before any read
            assert gateway.metrics.errors["no pong"] == 0
            await ws.send(orjson.dumps([2, "h", "Heartbeat", {}]).decode())
            assert gateway.connection_count == 1
    finally:
        await gateway.shutdown()
        await bus.close(timeout=1)
