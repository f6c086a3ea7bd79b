"""``python -m bench SCENARIO``: run one benchmark scenario, or all, or the report.

    .venv/bin/python -m bench idle          # memory per idle charger (19,000 chargers)
    .venv/bin/python -m bench throughput    # closed loop, CPU per round trip vs bare echo
    .venv/bin/python -m bench mix           # standard mix soak, 5 minutes
    .venv/bin/python -m bench storm         # every charger dropped and reconnecting at once
    .venv/bin/python -m bench pipeline      # standard mix of 50,000 chargers through Mosquitto
    .venv/bin/python -m bench pipeline --batch-bytes 0   # the same, one frame per publish
    .venv/bin/python -m bench all           # the six above, then the report
    .venv/bin/python -m bench report        # bench/REPORT.md from the saved results
    .venv/bin/python -m bench regress       # micro-benchmarks against the saved baseline

A scenario writes ``RESULTS/<scenario>.json`` and its plots
(``RESULTS/<scenario>-*.png``), prints a summary (derived figures and
targets) as one JSON object, and exits 1 if a CALL went unanswered, an error
was counted or a target was missed. Every load loop is bounded in count and
time, and every socket is on loopback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import uvloop

from ocppj import MAX_BATCH_BYTES

from . import plots, regress, report
from .arguments import bounded
from .charger import SPARE_FILES, MixPlan, raise_open_file_limit
from .fleet import add_max_calls
from .scenarios import DEFAULT_BATCH_BYTES, ONE_PER_FRAME, SCENARIOS

#: The server and each load generator hold one descriptor per charger; a
#: process may open 20,000 files here.
MAX_CHARGERS = 19_000
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"

#: Each scenario's defaults: chargers, seconds, share of 2.0.1 chargers,
#: connections opened per second (0: as fast as they go), load generators,
#: the fleet a time-compressed mix stands for.
DEFAULTS: dict[str, dict[str, Any]] = {
    "idle": {"chargers": 19_000, "seconds": 120.0, "ratio_201": 0.5, "connect_rate": 1000.0},
    "throughput": {
        "chargers": 500,
        "seconds": 10.0,
        "ratio_201": 0.0,
        "connect_rate": 0.0,
        "processes": 1,
    },
    "mix": {"chargers": 19_000, "seconds": 300.0, "ratio_201": 0.5, "connect_rate": 1000.0},
    # The storm target is about a production task: the production gateway.
    "storm": {
        "chargers": 19_000,
        "seconds": 5.0,
        "ratio_201": 0.5,
        "connect_rate": 1000.0,
        "system": "pipeline",
    },
    # The production shape at the design's 50,000 chargers per task, time-compressed.
    "pipeline": {
        "chargers": 19_000,
        "seconds": 120.0,
        "ratio_201": 0.5,
        "connect_rate": 1000.0,
        "as_fleet": 50_000,
        "batch_bytes": DEFAULT_BATCH_BYTES,
    },
}
#: The pipeline as it was before batching, measured the same way (the cost
#: report sets the two side by side).
DEFAULTS[ONE_PER_FRAME] = DEFAULTS["pipeline"] | {"batch_bytes": 0}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        return report.main(argv[1:])
    if argv and argv[0] == "regress":
        return regress.main(argv[1:])
    args = _parser().parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "bench", *argv])
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    failed = 0
    for name in names:
        failed += 0 if run_scenario(name, args) else 1
    if args.scenario == "all":
        report.main(["--results", str(args.results), "--output", str(report_path(args.results))])
    return 1 if failed else 0


def report_path(results: Path) -> Path:
    """Where ``all`` writes its report: bench/REPORT.md for bench/results,
    otherwise REPORT.md beside the results it reads."""
    if results.resolve() == DEFAULT_RESULTS:
        return report.DEFAULT_OUTPUT
    return results / "REPORT.md"


def run_scenario(name: str, args: argparse.Namespace) -> bool:
    """Run scenario ``name`` with ``args`` (each unset option takes the
    scenario's default); write its result and plots; print its summary."""
    options = argparse.Namespace(**vars(args))
    for key, value in DEFAULTS[name].items():
        if getattr(options, key, None) is None:
            setattr(options, key, value)
    options.scenario = name
    if name == ONE_PER_FRAME:
        options.batch_bytes = 0  # what the name says, whatever --batch-bytes says
    raise_open_file_limit(SPARE_FILES)
    result = uvloop.run(SCENARIOS[name].run(options))
    folder: Path = args.results
    folder.mkdir(parents=True, exist_ok=True)
    # The result names itself: ``pipeline --batch-bytes 0`` is the one-per-frame design.
    path = folder / f"{result['scenario']}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    written = [] if args.no_plots else plots.plot_all(result, folder)
    summary = {
        "scenario": result["scenario"],
        "ok": result["ok"],
        "result": str(path),
        "plots": [str(p) for p in written],
        "connections": {k: result["connections"][k] for k in ("established", "failed")},
        "calls": {k: result["calls"][k] for k in ("sent", "answered", "errors", "unanswered")},
        "latency_ms": {k: result["latency_ms"][k] for k in ("p50", "p90", "p99", "max")},
        "derived": result["derived"],
        "targets": result["targets"],
    }
    print(orjson.dumps(summary).decode(), flush=True)
    return bool(result["ok"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n")[0],
        epilog="'python -m bench report --help' and 'python -m bench regress --help' "
        "describe the other two commands.",
    )
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument(
        "--chargers",
        type=bounded(int, 1, MAX_CHARGERS),
        help=f"simulated chargers (at most {MAX_CHARGERS:,}: one gateway process's files)",
    )
    parser.add_argument(
        "--seconds", type=bounded(float, 0.5, 3600.0), help="length of the load window"
    )
    parser.add_argument(
        "--ratio-201",
        type=bounded(float, 0.0, 1.0),
        help="share of chargers speaking OCPP 2.0.1, the rest 1.6",
    )
    parser.add_argument(
        "--connect-rate",
        type=bounded(float, 0.0, 100_000.0),
        help="new connections per second (0: as fast as they go)",
    )
    parser.add_argument(
        "--processes",
        type=bounded(int, 1, 8),
        help="load-generator processes (default: one per 10,000 chargers)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the mix")
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="folder for results and plots (default bench/results)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write no PNG")
    add_max_calls(parser.add_argument_group("throughput"))
    parser.add_argument(
        "--system",
        choices=("embedded", "pipeline"),
        help="storm: the system under test (default pipeline: the production gateway relaying "
        "over Mosquitto to --workers workers)",
    )
    plan = MixPlan()
    mix = parser.add_argument_group("mix and pipeline (the standard mix of DESIGN.md)")
    mix.add_argument("--heartbeat-s", type=bounded(float, 1.0, 86_400.0), default=plan.heartbeat_s)
    mix.add_argument("--meter-s", type=bounded(float, 1.0, 86_400.0), default=plan.meter_s)
    mix.add_argument(
        "--charging-fraction", type=bounded(float, 0.01, 0.99), default=plan.charging_fraction
    )
    mix.add_argument(
        "--session-s",
        type=bounded(float, 1.0, 86_400.0),
        default=plan.session_s,
        help="mean charging session length",
    )
    mix.add_argument(
        "--remote-per-minute",
        type=bounded(float, 0.0, 600.0),
        default=30.0,
        help="remote starts sent through the management API, each stopped --remote-hold-s later",
    )
    mix.add_argument(
        "--remote-hold-s",
        type=bounded(float, 0.0, 600.0),
        default=15.0,
        help="seconds a remotely started session lasts before the remote stop (default 15)",
    )
    mix.add_argument(
        "--as-fleet",
        type=bounded(int, 1, 10_000_000),
        help="time-compress the mix so the system sees the messages and pings of this many "
        "chargers (each simulated charger stands for as-fleet / chargers of them; "
        "pipeline's default: 50,000)",
    )
    mix.add_argument(
        "--workers", type=bounded(int, 1, 8), default=2, help="processor workers (pipeline)"
    )
    mix.add_argument(
        "--batch-bytes",
        type=bounded(int, 0, MAX_BATCH_BYTES),
        help="pipeline: OCPP_MQTT_BATCH_BYTES of the gateway and the workers (default "
        f"{DEFAULT_BATCH_BYTES:,}); 0 sends one frame per publish and writes "
        f"{ONE_PER_FRAME}.json",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
