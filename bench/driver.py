"""Driving a simulated fleet spread over load-generator processes, and watching
the system under test while it runs.

``Fleet`` starts one ``bench.loadgen`` process per slice of the fleet and
sends every process the same command at once (connect, load, drop, finish),
so all slices move through a scenario's phases together. ``Monitor`` samples,
about once a second, the fleet's progress and each watched process's CPU
time and resident memory from ``/proc``; those samples are the run's
timeline (the plots' source) and feed the progress bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from .charger import Recorder
from .gateway_process import read_cpu_seconds, read_rss_kb

__all__ = ["Fleet", "Monitor", "ProcessReading", "chargers_per_process"]

#: Chargers one load-generator process takes at most: its descriptors stay far
#: below the 20,000 a process may open here, and the work spreads over cores.
MAX_PER_PROCESS = 10_000
#: Seconds a command may take beyond what it asks for before the run fails.
COMMAND_SLACK_S = 180.0
ROOT = Path(__file__).resolve().parent.parent


def chargers_per_process(chargers: int, processes: int | None) -> list[int]:
    """Slice sizes: ``processes`` slices (default: as few as ``MAX_PER_PROCESS``
    allows), as equal as possible."""
    count = processes or max(1, math.ceil(chargers / MAX_PER_PROCESS))
    count = min(count, chargers)
    base, extra = divmod(chargers, count)
    return [base + (1 if n < extra else 0) for n in range(count)]


@dataclass(slots=True)
class _Generator:
    process: asyncio.subprocess.Process
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    progress: dict[str, Any] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        if self.process.stdout is None:
            raise RuntimeError("generator process started without a stdout pipe")
        while line := await self.process.stdout.readline():
            event = orjson.loads(line)
            if event["event"] == "progress":
                self.progress = event
            else:
                await self.events.put(event)
        await self.events.put({"event": "exit"})


class Fleet:
    """The simulated fleet, in ``len(slices)`` load-generator processes."""

    def __init__(self, generators: list[_Generator]) -> None:
        self._generators = generators

    @classmethod
    async def start(
        cls,
        url: str,
        chargers: int,
        *,
        ratio_201: float,
        processes: int | None = None,
        prefix: str = "BENCH",
        seed: int = 1,
    ) -> Fleet:
        generators = []
        first = 0
        for size in chargers_per_process(chargers, processes):
            spec = {
                "url": url,
                "first": first,
                "count": size,
                "prefix": prefix,
                "ratio_201": ratio_201,
                "seed": seed,
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.loadgen",
                orjson.dumps(spec).decode(),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=2**24,  # the final result line carries a histogram
            )
            generator = _Generator(process)
            generator.reader = asyncio.create_task(generator.read())
            generators.append(generator)
            first += size
        return cls(generators)

    @property
    def pids(self) -> list[int]:
        return [g.process.pid for g in self._generators]

    async def command(self, command: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        """Send ``command`` to every process; their answers, in slice order."""
        line = orjson.dumps(command) + b"\n"
        for generator in self._generators:
            if generator.process.stdin is None:
                raise RuntimeError("generator process started without a stdin pipe")
            generator.process.stdin.write(line)
        async with asyncio.timeout(timeout + COMMAND_SLACK_S):
            answers = await asyncio.gather(*(g.events.get() for g in self._generators))
        for answer in answers:
            if answer["event"] == "exit":
                raise RuntimeError(f"a load generator exited during {command['cmd']!r}")
        return answers

    def progress(self) -> dict[str, int]:
        """Connected chargers, CALLs sent and answered, errors: the fleet's sums."""
        total = {"connected": 0, "sent": 0, "answered": 0, "errors": 0}
        for generator in self._generators:
            for key in total:
                total[key] += int(generator.progress.get(key, 0))
        return total

    async def finish(self) -> tuple[Recorder, int]:
        """Close every connection; the merged recorder and unanswered CALLs."""
        answers = await self.command({"cmd": "finish"}, 30.0)
        recorder = Recorder()
        for answer in answers:
            recorder.merge(Recorder.from_json(answer["recorder"]))
        await self.close()
        return recorder, sum(a["unanswered"] for a in answers)

    async def close(self) -> None:
        for generator in self._generators:
            if generator.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    if generator.process.stdin is not None:
                        generator.process.stdin.close()
                try:
                    async with asyncio.timeout(10):
                        await generator.process.wait()
                except TimeoutError:
                    generator.process.kill()
                    await generator.process.wait()
            if generator.reader is not None:
                generator.reader.cancel()


@dataclass(frozen=True, slots=True)
class ProcessReading:
    cpu_s: float
    rss_kb: int


def read_process(pid: int) -> ProcessReading | None:
    try:
        return ProcessReading(read_cpu_seconds(pid), read_rss_kb(pid))
    except (OSError, RuntimeError, ValueError):
        return None  # it has exited


class Monitor:
    """Samples the fleet and the watched processes into a timeline."""

    def __init__(
        self,
        fleet: Fleet,
        watched: Mapping[str, int],
        *,
        expected_s: float,
        period: float = 1.0,
    ) -> None:
        self.fleet = fleet
        self.watched = dict(watched)
        self.phase = "start"
        self.timeline: list[dict[str, Any]] = []
        self.peak_rss_kb: dict[str, int] = {}
        self._period = period
        self._started = time.perf_counter()
        self._bar = tqdm(
            total=round(expected_s),
            unit="s",
            file=sys.stderr,
            disable=None,  # only on a terminal
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s{postfix}",
        )
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> Monitor:
        self.sample()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()
        self._bar.close()

    def processes(self) -> dict[str, dict[str, Any]]:
        """Each watched process's CPU seconds and resident KiB now."""
        readings = {}
        for name, pid in self.watched.items():
            reading = read_process(pid)
            if reading is not None:
                readings[name] = {"cpu_s": round(reading.cpu_s, 3), "rss_kb": reading.rss_kb}
                self.peak_rss_kb[name] = max(self.peak_rss_kb.get(name, 0), reading.rss_kb)
        return readings

    def sample(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._started
        processes = self.processes()
        sample: dict[str, Any] = {
            "t": round(elapsed, 3),
            "phase": self.phase,
            **self.fleet.progress(),
            "processes": processes,
        }
        self.timeline.append(sample)
        self._bar.n = min(round(elapsed), self._bar.total or 0)
        gateway = processes.get("gateway", {})
        self._bar.set_postfix_str(
            f"{self.phase}: {sample['connected']:,} connected, {sample['answered']:,} answers,"
            f" {sample['errors']} errors, gateway {gateway.get('rss_kb', 0) / 1024:,.0f} MiB",
            refresh=True,
        )
        return sample

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            self.sample()
