"""Micro-benchmarks against a saved baseline: fail when a hot path got slower.

    .venv/bin/python -m bench.regress --save            # run tests/bench, keep it as the baseline
    .venv/bin/python -m bench.regress                   # run again, compare, exit 1 on a regression
    .venv/bin/python -m bench.regress --threshold 40 -k topic   # other pytest args pass through

A thin runner around pytest-benchmark's own storage and comparison. It runs
``sys.executable -m pytest tests/bench --benchmark-only`` from the repository
root with ``--benchmark-storage=file://<repo>/bench/baseline`` and then either

* ``--save``: ``--benchmark-save=baseline``. pytest-benchmark writes
  ``bench/baseline/<machine-id>/NNNN_baseline.json`` (machine id as in
  ``Linux-CPython-3.11-64bit``: system, Python implementation and version,
  word size; statistics only, no raw timings, as ``--benchmark-save-data`` is
  not passed). If the run passed, the previous ``NNNN_baseline.json`` of that
  machine id is deleted and the new one renamed ``0001_baseline.json``, so
  there is exactly one baseline per machine id, always at the same path. If
  a benchmark failed, the new file is deleted and the old baseline kept.
* comparing (the default): ``--benchmark-compare=<path of the newest
  NNNN_baseline.json of this machine id>`` and
  ``--benchmark-compare-fail=median:<threshold>%``. pytest-benchmark then
  fails the run if any benchmark's median is more than ``threshold`` percent
  (a whole number, as pytest-benchmark takes it; default 25) above its
  baseline median: ``current / baseline * 100 - 100 > threshold``. Faster
  never fails; benchmarks missing from either side are not compared. A
  regression ends with pytest-benchmark's list of the benchmarks over the
  threshold ("Performance has regressed:") and its ``PerformanceRegression``
  traceback. With no baseline for this machine id, nothing runs: exit status
  2 and a hint to run ``--save``.

Anything else on the command line (after an optional ``--``) goes to pytest
as it is: ``-k``, ``-x``, ``-s``, ``--benchmark-json=FILE``, ... (with
``--save``, a ``-k`` makes a baseline of the selected benchmarks only).

**A baseline is only meaningful on the machine it was saved on.** Timings
depend on the CPU, its clock and what else runs on it, and the machine id
names the OS, the Python version and the word size, not the host. The
baseline committed under ``bench/baseline/`` comes from the development VM
(2 cores, AMD EPYC, CPython 3.11.7). Before comparing, this tool prints the
machine the baseline was saved on (host, CPU, Python, kernel, date, commit)
and warns if this one's ``machine_info`` differs. (pytest-benchmark's own
warning about it is silenced: raised from ``pytest_configure``, it would be
turned into an INTERNALERROR by pyproject's ``filterwarnings = ["error"]``.)
Noise: after each run the tool prints how much CPU the rest of the machine
used meanwhile (``/proc/stat`` minus the benchmarks' own CPU time) and warns
above 0.2 cores: another process on a 2-core machine easily moves a median
by a third, and a regression reported then should be re-run when the machine
is quiet. ``--save`` also warns about benchmarks whose interquartile range is
over a quarter of their median (a busy machine); save again if it does.

On another machine, make a baseline of your own first (``--save``, on the
commit to compare against), and commit it only if that machine becomes the
reference.

Exit status: pytest's (0: no regression and every benchmark passed its own
checks; 1: a regression or a failed benchmark; 5: nothing selected), or 2
when there is no baseline or an argument is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_benchmark.utils import get_machine_id

__all__ = [
    "BASELINE_NAME",
    "DEFAULT_THRESHOLD",
    "NoBaseline",
    "REPO",
    "STORAGE",
    "baseline_files",
    "OtherLoad",
    "compare_command",
    "describe_load",
    "describe_baseline",
    "keep_only",
    "main",
    "newest_baseline",
    "noisy",
    "parse_args",
    "save_command",
]

REPO = Path(__file__).resolve().parent.parent
#: pytest-benchmark's file storage: ``<STORAGE>/<machine id>/NNNN_<name>.json``.
STORAGE = REPO / "bench" / "baseline"
BENCHMARKS = "tests/bench"
BASELINE_NAME = "baseline"
DEFAULT_THRESHOLD = 25
#: The statistic compared: the median resists the odd slow round of a busy machine.
FIELD = "median"
#: How pytest-benchmark numbers saved runs (``FileStorage._next_num``).
_SAVED = re.compile(r"^(\d{4,})_" + BASELINE_NAME + r"\.json$")
#: Cores of other work during a run above which its figures are called disturbed.
OTHER_LOAD_LIMIT = 0.2
#: A saved benchmark whose IQR is over this share of its median ran on a busy machine.
NOISY_IQR = 0.25
#: pytest-benchmark warns when the baseline's machine_info differs from this
#: machine's (any of host, CPU flags, kernel, Python patch level...), from
#: ``pytest_configure``, where pyproject's ``filterwarnings = ["error"]`` turns
#: it into an INTERNALERROR. ``describe_baseline`` says it in one line instead.
_MACHINE_DIFFERS = (
    "ignore:Benchmark machine_info is different:pytest_benchmark.logger.PytestBenchmarkWarning"
)
#: Machine facts shown with a baseline: (label, path in ``machine_info``).
_FACTS = (
    ("host", ("node",)),
    ("cpu", ("cpu", "brand_raw")),
    ("cores", ("cpu", "count")),
    ("clock", ("cpu", "hz_advertised_friendly")),
    ("python", ("python_version",)),
    ("system", ("system",)),
    ("kernel", ("release",)),
)


class NoBaseline(Exception):
    """No baseline to compare with; the message says why and what to do."""


def baseline_files(storage: Path, machine_id: str) -> list[Path]:
    """The saved baselines of ``machine_id`` in ``storage``, oldest first."""
    folder = storage / machine_id
    if not folder.is_dir():
        return []
    found = [
        (int(match[1]), path) for path in folder.iterdir() if (match := _SAVED.match(path.name))
    ]
    return [path for _, path in sorted(found)]


def newest_baseline(storage: Path, machine_id: str) -> Path:
    """The baseline to compare with, or ``NoBaseline``."""
    files = baseline_files(storage, machine_id)
    if files:
        return files[-1]
    others = sorted(
        folder.name
        for folder in (storage.iterdir() if storage.is_dir() else ())
        if folder.is_dir() and folder.name != machine_id and baseline_files(storage, folder.name)
    )
    message = f"no baseline for this machine ({machine_id}) in {storage}"
    if others:
        message += f"; there are baselines for {', '.join(others)} only"
    raise NoBaseline(
        f"{message}.\nMake one first, on the commit to compare against: "
        "python -m bench.regress --save"
    )


def _pytest(storage: Path, extra: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        BENCHMARKS,
        "--benchmark-only",
        f"--benchmark-storage=file://{storage}",
        *extra,
    ]


def save_command(storage: Path, extra: Sequence[str] = ()) -> list[str]:
    """The pytest command that runs the benchmarks and saves them as a baseline."""
    return _pytest(storage, [f"--benchmark-save={BASELINE_NAME}", *extra])


def compare_command(
    storage: Path, baseline: Path, threshold: int, extra: Sequence[str] = ()
) -> list[str]:
    """The pytest command that runs the benchmarks and fails if a median is more
    than ``threshold`` percent above ``baseline``'s."""
    return _pytest(
        storage,
        [
            f"--benchmark-compare={baseline}",
            f"--benchmark-compare-fail={FIELD}:{threshold}%",
            "-W",
            _MACHINE_DIFFERS,
            *extra,
        ],
    )


def keep_only(storage: Path, machine_id: str, new: Path) -> Path:
    """Delete every other baseline of ``machine_id`` and rename ``new`` to
    ``0001_baseline.json``; its final path."""
    for path in baseline_files(storage, machine_id):
        if path != new:
            path.unlink()
    final = new.with_name(f"0001_{BASELINE_NAME}.json")
    if final != new:
        new.rename(final)
    return final


def describe_baseline(path: Path, current: dict[str, Any] | None = None) -> list[str]:
    """Lines telling where and when ``path`` was saved; with ``current`` (this
    machine's ``machine_info``), a warning if the two machines differ."""
    saved = json.loads(path.read_bytes())
    info = saved.get("machine_info", {})
    commit = saved.get("commit_info", {})
    facts = {label: _dig(info, keys) for label, keys in _FACTS}
    lines = [
        f"baseline: {path}",
        f"  saved {saved.get('datetime', '?')} at commit {str(commit.get('id', '?'))[:12]}"
        + (" (uncommitted changes)" if commit.get("dirty") else "")
        + f", {len(saved.get('benchmarks', []))} benchmarks",
        "  on " + ", ".join(f"{label} {value}" for label, value in facts.items()),
    ]
    if current is not None:
        differ = _differences(info, current)
        if differ:
            lines.append(
                "  WARNING: this machine is not the baseline's, the comparison means little;"
                f" it differs in {', '.join(differ)}"
            )
        else:
            lines.append("  this machine matches it")
    return lines


def noisy(path: Path, limit: float = NOISY_IQR) -> list[str]:
    """Warnings for the benchmarks of a saved run whose interquartile range is
    over ``limit`` times their median: the machine was busy while they ran."""
    benchmarks = json.loads(path.read_bytes()).get("benchmarks", [])
    spread = {
        bench["fullname"]: bench["stats"]["iqr"] / bench["stats"]["median"]
        for bench in benchmarks
        if bench["stats"]["median"] > 0
    }
    found = [
        f"  {name}: IQR {ratio:.0%} of the median"
        for name, ratio in spread.items()
        if ratio > limit
    ]
    if not found:
        return []
    return [
        f"bench.regress: WARNING: {len(found)} of {len(spread)} benchmarks were noisy"
        f" (IQR over {limit:.0%} of the median); was the machine busy?"
        " Consider saving again when it is quiet:",
        *found,
    ]


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The machine_info keys (``cpu.*`` one level down) whose values differ."""
    differ = []
    for key in sorted(saved.keys() | current.keys()):
        mine, theirs = saved.get(key), current.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            differ += [f"{key}.{sub}" for sub in _differences(mine, theirs)]
        elif mine != theirs:
            differ.append(f"{key} ({_short(theirs)} here, {_short(mine)} in the baseline)")
    return differ


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dig(info: dict[str, Any], keys: Sequence[str]) -> Any:
    value: Any = info
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _current_machine() -> dict[str, Any]:
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info  # noqa: PLC0415

    # As saved: through JSON, so that tuples compare equal to the saved lists.
    info: dict[str, Any] = json.loads(json.dumps(pytest_benchmark_generate_machine_info()))
    return info


def _threshold(text: str) -> int:
    """An argparse type: a whole, non-negative percentage."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of percent "
            "(pytest-benchmark's --benchmark-compare-fail takes whole percentages)"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.regress",
        description=__doc__.split("\n")[0],
        epilog="Other arguments (or all after --) are passed to pytest.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help="run the benchmarks and keep them as this machine's baseline",
    )
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default=DEFAULT_THRESHOLD,
        metavar="PCT",
        help="fail if a median is more than PCT%% above the baseline's "
        f"(whole percent, default {DEFAULT_THRESHOLD})",
    )
    return parser


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and the pytest arguments (unknown options, and all after ``--``)."""
    argv = list(argv)
    tail: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1 :]
    args, extra = _parser().parse_known_args(argv)
    return args, [*extra, *tail]


class OtherLoad:
    """CPU time the rest of the machine used while the benchmarks ran, in cores:
    busy time of every CPU (``/proc/stat``, steal included) minus the CPU time
    of our child processes. Linux only; elsewhere ``cores`` is None."""

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        """(machine busy seconds, children's CPU seconds, wall seconds)."""
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
        except OSError:
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
        tick = os.sysconf("SC_CLK_TCK")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (
            (user + nice + system + irq + softirq + steal) / tick,
            children.ru_utime + children.ru_stime,
            time.monotonic(),
        )

    def cores(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        busy, ours, wall = (b - a for a, b in zip(self._start, end, strict=True))
        return max(0.0, busy - ours) / wall


def describe_load(cores: float | None, limit: float = OTHER_LOAD_LIMIT) -> list[str]:
    """What to say about the other work measured during a run."""
    if cores is None:
        return []
    line = f"bench.regress: other work on this machine during the run: {cores:.2f} cores"
    if cores <= limit:
        return [line]
    return [
        line,
        "bench.regress: WARNING: the machine was busy; figures may be disturbed."
        " Re-run when it is quiet before trusting them.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    machine_id = get_machine_id()
    if args.save:
        return _save(machine_id, extra)
    try:
        baseline = newest_baseline(STORAGE, machine_id)
    except NoBaseline as exc:
        print(f"bench.regress: {exc}", file=sys.stderr)
        return 2
    for line in describe_baseline(baseline, _current_machine()):
        print(line)
    print(f"threshold: fail if a {FIELD} is more than {args.threshold}% above the baseline's")
    sys.stdout.flush()
    load = OtherLoad()
    status = subprocess.call(compare_command(STORAGE, baseline, args.threshold, extra), cwd=REPO)
    for line in describe_load(load.cores()):
        print(line, file=sys.stderr)
    if status == 0:
        print(f"bench.regress: no {FIELD} more than {args.threshold}% above {baseline.name}")
    else:
        print(
            f"bench.regress: FAILED (pytest exit status {status}): a regression "
            "('Performance has regressed' above) or a failed benchmark",
            file=sys.stderr,
        )
    return status


def _save(machine_id: str, extra: Sequence[str]) -> int:
    before = set(baseline_files(STORAGE, machine_id))
    load = OtherLoad()
    status = subprocess.call(save_command(STORAGE, extra), cwd=REPO)
    for line in describe_load(load.cores()):
        print(line, file=sys.stderr)
    made = [path for path in baseline_files(STORAGE, machine_id) if path not in before]
    if status != 0:
        for path in made:
            path.unlink()
        print(
            f"bench.regress: pytest exit status {status}: nothing saved, "
            "the previous baseline (if any) is kept",
            file=sys.stderr,
        )
        return status
    if len(made) != 1:
        print(f"bench.regress: expected one new baseline file, found {made}", file=sys.stderr)
        return 1
    final = keep_only(STORAGE, machine_id, made[0])
    for line in describe_baseline(final):
        print(line)
    for line in noisy(final):
        print(line, file=sys.stderr)
    print(f"bench.regress: saved ({final.stat().st_size:,} bytes); commit it with the change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
