"""Smoke runs of the benchmark scenarios, so that the bench code never rots.

Each scenario runs for real (its system in subprocesses, a load-generator
process, real sockets on loopback) with a few chargers for a few seconds.
The assertions are about correctness, never speed: every charger connected,
every CALL answered without error, the result document and its plots
written, and the report built from them. The standard mix runs with short
intervals so that heartbeats, sessions, meter readings and remote commands
all happen within seconds.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import __main__ as bench_cli
from bench import report
from bench.compare_mqtt import MOSQUITTO

CHARGERS = 12
FAST_MIX = [
    "--heartbeat-s", "2",
    "--meter-s", "1",
    "--session-s", "60",
    "--charging-fraction", "0.3",
    "--remote-per-minute", "60",
    "--remote-hold-s", "1",
]  # fmt: skip


def run(tmp_path: Path, scenario: str, *extra: str) -> dict[str, Any]:
    argv = [scenario, "--chargers", str(CHARGERS), "--results", str(tmp_path), *extra]
    args = bench_cli._parser().parse_args(argv)
    args.command_line = "python -m bench " + " ".join(argv)
    bench_cli.run_scenario(scenario, args)
    result: dict[str, Any] = orjson.loads((tmp_path / f"{scenario}.json").read_bytes())
    return result


def assert_every_call_answered(result: dict[str, Any]) -> None:
    assert result["connections"]["established"] == CHARGERS, result["connections"]
    assert result["connections"]["failure_kinds"] == {}
    calls = result["calls"]
    assert calls["sent"] > 0
    assert calls["answered"] == calls["sent"], calls
    assert calls["errors"] == 0 and calls["unanswered"] == 0, calls
    assert result["latency_ms"]["count"] == calls["answered"] - calls["by_action"].get(
        "BootNotification", {}
    ).get("answered", 0)


def assert_plots(tmp_path: Path, scenario: str) -> None:
    pngs = sorted(tmp_path.glob(f"{scenario}-*.png"))
    assert pngs, f"no plot of {scenario}"
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_throughput_answers_every_heartbeat_and_compares_with_echo(tmp_path: Path) -> None:
    result = run(tmp_path, "throughput", "--seconds", "1")
    assert_every_call_answered(result)
    assert result["calls"]["by_action"]["Heartbeat"]["answered"] > CHARGERS
    derived = result["derived"]
    assert derived["echo_errors"] == 0
    assert derived["gateway_cpu_us_per_round_trip"] > 0
    assert derived["ratio_to_echo"] is not None
    assert_plots(tmp_path, "throughput")


def test_mix_runs_sessions_and_remote_commands(tmp_path: Path) -> None:
    result = run(
        tmp_path, "mix", "--seconds", "8", "--ratio-201", "0.5", "--as-fleet", "24", *FAST_MIX
    )
    assert_every_call_answered(result)
    assert result["derived"]["rate_scale"] == 2.0  # 24 chargers' worth from 12
    assert result["derived"]["equivalent_chargers"] == 24
    by_action = result["calls"]["by_action"]
    for action in ("Heartbeat", "StatusNotification", "StartTransaction", "TransactionEvent"):
        assert by_action[action]["answered"] > 0, action
    remote = result["derived"]["remote_commands"]
    assert remote["start"].get("Accepted", 0) >= 1, remote
    assert set(remote["start"]) <= {"Accepted", "Rejected"}, remote
    assert sum(result["server_calls"]["by_action"].values()) >= 1
    assert result["derived"]["gateway_cpu_us_per_charger_second"] > 0
    assert_plots(tmp_path, "mix")


def test_idle_then_storm_then_report(tmp_path: Path) -> None:
    idle = run(tmp_path, "idle", "--seconds", "1")
    assert_every_call_answered(idle)  # the boots
    assert idle["derived"]["base_rss_kb"] > 0
    assert idle["derived"]["kb_per_connection"] is not None

    storm = run(tmp_path, "storm", "--seconds", "1", "--system", "embedded")
    assert storm["derived"]["dropped"] == CHARGERS
    assert storm["derived"]["reconnected"] == CHARGERS
    boots = storm["calls"]["by_action"]["BootNotification"]
    assert boots["answered"] == 2 * CHARGERS  # every charger booted twice
    assert_plots(tmp_path, "storm")

    output = tmp_path / "REPORT.md"
    assert report.main(["--results", str(tmp_path), "--output", str(output)]) == 0
    text = output.read_text()
    assert "limiting" in text.lower()
    assert "not run" in text  # no pipeline, mix or throughput result here


@pytest.mark.skipif(not os.access(MOSQUITTO, os.X_OK), reason=f"{MOSQUITTO} is not installed")
def test_pipeline_relays_the_mix_through_mosquitto_and_a_worker(tmp_path: Path) -> None:
    # --as-fleet: its default (50,000) would make a dozen chargers send like thousands.
    result = run(
        tmp_path, "pipeline", "--seconds", "8", "--workers", "1", "--as-fleet", "24", *FAST_MIX
    )
    assert_every_call_answered(result)
    assert {"gateway", "broker", "worker-0"} <= set(result["processes"])
    assert result["derived"]["workers_cpu_us_per_message"] > 0
    assert result["derived"]["remote_commands"]["start"].get("Accepted", 0) >= 1

    storm = run(tmp_path, "storm", "--seconds", "1", "--workers", "1")  # the production gateway
    assert storm["system"] == "pipeline"
    assert storm["derived"]["reconnected"] == CHARGERS
    assert storm["derived"]["refusals"] == 0


def test_all_reports_beside_results_other_than_the_committed_ones(tmp_path: Path) -> None:
    assert bench_cli.report_path(tmp_path) == tmp_path / "REPORT.md"
    assert bench_cli.report_path(bench_cli.DEFAULT_RESULTS) == report.DEFAULT_OUTPUT


def test_scenario_options_take_scenario_defaults() -> None:
    args = bench_cli._parser().parse_args(["idle"])
    assert args.chargers is None  # filled per scenario by run_scenario
    assert bench_cli.DEFAULTS["idle"]["chargers"] == bench_cli.MAX_CHARGERS
    with pytest.raises(SystemExit):
        bench_cli._parser().parse_args(["idle", "--chargers", str(bench_cli.MAX_CHARGERS + 1)])
    assert isinstance(args, argparse.Namespace)
