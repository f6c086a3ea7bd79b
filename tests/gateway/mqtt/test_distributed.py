"""The system distributed on one machine: an ``ocppgw gateway`` process and
an ``ocppgw worker`` process on a private Mosquitto, sharing one state
folder, and a charger that boots, is told to start charging and answers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import websockets

from ocppgw.cli import main

from ...waiting import wait_until
from .support import Broker, Proxy, free_port


class Output:
    """What a running ``ocppgw`` process has written to stderr, line by line."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def count(self, text: bytes) -> int:
        return sum(text in line for line in self.lines)

    async def collect(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line)


@contextlib.asynccontextmanager
async def ocppgw(*argv: str, env: dict[str, str], ready: bytes) -> AsyncIterator[Output]:
    """Run ``python -m ocppgw ARGV`` until the block ends; wait for its ready line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocppgw",
        *argv,
        env={**os.environ, "OCPP_LOG_LEVEL": "INFO", **env},
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    output = Output()
    try:
        while True:  # bounded by the timeout on each line
            line = await asyncio.wait_for(process.stderr.readline(), 15)
            assert line, f"ocppgw {argv[0]} exited before it was ready"
            output.lines.append(line)
            if ready in line:
                break
        collecting = asyncio.create_task(output.collect(process.stderr))
        yield output
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        await collecting
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_gateway_and_worker_processes_serve_a_charger(
    broker: Broker, prefix: str, tmp_path: Path
) -> None:
    assert main(["charge-points", "add", "--data-dir", str(tmp_path), "CP 1"], {}) == 0
    port, api = free_port(), free_port()
    common = {"MQTT_URL": broker.url, "OCPP_TOPIC_PREFIX": prefix, "OCPP_DATA_DIR": str(tmp_path)}
    worker_env = {**common, "OCPP_MANAGEMENT_PORT": str(api)}
    gateway_env = {**common, "OCPP_GATEWAY_HOST": "127.0.0.1", "OCPP_GATEWAY_PORT": str(port)}
    async with (
        ocppgw("worker", env=worker_env, ready=b'"event":"ready: '),
        ocppgw("gateway", env=gateway_env, ready=b'"event":"ready: '),
    ):
        url = f"ws://127.0.0.1:{port}/CP%201"
        async with websockets.connect(url, subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
            await ws.send(orjson.dumps([2, "b1", "BootNotification", boot]).decode())
            answer = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert answer[:2] == [3, "b1"] and answer[2]["status"] == "Accepted"

            async def charger_answers() -> list[object]:
                call = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                await ws.send(orjson.dumps([3, call[1], {"status": "Accepted"}]).decode())
                return list(call)

            answering = asyncio.create_task(charger_answers())
            for _ in range(50):  # presence reaches the worker's state within moments
                code = await asyncio.to_thread(
                    main,
                    [
                        "remote-start",
                        "CP 1",
                        "--id-tag",
                        "user-1",
                        "--api",
                        f"http://127.0.0.1:{api}",
                    ],
                    {},
                )
                if code == 0 or answering.done():
                    break
                await asyncio.sleep(0.2)
            call = await asyncio.wait_for(answering, 10)
            assert code == 0
            assert call[2] == "RequestStartTransaction"

            # The transaction the remote start asked for, through the broker.
            for seq, kind in enumerate(("Started", "Ended")):
                event = {
                    "eventType": kind,
                    "timestamp": f"2026-01-01T10:0{seq}:00Z",
                    "triggerReason": "RemoteStart" if kind == "Started" else "StopAuthorized",
                    "seqNo": seq,
                    "transactionInfo": {"transactionId": "tx-1"},
                }
                await ws.send(orjson.dumps([2, f"t{seq}", "TransactionEvent", event]).decode())
                assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))[:2] == [3, f"t{seq}"]

        # A 1.6 charger's transaction, through the same processes.
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/CP%201", subprotocols=["ocpp1.6"]
        ) as ws:  # type: ignore[list-item]
            start = {
                "connectorId": 1,
                "idTag": "u",
                "meterStart": 0,
                "timestamp": "2026-01-01T11:00:00Z",
            }
            await ws.send(orjson.dumps([2, "s", "StartTransaction", start]).decode())
            started = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert started[:2] == [3, "s"] and isinstance(started[2]["transactionId"], int)
            stop = {
                "transactionId": started[2]["transactionId"],
                "meterStop": 10,
                "timestamp": "2026-01-01T12:00:00Z",
            }
            await ws.send(orjson.dumps([2, "e", "StopTransaction", stop]).decode())
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))[:2] == [3, "e"]
    # Both processes shared the state folder: the worker wrote the shadow.
    shadow = ["shadow", "--data-dir", str(tmp_path), "CP 1"]
    assert await asyncio.to_thread(main, shadow, {}) == 0


async def scrape(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    body = (await asyncio.wait_for(reader.read(), 5)).decode()
    writer.close()
    return body


def sample(metrics: str, name: str) -> int:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_two_gateways_and_two_workers_answer_each_call_once_on_its_gateway(
    broker: Broker, prefix: str, tmp_path: Path
) -> None:
    fleet = [f"CP-{n}" for n in range(10)]
    assert main(["charge-points", "add", "--data-dir", str(tmp_path), *fleet], {}) == 0
    ports = [free_port(), free_port()]
    common = {"MQTT_URL": broker.url, "OCPP_TOPIC_PREFIX": prefix, "OCPP_DATA_DIR": str(tmp_path)}

    def gateway(n: int) -> dict[str, str]:
        return {
            **common,
            "OCPP_GATEWAY_HOST": "127.0.0.1",
            "OCPP_GATEWAY_PORT": str(ports[n]),
            "OCPP_GATEWAY_ID": f"gw{n}",
        }

    ready = b'"event":"ready: '
    async with (
        ocppgw("worker", env={**common, "OCPP_MANAGEMENT_PORT": str(free_port())}, ready=ready),
        ocppgw("worker", env={**common, "OCPP_MANAGEMENT_PORT": str(free_port())}, ready=ready),
        ocppgw("gateway", env=gateway(0), ready=ready),
        ocppgw("gateway", env=gateway(1), ready=ready),
    ):
        chargers = []
        for n, cp in enumerate(fleet):
            url = f"ws://127.0.0.1:{ports[n % 2]}/{cp}"
            chargers.append(await websockets.connect(url, subprotocols=["ocpp1.6"]))  # type: ignore[list-item]
        try:

            async def talk(n: int, ws: websockets.ClientConnection) -> list[str]:
                answered = []
                for k in range(5):
                    await ws.send(orjson.dumps([2, f"{n}-{k}", "Heartbeat", {}]).decode())
                    answer = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                    answered.append(answer[1])
                return answered

            answers = await asyncio.gather(*(talk(n, ws) for n, ws in enumerate(chargers)))
            assert answers == [[f"{n}-{k}" for k in range(5)] for n in range(10)]
            # No duplicate answer arrives later.
            extras = await asyncio.gather(
                *(asyncio.wait_for(ws.recv(), 0.5) for ws in chargers), return_exceptions=True
            )
            assert all(isinstance(extra, TimeoutError) for extra in extras), extras
            # Each gateway sent exactly its own chargers' answers: no downlink
            # went to the gateway that does not hold the charger.
            for port in ports:
                metrics = await scrape(port)
                assert sample(metrics, "ocppgw_frames_sent_total") == 25
                assert "downlink for a charge point not here" not in metrics
        finally:
            for ws in chargers:
                await ws.close()


async def test_a_broker_restart_disconnects_no_charger_and_loses_no_call(
    broker: Broker, prefix: str, tmp_path: Path
) -> None:
    """Calls held by the gateway through a broker restart are all answered
    once the broker and a worker with a kept session are back.

    The gateway reaches the broker through a proxy that keeps it away until
    the worker has subscribed again: Mosquitto does not keep a shared
    subscription across its own restart, so what the gateway sends before
    the worker is back reaches no one (the order is fixed here, not raced;
    making the gateway wait for workers by itself is issue 16's)."""
    fleet = [f"CP-{n}" for n in range(5)]
    assert main(["charge-points", "add", "--data-dir", str(tmp_path), *fleet], {}) == 0
    proxy = Proxy(broker)
    await proxy.start()
    port = free_port()
    common = {"OCPP_TOPIC_PREFIX": prefix, "OCPP_DATA_DIR": str(tmp_path)}
    worker_env = {
        **common,
        "MQTT_URL": broker.url,
        "OCPP_MANAGEMENT_PORT": str(free_port()),
        # A kept session: calls published while this worker reconnects wait for it.
        "OCPP_WORKER_ID": f"worker-{prefix}",
        "OCPP_WORKER_SESSION_EXPIRY": "600",
    }
    gateway_env = {
        **common,
        "MQTT_URL": proxy.url,
        "OCPP_GATEWAY_HOST": "127.0.0.1",
        "OCPP_GATEWAY_PORT": str(port),
    }
    ready = b'"event":"ready: '
    subscribed = b'"event":"connected to the broker"'
    async with (
        ocppgw("worker", env=worker_env, ready=ready) as worker,
        ocppgw("gateway", env=gateway_env, ready=ready),
    ):
        chargers = [
            await websockets.connect(f"ws://127.0.0.1:{port}/{cp}", subprotocols=["ocpp2.0.1"])  # type: ignore[list-item]
            for cp in fleet
        ]
        try:

            async def heartbeat(ws: websockets.ClientConnection, message_id: str) -> str:
                await ws.send(orjson.dumps([2, message_id, "Heartbeat", {}]).decode())
                return str(orjson.loads(await asyncio.wait_for(ws.recv(), 60))[1])

            before = await asyncio.gather(
                *(heartbeat(ws, f"b{n}") for n, ws in enumerate(chargers))
            )
            assert before == [f"b{n}" for n in range(5)]
            assert worker.count(subscribed) == 1

            proxy.refuse = True
            await broker.stop()
            during = [asyncio.create_task(heartbeat(ws, f"d{n}")) for n, ws in enumerate(chargers)]
            await broker.start()
            await wait_until(lambda: worker.count(subscribed) == 2, 30, "the worker is back")
            assert not any(task.done() for task in during)  # held by the gateway meanwhile
            proxy.refuse = False
            assert await asyncio.gather(*during) == [f"d{n}" for n in range(5)]

            # Nobody was disconnected: the same connections go on working.
            after = await asyncio.gather(*(heartbeat(ws, f"a{n}") for n, ws in enumerate(chargers)))
            assert after == [f"a{n}" for n in range(5)]
        finally:
            for ws in chargers:
                await ws.close()
            await proxy.close()
