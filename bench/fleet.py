"""Load test: a fleet of simulated chargers heartbeating as fast as the server answers.

    .venv/bin/python -m bench.fleet --chargers 500 --seconds 10 [--protocol ocpp2.0.1]

Every charger connects and boots, then runs a closed loop of Heartbeats for
``--seconds``: one CALL outstanding, the next sent when the answer arrives.
Throughput is therefore the server's, not an offered rate, and latency is
what a charger sees with ``--chargers`` peers competing for the server.

The chargers run in ``--processes`` load-generator processes (``bench.loadgen``).
Without ``--url`` the embedded system runs in a subprocess started here, and
its CPU time over the load window gives the cost of one round trip. With
``--url`` an already running gateway is used (its charge points named
``BENCH00000``... must be registered) and no CPU figures are reported.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import uvloop

from .arguments import add_connect_batch, bounded
from .charger import PROTOCOLS, Recorder, charger_ids
from .driver import Fleet, read_process
from .gateway_process import embedded_gateway, listen_overflows
from .loadgen import GRACE

__all__ = ["add_load_options", "add_max_calls", "main", "run"]

#: Chargers one run may simulate: the server holds one descriptor each, and
#: may open at most 20,000 files here.
MAX_CHARGERS = 19_000
#: Longest load window accepted, in seconds.
MAX_SECONDS = 3600.0
#: Answers one charger may get in a run, so that a run's memory is bounded too.
DEFAULT_MAX_CALLS = 100_000


class Metered(Protocol):
    """A server whose CPU time can be read (``GatewayProcess`` and its kin)."""

    def cpu_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ConnectPhase:
    """Connecting and booting the fleet: how many made it, and how long it took."""

    connected: int
    elapsed_s: float
    listen_overflows: int | None


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """The heartbeat phase as measured: wall time and the server's CPU time."""

    elapsed_s: float
    server_cpu_s: float | None
    client_cpu_s: float


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.url is not None:
        result = uvloop.run(run(args, args.url, None))
    else:
        with embedded_gateway(charger_ids(args.chargers)) as gateway:
            result = uvloop.run(run(args, gateway.url, gateway))
            result["server_log_lines"] = len(gateway.log_lines())
    print(orjson.dumps(result).decode())
    return 1 if result["errors"] else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--chargers", type=bounded(int, 1, MAX_CHARGERS), default=500, help="default 500"
    )
    parser.add_argument(
        "--seconds", type=bounded(float, 0.1, MAX_SECONDS), default=10.0, help="default 10"
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="ocpp1.6")
    parser.add_argument(
        "--url", type=_loopback_url, help="an already running gateway, ws://127.0.0.1:PORT"
    )
    add_load_options(parser)
    return parser


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The options every closed-loop tool shares."""
    add_max_calls(parser)
    parser.add_argument(
        "--processes",
        type=bounded(int, 1, 8),
        default=1,
        help="load-generator processes (default 1: one core for the load)",
    )
    add_connect_batch(parser)


def add_max_calls(parser: argparse._ActionsContainer) -> None:
    """``--max-calls``: the closed loop's bound on answers per charger."""
    parser.add_argument(
        "--max-calls",
        type=bounded(int, 1, 10 * DEFAULT_MAX_CALLS),
        default=DEFAULT_MAX_CALLS,
        help=f"heartbeats per charger at most (default {DEFAULT_MAX_CALLS:,})",
    )


def _loopback_url(text: str) -> str:
    """Only loopback targets: this tool floods whatever it points at."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme != "ws" or parsed.hostname is None:
        raise argparse.ArgumentTypeError("expected ws://HOST:PORT")
    if parsed.hostname != "localhost" and not _is_loopback_ip(parsed.hostname):
        raise argparse.ArgumentTypeError(f"{parsed.hostname} is not a loopback address")
    return text.rstrip("/")


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run(args: argparse.Namespace, url: str, gateway: Metered | None) -> dict[str, Any]:
    """Connect the fleet, run the closed loop for ``args.seconds`` with the
    server's CPU read around it, close the fleet; the report."""
    ratio_201 = 1.0 if args.protocol == "ocpp2.0.1" else 0.0
    fleet = await Fleet.start(url, args.chargers, ratio_201=ratio_201, processes=args.processes)
    try:
        overflows = listen_overflows()
        started = time.perf_counter()
        connect = {"cmd": "connect", "rate": 0, "concurrency": args.connect_batch}
        answers = await fleet.command(connect, 60.0)
        connected = ConnectPhase(
            sum(a["connected"] for a in answers),
            time.perf_counter() - started,
            _since(overflows),
        )
        cpu_before = gateway.cpu_seconds() if gateway else None
        client_before = _cpu_seconds(fleet.pids)
        started = time.perf_counter()
        load = {"cmd": "load", "mode": "closed", "seconds": args.seconds}
        await fleet.command(load | {"max_calls": args.max_calls}, args.seconds + GRACE)
        elapsed = time.perf_counter() - started
        server_cpu = (
            gateway.cpu_seconds() - cpu_before if gateway and cpu_before is not None else None
        )
        window = LoadWindow(elapsed, server_cpu, _cpu_seconds(fleet.pids) - client_before)
        recorder, _ = await fleet.finish()
    finally:
        await fleet.close()
    return report(args, connected, window, recorder)


def _since(overflows: int | None) -> int | None:
    now = listen_overflows()
    return None if now is None or overflows is None else now - overflows


def _cpu_seconds(pids: Sequence[int]) -> float:
    readings = (read_process(pid) for pid in pids)
    return sum(r.cpu_s for r in readings if r is not None)


def report(
    args: argparse.Namespace, connect: ConnectPhase, window: LoadWindow, recorder: Recorder
) -> dict[str, Any]:
    round_trips = recorder.answered["Heartbeat"]
    cpu = window.server_cpu_s
    latency = recorder.latency.summary()
    del latency["buckets"]
    return {
        "chargers": args.chargers,
        "connected": connect.connected,
        "protocol": args.protocol,
        "seconds": args.seconds,
        "elapsed_s": round(window.elapsed_s, 3),
        "connect_s": round(connect.elapsed_s, 3),
        "connect_batch": args.connect_batch,
        "listen_overflows": connect.listen_overflows,
        "round_trips": round_trips,
        "round_trips_per_s": round(round_trips / window.elapsed_s, 1),
        "latency_ms": latency,
        "errors": sum(recorder.errors.values()),
        "error_kinds": dict(recorder.errors),
        "server_cpu_s": None if cpu is None else round(cpu, 2),
        "server_cpu_us_per_round_trip": (
            None if cpu is None or not round_trips else round(cpu / round_trips * 1e6, 1)
        ),
        "server_cpu_utilisation": None if cpu is None else round(cpu / window.elapsed_s, 3),
        "client_cpu_s": round(window.client_cpu_s, 2),
    }


if __name__ == "__main__":
    sys.exit(main())
