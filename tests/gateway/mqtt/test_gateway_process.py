"""``ocppgw gateway --workers 2`` as processes on one port, relaying over a
private Mosquitto to a backend that answers: every charger is answered on
its own route, and SIGTERM closes them with 1001."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from ocppgw.cli import main
from ocppj import parse_uplink

from .support import Backend, Broker, free_port

CHARGERS = [f"CP+{n:02d} #x" for n in range(20)]  # '+', '#' and spaces cross the topics


@contextlib.asynccontextmanager
async def answering(backend: Backend, prefix: str) -> AsyncIterator[list[str]]:
    """Answer every uplink CALL with a CALLRESULT on the route it came from."""
    await backend.subscribe(f"{prefix}/in/+/+/+")
    routes: list[str] = []

    async def answer() -> None:
        seen = 0
        while True:
            for received in backend.received[seen:]:
                cp, _, route = parse_uplink(received.topic, prefix)
                call = orjson.loads(received.payload)
                routes.append(route)
                # QoS 0: a test backend answering a burst must not run out
                # of QoS 1 packet ids; the gateway's own uplinks are QoS 1.
                backend.client.publish(
                    f"{prefix}/out/{route}/{received.topic.split('/')[2]}",
                    orjson.dumps([3, call[1], {"currentTime": "2026-01-01T00:00:00Z", "cp": cp}]),
                    qos=0,
                )
            seen = len(backend.received)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(answer())
    try:
        yield routes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_two_gateway_processes_relay_over_mqtt(
    broker: Broker, backend: Backend, prefix: str, tmp_path: Path
) -> None:
    assert main(["charge-points", "add", "--data-dir", str(tmp_path), *CHARGERS], {}) == 0
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocppgw",
        "gateway",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
        env={
            **os.environ,
            "MQTT_URL": broker.url,
            "OCPP_TOPIC_PREFIX": prefix,
            "OCPP_GATEWAY_ID": "gwtest",
            "OCPP_LOG_LEVEL": "INFO",
        },
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    ready = 0
    while ready < 2:  # both processes listen before any charger connects
        line = await asyncio.wait_for(process.stderr.readline(), 15)
        assert line, "ocppgw gateway exited before it was ready"
        ready += b'"event":"ready: ' in line
    drain = asyncio.create_task(process.stderr.read())  # keep the pipe from filling
    sockets = []
    try:
        async with answering(backend, prefix) as routes:
            for cp in CHARGERS:
                ws = await websockets.connect(
                    f"ws://127.0.0.1:{port}/{quote(cp, safe='')}",
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                )
                sockets.append(ws)
            for n, ws in enumerate(sockets):
                await ws.send(orjson.dumps([2, f"h{n}", "Heartbeat", {}]).decode())
            for n, ws in enumerate(sockets):
                answer = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                assert answer[:2] == [3, f"h{n}"]
                assert answer[2]["cp"] == CHARGERS[n]  # reached the backend as itself
            # Both processes took chargers, each on its own routes.
            assert {route.split(".")[0] for route in routes} == {"gwtest-0", "gwtest-1"}

        process.send_signal(signal.SIGTERM)
        for ws in sockets:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 15)
            assert ws.close_code == 1001
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        for ws in sockets:
            ws.transport.abort()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await drain
