"""One load-generator process: a slice of the simulated fleet, driven line by line.

    python -m bench.loadgen '{"url": "ws://127.0.0.1:8080", "first": 0, "count": 5000}'

``bench.driver`` starts one of these per slice of the fleet, so that a fleet
larger than one process's descriptor limit (20,000 here), or than one
core's worth of clients, spreads over several processes. Each slice's
sockets come from their own source addresses (127.0.0.2 + index / 1000), so
no source address runs out of ephemeral ports.

The driver sends one JSON command per line on stdin and waits for the event
that ends it on stdout; every quarter second the process also writes a
``progress`` event (connected chargers, CALLs sent and answered, errors):

=========================================  ====================================
command                                    ends with
=========================================  ====================================
``{"cmd": "connect", "rate": R,            ``connected``: chargers connect and
"concurrency": C}``                         boot at R per second (0: unpaced), C
                                            at most in progress at once
``{"cmd": "load", "mode": M, "seconds":    ``loaded``: ``closed`` heartbeat loop,
S, ...}``                                   ``mix`` (standard mix) or ``idle``
``{"cmd": "drop"}``                         ``reconnected``: every connection is
                                            cut at once and every charger
                                            reconnects and boots, retrying
``{"cmd": "finish"}``                       ``result``: the recorder; then exit
=========================================  ====================================
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import uvloop

from .charger import (
    SPARE_FILES,
    MixPlan,
    Recorder,
    SimulatedCharger,
    charger_ids,
    close_all,
    connect_one,
    protocol_of,
    raise_open_file_limit,
    source_address,
    spreads_sources,
)

__all__ = ["Slice", "main"]

#: Seconds between two progress events.
PROGRESS_PERIOD = 0.25
#: Seconds past a load window for the last answers before they count as unanswered.
GRACE = 10.0
#: Seconds between a failed reconnection and the next attempt, in a storm.
RETRY_S = 0.25
#: Seconds a storm may take before the chargers still out are given up.
STORM_LIMIT_S = 120.0
#: BootNotifications a refused charger sends again before it gives up its
#: connection (each refusal is counted as a CALLERROR).
BOOT_RETRIES = 8
#: Connections opening at once when connecting at a rate.
CONCURRENT_CONNECTS = 1000


@dataclass(frozen=True, slots=True)
class Slice:
    """The part of the fleet one process simulates."""

    url: str
    first: int
    count: int
    prefix: str = "BENCH"
    ratio_201: float = 0.0
    seed: int = 0

    @classmethod
    def from_json(cls, text: str) -> Slice:
        return cls(**orjson.loads(text))


class LoadGenerator:
    """Runs the driver's commands over this slice's chargers."""

    def __init__(self, fleet: Slice) -> None:
        self.fleet = fleet
        self.recorder = Recorder()
        self.identities = charger_ids(fleet.count, fleet.prefix, fleet.first)
        self.chargers: list[SimulatedCharger | None] = [None] * fleet.count
        self._spread = spreads_sources(fleet.url)
        self._rng = random.Random(fleet.seed * 1_000_003 + fleet.first)
        self._attempts = 0

    # -- commands -------------------------------------------------------------

    async def connect(self, rate: float, concurrency: int) -> dict[str, Any]:
        """Connect and boot every charger, ``rate`` new ones per second (0: as fast
        as they can), at most ``concurrency`` of them in progress at once."""
        started = time.perf_counter()
        slots = asyncio.Semaphore(concurrency)
        tasks: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for n in range(self.fleet.count):
            if rate > 0:
                delay = begin + n / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await slots.acquire()
            task = asyncio.create_task(self._connect(n))
            task.add_done_callback(lambda _: slots.release())
            tasks.append(task)
        await asyncio.gather(*tasks)
        return {"elapsed_s": time.perf_counter() - started} | self._counts()

    async def load(self, mode: str, seconds: float, options: dict[str, Any]) -> dict[str, Any]:
        chargers = self.connected()
        started = time.perf_counter()
        if mode == "closed":
            deadline = time.monotonic() + seconds
            loops = [c.start_heartbeats(deadline, int(options["max_calls"])) for c in chargers]
            if loops:
                await asyncio.wait(loops, timeout=seconds + GRACE)
            for charger in chargers:
                charger.abandon()
        elif mode == "mix":
            plan = MixPlan(**options.get("plan", {}))
            until = asyncio.get_running_loop().time() + seconds
            runs = [asyncio.create_task(c.run_mix(until, plan, self._rng)) for c in chargers]
            if runs:
                _, late = await asyncio.wait(runs, timeout=seconds + GRACE)
                for task in late:
                    task.cancel()
        elif mode == "idle":
            await asyncio.sleep(seconds)
        else:
            raise ValueError(f"unknown load mode {mode!r}")
        return {"elapsed_s": time.perf_counter() - started, "unanswered": self.unanswered()}

    async def drop(self) -> dict[str, Any]:
        """Cut every connection at once (no close handshake, as when a network
        path or a gateway task fails), then reconnect them all at once,
        each retrying every ``RETRY_S`` until it is back or the storm is over."""
        dropped = self.connected()
        for charger in dropped:
            if charger.transport is not None:
                charger.transport.disconnect(graceful=False)
        attempts_before = self._attempts
        started = time.perf_counter()
        deadline = time.monotonic() + STORM_LIMIT_S
        self.chargers = [None] * self.fleet.count
        await asyncio.gather(*(self._reconnect(n, deadline) for n in range(self.fleet.count)))
        elapsed = time.perf_counter() - started
        return {
            "elapsed_s": elapsed,
            "dropped": len(dropped),
            "attempts": self._attempts - attempts_before,
        } | self._counts()

    async def finish(self) -> dict[str, Any]:
        unanswered = self.unanswered()
        await close_all(self.connected())
        return {"recorder": self.recorder.to_json(), "unanswered": unanswered} | self._counts()

    # -- helpers --------------------------------------------------------------

    async def _connect(self, n: int) -> None:
        self._attempts += 1
        source = source_address(self.fleet.first + n) if self._spread else None
        self.chargers[n] = await connect_one(
            self.fleet.url,
            self.identities[n],
            protocol_of(self.fleet.first + n, self.fleet.ratio_201),
            self.recorder,
            source=source,
            boot_retries=BOOT_RETRIES,
        )

    async def _reconnect(self, n: int, deadline: float) -> None:
        while self.chargers[n] is None and time.monotonic() < deadline:
            await self._connect(n)
            if self.chargers[n] is None:
                await asyncio.sleep(RETRY_S)

    def connected(self) -> list[SimulatedCharger]:
        return [c for c in self.chargers if c is not None and c.transport is not None]

    def unanswered(self) -> int:
        return sum(c.unanswered() for c in self.chargers if c is not None)

    def _counts(self) -> dict[str, Any]:
        return {"connected": len(self.connected()), "attempts_total": self._attempts}

    def progress(self) -> dict[str, Any]:
        recorder = self.recorder
        return {
            "connected": len(self.connected()),
            "sent": sum(recorder.sent.values()),
            "answered": sum(recorder.answered.values()),
            "errors": sum(recorder.errors.values()),
        }


async def serve(fleet: Slice) -> None:
    """Read commands from stdin until ``finish`` (or end of input)."""
    generator = LoadGenerator(fleet)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    reporter = asyncio.create_task(_report_progress(generator))
    try:
        while line := await reader.readline():
            command = orjson.loads(line)
            match command["cmd"]:
                case "connect":
                    rate = float(command.get("rate", 0))
                    concurrency = int(command.get("concurrency", CONCURRENT_CONNECTS))
                    _emit("connected", await generator.connect(rate, concurrency))
                case "load":
                    outcome = await generator.load(
                        command["mode"], float(command["seconds"]), command
                    )
                    _emit("loaded", outcome)
                case "drop":
                    _emit("reconnected", await generator.drop())
                case "finish":
                    _emit("result", await generator.finish())
                    return
                case other:
                    raise ValueError(f"unknown command {other!r}")
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter


async def _report_progress(generator: LoadGenerator) -> None:
    while True:
        _emit("progress", generator.progress())
        await asyncio.sleep(PROGRESS_PERIOD)


def _emit(event: str, body: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps({"event": event, **body}) + b"\n")
    sys.stdout.buffer.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    fleet = Slice.from_json(args[0])
    raise_open_file_limit(fleet.count + SPARE_FILES)
    uvloop.run(serve(fleet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
