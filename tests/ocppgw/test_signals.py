"""``ocppgw dev`` as a process: SIGTERM closes chargers with 1001 and exits."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from ocppgw.cli import main


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_sigterm_closes_chargers_with_1001_and_exits(tmp_path: Path) -> None:
    assert main(["charge-points", "add", "--data-dir", str(tmp_path), "CP001"], {}) == 0
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocppgw",
        "dev",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
        env={**os.environ, "OCPP_MANAGEMENT_PORT": "0", "OCPP_LOG_LEVEL": "INFO"},
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(500):  # bounded: up to 10 s to start
            try:
                ws = await websockets.connect(
                    f"ws://127.0.0.1:{port}/CP001",
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                )
                break
            except OSError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("ocppgw dev did not start")
        await ws.send(orjson.dumps([2, "1", "Heartbeat", {}]).decode())
        assert orjson.loads(await ws.recv())[0] == 3

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1001
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert time.monotonic() - started < 10  # well inside ECS's 30 s stop timeout
        assert process.stderr is not None
        log = (await process.stderr.read()).decode()
        assert '"event":"shutting down"' in log
        assert '"event":"gateway stopped"' in log
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
