"""The five benchmark scenarios, each a complete run that writes one result.

Each scenario starts its system under test (``bench.systems``), drives a
simulated fleet through phases (``bench.driver``), and returns a result
document: what was asked, what the fleet saw (connections, CALLs, answers,
errors, latency), what each process of the system spent (CPU seconds and
resident memory from ``/proc`` before, during and after the load), a
timeline sampled every second, derived figures and the design targets they
are checked against. bench/README.md describes the document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import os
import platform
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config import GatewayConfig
from gateway.mqtt_settings import MqttSettings

from . import compare_mqtt, systems
from .aws_counts import PipelineMeter
from .charger import MixPlan, Recorder, charger_ids
from .compare_echo import cpu_ratio
from .driver import Fleet, Monitor, chargers_per_process
from .gateway_process import listen_overflows
from .systems import System

__all__ = ["DEFAULT_BATCH_BYTES", "ONE_PER_FRAME", "SCENARIOS", "Scenario"]

#: DESIGN.md's targets.
TARGET_KB_PER_CHARGER = 8.0
TARGET_RATIO_TO_ECHO = 2.0
#: "A reconnect storm of every charge point of a task finishes in seconds, not minutes."
TARGET_STORM_S = 60.0
#: The soak's "no memory growth": over the second half of the load window
#: the gateway's resident memory may grow by at most this many KiB per
#: charger, plus an allowance for the allocator's noise (a leak of one
#: Heartbeat's frame per message exceeds it within minutes).
TARGET_SOAK_GROWTH_KB_PER_CHARGER = 0.5
SOAK_GROWTH_ALLOWANCE_KB = 2048
#: The gateway's keepalive ping interval (its default), compressed with the mix.
PING_INTERVAL_S = GatewayConfig().ping_interval
#: The gateway's and workers' batch size by default (``OCPP_MQTT_BATCH_BYTES``).
DEFAULT_BATCH_BYTES: int = next(
    f.default for f in dataclasses.fields(MqttSettings) if f.name == "batch_bytes"
)  # type: ignore[assignment]  # a field with an int default
#: The pipeline's result with ``--batch-bytes 0``.
ONE_PER_FRAME = "pipeline-one-per-frame"
#: Seconds the system rests between phases, for memory to settle.
SETTLE_S = 2.0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]


class Run:
    """One scenario's fleet against one system, and everything measured about it."""

    def __init__(self, args: argparse.Namespace, system: System, expected_s: float) -> None:
        self.args = args
        self.system = system
        self.expected_s = expected_s
        self.phases: dict[str, dict[str, Any]] = {}
        self.recorder = Recorder()
        self.unanswered = 0
        self.connect: dict[str, Any] = {}
        self.remote: RemoteOutcomes | None = None
        self._fleet: Fleet | None = None
        self._monitor: Monitor | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Run:
        self._fleet = await Fleet.start(
            self.system.url,
            self.args.chargers,
            ratio_201=self.args.ratio_201,
            processes=self.args.processes,
            seed=self.args.seed,
        )
        self._stack.push_async_callback(self._fleet.close)
        self._monitor = self._stack.enter_context(
            Monitor(self._fleet, self.system.watched, expected_s=self.expected_s)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            raise RuntimeError("Run.fleet outside `async with Run(...)`")
        return self._fleet

    @property
    def monitor(self) -> Monitor:
        if self._monitor is None:
            raise RuntimeError("Run.monitor outside `async with Run(...)`")
        return self._monitor

    async def phase(
        self, name: str, command: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        """Run one command on every load generator, reading every process before
        and after; the readings are kept under ``name``."""
        self.monitor.phase = name
        before = self.monitor.sample()
        overflows = listen_overflows()
        started = time.perf_counter()
        answers = await self.fleet.command(command, timeout)
        elapsed = time.perf_counter() - started
        after = self.monitor.sample()
        after_overflows = listen_overflows()
        self.phases[name] = {
            "elapsed_s": elapsed,
            "before": before,
            "after": after,
            "listen_overflows": (
                None
                if overflows is None or after_overflows is None
                else after_overflows - overflows
            ),
        }
        return answers

    async def connect_fleet(self) -> None:
        rate = self.args.connect_rate / len(
            chargers_per_process(self.args.chargers, self.args.processes)
        )
        answers = await self.phase(
            "connect", {"cmd": "connect", "rate": rate}, self._connect_time()
        )
        self.connect = {
            "established": sum(a["connected"] for a in answers),
            "attempts": sum(a["attempts_total"] for a in answers),
            "elapsed_s": max(a["elapsed_s"] for a in answers),
        }

    def _connect_time(self) -> float:
        return self.args.chargers / self.args.connect_rate if self.args.connect_rate else 60.0

    async def load(self, mode: str, seconds: float, **options: Any) -> list[dict[str, Any]]:
        command = {"cmd": "load", "mode": mode, "seconds": seconds, **options}
        answers = await self.phase("load", command, seconds)
        return answers

    async def settle(self, seconds: float = SETTLE_S) -> None:
        self.monitor.phase = "settle"
        await asyncio.sleep(seconds)
        self.phases["settle"] = {"after": self.monitor.sample()}

    async def finish(self) -> None:
        self.monitor.phase = "finish"
        self.recorder, self.unanswered = await self.fleet.finish()

    # -- figures ---------------------------------------------------------------

    def cpu_s(self, process: str, phase: str = "load") -> float | None:
        readings = self.phases.get(phase)
        if readings is None:
            return None
        before = readings["before"]["processes"].get(process)
        after = readings["after"]["processes"].get(process)
        return None if before is None or after is None else after["cpu_s"] - before["cpu_s"]

    def rss_kb(self, process: str, phase: str, when: str) -> int | None:
        reading = self.phases.get(phase, {}).get(when, {}).get("processes", {}).get(process)
        return None if reading is None else int(reading["rss_kb"])

    def load_calls(self) -> int:
        load = self.phases["load"]
        return int(load["after"]["answered"] - load["before"]["answered"])

    def result(
        self,
        scenario: Scenario,
        derived: dict[str, Any],
        targets: list[dict[str, Any]],
        started: float,
    ) -> dict[str, Any]:
        recorder = self.recorder
        connect_errors = {
            k.removeprefix("connect:"): n
            for k, n in recorder.errors.items()
            if k.startswith("connect:")
        }
        call_errors = {k: n for k, n in recorder.errors.items() if not k.startswith("connect:")}
        connect_s = self.connect.get("elapsed_s")
        established = self.connect.get("established", 0)
        actions = sorted(set(recorder.sent) | set(recorder.answered))
        errors = sum(call_errors.values())
        ok = (
            errors == 0
            and self.unanswered == 0
            and not connect_errors
            and established == self.args.chargers
            and all(t["met"] for t in targets)
        )
        return {
            "scenario": scenario.name,
            "title": scenario.title,
            "command": self.args.command_line,
            "started_at": _iso(started),
            "duration_s": round(time.time() - started, 1),
            "machine": machine(),
            "parameters": _parameters(self.args),
            "system": self.system.kind,
            "connections": {
                "attempted": self.args.chargers,
                "established": established,
                "failed": self.args.chargers - established,
                "attempts": self.connect.get("attempts"),
                "failure_kinds": connect_errors,
                "connect_s": None if connect_s is None else round(connect_s, 3),
                "connect_rate_per_s": (round(established / connect_s, 1) if connect_s else None),
                "listen_overflows": self.phases.get("connect", {}).get("listen_overflows"),
            },
            "calls": {
                "sent": sum(recorder.sent.values()),
                "answered": sum(recorder.answered.values()),
                "errors": errors,
                "unanswered": self.unanswered,
                "error_kinds": call_errors,
                "by_action": {
                    action: {
                        "sent": recorder.sent[action],
                        "answered": recorder.answered[action],
                        "errors": recorder.failed[action],
                    }
                    for action in actions
                },
            },
            "server_calls": {
                "received": sum(recorder.server_calls.values()),
                # A simulated charger answers every CALL of the backend at once.
                "answered": sum(recorder.server_calls.values()),
                "by_action": dict(recorder.server_calls),
            },
            "latency_ms": recorder.latency.summary(),
            "boot_latency_ms": recorder.boot_latency.summary(),
            "timeline": self.monitor.timeline,
            "processes": self._processes(),
            "derived": derived,
            "targets": targets,
            "ok": ok,
        }

    def _processes(self) -> dict[str, Any]:
        first = self.monitor.timeline[0]["processes"] if self.monitor.timeline else {}
        last = self.monitor.timeline[-1]["processes"] if self.monitor.timeline else {}
        summary = {}
        for name, pid in self.system.watched.items():
            summary[name] = {
                "pid": pid,
                "cpu_s": {
                    "before": first.get(name, {}).get("cpu_s"),
                    "load": _round(self.cpu_s(name), 3),
                    "after": last.get(name, {}).get("cpu_s"),
                },
                "rss_kb": {
                    "before": first.get(name, {}).get("rss_kb"),
                    "peak": self.monitor.peak_rss_kb.get(name),
                    "after": last.get(name, {}).get("rss_kb"),
                },
            }
        return summary


def target(name: str, wanted: str, measured: str, met: bool) -> dict[str, Any]:
    return {"name": name, "target": wanted, "measured": measured, "met": bool(met)}


# -- 1. idle capacity ----------------------------------------------------------


async def idle(args: argparse.Namespace) -> dict[str, Any]:
    """As many chargers as one gateway process may hold, connected and quiet:
    resident memory per connection, and what keeping them alive costs."""
    started = time.time()
    ids = charger_ids(args.chargers)
    with systems.embedded(ids, unlimited=False) as system:
        async with Run(args, system, _expected(args, args.seconds)) as run:
            await run.settle()
            base = run.rss_kb("gateway", "settle", "after")
            await run.connect_fleet()
            await run.load("idle", args.seconds)
            await run.finish()
    connected = run.connect.get("established", 0)
    rss_after = run.rss_kb("gateway", "load", "after")
    per_connection = (
        (rss_after - base) / connected if connected and base is not None and rss_after else None
    )
    idle_cpu = run.cpu_s("gateway")
    derived = {
        "connections": connected,
        "base_rss_kb": base,
        "rss_kb_connected": rss_after,
        "kb_per_connection": _round(per_connection, 2),
        "idle_cpu_us_per_charger_second": _round(
            idle_cpu / connected / args.seconds * 1e6
            if idle_cpu is not None and connected
            else None,
            3,
        ),
    }
    targets = [
        target(
            "memory per idle charger",
            f"<= {TARGET_KB_PER_CHARGER:g} KiB",
            f"{per_connection:.2f} KiB" if per_connection is not None else "not measured",
            per_connection is not None and per_connection <= TARGET_KB_PER_CHARGER,
        )
    ]
    return run.result(SCENARIOS["idle"], derived, targets, started)


# -- 2. throughput ---------------------------------------------------------------


async def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """A closed loop of Heartbeats against the bare echo server, then against
    the gateway, each in a fresh process: CPU per round trip and their ratio."""
    started = time.time()
    ids = charger_ids(args.chargers)
    with systems.echo() as system:
        async with Run(args, system, _expected(args, args.seconds)) as echo_run:
            await echo_run.connect_fleet()
            await echo_run.load("closed", args.seconds, max_calls=args.max_calls)
            await echo_run.finish()
    await asyncio.sleep(1.0)  # the echo server's sockets go
    with systems.embedded(ids, unlimited=True) as system:
        async with Run(args, system, _expected(args, args.seconds)) as run:
            await run.connect_fleet()
            await run.load("closed", args.seconds, max_calls=args.max_calls)
            await run.finish()
    gateway = _per_round_trip(run)
    echo = _per_round_trip(echo_run)
    ratio = cpu_ratio(gateway, echo)
    derived = {
        "round_trips_per_s": _round(run.load_calls() / run.phases["load"]["elapsed_s"], 0),
        "gateway_cpu_us_per_round_trip": _round(gateway, 2),
        "echo_cpu_us_per_round_trip": _round(echo, 2),
        "ratio_to_echo": ratio,
        "echo_round_trips_per_s": _round(
            echo_run.load_calls() / echo_run.phases["load"]["elapsed_s"], 0
        ),
        "gateway_cores_busy": _round(
            (run.cpu_s("gateway") or 0) / run.phases["load"]["elapsed_s"], 3
        ),
        "echo_errors": sum(echo_run.recorder.errors.values()),
        "note": "the gateway here is the embedded system: its figure includes the processor",
    }
    targets = [
        target(
            "CPU per round trip vs bare echo",
            f"<= {TARGET_RATIO_TO_ECHO:g}x",
            f"{ratio}x" if ratio is not None else "not measured",
            ratio is not None and ratio <= TARGET_RATIO_TO_ECHO,
        )
    ]
    return run.result(SCENARIOS["throughput"], derived, targets, started)


def _per_round_trip(run: Run) -> float | None:
    cpu, calls = run.cpu_s("gateway"), run.load_calls()
    return cpu / calls * 1e6 if cpu is not None and calls else None


# -- 3. standard mix (soak) ------------------------------------------------------


async def mix(args: argparse.Namespace) -> dict[str, Any]:
    """The standard fleet mix for several minutes against the embedded system,
    with remote starts and stops from the management API."""
    ids = charger_ids(args.chargers)
    started = time.time()
    with systems.embedded(ids, unlimited=False, settings=_compressed(args)) as system:
        run = await _soak(args, system, ids)
    return run.result(SCENARIOS["mix"], *_soak_figures(run, args, ("gateway",)), started)


async def pipeline(args: argparse.Namespace) -> dict[str, Any]:
    """The standard mix through the production shape: ``ocppgw gateway`` relaying
    over Mosquitto to ``ocppgw worker`` processes; with ``--batch-bytes 0``,
    one frame per publish (``pipeline-one-per-frame``)."""
    ids = charger_ids(args.chargers)
    started = time.time()
    settings = _compressed(args)
    batch_bytes = getattr(args, "batch_bytes", DEFAULT_BATCH_BYTES)
    with systems.pipeline(
        ids, workers=args.workers, unlimited=False, settings=settings, batch_bytes=batch_bytes
    ) as system:
        async with PipelineMeter(system, compare_mqtt.PREFIX) as meter:
            run = await _soak(args, system, ids, meter)
            load = run.phases["load"]
            remote = run.remote or RemoteOutcomes()
            billed = await meter.figures(
                equivalent=run.connect.get("established", 0) * _scale(args),
                seconds=load["elapsed_s"],
                commands_sent=remote.sent(),
                commands_answered=remote.answered(),
            )
    names = tuple(system.watched)
    derived, targets = _soak_figures(run, args, names)
    derived |= {"batch_bytes": batch_bytes} | billed
    if billed:
        # The MQTT quota's load, as measured rather than one publish per CALL.
        derived["mqtt_publishes_per_charger_second"] = (
            billed["mqtt_uplink_publishes_per_charger_second"]
            + billed["mqtt_presence_publishes_per_charger_second"]
        )
        derived["mqtt_downlinks_per_charger_second"] = billed[
            "mqtt_downlink_publishes_per_charger_second"
        ]
    name = "pipeline" if batch_bytes else ONE_PER_FRAME
    return run.result(SCENARIOS[name], derived, targets, started)


async def _soak(
    args: argparse.Namespace, system: System, ids: list[str], meter: PipelineMeter | None = None
) -> Run:
    plan = _plan(args, scale=_scale(args))
    async with Run(args, system, _expected(args, args.seconds)) as run:
        await run.connect_fleet()
        await run.settle()
        remote = RemoteCommands(
            system.management_url, ids, args.remote_per_minute, args.remote_hold_s, args.seed
        )
        if meter is not None:
            await meter.open_window()
        commands = asyncio.create_task(remote.run(args.seconds))
        await run.load("mix", args.seconds, plan=dataclasses.asdict(plan))
        if meter is not None:
            await meter.close_window()
        run.remote = await commands
        await run.finish()
    return run


def _soak_figures(
    run: Run, args: argparse.Namespace, processes: tuple[str, ...]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    load = run.phases["load"]
    seconds = load["elapsed_s"]
    connected = run.connect.get("established", 0)
    # Per standard charger: each simulated one stands for ``scale`` of them.
    scale = _scale(args)
    equivalent = connected * scale
    messages = run.load_calls()
    gateway_cpu = run.cpu_s("gateway")
    growth = _growth_second_half(run)
    remote = run.remote or RemoteOutcomes()
    derived: dict[str, Any] = {
        "chargers": connected,
        "rate_scale": round(scale, 4),
        "equivalent_chargers": round(equivalent),
        "seconds": round(seconds, 1),
        "messages": messages,
        "messages_per_s": _round(messages / seconds, 1),
        "messages_per_charger_second": _round(messages / equivalent / seconds, 6)
        if connected
        else None,
        "planned_messages_per_charger_second": round(_plan(args).uplink_rate(), 6),
        "gateway_cpu_s": _round(gateway_cpu, 3),
        "gateway_cpu_us_per_charger_second": _round(
            gateway_cpu / equivalent / seconds * 1e6
            if gateway_cpu is not None and connected
            else None,
            3,
        ),
        "gateway_cpu_us_per_message": _round(
            gateway_cpu / messages * 1e6 if gateway_cpu is not None and messages else None, 1
        ),
        "rss_growth_kb": _delta(
            run.rss_kb("gateway", "load", "before"), run.rss_kb("gateway", "load", "after")
        ),
        "rss_growth_second_half_kb": growth,
        "unanswered": run.unanswered,
        "remote_commands": remote.summary(),
    }
    workers = [p for p in processes if p.startswith("worker-")]
    if "broker" in processes:
        broker = run.cpu_s("broker")
        worker_cpu = sum(run.cpu_s(w) or 0.0 for w in workers)
        derived |= {
            "broker_cpu_us_per_message": _round(
                broker / messages * 1e6 if broker and messages else None, 1
            ),
            "workers_cpu_us_per_message": _round(
                worker_cpu / messages * 1e6 if messages else None, 1
            ),
            "workers": len(workers),
            # Every uplink CALL is one publish at most; presence adds one per
            # connect and disconnect, none in a steady window. The pipeline
            # replaces it with the publishes its observer counted.
            "mqtt_publishes_per_charger_second": derived["messages_per_charger_second"],
        }
    allowed = SOAK_GROWTH_ALLOWANCE_KB + TARGET_SOAK_GROWTH_KB_PER_CHARGER * connected
    targets = [
        target("unanswered CALLs", "0", str(run.unanswered), run.unanswered == 0),
        target(
            "gateway memory growth over the second half of the soak",
            f"<= {allowed:,.0f} KiB ({SOAK_GROWTH_ALLOWANCE_KB:,} + "
            f"{TARGET_SOAK_GROWTH_KB_PER_CHARGER:g} per charger)",
            f"{growth:,} KiB" if growth is not None else "not measured",
            growth is not None and growth <= allowed,
        ),
        target(
            "remote commands answered",
            "every one accepted or rejected by its charger",
            remote.brief(),
            remote.all_answered(),
        ),
    ]
    return derived, targets


def _growth_second_half(run: Run) -> int | None:
    """Gateway RSS at the end of the load window minus at its middle (the first
    half warms caches, the SQLite page cache and the chargers' sessions)."""
    samples = [
        s for s in run.monitor.timeline if s["phase"] == "load" and "gateway" in s["processes"]
    ]
    if len(samples) < 2:
        return None
    middle = samples[len(samples) // 2]["processes"]["gateway"]["rss_kb"]
    return int(samples[-1]["processes"]["gateway"]["rss_kb"] - middle)


#: A remotely started session that its charger had ended before the remote stop.
SESSION_ENDED = "session already ended"


class RemoteOutcomes:
    def __init__(self) -> None:
        self.starts: Counter[str] = Counter()
        self.stops: Counter[str] = Counter()

    def summary(self) -> dict[str, Any]:
        return {"start": dict(self.starts), "stop": dict(self.stops)}

    def brief(self) -> str:
        return f"starts {dict(self.starts)}, stops {dict(self.stops)}"

    def sent(self) -> int:
        """Commands that went to a charger (a stop of an ended session did not)."""
        starts = sum(self.starts.values())
        return starts + sum(n for k, n in self.stops.items() if k != SESSION_ENDED)

    def answered(self) -> int:
        """Commands a charger answered (Accepted or Rejected)."""
        answers = ("Accepted", "Rejected")
        return sum(self.starts[k] + self.stops[k] for k in answers)

    def all_answered(self) -> bool:
        answered = {"Accepted", "Rejected", SESSION_ENDED}
        return all(k in answered for k in (*self.starts, *self.stops))


class RemoteCommands:
    """Remote starts at a steady rate through the management API, each followed,
    if accepted, by a remote stop of the transaction it opened."""

    def __init__(
        self, api: str | None, ids: list[str], per_minute: float, hold_s: float, seed: int
    ) -> None:
        self.api = api
        self.ids = ids
        self.per_minute = per_minute
        self.hold_s = hold_s
        self.outcomes = RemoteOutcomes()
        self._rng = random.Random(seed)

    async def run(self, seconds: float) -> RemoteOutcomes:
        if self.api is None or self.per_minute <= 0:
            return self.outcomes
        loop = asyncio.get_running_loop()
        until = loop.time() + max(0.0, seconds - self.hold_s - 5.0)
        period = 60.0 / self.per_minute
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40)) as session:
            flows: list[asyncio.Task[None]] = []
            await asyncio.sleep(min(period, 5.0))
            while loop.time() < until:
                flows.append(asyncio.create_task(self._flow(session, self._rng.choice(self.ids))))
                await asyncio.sleep(period)
            await asyncio.gather(*flows)
        return self.outcomes

    async def _flow(self, session: aiohttp.ClientSession, charge_point: str) -> None:
        body = {"chargePointId": charge_point, "idTag": "REMOTE0001"}
        outcome = await self._post(session, "/remote-start", body)
        self.outcomes.starts[outcome] += 1
        if outcome != "Accepted":
            return
        await asyncio.sleep(self.hold_s)
        transaction = await self._active_transaction(session, charge_point)
        if transaction is None:
            self.outcomes.stops[SESSION_ENDED] += 1
            return
        body = {"chargePointId": charge_point, "transactionId": transaction}
        self.outcomes.stops[await self._post(session, "/remote-stop", body)] += 1

    async def _post(self, session: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> str:
        try:
            async with session.post(f"{self.api}{path}", json=body) as response:
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"client error {type(exc).__name__}"
        if response.status != 200:
            return f"http {response.status}: {answer.get('outcome') or answer.get('error')}"
        status = answer.get("response", {}).get("status")
        return str(status) if status else f"error {answer.get('error')}"

    async def _active_transaction(self, session: aiohttp.ClientSession, charge_point: str) -> Any:
        try:
            async with session.get(f"{self.api}/charge-points/{charge_point}/shadow") as response:
                document = await response.json()
        except (aiohttp.ClientError, TimeoutError):
            return None
        active = document.get("state", {}).get("reported", {}).get("activeTransaction") or {}
        return active.get("transactionId")


# -- 4. reconnect storm ------------------------------------------------------------


async def storm(args: argparse.Namespace) -> dict[str, Any]:
    """Every charger dropped at once and reconnecting at once, against the
    embedded system or (``--system pipeline``) the production gateway."""
    started = time.time()
    ids = charger_ids(args.chargers)
    if getattr(args, "system", "embedded") == "pipeline":
        chosen = systems.pipeline(ids, workers=args.workers, unlimited=False)
    else:
        chosen = systems.embedded(ids, unlimited=False)
    with chosen as system:
        async with Run(args, system, _expected(args, args.seconds) + 30) as run:
            await run.connect_fleet()
            await run.load("idle", args.seconds)
            answers = await run.phase("drop", {"cmd": "drop"}, 120.0)
            await run.settle()
            await run.finish()
    back = sum(a["connected"] for a in answers)
    attempts = sum(a["attempts"] for a in answers)
    drop = run.phases["drop"]
    reconnect_s = max(a["elapsed_s"] for a in answers)
    # A refusal: a connection attempt that failed, or a BootNotification refused
    # (the charger then tries again on the same connection, as a real one does).
    failed_connections = attempts - back
    refused_boots = run.recorder.failed["BootNotification"]
    refusals = failed_connections + refused_boots
    derived = {
        "chargers": args.chargers,
        "dropped": sum(a["dropped"] for a in answers),
        "reconnected": back,
        "reconnect_s": round(reconnect_s, 3),
        "reconnect_rate_per_s": round(back / reconnect_s, 1) if reconnect_s else None,
        "attempts": attempts,
        "failed_connections": failed_connections,
        "refused_boots": refused_boots,
        "refusals": refusals,
        "listen_overflows": drop["listen_overflows"],
        "gateway_cpu_s": _round(run.cpu_s("gateway", "drop"), 3),
        # What the burst costs: the allocator keeps what it took, so a task
        # must have room for this peak, not only for the idle size.
        "gateway_rss_before_drop_kb": run.rss_kb("gateway", "drop", "before"),
        "gateway_peak_rss_kb": run.monitor.peak_rss_kb.get("gateway"),
    }
    targets = [
        target(
            "reconnect storm of the whole fleet",
            f"all back within {TARGET_STORM_S:g} s, none refused",
            f"{back:,} of {args.chargers:,} in {reconnect_s:.2f} s, {refusals} refused",
            back == args.chargers and refusals == 0 and reconnect_s <= TARGET_STORM_S,
        )
    ]
    return run.result(SCENARIOS["storm"], derived, targets, started)


# -- the catalogue ---------------------------------------------------------------


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("idle", "Idle capacity: memory per connected charger", idle),
        Scenario("throughput", "Throughput: closed loop against a bare echo server", throughput),
        Scenario("mix", "Standard mix soak (embedded system)", mix),
        Scenario("storm", "Reconnect storm", storm),
        Scenario("pipeline", "Standard mix through Mosquitto and processor workers", pipeline),
        # Written by ``pipeline --batch-bytes 0``: the design before batching.
        Scenario(
            ONE_PER_FRAME,
            "Standard mix through Mosquitto and processor workers, one frame per publish",
            pipeline,
        ),
    )
}


# -- helpers -----------------------------------------------------------------------


def _plan(args: argparse.Namespace, scale: float = 1.0) -> MixPlan:
    """The mix asked for, each interval shortened ``scale`` times."""
    return MixPlan(
        heartbeat_s=args.heartbeat_s / scale,
        meter_s=args.meter_s / scale,
        charging_fraction=args.charging_fraction,
        session_s=args.session_s / scale,
    )


def _scale(args: argparse.Namespace) -> float:
    """How many chargers of the mix each simulated one stands for: with
    ``--as-fleet N``, N / chargers (at least 1), so that the system sees the
    messages and keepalive pings of N chargers over fewer sockets."""
    as_fleet = getattr(args, "as_fleet", None)
    return max(1.0, as_fleet / args.chargers) if as_fleet else 1.0


def _compressed(args: argparse.Namespace) -> dict[str, str]:
    """The gateway settings of a time-compressed fleet: pings ``scale`` times as
    often, as ``scale`` times as many connections would get them."""
    scale = _scale(args)
    return {"OCPP_PING_INTERVAL": f"{PING_INTERVAL_S / scale:.3f}"} if scale > 1 else {}


def _expected(args: argparse.Namespace, seconds: float) -> float:
    connect = args.chargers / args.connect_rate if args.connect_rate else 10.0
    return connect + seconds + 2 * SETTLE_S


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _delta(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"command_line", "results", "func", "scenario", "no_plots"}
    return {k: v for k, v in sorted(vars(args).items()) if k not in skip}


def _iso(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(__file__),
        ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
    }
