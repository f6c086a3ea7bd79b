"""Server memory per idle charge point connection.

    .venv/bin/python -m bench.memory --chargers 2000

Most of a real fleet is idle most of the time: a charger boots, then sends a
Heartbeat every few minutes. What such a connection costs the server in
resident memory bounds how many charge points one gateway can hold, so it
is compared here with the design target of at most 8 KiB per idle charge
point. The server's VmRSS is read once the system is warm (one charger has
connected, booted and sent a Heartbeat, so lazily built state already
exists), and again after ``--chargers`` more have connected, booted and
gone quiet. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
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
    charger_ids,
    close_all,
    connect_fleet,
    raise_open_file_limit,
)
from .gateway_process import GatewayProcess, embedded_gateway, health

__all__ = ["main"]

#: The design target: resident memory per idle charge point, in KiB.
DESIGN_TARGET_KB = 8
#: Upper bound on --chargers: the server and this process each hold one
#: descriptor per charger, and both may open at most 20,000 files here.
MAX_CHARGERS = 19000
#: Seconds the warm-up Heartbeat may take.
WARM_UP_TIMEOUT = 10.0
#: Seconds to let the server settle (frees, writer thread) before reading VmRSS.
SETTLE_S = 2.0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    raise_open_file_limit(args.chargers + 1 + SPARE_FILES)
    identities = charger_ids(args.chargers + 1)
    with embedded_gateway(identities) as gateway:
        reading = uvloop.run(measure(gateway, identities, args))
        result = report(args, reading) | {"server_log_lines": len(gateway.log_lines())}
    print(orjson.dumps(result).decode())
    return 1 if result["errors"] else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--chargers", type=bounded(int, 1, MAX_CHARGERS), default=2000, help="default 2000"
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="ocpp1.6")
    parser.add_argument(
        "--settle",
        type=bounded(float, 0.0, 60.0),
        default=SETTLE_S,
        help=f"seconds idle before the second reading (default {SETTLE_S:.0f})",
    )
    add_connect_batch(parser)
    return parser


@dataclass(frozen=True, slots=True)
class Reading:
    """The server's VmRSS around connecting the idle fleet."""

    rss_before_kb: int
    rss_after_kb: int
    connected: int
    server_connections: object
    recorder: Recorder


async def measure(
    gateway: GatewayProcess, identities: Sequence[str], args: argparse.Namespace
) -> Reading:
    """Warm up with the first identity, then connect the rest and compare VmRSS."""
    recorder = Recorder()
    warm = await connect_fleet(gateway.url, identities[:1], args.protocol, recorder, batch=1)
    if warm:
        async with asyncio.timeout(WARM_UP_TIMEOUT):
            await warm[0].call(b'[2,"warm","Heartbeat",{}]', "warm")
    await asyncio.sleep(args.settle)
    rss_before = gateway.rss_kb()
    fleet = await connect_fleet(
        gateway.url, identities[1:], args.protocol, recorder, batch=args.connect_batch
    )
    await asyncio.sleep(args.settle)
    rss_after = gateway.rss_kb()
    server_view = await asyncio.to_thread(health, gateway.port)
    await close_all([*warm, *fleet])
    return Reading(rss_before, rss_after, len(fleet), server_view.get("connections"), recorder)


def report(args: argparse.Namespace, reading: Reading) -> dict[str, Any]:
    grown = reading.rss_after_kb - reading.rss_before_kb
    per_connection = grown / reading.connected if reading.connected else None
    return {
        "chargers": args.chargers,
        "connected": reading.connected,
        "server_connections": reading.server_connections,
        "protocol": args.protocol,
        "rss_before_kb": reading.rss_before_kb,
        "rss_after_kb": reading.rss_after_kb,
        "kb_per_connection": None if per_connection is None else round(per_connection, 2),
        "design_target_kb_per_connection": DESIGN_TARGET_KB,
        "meets_design_target": per_connection is not None and per_connection <= DESIGN_TARGET_KB,
        "errors": sum(reading.recorder.errors.values()),
        "error_kinds": dict(reading.recorder.errors),
    }


if __name__ == "__main__":
    sys.exit(main())
