"""Gateway CPU per round trip relayed through Mosquitto, against a bare echo server.

    .venv/bin/python -m bench.compare_mqtt --chargers 500 --seconds 10

The question: what does the production gateway (``ocppgw gateway``, relaying
over MQTT) spend per round trip, CALL in and CALLRESULT out, in echoes of a
bare picows + uvloop server measured in the same run? Both get the same
``bench.fleet`` load (``--chargers`` chargers boot, then a closed loop of
Heartbeats for ``--seconds``), one after the other, ``--repeats`` pairs
(echo, relay, echo, relay by default):

* echo: ``bench.echo_server`` in a subprocess, exactly as ``bench.compare_echo``.
* relay: a private Mosquitto (``/usr/sbin/mosquitto``, a temporary config with
  one loopback listener on a free port, anonymous, raised in-flight and queue
  limits, no persistence), then ``bench.mqtt_responder`` (a gmqtt client that
  answers every uplink CALL on its downlink topic, QoS 0), then ``ocppgw
  gateway`` with ``MQTT_URL`` pointing at the broker, the charge points
  registered with ``ocppgw charge-points add``, the flood limit lifted as in
  ``bench/gateway_process.py`` and the MQTT publish quota and in-flight limit
  raised so that the bus does not throttle the closed loop. All three are
  separate processes, stopped (SIGTERM, then kill) on the way out.

Around each load window the CPU (utime + stime, all threads,
``/proc/<pid>/stat``) of the gateway and, separately, of the broker and the
responder is read. The headline is gateway CPU µs per round trip over echo
CPU µs per round trip (medians); the broker's and responder's shares, and the
whole relay (gateway + broker + responder) over echo, are reported beside it.
Prints one JSON object; the exit status is 1 if any run counted an error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop

from . import compare_echo, fleet
from .arguments import bounded
from .charger import PROTOCOLS, charger_ids
from .gateway_process import (
    LOOPBACK,
    GatewayProcess,
    _wait_until_healthy,
    free_port,
    read_cpu_seconds,
    register,
    stop,
)

__all__ = ["main", "summarise"]

MOSQUITTO = "/usr/sbin/mosquitto"
#: The topic prefix and gateway id of the relay under test.
PREFIX = "bench"
GATEWAY_ID = "benchgw"
#: Seconds the broker and the responder get to be ready.
START_TIMEOUT = 30.0
#: Seconds between two measurements, for the previous server's sockets to go.
PAUSE_S = 1.0
ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("echo", "relay")
COMPANIONS = ("broker", "responder")
#: The gateway's environment beyond ours: quiet logs, no flood limit, and an
#: MQTT bus that neither rate-limits nor caps in-flight publishes below the fleet.
GATEWAY_ENV = {
    "OCPP_LOG_LEVEL": "WARNING",
    "OCPP_RATE_LIMIT": "1000000",
    "OCPP_RATE_BURST": "1000000",
    "OCPP_TOPIC_PREFIX": PREFIX,
    "OCPP_GATEWAY_ID": GATEWAY_ID,
    "OCPP_MQTT_MIN_CONNECTIONS": "1",
    "OCPP_MQTT_PUBLISH_RATE": "100000",
    "OCPP_MQTT_MAX_INFLIGHT": "1000",
    "OCPP_MQTT_BUFFER": "100000",
}
BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
persistence false
max_inflight_messages 1000
max_queued_messages 100000
log_dest stderr
log_type error
log_type warning
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    identities = charger_ids(args.chargers)
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for server in SERVERS:
            if runs:
                time.sleep(PAUSE_S)
            if server == "echo":
                report = compare_echo.measure("echo", identities, args)
            else:
                report = measure_relay(identities, args)
            runs.append({"server": server, "repeat": repeat} | report)
    result = summarise(args, runs)
    print(orjson.dumps(result).decode())
    return 1 if result["errors"] else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare_mqtt", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--chargers", type=bounded(int, 1, fleet.MAX_CHARGERS), default=500, help="default 500"
    )
    parser.add_argument(
        "--seconds", type=bounded(float, 0.1, 600.0), default=10.0, help="default 10"
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="ocpp1.6")
    parser.add_argument(
        "--repeats",
        type=bounded(int, 1, 10),
        default=2,
        help="echo-then-relay pairs measured (default 2)",
    )
    fleet.add_load_options(parser)
    return parser


# -- the relay: broker, responder, gateway ----------------------------------


def measure_relay(identities: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    """One ``bench.fleet`` run against a fresh broker, responder and gateway."""
    with tempfile.TemporaryDirectory(prefix="ocppgw-mqtt-") as name:
        folder = Path(name)
        with contextlib.ExitStack() as stack:
            broker = stack.enter_context(mosquitto(folder))
            responder = stack.enter_context(mqtt_responder(broker.port, folder))
            gateway = stack.enter_context(mqtt_gateway(identities, broker.port, folder))
            metered = MeteredRelay(
                gateway.process,
                gateway.port,
                gateway.log_path,
                companions={"broker": broker.pid, "responder": responder.pid},
            )
            report = uvloop.run(fleet.run(args, metered.url, metered))
            report["server_log_lines"] = len(gateway.log_lines())
            report["broker_log_lines"] = len(broker.log_lines())
            report["responder_log_lines"] = len(responder.log_lines())
    report |= metered.split(report)
    return report | metered.companion_split(report)


@contextlib.contextmanager
def mosquitto(folder: Path) -> Iterator[GatewayProcess]:
    """A private Mosquitto on a free loopback port until the block exits."""
    if not os.access(MOSQUITTO, os.X_OK):
        raise RuntimeError(f"{MOSQUITTO} is not installed")
    port = free_port()
    config = folder / "mosquitto.conf"
    lines = BROKER_CONFIG.format(port=port)
    if os.geteuid() == 0:
        lines += "user root\n"  # or it drops to a 'mosquitto' user that may not exist
    config.write_text(lines)
    log_path = folder / "mosquitto.log"
    process = spawn([MOSQUITTO, "-c", str(config)], log_path)
    try:
        broker = GatewayProcess(process, port, log_path)
        wait_until_listening(broker, "mosquitto")
        yield broker
    finally:
        stop(process)


@contextlib.contextmanager
def mqtt_responder(broker_port: int, folder: Path) -> Iterator[GatewayProcess]:
    """``python -m bench.mqtt_responder`` until the block exits; yields once it
    has printed ``ready`` (subscribed)."""
    log_path = folder / "responder.log"
    command = [sys.executable, "-m", "bench.mqtt_responder", "--port", str(broker_port)]
    process = spawn([*command, "--prefix", PREFIX], log_path, stdout=subprocess.PIPE)
    try:
        responder = GatewayProcess(process, broker_port, log_path)
        _wait_for_ready(responder)
        yield responder
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def mqtt_gateway(
    identities: Sequence[str],
    broker_port: int,
    folder: Path,
    *,
    settings: Mapping[str, str] = GATEWAY_ENV,
) -> Iterator[GatewayProcess]:
    """``ocppgw gateway`` relaying over the broker until the block exits; yields
    once ``/health`` answers 200 (its MQTT bus is up). ``settings``: its
    environment beyond ours (default: ``GATEWAY_ENV``, no quotas)."""
    data_dir = folder / "data"
    register(identities, data_dir)
    port = free_port()
    log_path = folder / "gateway.log"
    command = [sys.executable, "-m", "ocppgw", "gateway", "--host", LOOPBACK, "--port", str(port)]
    env = {**os.environ, **settings, "MQTT_URL": f"mqtt://{LOOPBACK}:{broker_port}"}
    process = spawn([*command, "--data-dir", str(data_dir)], log_path, env=env)
    try:
        gateway = GatewayProcess(process, port, log_path)
        _wait_until_healthy(gateway)
        yield gateway
    finally:
        stop(process)


def spawn(
    command: list[str],
    log_path: Path,
    *,
    stdout: int = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=log
        )


def _failed(server: GatewayProcess, what: str) -> RuntimeError:
    return RuntimeError(
        f"{what} exited with status {server.process.returncode}:\n"
        + "\n".join(server.log_lines()[-20:])
    )


def wait_until_listening(server: GatewayProcess, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise _failed(server, what)
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, server.port), 1.0):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen within {START_TIMEOUT:.0f} s")


def _wait_for_ready(server: GatewayProcess) -> None:
    stdout = server.process.stdout
    if stdout is None:
        raise RuntimeError("the gateway process was started without a stdout pipe")
    deadline = time.monotonic() + START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(min(left, 0.5)):
                line = stdout.readline()
                if line.strip() == b"ready":
                    return
                if not line:  # end of file: it exited
                    server.process.wait(5)
                    raise _failed(server, "the MQTT responder")
            elif server.process.poll() is not None:
                raise _failed(server, "the MQTT responder")
    raise RuntimeError(f"the MQTT responder was not ready within {START_TIMEOUT:.0f} s")


@dataclass(frozen=True, slots=True)
class MeteredRelay(compare_echo.MeteredServer):
    """The gateway, metered as ``compare_echo`` meters a server, and beside it
    the CPU time of the broker and the responder at the same two instants."""

    companions: dict[str, int] = field(default_factory=dict)
    companion_readings: list[dict[str, float]] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        self.companion_readings.append(
            {name: read_cpu_seconds(pid) for name, pid in self.companions.items()}
        )
        return compare_echo.MeteredServer.cpu_seconds(self)

    def companion_split(self, report: dict[str, Any]) -> dict[str, Any]:
        """Each companion's CPU per round trip (µs) and cores busy; the whole
        relay's CPU per round trip; and ``other_cpu_utilisation`` without them."""
        round_trips, elapsed = report["round_trips"], report["elapsed_s"]
        if len(self.companion_readings) != 2 or not round_trips:
            return {}
        before, after = self.companion_readings
        spent = {name: after[name] - before[name] for name in self.companions}
        result: dict[str, Any] = {}
        for name, seconds in spent.items():
            result[f"{name}_cpu_s"] = round(seconds, 2)
            result[f"{name}_cpu_us_per_round_trip"] = round(seconds / round_trips * 1e6, 1)
            result[f"{name}_cpu_utilisation"] = round(seconds / elapsed, 3)
        relay = report["server_cpu_s"] + sum(spent.values())
        result["relay_cpu_us_per_round_trip"] = round(relay / round_trips * 1e6, 1)
        other = report.get("other_cpu_utilisation")
        if other is not None:
            result["other_cpu_utilisation"] = round(other - sum(spent.values()) / elapsed, 3)
        return result


# -- the summary ----------------------------------------------------------------


def summarise(args: argparse.Namespace, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per server, the gateway-to-echo ratio, and every run in brief."""
    echo_runs = [r for r in runs if r["server"] == "echo"]
    relay_runs = [r for r in runs if r["server"] == "relay"]
    echo = _medians(echo_runs)
    gateway = _medians(relay_runs)
    for name in (*COMPANIONS, "relay"):
        gateway[f"{name}_cpu_us_per_round_trip"] = _median(
            relay_runs, f"{name}_cpu_us_per_round_trip", 1
        )
    for name in COMPANIONS:
        gateway[f"{name}_cpu_utilisation"] = _median(relay_runs, f"{name}_cpu_utilisation", 3)
    echo_us = echo["server_cpu_us_per_round_trip"]
    gateway_us = gateway["server_cpu_us_per_round_trip"]
    others = [
        r["other_cpu_utilisation"] for r in runs if r.get("other_cpu_utilisation") is not None
    ]
    max_other = max(others) if others else None
    return {
        "chargers": args.chargers,
        "protocol": args.protocol,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "echo": echo,
        "gateway_over_mqtt": gateway,
        "ratio_gateway_to_echo": compare_echo.cpu_ratio(gateway_us, echo_us),
        "pair_ratios": [
            compare_echo.cpu_ratio(
                g["server_cpu_us_per_round_trip"], e["server_cpu_us_per_round_trip"]
            )
            for e, g in zip(echo_runs, relay_runs, strict=True)
        ],
        "ratio_relay_total_to_echo": compare_echo.cpu_ratio(
            gateway["relay_cpu_us_per_round_trip"], echo_us
        ),
        "max_other_cpu_utilisation": max_other,
        "noisy": max_other is not None and max_other > compare_echo.NOISE_LIMIT,
        "errors": sum(r["errors"] for r in runs),
        "runs": [_brief(r) for r in runs],
    }


def _median(runs: Sequence[dict[str, Any]], key: str, digits: int) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), digits) if values else None


def _medians(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = {
        "server_cpu_us_per_round_trip": 1,
        "server_user_us_per_round_trip": 1,
        "server_system_us_per_round_trip": 1,
        "server_cpu_utilisation": 3,
        "other_cpu_utilisation": 3,
        "round_trips_per_s": 0,
    }
    result = {key: _median(runs, key, digits) for key, digits in keys.items()}
    result["client_cpu_utilisation"] = round(
        statistics.median(r["client_cpu_s"] / r["elapsed_s"] for r in runs), 3
    )
    for rank in ("p50", "p99"):
        result[f"latency_{rank}_ms"] = round(
            statistics.median(r["latency_ms"][rank] or 0 for r in runs), 3
        )
    return result


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    companions = tuple(f"{name}_cpu_us_per_round_trip" for name in (*COMPANIONS, "relay"))
    logs = tuple(f"{name}_log_lines" for name in COMPANIONS)
    keys = (*compare_echo.RUN_KEYS, *companions, *compare_echo.RUN_CHECKS, *logs)
    return compare_echo.brief(run, keys) | {"latency_ms": run["latency_ms"]}


if __name__ == "__main__":
    sys.exit(main())
