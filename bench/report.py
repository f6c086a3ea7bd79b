"""The scaling report: plots and a Markdown summary of the scenario results.

    .venv/bin/python -m bench.report [--results DIR] [--output FILE]

Reads the JSON result of each scenario (``python -m bench SCENARIO`` writes
``bench/results/<scenario>.json``), draws its plots (``bench.plots``) next to
the results, and writes a Markdown report (default ``bench/REPORT.md``): the
machine and date, a table of the scenarios with the command that produced
each, the capacity of one production task by resource with the limiting one
in bold, the tasks that 100,000 and 1,000,000 charge points need, the design
targets met or not, the plots, and how to reproduce it all. A scenario with
no result is reported as "not run".

The capacity figures come from ``scaling``, a pure function of the results
and of ``Limits`` (the seed's task and the AWS quotas of DESIGN.md), so that
they can be checked by hand:

* CPU: ``vcpu * vcpu_factor * cpu_target * 1e6`` / the gateway's CPU
  microseconds per charger-second at the standard mix, from the pipeline
  scenario (the production gateway relaying to MQTT) or else from the mix
  scenario (the embedded process, whose figure includes the processor and is
  therefore conservative). ``vcpu_factor`` is how many cores of the
  benchmark machine one Fargate vCPU is worth (assumed 1.0).
* memory: ``(memory_mib * 1024 * memory_headroom - base_rss_kb) / kb_per_connection``
  from the idle scenario.
* file descriptors: ``nofile - fd_reserve`` (one descriptor per charge point).
* NLB: about 55,000 connections per target.
* MQTT: ``mqtt_connections * publishes_per_connection`` / the publishes each
  charge point causes per second on the pool. AWS IoT Core counts publishes
  in both directions against the 100 per second of a connection (and so does
  the gateway's pool, ``gateway/mqtt_bus.py``), so by default the downlinks
  (one CALLRESULT per uplink CALL) count as well as the uplinks and presence.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import cost, cost_report

__all__ = [
    "CPU",
    "FILES",
    "MEMORY",
    "MQTT",
    "NLB",
    "SCENARIOS",
    "STORM_MEMORY",
    "Capacity",
    "Limits",
    "Scaling",
    "StormEstimate",
    "TargetCheck",
    "build_report",
    "load_results",
    "main",
    "scaling",
    "write_report",
]

#: The scenarios of ``python -m bench``, in the report's order
#: (``pipeline-one-per-frame``: ``pipeline --batch-bytes 0``).
SCENARIOS = ("idle", "throughput", "mix", "storm", "pipeline", "pipeline-one-per-frame")

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_RESULTS = BENCH_DIR / "results"
DEFAULT_OUTPUT = BENCH_DIR / "REPORT.md"

#: The resources that bound the charge points of one task.
CPU = "CPU"
MEMORY = "memory"
STORM_MEMORY = "memory at a storm's peak"
FILES = "file descriptors"
NLB = "NLB connections per target"
MQTT = "MQTT publishes"
RESOURCES = (CPU, MEMORY, STORM_MEMORY, FILES, NLB, MQTT)

_NOT_RUN = "not run"
_DASH = "\N{EN DASH}"
_MINUS = "\N{MINUS SIGN}"
_X = "\N{MULTIPLICATION SIGN}"
_LE = "\N{LESS-THAN OR EQUAL TO}"
_NA = _DASH
#: The pool size used when ``gateway.mqtt_settings`` cannot be imported.
_FALLBACK_MQTT_CONNECTIONS = 16


def _default_mqtt_connections() -> int:
    """The default ``max_connections`` of the gateway's MQTT pool, read from
    ``gateway.mqtt_settings.MqttSettings`` so that the report follows it."""
    try:
        from gateway.mqtt_settings import MqttSettings  # noqa: PLC0415 (optional)
    except ImportError:  # pragma: no cover - the gateway ships with the repo
        return _FALLBACK_MQTT_CONNECTIONS
    for item in dataclasses.fields(MqttSettings):
        if item.name == "max_connections" and isinstance(item.default, int):
            return item.default
    return _FALLBACK_MQTT_CONNECTIONS  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Limits:
    """The production task, the quotas around it (DESIGN.md, "Limits the
    design must respect") and the targets (DESIGN.md, "Scaling targets")."""

    #: Fargate task size (the seed's: 0.25 vCPU, 512 MB, nofile 65,536).
    vcpu: float = 0.25
    #: Cores of the benchmark machine one Fargate vCPU is worth.
    vcpu_factor: float = 1.0
    #: Autoscaling target: tasks are added at this average CPU.
    cpu_target: float = 0.60
    #: Task memory; Fargate sizes memory in MiB, so "512 MB" is 512 MiB.
    memory_mib: float = 512.0
    #: Share of the task's memory the gateway may fill (the rest: runtime,
    #: bursts, the MQTT buffer in an outage).
    memory_headroom: float = 0.9
    nofile: int = 65_536
    #: Descriptors that are not charge points: listening sockets, the MQTT
    #: pool, logs, the registry.
    fd_reserve: int = 100
    #: Connections an NLB holds per target (about 55,000).
    nlb_per_target: int = 55_000
    #: AWS IoT Core: publishes per second per MQTT connection.
    publishes_per_connection: float = 100.0
    #: The gateway's MQTT pool: most connections per task.
    mqtt_connections: int = field(default_factory=_default_mqtt_connections)
    #: Count downlinks (answers to charge points) against the publish quota,
    #: as AWS IoT Core and the gateway's pool do.
    count_downlinks: bool = True
    min_tasks: int = 1
    max_tasks: int = 20
    #: Fleet sizes the report gives task counts for.
    fleets: tuple[int, ...] = (100_000, 1_000_000)
    # targets ---------------------------------------------------------------
    target_per_task: int = 50_000
    target_fleet: int = 1_000_000
    target_kb_per_idle: float = 8.0
    target_echo_ratio: float = 2.0
    #: "In seconds, not minutes": a full task's storm within this many seconds.
    target_storm_s: float = 60.0
    #: "No memory growth" in a soak: the gateway's RSS growth over the second
    #: half of the load window (the first warms caches and sessions) at most
    #: ``target_growth_allowance_kb`` (the allocator's noise) plus this much
    #: per connected charger; the same rule as ``bench.scenarios``.
    target_growth_kb_per_charger: float = 0.5
    target_growth_allowance_kb: float = 2048.0

    def growth_allowed_kb(self, chargers: float) -> float:
        """The soak's RSS growth that still counts as no growth."""
        return self.target_growth_allowance_kb + self.target_growth_kb_per_charger * chargers

    @property
    def memory_budget_kb(self) -> float:
        return self.memory_mib * 1024 * self.memory_headroom

    @property
    def cpu_budget_us_per_s(self) -> float:
        """CPU microseconds per second one task may spend at the autoscaling target."""
        return self.vcpu * self.vcpu_factor * self.cpu_target * 1e6


@dataclass(frozen=True, slots=True)
class Capacity:
    """Charge points one task holds as far as ``resource`` goes; ``chargers``
    is None when the figure it needs was not measured."""

    resource: str
    chargers: int | None
    basis: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class StormEstimate:
    """The storm scenario scaled to a full task (an extrapolation).

    ``linear_s`` scales the measured wall time by chargers; ``cpu_bound_s``
    scales the gateway's CPU time over the drop and the reconnect (the storm's
    ``derived.gateway_cpu_s``, else read from the timeline) the same way and
    divides it by the task's vCPU: how long that work takes at 0.25 vCPU if
    CPU is what bounds it. The estimate is the larger."""

    chargers: int
    reconnect_s: float
    refusals: int | None
    to_chargers: int
    linear_s: float
    gateway_cpu_s: float | None
    cpu_bound_s: float | None

    @property
    def estimate_s(self) -> float:
        return max(self.linear_s, self.cpu_bound_s or 0.0)


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """A design target against what was measured; ``met`` None: not measured."""

    name: str
    target: str
    measured: str
    met: bool | None


@dataclass(frozen=True, slots=True)
class Scaling:
    """Charge points per production task and what follows from it."""

    limits: Limits
    capacities: tuple[Capacity, ...]
    #: The least of the known capacities (an upper bound when ``missing``).
    per_task: int
    limiting: str
    #: Resources whose capacity could not be computed (no data).
    missing: tuple[str, ...]
    #: Gateway CPU per charger-second at the standard mix, and its scenario.
    cpu_source: str | None
    cpu_us_per_charger_second: float | None
    #: Cross-check: messages per charger-second times CPU per message.
    message_source: str | None
    messages_per_charger_second: float | None
    cpu_us_per_message: float | None
    cpu_us_per_charger_second_by_message: float | None
    cpu_capacity_by_message: int | None
    #: Fleet size -> tasks needed (None when a task holds none).
    tasks: dict[int, int | None]
    storm: StormEstimate | None
    targets: tuple[TargetCheck, ...]

    def capacity(self, resource: str) -> Capacity:
        for item in self.capacities:
            if item.resource == resource:
                return item
        raise KeyError(resource)

    def fits(self, fleet: int) -> bool | None:
        """Whether ``fleet`` charge points fit within ``max_tasks`` tasks; None
        when missing data leave it open (the task count is then a lower bound)."""
        tasks = self.tasks.get(fleet, _tasks_needed(fleet, self.per_task, self.limits))
        if tasks is None:
            return False
        if tasks > self.limits.max_tasks:
            return False
        return None if self.missing else True

    @property
    def fits_ceiling(self) -> bool | None:
        """Whether the target fleet (1,000,000) fits the task ceiling (20)."""
        return self.fits(self.limits.target_fleet)


# --------------------------------------------------------------------------
# reading results


def _number(value: object) -> float | None:
    """A finite int or float as float; None for anything else (bool, None, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _get(result: Mapping[str, Any] | None, *keys: str) -> Any:
    value: Any = result
    for key in keys:
        value = _mapping(value).get(key)
    return value


def _derived(results: Mapping[str, Mapping[str, Any]], scenario: str, key: str) -> float | None:
    return _number(_get(results.get(scenario), "derived", key))


def _first(
    results: Mapping[str, Mapping[str, Any]], scenarios: Iterable[str], key: str
) -> tuple[str, float] | None:
    """The first scenario (in order) whose ``derived[key]`` is a positive number."""
    for scenario in scenarios:
        value = _derived(results, scenario, key)
        if value is not None and value > 0:
            return scenario, value
    return None


def _chargers(result: Mapping[str, Any] | None) -> float | None:
    """Chargers a scenario had connected: ``connections.established``, else
    ``parameters.chargers``."""
    for keys in (("connections", "established"), ("parameters", "chargers")):
        value = _number(_get(result, *keys))
        if value is not None and value > 0:
            return value
    return None


# --------------------------------------------------------------------------
# the scaling computation


def _floor(value: float) -> int:
    return max(0, math.floor(value))


def _tasks_needed(fleet: int, per_task: int, limits: Limits) -> int | None:
    if per_task <= 0:
        return None
    return max(limits.min_tasks, math.ceil(fleet / per_task))


def _cpu_capacity(
    results: Mapping[str, Mapping[str, Any]], limits: Limits
) -> tuple[Capacity, tuple[str, float] | None]:
    found = _first(results, ("pipeline", "mix"), "gateway_cpu_us_per_charger_second")
    if found is None:
        return Capacity(CPU, None, "no pipeline or mix result with gateway CPU"), None
    source, us = found
    what = (
        "the production gateway relaying to MQTT"
        if source == "pipeline"
        else "embedded gateway and processor in one process: conservative"
    )
    basis = (
        f"{_fmt(limits.vcpu)} vCPU {_X} {_fmt(limits.vcpu_factor)} core/vCPU {_X} "
        f"{limits.cpu_target:.0%} target / {_fmt(us)} µs per charger-second "
        f"({source}: {what})"
    )
    return Capacity(CPU, _floor(limits.cpu_budget_us_per_s / us), basis, source), found


def _memory_capacity(results: Mapping[str, Mapping[str, Any]], limits: Limits) -> Capacity:
    base = _derived(results, "idle", "base_rss_kb")
    per = _derived(results, "idle", "kb_per_connection")
    if base is None or per is None or per <= 0:
        return Capacity(MEMORY, None, "no idle result with base_rss_kb and kb_per_connection")
    basis = (
        f"({_fmt(limits.memory_mib)} MiB {_X} {limits.memory_headroom:.0%} {_MINUS} "
        f"{_fmt(base / 1024)} MiB base) / {_fmt(per)} KiB per idle connection (idle)"
    )
    return Capacity(MEMORY, _floor((limits.memory_budget_kb - base) / per), basis, "idle")


def _storm_memory_capacity(results: Mapping[str, Mapping[str, Any]], limits: Limits) -> Capacity:
    """What a reconnect storm costs at its peak: every connection dropped and
    reopened at once leaves the gateway above its idle size (the allocator
    keeps what the burst took), and a task must survive that, not only idle."""
    storm = results.get("storm")
    base = _number(_get(storm, "processes", "gateway", "rss_kb", "before"))
    peak = _number(_get(storm, "processes", "gateway", "rss_kb", "peak"))
    chargers = _derived(results, "storm", "chargers")
    if base is None or peak is None or not chargers or peak <= base:
        return Capacity(STORM_MEMORY, None, "no storm result with the gateway's peak RSS")
    per = (peak - base) / chargers
    system = _get(storm, "system") or "storm"
    basis = (
        f"({_fmt(limits.memory_mib)} MiB {_X} {limits.memory_headroom:.0%} {_MINUS} "
        f"{_fmt(base / 1024)} MiB base) / {_fmt(per)} KiB per charger at the storm's peak "
        f"(storm, {system}: {_fmt(peak / 1024)} MiB with {int(chargers):,} chargers)"
    )
    return Capacity(STORM_MEMORY, _floor((limits.memory_budget_kb - base) / per), basis, "storm")


def _mqtt_capacity(results: Mapping[str, Mapping[str, Any]], limits: Limits) -> Capacity:
    quota = limits.mqtt_connections * limits.publishes_per_connection
    uplinks = _first(results, ("pipeline",), "mqtt_publishes_per_charger_second")
    uplink_text = "uplinks and presence"
    if uplinks is None:
        uplinks = _first(results, ("pipeline", "mix"), "messages_per_charger_second")
        uplink_text = "uplink CALLs (presence negligible)"
    if uplinks is None:
        return Capacity(MQTT, None, "no pipeline or mix result with messages per charger-second")
    load = uplinks[1]
    parts = [f"{_fmt(uplinks[1])} {uplink_text} ({uplinks[0]})"]
    if limits.count_downlinks:
        downlinks = _first(results, ("pipeline",), "mqtt_downlinks_per_charger_second")
        downlink_text = "downlinks"
        if downlinks is None:
            downlinks = _first(results, ("pipeline", "mix"), "messages_per_charger_second")
            downlink_text = "downlinks (one answer per uplink CALL)"
        if downlinks is not None:
            load += downlinks[1]
            parts.append(f"{_fmt(downlinks[1])} {downlink_text} ({downlinks[0]})")
    basis = (
        f"{limits.mqtt_connections} connections {_X} {_fmt(limits.publishes_per_connection)} "
        f"publishes/s / ({' + '.join(parts)}) per charger-second"
    )
    return Capacity(MQTT, _floor(quota / load), basis, uplinks[0])


def _storm_window_cpu(result: Mapping[str, Any] | None) -> float | None:
    """The gateway's CPU seconds from the sample before the first ``drop`` (or
    ``reconnect``) sample to the first sample after the last ``reconnect``
    sample: a little more than the storm's own work, so conservative."""
    timeline = _get(result, "timeline")
    if not isinstance(timeline, list):
        return None
    samples = [s for s in timeline if isinstance(s, Mapping) and _number(s.get("t")) is not None]
    samples.sort(key=lambda s: float(s["t"]))
    stormy = [i for i, s in enumerate(samples) if s.get("phase") in ("drop", "reconnect")]
    if not stormy:
        return None
    start = samples[max(0, stormy[0] - 1)]
    end = samples[min(len(samples) - 1, stormy[-1] + 1)]
    before = _number(_get(start, "processes", "gateway", "cpu_s"))
    after = _number(_get(end, "processes", "gateway", "cpu_s"))
    if before is None or after is None or after < before or end is start:
        return None
    return after - before


def _storm(
    results: Mapping[str, Mapping[str, Any]], per_task: int, limits: Limits
) -> StormEstimate | None:
    result = results.get("storm")
    reconnect = _derived(results, "storm", "reconnect_s")
    chargers = _derived(results, "storm", "chargers") or _chargers(result)
    if reconnect is None or chargers is None or chargers <= 0 or per_task <= 0:
        return None
    refusals = _derived(results, "storm", "refusals")
    scale = per_task / chargers
    cpu = _derived(results, "storm", "gateway_cpu_s")
    if cpu is None:
        cpu = _storm_window_cpu(result)
    cpu_bound = None if cpu is None else cpu * scale / (limits.vcpu * limits.vcpu_factor)
    return StormEstimate(
        chargers=int(chargers),
        reconnect_s=reconnect,
        refusals=None if refusals is None else int(refusals),
        to_chargers=per_task,
        linear_s=reconnect * scale,
        gateway_cpu_s=cpu,
        cpu_bound_s=cpu_bound,
    )


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _targets(
    results: Mapping[str, Mapping[str, Any]],
    limits: Limits,
    *,
    per_task: int,
    limiting: str,
    missing: tuple[str, ...],
    tasks: Mapping[int, int | None],
    storm: StormEstimate | None,
) -> tuple[TargetCheck, ...]:
    checks: list[TargetCheck] = []
    bound = f" at most (not measured: {', '.join(missing)})" if missing else ""
    # An upper bound below the target settles it; above, it leaves it open.
    reached: bool | None = per_task >= limits.target_per_task
    if reached and missing:
        reached = None
    checks.append(
        TargetCheck(
            "charge points per task",
            f"≥ {limits.target_per_task:,}",
            f"{per_task:,}{bound} (limiting: {limiting})",
            reached,
        )
    )
    fleet = limits.target_fleet
    needed = tasks.get(fleet, _tasks_needed(fleet, per_task, limits))
    fits: bool | None = needed is not None and needed <= limits.max_tasks
    if fits and missing:
        fits = None
    checks.append(
        TargetCheck(
            f"{fleet:,} charge points within the task ceiling",
            f"≤ {limits.max_tasks} tasks",
            f"{needed:,} tasks" if needed is not None else "no task holds a charge point",
            fits,
        )
    )
    per_idle = _derived(results, "idle", "kb_per_connection")
    checks.append(
        TargetCheck(
            "resident memory per idle charge point",
            f"≤ {_fmt(limits.target_kb_per_idle)} KiB",
            _NOT_RUN if per_idle is None else f"{_fmt(per_idle)} KiB (idle)",
            _at_most(per_idle, limits.target_kb_per_idle),
        )
    )
    ratio = _derived(results, "throughput", "ratio_to_echo")
    checks.append(
        TargetCheck(
            "gateway CPU per round trip against a bare echo",
            f"≤ {_fmt(limits.target_echo_ratio)}{_X}",
            _NOT_RUN if ratio is None else f"{ratio:.2f}{_X} (throughput)",
            _at_most(ratio, limits.target_echo_ratio),
        )
    )
    checks.extend(_storm_targets(storm, limits))
    for scenario in ("mix", "pipeline"):
        checks.append(_soak_target(results, scenario, limits))
    return tuple(checks)


def _storm_targets(storm: StormEstimate | None, limits: Limits) -> list[TargetCheck]:
    if storm is None:
        return [
            TargetCheck("reconnect storm of a full task", "in seconds", _NOT_RUN, None),
            TargetCheck("no charge point refused in the storm", "0 refused", _NOT_RUN, None),
        ]
    measured = (
        f"{storm.chargers:,} in {_fmt(storm.reconnect_s)} s measured; extrapolated to "
        f"{storm.to_chargers:,}: {_fmt(storm.linear_s)} s linearly"
    )
    if storm.cpu_bound_s is not None:
        measured += f", {_fmt(storm.cpu_bound_s)} s if CPU-bound at {_fmt(limits.vcpu)} vCPU"
    return [
        TargetCheck(
            "reconnect storm of a full task (extrapolated)",
            f"< {_fmt(limits.target_storm_s)} s",
            measured,
            storm.estimate_s < limits.target_storm_s,
        ),
        TargetCheck(
            "no charge point refused in the storm",
            "0 refused",
            _NA if storm.refusals is None else f"{storm.refusals:,} refused",
            None if storm.refusals is None else storm.refusals == 0,
        ),
    ]


def _soak_target(
    results: Mapping[str, Mapping[str, Any]], scenario: str, limits: Limits
) -> TargetCheck:
    name = f"soak ({scenario}): no unanswered CALL, no memory growth"
    target = (
        f"0 unanswered; RSS growth {_LE} {_fmt(limits.target_growth_allowance_kb)} KiB + "
        f"{_fmt(limits.target_growth_kb_per_charger)} KiB per charger"
    )
    result = results.get(scenario)
    if result is None:
        return TargetCheck(name, target, _NOT_RUN, None)
    unanswered = _derived(results, scenario, "unanswered")
    if unanswered is None:
        unanswered = _number(_get(result, "calls", "unanswered"))
    growth = _derived(results, scenario, "rss_growth_second_half_kb")
    chargers = _chargers(result)
    parts: list[str] = []
    met: bool | None = True
    if unanswered is None:
        parts.append("unanswered not measured")
        met = None
    else:
        parts.append(f"{int(unanswered):,} unanswered")
        if unanswered > 0:
            met = False
    if growth is None or chargers is None:
        parts.append("RSS growth not measured")
        if met:
            met = None
    else:
        allowed = limits.growth_allowed_kb(chargers)
        parts.append(
            f"RSS {growth:+,.0f} KiB over {chargers:,.0f} chargers "
            f"({growth / chargers:.3f} KiB each; {allowed:,.0f} KiB allowed)"
        )
        if growth > allowed:
            met = False
    return TargetCheck(name, target, "; ".join(parts), met)


def scaling(results: Mapping[str, Mapping[str, Any]], limits: Limits | None = None) -> Scaling:
    """Charge points per production task by resource, the limiting one, the
    tasks each fleet needs and the design targets, from the scenario results
    (keyed by scenario name; absent scenarios and null figures are allowed)."""
    limits = limits or Limits()
    cpu, cpu_found = _cpu_capacity(results, limits)
    capacities = (
        cpu,
        _memory_capacity(results, limits),
        _storm_memory_capacity(results, limits),
        Capacity(
            FILES,
            max(0, limits.nofile - limits.fd_reserve),
            f"nofile {limits.nofile:,} {_MINUS} {limits.fd_reserve:,} reserved, "
            "one per charge point",
        ),
        Capacity(NLB, limits.nlb_per_target, "connections per NLB target (AWS)"),
        _mqtt_capacity(results, limits),
    )
    known = [c for c in capacities if c.chargers is not None]
    limiting_capacity = min(known, key=lambda c: c.chargers or 0)
    per_task = limiting_capacity.chargers or 0
    missing = tuple(c.resource for c in capacities if c.chargers is None)

    # Cross-check of the CPU figure: the standard mix's messages times the
    # CPU per message (leaves out the idle cost of each connection).
    message_source: str | None = None
    messages = per_message = by_message = None
    capacity_by_message: int | None = None
    order = (cpu_found[0],) if cpu_found else ("pipeline", "mix")
    for scenario in order:
        m = _derived(results, scenario, "messages_per_charger_second")
        u = _derived(results, scenario, "gateway_cpu_us_per_message")
        if m is not None and u is not None:
            message_source, messages, per_message = scenario, m, u
            by_message = m * u
            if by_message > 0:
                capacity_by_message = _floor(limits.cpu_budget_us_per_s / by_message)
            break

    tasks = {fleet: _tasks_needed(fleet, per_task, limits) for fleet in limits.fleets}
    storm = _storm(results, per_task, limits)
    return Scaling(
        limits=limits,
        capacities=capacities,
        per_task=per_task,
        limiting=limiting_capacity.resource,
        missing=missing,
        cpu_source=cpu_found[0] if cpu_found else None,
        cpu_us_per_charger_second=cpu_found[1] if cpu_found else None,
        message_source=message_source,
        messages_per_charger_second=messages,
        cpu_us_per_message=per_message,
        cpu_us_per_charger_second_by_message=by_message,
        cpu_capacity_by_message=capacity_by_message,
        tasks=tasks,
        storm=storm,
        targets=_targets(
            results,
            limits,
            per_task=per_task,
            limiting=limiting_capacity.resource,
            missing=missing,
            tasks=tasks,
            storm=storm,
        ),
    )


# --------------------------------------------------------------------------
# Markdown


def _fmt(value: object, digits: int | None = None) -> str:
    """A number with thousands separators: ints as they are, floats to three
    significant digits (whole from 100 up); mappings and lists as compact
    JSON; anything else as text, None as a dash."""
    if value is None:
        return _NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if digits is not None:
            return f"{value:,.{digits}f}"
        if abs(value) >= 100 or value == int(value):
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)


def _cell(text: object) -> str:
    """Text for a table cell: no line breaks, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: object) -> str:
    """An inline code span for a table cell."""
    body = " ".join(str(text).split()).replace("|", "\\|")
    fence = "``" if "`" in body else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table; ``align`` has one letter per column: l or r."""
    marks = ["---:" if a == "r" else "---" for a in align]
    return [_row(*header), _row(*marks), *(_row(*row) for row in rows)]


def _met(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[met]


def _machine_text(machine: Mapping[str, Any]) -> str:
    parts: list[str] = []
    cpus = machine.get("cpus")
    if cpus is not None:
        parts.append(f"{_fmt(cpus)} CPUs")
    for key in ("cpu_model", "platform"):
        if machine.get(key):
            parts.append(str(machine[key]))
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    if machine.get("commit"):
        parts.append(f"commit {machine['commit']}")
    return ", ".join(parts) if parts else "not recorded"


def _ordered(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The five scenarios, then any other result by name."""
    return list(SCENARIOS) + sorted(name for name in results if name not in SCENARIOS)


def _header(
    results: Mapping[str, Mapping[str, Any]],
    generated_at: datetime,
    results_dir: Path | None,
) -> list[str]:
    ran = [name for name in _ordered(results) if name in results]
    where = f" in `{_shown(results_dir)}`" if results_dir is not None else ""
    lines = [
        "# Scaling report",
        "",
        f"Generated {generated_at.strftime('%Y-%m-%d %H:%M UTC')} by `python -m bench.report` "
        f"from {len(ran)} of {len(SCENARIOS)} scenario results{where}.",
        "",
    ]
    machines = {_machine_text(_mapping(results[name].get("machine"))): name for name in ran}
    if len(machines) == 1:
        lines.append(f"**Machine:** {next(iter(machines))}.")
    elif machines:
        lines.append("**Machines** (the results come from more than one):")
        lines.append("")
        for name in ran:
            lines.append(f"* {name}: {_machine_text(_mapping(results[name].get('machine')))}")
    started = sorted({str(results[n]["started_at"]) for n in ran if results[n].get("started_at")})
    if started:
        span = started[0] if len(started) == 1 else f"{started[0]} to {started[-1]}"
        lines.append("")
        lines.append(f"**Runs started:** {span}.")
    lines.append("")
    return lines


def _scenario_rows(
    results: Mapping[str, Mapping[str, Any]], problems: Mapping[str, str]
) -> list[list[object]]:
    rows: list[list[object]] = []
    for name in _ordered(results):
        result = results.get(name)
        if result is None:
            status = _NOT_RUN
            if name in problems:
                status += f" ({_cell(problems[name])})"
            rows.append([name, status, *([_NA] * 9)])
            continue
        ok = result.get("ok")
        status = "ok" if ok is True else "**failed**" if ok is False else _NA
        rows.append(
            [
                name,
                status,
                _cell(result.get("system") or _NA),
                _fmt(_get(result, "parameters", "chargers")),
                _fmt(_get(result, "connections", "established")),
                _fmt(_get(result, "duration_s")),
                _fmt(_get(result, "calls", "sent")),
                _fmt(_get(result, "calls", "answered")),
                _fmt(_get(result, "calls", "errors")),
                _fmt(_get(result, "latency_ms", "p50")),
                _fmt(_get(result, "latency_ms", "p99")),
            ]
        )
    return rows


def _scenarios_section(
    results: Mapping[str, Mapping[str, Any]], problems: Mapping[str, str]
) -> list[str]:
    lines = ["## Scenarios", ""]
    lines += _table(
        [
            "scenario",
            "result",
            "system",
            "chargers",
            "connected",
            "duration s",
            "CALLs sent",
            "answered",
            "errors",
            "p50 ms",
            "p99 ms",
        ],
        "lllrrrrrrrr",
        _scenario_rows(results, problems),
    )
    lines += ["", "Commands that produced them:", ""]
    lines += _table(
        ["scenario", "command"],
        "ll",
        [
            [name, _code(results[name]["command"]) if results[name].get("command") else _NA]
            if name in results
            else [name, _NOT_RUN]
            for name in _ordered(results)
        ],
    )
    lines.append("")
    for name in _ordered(results):
        result = results.get(name)
        if result is None:
            continue
        lines += [f"### {name}: {_cell(result.get('title') or name)}", ""]
        derived = _mapping(result.get("derived"))
        if derived:
            lines += _table(
                ["figure", "value"],
                "lr",
                [
                    [
                        f"`{key}`",
                        _code(_fmt(value)) if isinstance(value, Mapping | list) else _fmt(value),
                    ]
                    for key, value in derived.items()
                ],
            )
            lines.append("")
        reported = [t for t in result.get("targets") or [] if isinstance(t, Mapping)]
        if reported:
            lines += ["Targets the scenario reported:", ""]
            lines += _table(
                ["target", "design", "measured", "met"],
                "llll",
                [
                    [
                        _cell(t.get("name", "")),
                        _cell(t.get("target", "")),
                        _cell(t.get("measured", "")),
                        _met(t.get("met") if isinstance(t.get("met"), bool) else None),
                    ]
                    for t in reported
                ],
            )
            lines.append("")
    return lines


def _capacity_section(result: Scaling) -> list[str]:
    limits = result.limits
    lines = [
        "## Capacity of one task",
        "",
        f"The seed's task: {_fmt(limits.vcpu)} vCPU, {_fmt(limits.memory_mib)} MiB, "
        f"nofile {limits.nofile:,}, autoscaling at {limits.cpu_target:.0%} CPU, "
        f"{limits.min_tasks}{_DASH}{limits.max_tasks} tasks; an NLB holds about "
        f"{limits.nlb_per_target:,} connections per target; AWS IoT Core allows "
        f"{_fmt(limits.publishes_per_connection)} publishes/s per MQTT connection and the "
        f"gateway's pool opens at most {limits.mqtt_connections} connections per task.",
        "",
        "Assumptions:",
        "",
        f"* One Fargate vCPU is worth {_fmt(limits.vcpu_factor)} core(s) of the benchmark "
        "machine (`--vcpu-factor`); the CPU capacity scales with it.",
        "* CPU per charger-second is the pipeline scenario's gateway process (the production "
        "gateway relaying to MQTT) when it ran, else the mix scenario's embedded process, "
        "whose figure includes the processor and is therefore conservative.",
        f"* The gateway may fill {limits.memory_headroom:.0%} of the task's memory "
        "(`--memory-headroom`); idle memory per connection is the idle scenario's.",
        f"* {limits.fd_reserve:,} descriptors are kept for the listening socket, the MQTT "
        "pool and logs (`--fd-reserve`).",
        "* MQTT publishes count "
        + (
            "both directions (uplinks and presence, and the downlink answers), as AWS IoT "
            "Core and the gateway's pool count them (`--mqtt-uplinks-only` to leave the "
            "downlinks out)."
            if limits.count_downlinks
            else "uplinks and presence only (`--mqtt-uplinks-only`)."
        ),
        "",
    ]
    rows: list[list[object]] = []
    for capacity in result.capacities:
        chargers = _fmt(capacity.chargers) if capacity.chargers is not None else "not measured"
        name = capacity.resource
        if name == result.limiting:
            name, chargers = f"**{name}**", f"**{chargers}**"
        rows.append([name, chargers, _cell(capacity.basis)])
    lines += _table(["resource", "charge points per task", "from"], "lrl", rows)
    lines += ["", "The limiting resource is in bold."]
    lines.append("")
    bound = (
        f" This is an upper bound: {', '.join(result.missing)} not measured."
        if result.missing
        else ""
    )
    lines.append(
        f"**One task holds {result.per_task:,} charge points; the limiting resource is "
        f"{result.limiting}.**" + bound
    )
    lines.append("")
    if result.cpu_us_per_charger_second is not None:
        lines.append(
            f"CPU at the standard mix: {_fmt(result.cpu_us_per_charger_second)} µs per "
            f"charger-second measured over the load window ({result.cpu_source})."
        )
    if result.cpu_us_per_charger_second_by_message is not None:
        lines.append(
            f"Cross-check from the messages: {_fmt(result.messages_per_charger_second)} "
            f"messages per charger-second {_X} {_fmt(result.cpu_us_per_message)} µs per message = "
            f"{_fmt(result.cpu_us_per_charger_second_by_message)} µs per charger-second "
            f"({result.message_source}), "
            f"{_fmt(result.cpu_capacity_by_message)} charge points per task by CPU. "
            "It leaves out what idle connections cost (keepalive, sweeps), so it is the lower "
            "of the two figures unless the measurement is noisy."
        )
    lines += ["", "### Tasks needed", ""]
    rows = []
    for fleet, tasks in result.tasks.items():
        fits = result.fits(fleet)
        rows.append(
            [
                f"{fleet:,}",
                _fmt(tasks) if tasks is not None else "none holds a charge point",
                {True: "yes", False: "**no**", None: "unknown (data missing)"}[fits],
            ]
        )
    lines += _table(
        ["charge points", "tasks", f"within {limits.min_tasks}{_DASH}{limits.max_tasks} tasks"],
        "rrl",
        rows,
    )
    lines.append("")
    return lines


def _targets_section(result: Scaling, extra: Sequence[TargetCheck] = ()) -> list[str]:
    lines = ["## Design targets", ""]
    lines += _table(
        ["target", "design", "measured", "met"],
        "llll",
        [
            [_cell(t.name), _cell(t.target), _cell(t.measured), _met(t.met)]
            for t in (*result.targets, *extra)
        ],
    )
    storm = result.storm
    lines += [""]
    if storm is not None:
        lines.append(
            f"The storm figure is an extrapolation: the storm scenario reconnected "
            f"{storm.chargers:,} charge points in {_fmt(storm.reconnect_s)} s, scaled linearly to "
            f"{storm.to_chargers:,} (one task) and, when the gateway's CPU over the storm was "
            "measured, also as that CPU time scaled the same way and run on the task's vCPU; "
            "the larger counts."
        )
    limits = result.limits
    lines.append(
        "Soak criterion (mix and pipeline): no CALL left unanswered, and the gateway's RSS "
        "growth over the second half of the load window (`rss_growth_second_half_kb`; the "
        "first half warms caches and opens sessions) at most "
        f"{_fmt(limits.target_growth_allowance_kb)} KiB (the allocator's noise) plus "
        f"{_fmt(limits.target_growth_kb_per_charger)} KiB per connected charger: less than "
        "that is not a leak that grows with the fleet or with the messages handled."
    )
    lines.append("")
    return lines


def _plots_section(
    results: Mapping[str, Mapping[str, Any]],
    images: Mapping[str, Sequence[Path]],
    report_dir: Path | None,
) -> list[str]:
    lines = ["## Plots", ""]
    shown = False
    for name in _ordered(results):
        paths = images.get(name) or []
        if not paths:
            continue
        shown = True
        lines += [f"### {name}", ""]
        for path in paths:
            link = Path(os.path.relpath(path, report_dir)) if report_dir is not None else path
            kind = path.stem.removeprefix(f"{name}-")
            lines.append(f"![{name} {kind}]({link.as_posix()})")
            lines.append("")
    if not shown:
        lines += ["No plots (no result, or `--no-plots`).", ""]
    return lines


def _reproduce_section(
    results: Mapping[str, Mapping[str, Any]],
    results_dir: Path | None,
    report_path: Path | None,
) -> list[str]:
    lines = ["## How to reproduce", ""]
    for name in _ordered(results):
        result = results.get(name)
        command = result.get("command") if result is not None else None
        if command:
            lines.append(f"1. {name}: {_code(command)}")
        elif name in SCENARIOS:
            lines.append(f"1. {name} ({_NOT_RUN}): `.venv/bin/python -m bench {name}`")
    report = "1. this report: `.venv/bin/python -m bench.report"
    if results_dir is not None and results_dir.resolve() != DEFAULT_RESULTS:
        report += f" --results {_shown(results_dir)}"
    if report_path is not None and report_path.resolve() != DEFAULT_OUTPUT:
        report += f" --output {_shown(report_path)}"
    lines += [
        report + "`",
        "",
        "Each scenario writes `<results>/<scenario>.json`; the report reads them all, draws "
        "the plots into the results folder and writes this file. See `bench/README.md` for "
        "what each scenario runs.",
        "",
    ]
    return lines


def build_report(
    results: Mapping[str, Mapping[str, Any]],
    *,
    limits: Limits | None = None,
    images: Mapping[str, Sequence[Path]] | None = None,
    report_path: Path | None = None,
    results_dir: Path | None = None,
    problems: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
    prices: cost.Prices | str | None = None,
) -> str:
    """The Markdown report of ``results`` (scenario name -> result dict).

    ``images`` maps a scenario to the PNGs drawn of it, linked relative to
    ``report_path``'s folder when that is given. ``problems`` maps a scenario
    to why its result could not be read (shown next to "not run").
    ``prices``: the cost section's list prices (default: read from
    ``bench/aws_prices.json``), or why there are none."""
    computed = scaling(results, limits)
    bills = _costs(results, computed.limits, prices)
    report_dir = report_path.parent if report_path is not None else None
    lines = _header(results, generated_at or datetime.now(UTC), results_dir)
    lines += _scenarios_section(results, problems or {})
    lines += _capacity_section(computed)
    lines += cost_report.cost_section(bills)
    lines += _targets_section(computed, [TargetCheck(*cost_report.cost_target(bills))])
    lines += _plots_section(results, images or {}, report_dir)
    lines += _reproduce_section(results, results_dir, report_path)
    return "\n".join(lines).rstrip() + "\n"


def _costs(
    results: Mapping[str, Mapping[str, Any]],
    limits: Limits,
    prices: cost.Prices | str | None,
) -> cost_report.Costs:
    """Each design's bill, with the tasks its own capacity figures need: the
    scaling computation run with that design's result as the pipeline's."""
    problem = None
    if prices is None:
        try:
            prices = cost.load_prices()
        except (OSError, ValueError) as exc:
            problem = f"{cost.DEFAULT_PRICES.name} unreadable: {exc}"
    elif isinstance(prices, str):
        problem, prices = prices, None
    designs = []
    for name, scenario in cost_report.DESIGNS.items():
        result = results.get(scenario)
        tasks: Mapping[int, int | None] = {}
        if result is not None:
            tasks = scaling({**results, "pipeline": result}, limits).tasks
        designs.append(cost_report.Design(name, scenario, result, tasks))
    sizing = cost.sizing_from(
        results.get("lambda"),
        task_vcpu=limits.vcpu,
        task_memory_mib=limits.memory_mib,
        pool_connections=limits.mqtt_connections,
    )
    return cost_report.costs(
        designs,
        prices if isinstance(prices, cost.Prices) else None,
        sizing,
        fleets=limits.fleets,
        target_fleet=limits.target_fleet,
        prices_problem=problem,
    )


# --------------------------------------------------------------------------
# files and the command line


def load_results(folder: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every ``*.json`` result in ``folder`` by scenario name (the file's
    ``scenario``, else its name), and the files that could not be read, by
    scenario name, with the reason."""
    results: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    if not folder.is_dir():
        return results, problems
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problems[path.stem] = f"{path.name} unreadable: {exc}"
            continue
        if not isinstance(data, dict):
            problems[path.stem] = f"{path.name} is not a JSON object"
            continue
        name = data.get("scenario")
        results[name if isinstance(name, str) and name else path.stem] = data
    for name in results:
        problems.pop(name, None)
    return results, problems


def write_report(
    results_dir: Path,
    output: Path,
    *,
    limits: Limits | None = None,
    images_dir: Path | None = None,
    plots: bool = True,
) -> Path:
    """Read the results, draw their plots into ``images_dir`` (default: the
    results folder) and write the report to ``output``; the report's path."""
    results, problems = load_results(results_dir)
    images: dict[str, Sequence[Path]] = {}
    if plots and results:
        from . import plots as drawing  # noqa: PLC0415 (matplotlib only when drawing)

        folder = images_dir or results_dir
        for name, result in results.items():
            images[name] = drawing.plot_all(result, folder)
    text = build_report(
        results,
        limits=limits,
        images=images,
        report_path=output,
        results_dir=results_dir,
        problems=problems,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Plots and a Markdown scaling report from the scenario results.",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="folder of <scenario>.json results (default bench/results)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="the Markdown report to write (default bench/REPORT.md)",
    )
    parser.add_argument(
        "--images", type=Path, default=None, help="folder for the PNGs (default: --results)"
    )
    parser.add_argument("--no-plots", action="store_true", help="write the report without plots")
    defaults = Limits()
    parser.add_argument(
        "--vcpu-factor",
        type=_positive,
        default=defaults.vcpu_factor,
        help="cores of the benchmark machine one Fargate vCPU is worth "
        f"(default {defaults.vcpu_factor})",
    )
    parser.add_argument(
        "--memory-headroom",
        type=_share,
        default=defaults.memory_headroom,
        help="share of the task's memory the gateway may fill "
        f"(default {defaults.memory_headroom})",
    )
    parser.add_argument(
        "--fd-reserve",
        type=_count,
        default=defaults.fd_reserve,
        help=f"descriptors that are not charge points (default {defaults.fd_reserve})",
    )
    parser.add_argument(
        "--mqtt-uplinks-only",
        action="store_true",
        help="count only uplinks and presence against the MQTT publish quota",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    limits = dataclasses.replace(
        Limits(),
        vcpu_factor=args.vcpu_factor,
        memory_headroom=args.memory_headroom,
        fd_reserve=args.fd_reserve,
        count_downlinks=not args.mqtt_uplinks_only,
    )
    if not args.results.is_dir():
        print(f"no results folder {args.results}: every scenario is 'not run'", file=sys.stderr)
    written = write_report(
        args.results, args.output, limits=limits, images_dir=args.images, plots=not args.no_plots
    )
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
