"""The scaling report (``bench.report``): the capacity arithmetic by hand, and
the Markdown it writes from synthetic scenario results.

Plain unit tests (no ``benchmark`` fixture), so they run in the normal
``pytest`` run. ``make_result`` builds a result in the shape the scenario
runner writes; ``tests/bench/test_plots.py`` uses it too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.report import (
    CPU,
    FILES,
    MEMORY,
    MQTT,
    NLB,
    SCENARIOS,
    STORM_MEMORY,
    Limits,
    Scaling,
    build_report,
    load_results,
    main,
    scaling,
)
from gateway.mqtt_settings import MqttSettings

#: Derived figures of each scenario, roughly as measured on the bench machine.
DERIVED: dict[str, dict[str, Any]] = {
    "idle": {"base_rss_kb": 53_000, "kb_per_connection": 6.72, "connections": 19_000},
    "throughput": {
        "round_trips_per_s": 56_509.0,
        "gateway_cpu_us_per_round_trip": 18.4,
        "echo_cpu_us_per_round_trip": 9.4,
        "ratio_to_echo": 1.96,
    },
    "mix": {
        "messages_per_charger_second": 0.0085,
        "gateway_cpu_us_per_charger_second": 0.5,
        "gateway_cpu_us_per_message": 30.0,
        "rss_growth_kb": 512,
        "rss_growth_second_half_kb": 128,
        "unanswered": 0,
    },
    "storm": {"reconnect_s": 4.0, "refusals": 0, "chargers": 19_000},
    "pipeline": {
        "gateway_cpu_us_per_charger_second": 0.6,
        "gateway_cpu_us_per_message": 45.0,
        "messages_per_charger_second": 0.0085,
        "broker_cpu_us_per_message": 25.0,
        "workers_cpu_us_per_message": 20.0,
        "mqtt_publishes_per_charger_second": 0.0086,
        "rss_growth_kb": 256,
        "rss_growth_second_half_kb": 64,
        "unanswered": 0,
    },
}

#: ``pipeline --batch-bytes 0``: the same figures, written under its own name.
DERIVED["pipeline-one-per-frame"] = dict(DERIVED["pipeline"])

#: Growth of the synthetic latency buckets, as the runner's histogram.
GROWTH = 1.02


def latency_buckets(median_ms: float = 8.5, spread: float = 12.0) -> list[list[float]]:
    """A log-normal-ish histogram in 2 % buckets (only non-empty ones, as the
    runner writes them)."""
    centre = round(math.log(median_ms * 1e6) / math.log(GROWTH))
    buckets: list[list[float]] = []
    for index in range(centre - 60, centre + 60):
        count = int(10_000 * math.exp(-(((index - centre) / spread) ** 2)))
        if count:
            buckets.append([round(GROWTH**index / 1e6, 6), count])
    return buckets


def timeline(scenario: str, chargers: int, processes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Samples a second apart: connect in five steps, load, and for the storm
    a drop, a reconnect and a settle."""
    phases = ["connect"] * 5 + ["load"] * 10
    if scenario == "storm":
        phases += ["drop"] * 2 + ["reconnect"] * 4 + ["settle"] * 3
    samples: list[dict[str, Any]] = []
    connected = answered = 0
    cpu = 0.0
    for second, phase in enumerate(phases):
        if phase == "connect":
            connected = min(chargers, connected + chargers // 5)
        elif phase == "drop":
            connected = 0
        elif phase == "reconnect":
            connected = min(chargers, connected + chargers // 4)
        answered += 4_000 if phase == "load" else 100
        cpu += 0.9 if phase in ("load", "reconnect") else 0.2
        samples.append(
            {
                "t": float(second),
                "phase": phase,
                "connected": connected,
                "sent": answered + 5,
                "answered": answered,
                "errors": 0,
                "processes": {
                    name: {"cpu_s": cpu / (i + 1), "rss_kb": 53_000 + 7 * connected}
                    for i, name in enumerate(processes)
                },
            }
        )
    return samples


def make_result(
    scenario: str,
    *,
    chargers: int = 1000,
    derived: Mapping[str, Any] | None = None,
    with_timeline: bool = True,
    with_latency: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """A result in the runner's shape; ``derived`` replaces the scenario's
    default figures (``DERIVED``) key by key, ``overrides`` whole top-level keys."""
    system = "pipeline" if scenario.startswith("pipeline") else "embedded"
    processes = ("gateway", "broker", "worker-0") if system == "pipeline" else ("gateway",)
    buckets = latency_buckets()
    result: dict[str, Any] = {
        "scenario": scenario,
        "title": f"{scenario.title()} scenario",
        "command": f".venv/bin/python -m bench {scenario} --chargers {chargers}",
        "started_at": "2026-11-25T16:00:00Z",
        "duration_s": 123.4,
        "machine": {
            "cpus": 2,
            "cpu_model": "AMD EPYC 7B13",
            "python": "3.11.7",
            "platform": "Linux-6.1-x86_64",
            "commit": "abc1234",
        },
        "parameters": {"chargers": chargers, "seconds": 60.0, "ratio_201": 0.5},
        "system": system,
        "connections": {
            "attempted": chargers,
            "established": chargers,
            "failed": 0,
            "failure_kinds": {},
            "connect_s": 1.5,
            "connect_rate_per_s": chargers / 1.5,
            "listen_overflows": 0,
        },
        "calls": {
            "sent": 40_000,
            "answered": 40_000,
            "errors": 0,
            "unanswered": 0,
            "error_kinds": {},
            "by_action": {"Heartbeat": {"sent": 40_000, "answered": 40_000, "errors": 0}},
        },
        "server_calls": {"received": 0, "answered": 0, "by_action": {}},
        "latency_ms": {
            "count": sum(int(count) for _, count in buckets),
            "p50": 8.5,
            "p90": 9.7,
            "p99": 11.2,
            "max": 30.2,
            "buckets": buckets,
        }
        if with_latency
        else None,
        "timeline": timeline(scenario, chargers, processes) if with_timeline else [],
        "processes": {
            name: {
                "pid": 1000 + i,
                "cpu_s": {"before": 0.1, "load": 9.0, "after": 9.5},
                "rss_kb": {"before": 53_000, "peak": 60_000, "after": 60_000},
            }
            for i, name in enumerate(processes)
        },
        "derived": {**DERIVED[scenario], **(derived or {})},
        "targets": [{"name": "no errors", "target": "0", "measured": "0", "met": True}],
        "ok": True,
    }
    result.update(overrides)
    return result


def all_results(**derived: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every scenario, with ``derived[scenario]`` replacing figures."""
    return {name: make_result(name, derived=derived.get(name)) for name in SCENARIOS}


#: 512 MiB x 90 % = 471,859.2 KiB; with this base, 420,000 KiB for connections.
BASE_KB = 51_859.2


# --------------------------------------------------------------------------
# scaling()


def test_memory_limited() -> None:
    results = all_results(
        idle={"base_rss_kb": BASE_KB, "kb_per_connection": 10.0},
        pipeline={
            "gateway_cpu_us_per_charger_second": 1.0,
            "mqtt_publishes_per_charger_second": 0.01,
            "messages_per_charger_second": 0.01,
            "gateway_cpu_us_per_message": 50.0,
        },
    )
    result = scaling(results)
    # 420,000 KiB / 10 KiB
    assert result.capacity(MEMORY).chargers == 42_000
    # 0.25 vCPU x 60 % x 1e6 / 1.0 us per charger-second
    assert result.capacity(CPU).chargers == 150_000
    assert result.capacity(FILES).chargers == 65_536 - 100
    assert result.capacity(NLB).chargers == 55_000
    # 16 connections x 100/s / (0.01 uplinks + 0.01 downlinks)
    assert result.capacity(MQTT).chargers == 80_000
    assert result.per_task == 42_000
    assert result.limiting == MEMORY
    assert result.missing == ()
    assert result.tasks == {100_000: 3, 1_000_000: 24}
    assert result.fits_ceiling is False
    assert result.cpu_source == "pipeline"
    # cross-check: 0.01 messages x 50 us = 0.5 us per charger-second
    assert result.cpu_us_per_charger_second_by_message == pytest.approx(0.5)
    assert result.cpu_capacity_by_message == 300_000
    checks = {check.name: check for check in result.targets}
    assert checks["charge points per task"].met is False
    assert checks["1,000,000 charge points within the task ceiling"].met is False


def test_cpu_limited() -> None:
    results = all_results(
        idle={"base_rss_kb": BASE_KB, "kb_per_connection": 7.0},
        pipeline={"gateway_cpu_us_per_charger_second": 5.0},
    )
    result = scaling(results)
    assert result.capacity(MEMORY).chargers == 60_000
    assert result.capacity(CPU).chargers == 30_000
    assert result.limiting == CPU
    assert result.per_task == 30_000
    assert result.tasks == {100_000: 4, 1_000_000: 34}


def test_nlb_limited_and_within_the_ceiling() -> None:
    result = scaling(all_results())
    # memory: (471,859.2 - 53,000) / 6.72 = 62,330; CPU: 150,000 / 0.6 = 250,000
    assert result.capacity(MEMORY).chargers == 62_330
    assert result.capacity(CPU).chargers == 250_000
    assert result.limiting == NLB
    assert result.per_task == 55_000
    assert result.tasks == {100_000: 2, 1_000_000: 19}
    assert result.fits_ceiling is True
    assert all(check.met is True for check in result.targets), result.targets


def test_cpu_falls_back_to_mix_without_pipeline() -> None:
    results = all_results(mix={"gateway_cpu_us_per_charger_second": 2.0})
    del results["pipeline"]
    result = scaling(results)
    assert result.cpu_source == "mix"
    assert result.capacity(CPU).chargers == 75_000
    assert "conservative" in result.capacity(CPU).basis
    # the cross-check comes from the same scenario: 0.0085 x 30 us
    assert result.message_source == "mix"
    assert result.cpu_us_per_charger_second_by_message == pytest.approx(0.255)


def test_cpu_falls_back_to_mix_when_pipeline_lacks_the_figure() -> None:
    results = all_results(
        pipeline={"gateway_cpu_us_per_charger_second": None},
        mix={"gateway_cpu_us_per_charger_second": 3.0},
    )
    result = scaling(results)
    assert result.cpu_source == "mix"
    assert result.capacity(CPU).chargers == 50_000


def test_mqtt_from_mix_messages_without_pipeline() -> None:
    results = all_results(mix={"messages_per_charger_second": 0.008})
    del results["pipeline"]
    # 1,600 publishes/s / (0.008 uplinks + 0.008 downlinks)
    assert scaling(results).capacity(MQTT).chargers == 100_000


def test_mqtt_uplinks_only() -> None:
    results = all_results(pipeline={"mqtt_publishes_per_charger_second": 0.01})
    limits = Limits(count_downlinks=False)
    assert scaling(results, limits).capacity(MQTT).chargers == 160_000


def test_mqtt_pool_size_is_the_gateway_default() -> None:
    assert Limits().mqtt_connections == MqttSettings("mqtt://broker", "gw-1").max_connections


def test_vcpu_factor_scales_cpu() -> None:
    results = all_results(pipeline={"gateway_cpu_us_per_charger_second": 5.0})
    assert scaling(results, Limits(vcpu_factor=2.0)).capacity(CPU).chargers == 60_000


def test_memory_headroom_and_fd_reserve() -> None:
    results = all_results(idle={"base_rss_kb": 0, "kb_per_connection": 8.0})
    result = scaling(results, Limits(memory_headroom=0.5, fd_reserve=1_000))
    assert result.capacity(MEMORY).chargers == 32_768  # 256 MiB / 8 KiB
    assert result.capacity(FILES).chargers == 64_536


def test_a_storm_whose_peak_outgrows_the_task_limits_it() -> None:
    results = all_results(idle={"base_rss_kb": BASE_KB, "kb_per_connection": 6.0})
    storm = results["storm"]
    # 19,000 chargers took the gateway from 51,859.2 to 261,859.2 KiB at the peak:
    # 210,000 KiB / 19,000 = 11.05 KiB each; 420,000 KiB / 11.05 = 38,000.
    storm["processes"]["gateway"]["rss_kb"] = {"before": BASE_KB, "peak": BASE_KB + 210_000}
    storm["derived"]["chargers"] = 19_000
    result = scaling(results)
    assert result.capacity(MEMORY).chargers == 70_000  # idle: 420,000 / 6
    assert result.capacity(STORM_MEMORY).chargers == 38_000
    assert result.limiting == STORM_MEMORY
    assert result.per_task == 38_000
    assert "storm's peak" in build_report(results)


def test_no_results_leaves_the_fixed_limits() -> None:
    result = scaling({})
    assert result.capacity(CPU).chargers is None
    assert result.capacity(MEMORY).chargers is None
    assert result.capacity(MQTT).chargers is None
    assert result.missing == (CPU, MEMORY, STORM_MEMORY, MQTT)
    assert result.per_task == 55_000
    assert result.limiting == NLB
    assert result.tasks == {100_000: 2, 1_000_000: 19}
    # 55,000 is only an upper bound, so whether 1,000,000 fit is open
    assert result.fits_ceiling is None
    assert result.storm is None
    assert all(check.met is None for check in result.targets)


def test_upper_bound_below_the_target_is_not_met() -> None:
    result = scaling({"idle": make_result("idle", derived={"kb_per_connection": 20.0})})
    assert result.missing == (CPU, STORM_MEMORY, MQTT)
    checks = {check.name: check for check in result.targets}
    assert checks["charge points per task"].met is False
    assert checks["resident memory per idle charge point"].met is False


def storm_timeline(cpu_during_storm: float) -> list[dict[str, Any]]:
    """Idle, then a storm whose gateway CPU is ``cpu_during_storm`` seconds."""
    phases = ["load", "load", "drop", "reconnect", "reconnect", "settle"]
    cpu = [1.0, 1.0, 1.0, None, None, 1.0 + cpu_during_storm]
    return [
        {
            "t": float(second),
            "phase": phase,
            "connected": 0,
            "processes": {} if used is None else {"gateway": {"cpu_s": used, "rss_kb": 1}},
        }
        for second, (phase, used) in enumerate(zip(phases, cpu, strict=True))
    ]


@pytest.mark.parametrize(("cpu_s", "met"), [(2.0, True), (4.0, False)])
def test_storm_extrapolated_to_a_task(cpu_s: float, met: bool) -> None:
    results = all_results(storm={"reconnect_s": 5.0, "chargers": 10_000, "refusals": 0})
    results["storm"]["timeline"] = storm_timeline(cpu_s)
    storm = scaling(results).storm
    assert storm is not None
    assert storm.to_chargers == 55_000
    assert storm.linear_s == pytest.approx(27.5)  # 5 s x 5.5
    assert storm.gateway_cpu_s == pytest.approx(cpu_s)
    assert storm.cpu_bound_s == pytest.approx(cpu_s * 5.5 / 0.25)  # 44 s or 88 s
    assert storm.estimate_s == pytest.approx(max(27.5, cpu_s * 22))
    checks = {check.name: check for check in scaling(results).targets}
    assert checks["reconnect storm of a full task (extrapolated)"].met is met
    assert checks["no charge point refused in the storm"].met is True


def test_storm_prefers_the_scenarios_own_cpu_figure() -> None:
    results = all_results(
        storm={"reconnect_s": 5.0, "chargers": 10_000, "refusals": 0, "gateway_cpu_s": 1.0}
    )
    results["storm"]["timeline"] = storm_timeline(4.0)
    storm = scaling(results).storm
    assert storm is not None
    assert storm.gateway_cpu_s == pytest.approx(1.0)
    assert storm.cpu_bound_s == pytest.approx(22.0)  # 1 s x 5.5 / 0.25
    assert storm.estimate_s == pytest.approx(27.5)  # the linear figure is larger


def test_storm_without_cpu_is_linear_and_refusals_fail() -> None:
    results = all_results(storm={"reconnect_s": 2.0, "chargers": 11_000, "refusals": 3})
    results["storm"]["timeline"] = []
    result = scaling(results)
    assert result.storm is not None
    assert result.storm.cpu_bound_s is None
    assert result.storm.estimate_s == pytest.approx(10.0)
    checks = {check.name: check for check in result.targets}
    assert checks["reconnect storm of a full task (extrapolated)"].met is True
    assert checks["no charge point refused in the storm"].met is False


@pytest.mark.parametrize(
    ("growth_kb", "unanswered", "met"),
    [(500, 0, True), (2_548, 0, True), (2_549, 0, False), (0, 3, False), (None, 0, None)],
)
def test_soak_criterion(growth_kb: int | None, unanswered: int, met: bool | None) -> None:
    # 1,000 chargers connected: 2,048 KiB + 0.5 KiB per charger = 2,548 KiB allowed
    results = {
        "mix": make_result(
            "mix", derived={"rss_growth_second_half_kb": growth_kb, "unanswered": unanswered}
        )
    }
    checks = {check.name: check for check in scaling(results).targets}
    assert checks["soak (mix): no unanswered CALL, no memory growth"].met is met
    assert checks["soak (pipeline): no unanswered CALL, no memory growth"].met is None


def test_echo_ratio_target() -> None:
    results = all_results(throughput={"ratio_to_echo": 2.2})
    checks = {check.name: check for check in scaling(results).targets}
    assert checks["gateway CPU per round trip against a bare echo"].met is False


def test_scaling_is_a_dataclass() -> None:
    result = scaling(all_results())
    assert isinstance(result, Scaling)
    assert dataclasses.is_dataclass(result)


# --------------------------------------------------------------------------
# build_report()

GENERATED = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)


def test_report_names_the_limiting_resource_and_the_tasks() -> None:
    results = all_results(
        idle={"base_rss_kb": BASE_KB, "kb_per_connection": 10.0},
        pipeline={"gateway_cpu_us_per_charger_second": 1.0},
    )
    text = build_report(results, generated_at=GENERATED)
    assert text.startswith("# Scaling report\n")
    assert "Generated 2026-11-25 17:00 UTC" in text
    assert "2 CPUs, AMD EPYC 7B13, Linux-6.1-x86_64, Python 3.11.7, commit abc1234" in text
    assert "| **memory** | **42,000** |" in text
    assert "**One task holds 42,000 charge points; the limiting resource is memory.**" in text
    assert "| 100,000 | 3 | yes |" in text
    assert "| 1,000,000 | 24 | **no** |" in text
    assert "| 150,000 |" in text  # CPU capacity, not bold
    for name in SCENARIOS:
        assert f"`.venv/bin/python -m bench {name} --chargers 1000`" in text
    assert "not run" not in text
    assert "**not met**" in text


def test_report_says_not_run_for_missing_scenarios() -> None:
    results = {"idle": make_result("idle"), "storm": make_result("storm")}
    text = build_report(results, generated_at=GENERATED)
    for name in ("throughput", "mix", "pipeline"):
        assert f"| {name} | not run |" in text
        assert f"1. {name} (not run): `.venv/bin/python -m bench {name}`" in text
    assert "| idle | ok |" in text
    assert "from 2 of 6 scenario results" in text
    assert "CPU, MQTT publishes not measured" in text


def test_report_of_nothing() -> None:
    text = build_report({}, generated_at=GENERATED)
    for name in SCENARIOS:
        assert f"| {name} | not run |" in text
    assert (
        "**One task holds 55,000 charge points; "
        "the limiting resource is NLB connections per target.**"
    ) in text
    assert "not measured" in text
    assert "No plots" in text


def test_report_links_images_relative_to_the_report(tmp_path: Path) -> None:
    image = tmp_path / "bench" / "results" / "idle-memory.png"
    text = build_report(
        {"idle": make_result("idle")},
        images={"idle": [image]},
        report_path=tmp_path / "bench" / "REPORT.md",
        generated_at=GENERATED,
    )
    assert "![idle memory](results/idle-memory.png)" in text


def test_report_escapes_pipes_in_commands() -> None:
    result = make_result("idle", command="python -m bench idle | tee log")
    text = build_report({"idle": result}, generated_at=GENERATED)
    assert "`python -m bench idle \\| tee log`" in text


def test_report_survives_nulls() -> None:
    result = make_result(
        "mix",
        derived={key: None for key in DERIVED["mix"]},
        latency_ms=None,
        connections=None,
        calls=None,
        machine=None,
        ok=None,
    )
    text = build_report({"mix": result}, generated_at=GENERATED)
    assert "| mix | \N{EN DASH} |" in text


# --------------------------------------------------------------------------
# files and main()


def write_results(folder: Path, results: Mapping[str, Mapping[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        (folder / f"{name}.json").write_text(json.dumps(result), encoding="utf-8")


def test_load_results(tmp_path: Path) -> None:
    write_results(tmp_path, {"idle": make_result("idle")})
    (tmp_path / "mix.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "storm.json").write_text("[1, 2]", encoding="utf-8")
    results, problems = load_results(tmp_path)
    assert list(results) == ["idle"]
    assert set(problems) == {"mix", "storm"}
    assert "mix.json unreadable" in problems["mix"]
    assert load_results(tmp_path / "absent") == ({}, {})


def test_main_writes_the_report_and_the_plots(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    write_results(folder, {"idle": make_result("idle"), "mix": make_result("mix")})
    (folder / "storm.json").write_text("{", encoding="utf-8")
    output = tmp_path / "REPORT.md"
    code = main(["--results", str(folder), "--output", str(output), "--vcpu-factor", "2"])
    assert code == 0
    text = output.read_text(encoding="utf-8")
    assert "| storm | not run (storm.json unreadable:" in text
    assert "| throughput | not run |" in text
    assert "(`--vcpu-factor`)" in text
    assert "One Fargate vCPU is worth 2 core(s)" in text
    for name in ("idle", "mix"):
        for kind in ("latency", "throughput", "memory", "cpu"):
            assert (folder / f"{name}-{kind}.png").is_file()
            assert f"![{name} {kind}](results/{name}-{kind}.png)" in text


def test_main_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "REPORT.md"
    assert main(["--results", str(tmp_path / "none"), "--output", str(output)]) == 0
    text = output.read_text(encoding="utf-8")
    for name in SCENARIOS:
        assert f"| {name} | not run |" in text
    assert "every scenario is 'not run'" in capsys.readouterr().err


def test_main_without_plots(tmp_path: Path) -> None:
    write_results(tmp_path, {"idle": make_result("idle")})
    output = tmp_path / "REPORT.md"
    assert main(["--results", str(tmp_path), "--output", str(output), "--no-plots"]) == 0
    assert not list(tmp_path.glob("*.png"))
    assert "No plots" in output.read_text(encoding="utf-8")


def test_main_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--results", str(tmp_path), "--memory-headroom", "1.5"])
