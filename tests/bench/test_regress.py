"""Unit tests of ``bench.regress``: finding the baseline, the pytest commands,
the no-baseline answer, keeping one baseline. No benchmark runs here: pytest
is never started; ``main`` is only driven down the paths that stop before it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.utils import get_machine_id

from bench import regress

MACHINE = "Linux-CPython-3.11-64bit"


def _saved(storage: Path, machine: str, name: str, **machine_info: Any) -> Path:
    """A file as pytest-benchmark's file storage lays it out."""
    path = storage / machine / name
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine_info": {"node": "vm", "cpu": {"brand_raw": "AMD EPYC", "count": 2}} | machine_info,
        "commit_info": {"id": "7bf51cb41c79bbd6463fb06742c98a72afefa529", "dirty": False},
        "benchmarks": [{"name": "test_a"}, {"name": "test_b"}],
        "datetime": "2024-01-01T12:00:00+00:00",
        "version": "5.3.1",
    }
    path.write_text(json.dumps(document))
    return path


def test_baseline_files_oldest_first_and_only_baselines(tmp_path: Path) -> None:
    third = _saved(tmp_path, MACHINE, "0003_baseline.json")
    first = _saved(tmp_path, MACHINE, "0001_baseline.json")
    tenth = _saved(tmp_path, MACHINE, "0010_baseline.json")
    _saved(tmp_path, MACHINE, "0002_experiment.json")  # another saved run: not a baseline
    _saved(tmp_path, MACHINE, "baseline.json")  # not numbered as pytest-benchmark does
    _saved(tmp_path, "Linux-CPython-3.12-64bit", "0004_baseline.json")  # another machine id

    assert regress.baseline_files(tmp_path, MACHINE) == [first, third, tenth]
    assert regress.newest_baseline(tmp_path, MACHINE) == tenth


def test_baseline_numbers_past_9999_sort_as_numbers(tmp_path: Path) -> None:
    old = _saved(tmp_path, MACHINE, "9999_baseline.json")
    new = _saved(tmp_path, MACHINE, "10000_baseline.json")

    assert regress.baseline_files(tmp_path, MACHINE) == [old, new]


def test_no_storage_at_all(tmp_path: Path) -> None:
    with pytest.raises(regress.NoBaseline, match=r"no baseline for this machine") as caught:
        regress.newest_baseline(tmp_path / "missing", MACHINE)

    assert "python -m bench.regress --save" in str(caught.value)
    assert regress.baseline_files(tmp_path / "missing", MACHINE) == []


def test_no_baseline_for_this_machine_names_the_others(tmp_path: Path) -> None:
    _saved(tmp_path, "Linux-CPython-3.12-64bit", "0001_baseline.json")
    _saved(tmp_path, "Darwin-CPython-3.11-64bit", "0001_experiment.json")  # no baseline there

    with pytest.raises(regress.NoBaseline) as caught:
        regress.newest_baseline(tmp_path, MACHINE)

    message = str(caught.value)
    assert f"({MACHINE})" in message
    assert "there are baselines for Linux-CPython-3.12-64bit only" in message
    assert "Darwin" not in message
    assert "--save" in message


def test_save_command(tmp_path: Path) -> None:
    command = regress.save_command(tmp_path, ["-k", "topic"])

    assert command == [
        sys.executable,
        "-m",
        "pytest",
        "tests/bench",
        "--benchmark-only",
        f"--benchmark-storage=file://{tmp_path}",
        "--benchmark-save=baseline",
        "-k",
        "topic",
    ]
    assert not any(arg.startswith("--benchmark-save-data") for arg in command)


def test_compare_command(tmp_path: Path) -> None:
    baseline = _saved(tmp_path, MACHINE, "0001_baseline.json")

    command = regress.compare_command(tmp_path, baseline, 25, ["-x"])

    assert command[:6] == [
        sys.executable,
        "-m",
        "pytest",
        "tests/bench",
        "--benchmark-only",
        f"--benchmark-storage=file://{tmp_path}",
    ]
    # Compared by path: the file itself, not whatever "0001*" matches.
    assert f"--benchmark-compare={baseline}" in command
    assert "--benchmark-compare-fail=median:25%" in command
    # pytest-benchmark's machine_info warning must not become an error.
    warning_filter = command[command.index("-W") + 1]
    assert warning_filter.startswith("ignore:Benchmark machine_info is different:")
    assert command[-1] == "-x"


def test_compare_fail_expression_is_one_pytest_benchmark_accepts(tmp_path: Path) -> None:
    from pytest_benchmark.utils import parse_compare_fail  # noqa: PLC0415

    command = regress.compare_command(tmp_path, tmp_path / "b.json", 0)
    expression = next(a for a in command if a.startswith("--benchmark-compare-fail="))

    check = parse_compare_fail(expression.split("=", 1)[1])
    assert (check.field, check.threshold) == ("median", 0)


def test_arguments_split_between_us_and_pytest() -> None:
    args, extra = regress.parse_args(["--threshold", "40", "-k", "topic", "-s", "--", "--save"])

    assert (args.save, args.threshold) == (False, 40)
    assert extra == ["-k", "topic", "-s", "--save"]  # after --, --save is pytest's

    args, extra = regress.parse_args(["--save"])
    assert (args.save, args.threshold, extra) == (True, regress.DEFAULT_THRESHOLD, [])


@pytest.mark.parametrize("threshold", ["0.0001", "-5", "many"])
def test_threshold_must_be_a_whole_percentage(
    threshold: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        regress.parse_args(["--threshold", threshold])

    assert exited.value.code == 2
    assert "--threshold" in capsys.readouterr().err


def test_main_without_baseline_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(regress, "STORAGE", tmp_path)

    def no_pytest(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("pytest was started without a baseline")

    monkeypatch.setattr(subprocess, "call", no_pytest)

    assert regress.main([]) == 2

    err = capsys.readouterr().err
    # The folder looked in is the one pytest-benchmark saves into.
    assert f"no baseline for this machine ({get_machine_id()})" in err
    assert "python -m bench.regress --save" in err


def test_keep_only_leaves_one_baseline_at_0001(tmp_path: Path) -> None:
    old = _saved(tmp_path, MACHINE, "0001_baseline.json")
    older_numbering = _saved(tmp_path, MACHINE, "0002_baseline.json")
    other_run = _saved(tmp_path, MACHINE, "0003_experiment.json")
    other_machine = _saved(tmp_path, "Linux-CPython-3.12-64bit", "0001_baseline.json")
    new = _saved(tmp_path, MACHINE, "0004_baseline.json")
    new_text = new.read_text()

    final = regress.keep_only(tmp_path, MACHINE, new)

    assert final == old  # the same path as before: 0001_baseline.json
    assert final.read_text() == new_text
    assert regress.baseline_files(tmp_path, MACHINE) == [final]
    assert not older_numbering.exists()
    assert other_run.exists()
    assert other_machine.exists()


def test_describe_baseline(tmp_path: Path) -> None:
    path = _saved(tmp_path, MACHINE, "0001_baseline.json", python_version="3.11.7")
    same = json.loads(path.read_text())["machine_info"]

    lines = regress.describe_baseline(path, same)

    assert lines[0] == f"baseline: {path}"
    assert "commit 7bf51cb41c79, 2 benchmarks" in lines[1]
    assert "host vm, cpu AMD EPYC, cores 2" in lines[2]
    assert "python 3.11.7" in lines[2]
    assert lines[-1] == "  this machine matches it"

    elsewhere = same | {"node": "ci-runner", "cpu": {"brand_raw": "AMD EPYC", "count": 8}}
    warning = regress.describe_baseline(path, elsewhere)[-1]
    assert warning.startswith("  WARNING: this machine is not the baseline's")
    assert "node (ci-runner here, vm in the baseline)" in warning
    assert "cpu.count (8 here, 2 in the baseline)" in warning


def test_noisy_names_the_benchmarks_with_a_wide_spread(tmp_path: Path) -> None:
    path = _saved(tmp_path, MACHINE, "0001_baseline.json")
    document = json.loads(path.read_text())
    document["benchmarks"] = [
        {"fullname": "t.py::quiet", "stats": {"median": 1e-6, "iqr": 0.05e-6}},
        {"fullname": "t.py::busy", "stats": {"median": 1e-6, "iqr": 0.5e-6}},
    ]
    path.write_text(json.dumps(document))

    warnings = regress.noisy(path)

    assert len(warnings) == 2
    assert "1 of 2 benchmarks were noisy" in warnings[0]
    assert warnings[1] == "  t.py::busy: IQR 50% of the median"
    assert regress.noisy(path, limit=0.6) == []


def test_this_machine_matches_a_baseline_saved_on_it(tmp_path: Path) -> None:
    """pytest-benchmark saves machine_info through JSON (tuples become lists):
    compared as saved, this machine matches its own baseline."""
    path = _saved(tmp_path, MACHINE, "0001_baseline.json")
    document = json.loads(path.read_text())
    document["machine_info"] = regress._current_machine()
    path.write_text(json.dumps(document))

    assert regress.describe_baseline(path, regress._current_machine())[-1] == (
        "  this machine matches it"
    )


def test_describe_load() -> None:
    assert regress.describe_load(None) == []
    assert regress.describe_load(0.05) == [
        "bench.regress: other work on this machine during the run: 0.05 cores"
    ]
    busy = regress.describe_load(0.9)
    assert busy[0].endswith("0.90 cores")
    assert busy[1].startswith("bench.regress: WARNING: the machine was busy")


def test_long_machine_differences_are_shortened(tmp_path: Path) -> None:
    path = _saved(tmp_path, MACHINE, "0001_baseline.json")
    saved = json.loads(path.read_text())["machine_info"]
    elsewhere = saved | {"cpu": saved["cpu"] | {"flags": ["avx512f"] * 50}}

    warning = regress.describe_baseline(path, elsewhere)[-1]

    assert warning.endswith(
        "cpu.flags (['avx512f', 'avx512f', 'avx512f', 'av... here, None in the baseline)"
    )
