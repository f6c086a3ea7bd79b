"""EMF metrics of ``ocppgw gateway``: settings, and the real gateway on a
private Mosquitto reporting what a real charger did."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from gateway import GatewayServer
from gateway.emf import EmfMetrics
from gateway.mqtt_bus import MqttBus
from ocppgw import SettingsError
from ocppgw.cli import main
from ocppgw.gateway_service import (
    GATEWAY_ENVIRONMENT,
    GatewaySettings,
    MetricsReporter,
    run_gateway,
)

from .support import Broker, eventually, free_port

HEARTBEAT = orjson.dumps([2, "h1", "Heartbeat", {}]).decode()


# -- settings -----------------------------------------------------------------


def test_emf_is_off_by_default_with_a_minute_between_reports() -> None:
    assert GATEWAY_ENVIRONMENT["OCPP_METRICS_NAMESPACE"] == ""
    assert GATEWAY_ENVIRONMENT["OCPP_METRICS_INTERVAL"] == "60"
    settings = GatewaySettings.from_env({})
    assert (settings.metrics_namespace, settings.metrics_interval) == ("", 60.0)


def test_the_namespace_and_interval_come_from_the_environment() -> None:
    settings = GatewaySettings.from_env(
        {"OCPP_METRICS_NAMESPACE": " OCPPGateway ", "OCPP_METRICS_INTERVAL": "2.5"}
    )
    assert (settings.metrics_namespace, settings.metrics_interval) == ("OCPPGateway", 2.5)
    # Every worker process reports for itself, under the same namespace.
    assert settings.for_worker(1).metrics_namespace == "OCPPGateway"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OCPP_METRICS_INTERVAL": "0"}, "OCPP_METRICS_INTERVAL: must be a positive number"),
        ({"OCPP_METRICS_INTERVAL": "-60"}, "OCPP_METRICS_INTERVAL: must be a positive number"),
        ({"OCPP_METRICS_INTERVAL": "nan"}, "OCPP_METRICS_INTERVAL: must be a positive number"),
        ({"OCPP_METRICS_INTERVAL": "inf"}, "OCPP_METRICS_INTERVAL: must be a positive number"),
        ({"OCPP_METRICS_INTERVAL": "1m"}, "OCPP_METRICS_INTERVAL: '1m' is not a number"),
        ({"OCPP_METRICS_INTERVAL": ""}, "OCPP_METRICS_INTERVAL: '' is not a number"),
        ({"OCPP_METRICS_NAMESPACE": "AWS/OCPP"}, "OCPP_METRICS_NAMESPACE: namespace: 'AWS/OCPP'"),
        ({"OCPP_METRICS_NAMESPACE": "OCPP{gw}"}, "OCPP_METRICS_NAMESPACE: namespace: 'OCPP{gw}'"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        GatewaySettings.from_env(environ)
    assert str(raised.value).startswith(message)


# -- the running gateway --------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    assert main(["charge-points", "add", "--data-dir", str(folder), "CP001"], {}) == 0
    return folder


def gateway_settings(broker: Broker, data_dir: Path, **environ: str) -> GatewaySettings:
    return GatewaySettings.from_env(
        {
            "MQTT_URL": broker.url,
            "OCPP_GATEWAY_HOST": "127.0.0.1",
            "OCPP_GATEWAY_PORT": "0",
            "OCPP_DATA_DIR": str(data_dir),
            "OCPP_GATEWAY_ID": "gw-emf",
            "OCPP_METRICS_NAMESPACE": "OCPPGateway",
            "OCPP_METRICS_INTERVAL": "0.05",
            **environ,
        }
    )


def totals(lines: list[bytes]) -> list[dict[str, Any]]:
    """The documents without dimensions, one per report."""
    return [d for d in map(orjson.loads, lines) if "Protocol" not in d]


def by_protocol(lines: list[bytes], protocol: str) -> list[int]:
    return [
        d["ActiveConnections"] for d in map(orjson.loads, lines) if d.get("Protocol") == protocol
    ]


async def test_the_gateway_reports_a_real_chargers_connection_and_messages(
    broker: Broker, data_dir: Path
) -> None:
    lines: list[bytes] = []
    ws = None
    try:
        async with run_gateway(gateway_settings(broker, data_dir), metrics_out=lines.append) as gw:
            base = f"ws://127.0.0.1:{gw.port}"
            with pytest.raises(InvalidStatus):  # not registered: one rejection
                await websockets.connect(f"{base}/NOBODY", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
            ws = await websockets.connect(
                f"{base}/CP001",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            )
            await ws.send(HEARTBEAT)
            await ws.send(HEARTBEAT.replace("h1", "h2"))
            await eventually(lambda: sum(d["MessagesIn"] for d in totals(lines)) == 2)
            await eventually(lambda: 1 in by_protocol(lines, "ocpp1.6"))
            while_connected = len(lines)
        # The charger stays connected until the gateway shuts down.
    finally:
        if ws is not None:
            ws.transport.abort()
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    reports = totals(lines)
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in reports} == {"OCPPGateway"}
    assert {
        tuple(map(tuple, d["_aws"]["CloudWatchMetrics"][0]["Dimensions"])) for d in reports
    } == {((),)}
    assert any(d["ActiveConnections"] == 1 for d in reports)
    # Every report has a line per enabled protocol, whoever is connected.
    for protocol in ("ocpp2.0", "ocpp2.0.1"):
        assert set(by_protocol(lines, protocol)) == {0}
        assert len(by_protocol(lines, protocol)) == len(reports)
    # Deltas add up to exactly what happened, the last report (at shutdown) included.
    assert sum(d["MessagesIn"] for d in reports) == 2
    assert sum(d["Handshakes"] for d in reports) == 1
    assert sum(d["HandshakeRejections"] for d in reports) == 1
    # The last report is written after the gateway closed its chargers, so it
    # does not count them a second time in its CloudWatch minute.
    assert len(lines) > while_connected
    assert reports[-1]["ActiveConnections"] == 0
    assert by_protocol(lines, "ocpp1.6")[-1] == 0


async def test_a_failed_report_is_logged_and_the_gateway_keeps_reporting(
    broker: Broker, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines: list[bytes] = []
    failures = 0

    def flaky(line: bytes) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise BrokenPipeError("stdout went away")
        lines.append(line)

    settings = gateway_settings(broker, data_dir)
    with caplog.at_level(logging.ERROR, logger="ocppgw.gateway_service"):
        async with run_gateway(settings, metrics_out=flaky) as gw:
            await eventually(lambda: len(lines) >= 8)
            async with websockets.connect(
                f"ws://127.0.0.1:{gw.port}/CP001",
                subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            ) as ws:
                # The gateway still serves chargers.
                await ws.send(HEARTBEAT)
                await eventually(lambda: 1 in by_protocol(lines, "ocpp2.0.1"))
    failed = [r for r in caplog.records if r.getMessage() == "metrics report failed"]
    assert len(failed) == 2
    assert failed[0].exc_info is not None


async def test_without_a_namespace_nothing_is_reported(broker: Broker, data_dir: Path) -> None:
    lines: list[bytes] = []
    settings = gateway_settings(broker, data_dir, OCPP_METRICS_NAMESPACE="")
    async with run_gateway(settings, metrics_out=lines.append) as gw:
        async with websockets.connect(
            f"ws://127.0.0.1:{gw.port}/CP001",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        ) as ws:
            await ws.send(HEARTBEAT)
            await eventually(lambda: gw.metrics.frames_in == 1)
        # No reporter task was started: nothing of ours is left running.
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "emf-metrics"]
    assert lines == []


async def test_ocppgw_gateway_writes_emf_lines_on_stdout(broker: Broker, data_dir: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocppgw",
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        env={
            **os.environ,
            "MQTT_URL": broker.url,
            "OCPP_METRICS_NAMESPACE": "OCPPGateway",
            "OCPP_METRICS_INTERVAL": "0.1",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    drain = asyncio.create_task(process.stderr.read())  # the logs, kept from filling the pipe
    ws = None
    try:
        lines: list[bytes] = []

        async def read_until(done: Any) -> None:
            assert process.stdout is not None
            while not done():
                line = await asyncio.wait_for(process.stdout.readline(), 15)
                assert line, "ocppgw gateway closed its stdout"
                lines.append(line)

        await read_until(lambda: lines)  # reports begin once the gateway listens
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/CP001",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        )
        await ws.send(HEARTBEAT)
        await read_until(
            lambda: (
                1 in by_protocol(lines, "ocpp1.6")
                and sum(d["MessagesIn"] for d in totals(lines)) >= 1
            )
        )
        # Standard output carries EMF documents only (the logs go to stderr).
        assert all("_aws" in orjson.loads(line) for line in lines)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if ws is not None:
            ws.transport.abort()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await drain


def test_a_report_is_stamped_with_the_clock_in_milliseconds() -> None:
    settings = GatewaySettings.from_env({"MQTT_URL": "mqtt://127.0.0.1:1"})
    gateway = GatewayServer(settings.gateway, _nobody, MqttBus(settings.mqtt))
    gateway.metrics.frames_in = 3
    lines: list[bytes] = []
    emf = EmfMetrics("OCPPGateway", settings.gateway.protocols)
    reporter = MetricsReporter(gateway, emf, 60, lines.append, clock=lambda: 1_767_225_600.0124)
    reporter.report()
    documents = [orjson.loads(line) for line in lines]
    assert {d["_aws"]["Timestamp"] for d in documents} == {1_767_225_600_012}
    assert documents[0]["MessagesIn"] == 3
    assert [d.get("Protocol") for d in documents] == [None, "ocpp1.6", "ocpp2.0", "ocpp2.0.1"]


async def _nobody(charge_point_id: str) -> None:
    return None
