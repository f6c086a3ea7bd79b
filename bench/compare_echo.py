"""Server CPU per round trip: the gateway against a bare picows + uvloop echo server.

    .venv/bin/python -m bench.compare_echo --chargers 500 --seconds 10

The design target: the CPU the gateway spends per relayed round trip (CALL
in, CALLRESULT out) is within 2x of what a bare picows + uvloop echo server
spends per echo, measured in the same run. Both servers get the same load,
one after the other, each in a subprocess of its own: ``bench.echo_server``
and ``ocppgw dev`` (started as ``bench.fleet`` starts it). The load is
``bench.fleet``'s: ``--chargers`` simulated chargers connect, boot, and run a
closed loop of Heartbeats for ``--seconds``; the server's CPU time (utime +
stime of all its threads, from ``/proc/<pid>/stat``) is read around that
window. The pair is measured ``--repeats`` times, alternating (echo, gateway,
echo, gateway by default), and medians are reported.

The gateway's figure includes the processor (routing, schema validation, the
Heartbeat handler, encoding), which runs in the same process in the embedded
default. Its own share is not measured here but taken from the pytest-benchmark
figure of bench/README.md (``--processor-us``), so that
``gateway_relay_us_per_round_trip`` = gateway - processor is the relay alone.

Each run also reports the server's CPU split into user and system time, and
``other_cpu_utilisation``: the machine's busy time (``/proc/stat``) that
neither the server nor the load generator was charged with, in cores. It is
about 0 on a quiet machine; above ``NOISE_LIMIT`` the summary says
``"noisy": true`` and the run should be repeated when the machine is idle.
Prints one JSON object; the exit status is 1 if any run counted an error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop

from . import fleet
from .arguments import bounded
from .charger import PROTOCOLS, charger_ids
from .gateway_process import LOOPBACK, GatewayProcess, embedded_gateway, free_port, stop

__all__ = ["main", "summarise"]

#: The design target: gateway CPU per round trip at most this many echoes' worth.
TARGET_RATIO = 2.0
#: ``Processor.handle`` of one Heartbeat, in µs: the median per frame of
#: ``test_processor_heartbeat_x100[...]`` in bench/README.md ("Micro-benchmarks").
PROCESSOR_US_PER_HEARTBEAT = {"ocpp1.6": 5.22, "ocpp2.0.1": 5.25}
#: ``other_cpu_utilisation`` (of one core) above which a run counts as disturbed.
NOISE_LIMIT = 0.1
#: Seconds the echo server gets to listen after it was started.
START_TIMEOUT = 30.0
#: Seconds between two measurements, for the previous server's sockets to go.
PAUSE_S = 1.0
#: The repository root, from where ``python -m bench.echo_server`` is found.
ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("echo", "gateway")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.processor_us is None:
        args.processor_us = PROCESSOR_US_PER_HEARTBEAT[args.protocol]
    identities = charger_ids(args.chargers)
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for server in SERVERS:
            if runs:
                time.sleep(PAUSE_S)
            runs.append({"server": server, "repeat": repeat} | measure(server, identities, args))
    result = summarise(args, runs)
    print(orjson.dumps(result).decode())
    return 1 if result["errors"] else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare_echo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--chargers",
        type=bounded(int, 1, fleet.MAX_CHARGERS),
        default=500,
        help="default 500",
    )
    parser.add_argument(
        "--seconds", type=bounded(float, 0.1, 600.0), default=10.0, help="default 10"
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="ocpp1.6")
    parser.add_argument(
        "--repeats",
        type=bounded(int, 1, 10),
        default=2,
        help="echo-then-gateway pairs measured (default 2)",
    )
    parser.add_argument(
        "--processor-us",
        type=bounded(float, 0.0, 1000.0),
        help="the processor's CPU per Heartbeat in µs (default: bench/README.md's figure)",
    )
    fleet.add_load_options(parser)
    return parser


def measure(server: str, identities: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    """One ``bench.fleet`` run against a fresh ``server`` subprocess."""
    start = echo_server() if server == "echo" else embedded_gateway(identities)
    with start as process:
        metered = MeteredServer(process.process, process.port, process.log_path)
        report = uvloop.run(fleet.run(args, metered.url, metered))
        report["server_log_lines"] = len(process.log_lines())
    report |= metered.split(report)
    return report


@dataclass(frozen=True, slots=True)
class Reading:
    """CPU counters at one instant, in seconds: the server's and the machine's."""

    user: float
    system: float
    #: ``/proc/stat`` line ``cpu``: all cores, every process (and no process).
    machine_busy: float
    machine_softirq: float


@dataclass(frozen=True, slots=True)
class MeteredServer(GatewayProcess):
    """A server whose CPU readings (``bench.fleet`` takes one before and one
    after the load window) are also kept split into user and system time,
    next to the whole machine's counters."""

    readings: list[Reading] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        user, system = read_user_system_seconds(self.pid)
        busy, softirq = read_machine_seconds()
        self.readings.append(Reading(user, system, busy, softirq))
        return user + system

    def split(self, report: dict[str, Any]) -> dict[str, float | None]:
        """User and system CPU per round trip over the window, in µs; and, as
        a fraction of one core, the machine's softirq time and the CPU time
        of neither the server nor the load generator (other processes, and
        softirq work that no process was charged with)."""
        round_trips, elapsed = report["round_trips"], report["elapsed_s"]
        if len(self.readings) != 2 or not round_trips:
            return dict.fromkeys(_SPLIT_KEYS)
        before, after = self.readings
        user, system = after.user - before.user, after.system - before.system
        busy = after.machine_busy - before.machine_busy
        other = busy - user - system - report["client_cpu_s"]
        return {
            "server_user_us_per_round_trip": round(user / round_trips * 1e6, 1),
            "server_system_us_per_round_trip": round(system / round_trips * 1e6, 1),
            "machine_softirq_utilisation": round(
                (after.machine_softirq - before.machine_softirq) / elapsed, 3
            ),
            "other_cpu_utilisation": round(other / elapsed, 3),
        }


_SPLIT_KEYS = (
    "server_user_us_per_round_trip",
    "server_system_us_per_round_trip",
    "machine_softirq_utilisation",
    "other_cpu_utilisation",
)


def read_user_system_seconds(pid: int) -> tuple[float, float]:
    """utime and stime of every thread of ``pid`` (``/proc/<pid>/stat``), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks  # fields 14 and 15 of stat


def read_machine_seconds() -> tuple[float, float]:
    """Busy time of all cores (user, nice, system, irq, softirq, steal) and
    softirq time alone, from the first line of ``/proc/stat``, in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    ticks = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / ticks, softirq / ticks


@contextlib.contextmanager
def echo_server() -> Iterator[GatewayProcess]:
    """``python -m bench.echo_server`` on a free loopback port until the block
    exits, then stopped (SIGTERM, then kill)."""
    with tempfile.TemporaryDirectory(prefix="ocppgw-echo-") as folder:
        port = free_port()
        log_path = Path(folder) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.echo_server", "--port", str(port)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            echo = GatewayProcess(process, port, log_path)
            _wait_until_listening(echo)
            yield echo
        finally:
            stop(process)


def _wait_until_listening(server: GatewayProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the echo server exited with status {server.process.returncode}:\n"
                + "\n".join(server.log_lines()[-20:])
            )
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, server.port), 1.0):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the echo server did not listen within {START_TIMEOUT:.0f} s")


def summarise(args: argparse.Namespace, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per server, their ratio, and every run in brief."""
    median = {server: _medians([r for r in runs if r["server"] == server]) for server in SERVERS}
    echo_us = median["echo"]["server_cpu_us_per_round_trip"]
    gateway_us = median["gateway"]["server_cpu_us_per_round_trip"]
    ratio = cpu_ratio(gateway_us, echo_us)
    relay_us = None if gateway_us is None else round(gateway_us - args.processor_us, 1)
    others = [r["other_cpu_utilisation"] for r in runs if r["other_cpu_utilisation"] is not None]
    max_other = max(others) if others else None
    return {
        "chargers": args.chargers,
        "protocol": args.protocol,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "echo": median["echo"],
        "gateway": median["gateway"],
        "ratio_gateway_to_echo": ratio,
        "target_ratio": TARGET_RATIO,
        "within_target": ratio is not None and ratio <= TARGET_RATIO,
        "pair_ratios": [
            cpu_ratio(g["server_cpu_us_per_round_trip"], e["server_cpu_us_per_round_trip"])
            for e, g in zip(runs[0::2], runs[1::2], strict=True)
        ],
        "processor_us_per_round_trip": args.processor_us,
        "processor_us_source": "bench/README.md, test_processor_heartbeat_x100 median per frame",
        "gateway_relay_us_per_round_trip": relay_us,
        "ratio_relay_to_echo": cpu_ratio(relay_us, echo_us),
        "max_other_cpu_utilisation": max_other,
        "noisy": max_other is not None and max_other > NOISE_LIMIT,
        "errors": sum(r["errors"] for r in runs),
        "runs": [_brief(r) for r in runs],
    }


def _medians(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str, digits: int) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(values), digits) if values else None

    return {
        "server_cpu_us_per_round_trip": med("server_cpu_us_per_round_trip", 1),
        "server_user_us_per_round_trip": med("server_user_us_per_round_trip", 1),
        "server_system_us_per_round_trip": med("server_system_us_per_round_trip", 1),
        "machine_softirq_utilisation": med("machine_softirq_utilisation", 3),
        "other_cpu_utilisation": med("other_cpu_utilisation", 3),
        "round_trips_per_s": med("round_trips_per_s", 0),
        "server_cpu_utilisation": med("server_cpu_utilisation", 3),
        "client_cpu_utilisation": round(
            statistics.median(r["client_cpu_s"] / r["elapsed_s"] for r in runs), 3
        ),
        "latency_p50_ms": round(statistics.median(r["latency_ms"]["p50"] or 0 for r in runs), 3),
    }


def cpu_ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


#: What a run's summary keeps of it (``brief``): who, how much, what it cost ...
RUN_KEYS = (
    "server",
    "repeat",
    "connected",
    "round_trips",
    "round_trips_per_s",
    "server_cpu_s",
    "server_cpu_us_per_round_trip",
    "server_user_us_per_round_trip",
    "server_system_us_per_round_trip",
)
#: ... and how clean the measurement was.
RUN_CHECKS = (
    "other_cpu_utilisation",
    "client_cpu_s",
    "elapsed_s",
    "errors",
    "error_kinds",
    "server_log_lines",
)


def brief(run: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The ``keys`` a run has, for the summary's list of runs."""
    return {key: run[key] for key in keys if key in run}


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    keys = (*RUN_KEYS, "server_cpu_utilisation", "machine_softirq_utilisation", *RUN_CHECKS)
    return brief(run, keys) | {"latency_p50_ms": run["latency_ms"]["p50"]}


if __name__ == "__main__":
    sys.exit(main())
