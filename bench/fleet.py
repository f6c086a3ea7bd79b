"""Load test: a fleet of simulated chargers heartbeating as fast as the server answers.

    .venv/bin/python -m bench.fleet --chargers 500 --seconds 10 [--protocol ocpp2.0.1]

Every charger connects and boots, then runs a closed loop of Heartbeats for
``--seconds``: one CALL outstanding, the next sent when the answer arrives.
Throughput is therefore the server's, not an offered rate, and latency is
what a charger sees with ``--chargers`` peers competing for the server.

Without ``--url`` the embedded system runs in a subprocess started here, and
its CPU time over the load window gives the cost of one round trip. With
``--url`` an already running gateway is used (its charge points named
``BENCH00000``... must be registered) and no CPU figures are reported.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import resource
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import uvloop

from .arguments import add_connect_batch, bounded
from .charger import (
    PROTOCOLS,
    SPARE_FILES,
    Recorder,
    SimulatedCharger,
    charger_ids,
    close_all,
    connect_fleet,
    raise_open_file_limit,
)
from .gateway_process import GatewayProcess, embedded_gateway, listen_overflows

__all__ = ["latency_summary", "main"]

#: Chargers one run may simulate: one descriptor each, 20,000 per process here.
MAX_CHARGERS = 8000
#: Longest load window accepted, in seconds.
MAX_SECONDS = 3600.0
#: Answers one charger may get in a run, so that a run's memory is bounded too.
DEFAULT_MAX_CALLS = 100_000
#: Seconds past ``--seconds`` for the last answers before they count as timeouts.
GRACE = 10.0


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
    raise_open_file_limit(args.chargers + SPARE_FILES)
    identities = charger_ids(args.chargers)
    if args.url is not None:
        result = uvloop.run(run(args, args.url, None))
    else:
        with embedded_gateway(identities) as gateway:
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
    parser.add_argument(
        "--max-calls",
        type=bounded(int, 1, 10 * DEFAULT_MAX_CALLS),
        default=DEFAULT_MAX_CALLS,
        help=f"heartbeats per charger at most (default {DEFAULT_MAX_CALLS})",
    )
    add_connect_batch(parser)
    return parser


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


async def run(args: argparse.Namespace, url: str, gateway: GatewayProcess | None) -> dict[str, Any]:
    recorder = Recorder()
    overflows = listen_overflows()
    started = time.perf_counter()
    chargers = await connect_fleet(
        url, charger_ids(args.chargers), args.protocol, recorder, batch=args.connect_batch
    )
    connect = ConnectPhase(len(chargers), time.perf_counter() - started, _since(overflows))
    try:
        window = await heartbeat_phase(chargers, args.seconds, args.max_calls, gateway)
    finally:
        await close_all(chargers)
    return report(args, connect, window, recorder)


def _since(overflows: int | None) -> int | None:
    now = listen_overflows()
    return None if now is None or overflows is None else now - overflows


async def heartbeat_phase(
    chargers: Sequence[SimulatedCharger],
    seconds: float,
    max_calls: int,
    gateway: GatewayProcess | None,
) -> LoadWindow:
    """Run every charger's closed loop; measure wall and CPU time around it."""
    cpu_before = gateway.cpu_seconds() if gateway else None
    client_before = _own_cpu_seconds()
    started = time.perf_counter()
    deadline = time.monotonic() + seconds
    loops = [charger.start_heartbeats(deadline, max_calls) for charger in chargers]
    if loops:
        await asyncio.wait(loops, timeout=seconds + GRACE)
    elapsed = time.perf_counter() - started
    server_cpu = gateway.cpu_seconds() - cpu_before if gateway and cpu_before is not None else None
    client_cpu = _own_cpu_seconds() - client_before
    for charger in chargers:
        charger.abandon()
    return LoadWindow(elapsed, server_cpu, client_cpu)


def report(
    args: argparse.Namespace, connect: ConnectPhase, window: LoadWindow, recorder: Recorder
) -> dict[str, Any]:
    round_trips = len(recorder.latencies_ns)
    cpu = window.server_cpu_s
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
        "latency_ms": latency_summary(recorder.latencies_ns),
        "errors": sum(recorder.errors.values()),
        "error_kinds": dict(recorder.errors),
        "server_cpu_s": None if cpu is None else round(cpu, 2),
        "server_cpu_us_per_round_trip": (
            None if cpu is None or not round_trips else round(cpu / round_trips * 1e6, 1)
        ),
        "server_cpu_utilisation": None if cpu is None else round(cpu / window.elapsed_s, 3),
        "client_cpu_s": round(window.client_cpu_s, 2),
    }


def latency_summary(latencies_ns: list[int]) -> dict[str, float | None]:
    """p50/p90/p99 (nearest rank) and max, in milliseconds."""
    ordered = sorted(latencies_ns)

    def rank(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1e6, 3)

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": rank(1.0)}


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
