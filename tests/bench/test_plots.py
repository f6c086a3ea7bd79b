"""The scenario plots (``bench.plots``): each writes a real PNG of the size
asked for, and writes nothing when the result lacks its data.

Plain unit tests (no ``benchmark`` fixture); pyproject turns warnings into
errors, so a matplotlib warning (log axis of zeros, layout) fails them too.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from bench.plots import (
    KINDS,
    cpu_over_time,
    fit_line,
    latency_distribution,
    memory_against_connections,
    memory_fit,
    plot_all,
    throughput_over_time,
)

from .test_report import make_result

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: 8 x 4.5 inches at 100 dpi.
WIDTH, HEIGHT = 800, 450


def assert_png(path: Path | None, expected: Path) -> None:
    """A PNG at ``expected``: signature, 800 x 450 pixels, and more than a blank image."""
    assert path == expected
    data = expected.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (WIDTH, HEIGHT)
    assert 5_000 < len(data) < 500_000


PLOTS = [latency_distribution, throughput_over_time, memory_against_connections, cpu_over_time]


@pytest.mark.parametrize("plot", PLOTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("scenario", ["idle", "mix", "storm", "pipeline"])
def test_plot_writes_a_png(plot: Any, scenario: str, tmp_path: Path) -> None:
    target = tmp_path / "deeper" / f"{scenario}.png"  # the folder is made
    assert_png(plot(make_result(scenario, chargers=5_000), target), target)


def test_plot_all_names_files_by_scenario_and_kind(tmp_path: Path) -> None:
    written = plot_all(make_result("storm"), tmp_path)
    assert written == [tmp_path / f"storm-{kind}.png" for kind in KINDS]
    assert list(KINDS) == ["latency", "throughput", "memory", "cpu"]
    for path in written:
        assert_png(path, path)


def test_plot_all_without_data_writes_nothing(tmp_path: Path) -> None:
    result = make_result("throughput", with_timeline=False, with_latency=False)
    assert plot_all(result, tmp_path) == []
    assert plot_all({}, tmp_path) == []
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "latency",
    [
        None,
        {},
        {"buckets": []},
        {"buckets": None},
        {"buckets": [[1.0, 0], [2.0, 0]]},  # only empty buckets
        {"buckets": [[0.0, 5], [-1.0, 3], ["x", 1]]},  # no usable bound
    ],
)
def test_latency_skipped_without_buckets(latency: Any, tmp_path: Path) -> None:
    result = make_result("mix", latency_ms=latency)
    assert latency_distribution(result, tmp_path / "l.png") is None
    assert not (tmp_path / "l.png").exists()


@pytest.mark.parametrize(
    "buckets",
    [
        [[5.0, 10]],  # a single bucket
        [[1.0, 3], [2.0, 5], [4.0, 2], [32.0, 1]],  # coarse, with a gap
        [[0.1, 1], [0.102, 4], [0.10404, 2], [55.0, 1]],  # fine and sparse
    ],
)
def test_latency_odd_histograms(buckets: list[list[float]], tmp_path: Path) -> None:
    result = make_result("mix", latency_ms={"p50": 2.0, "p90": None, "buckets": buckets})
    target = tmp_path / "l.png"
    assert_png(latency_distribution(result, target), target)


@pytest.mark.parametrize(
    "timeline",
    [
        [],
        None,
        [{"t": 0.0, "answered": 0, "connected": 1}],  # a single sample
        [{"t": 0.0, "answered": 0}, {"t": 0.0, "answered": 5}],  # no time passed
        [{"t": 0.0}, {"t": 1.0}],  # nothing counted
    ],
)
def test_timeline_plots_skipped_without_samples(timeline: Any, tmp_path: Path) -> None:
    result = make_result("mix", timeline=timeline)
    assert throughput_over_time(result, tmp_path / "t.png") is None
    assert cpu_over_time(result, tmp_path / "c.png") is None
    assert memory_against_connections(result, tmp_path / "m.png") is None
    assert not list(tmp_path.iterdir())


def test_memory_skipped_at_one_connection_count(tmp_path: Path) -> None:
    samples = [
        {"t": float(t), "connected": 100, "processes": {"gateway": {"rss_kb": 50_000 + t}}}
        for t in range(5)
    ]
    assert (
        memory_against_connections(make_result("idle", timeline=samples), tmp_path / "m.png")
        is None
    )


def test_throughput_with_errors_and_without_connected(tmp_path: Path) -> None:
    samples = [
        {"t": float(t), "phase": "load", "answered": 100 * t, "errors": t // 2} for t in range(6)
    ]
    target = tmp_path / "t.png"
    assert_png(throughput_over_time(make_result("mix", timeline=samples), target), target)


def test_fit_line_is_least_squares() -> None:
    fit = fit_line([0.0, 1_000.0, 2_000.0], [50_000.0, 56_700.0, 63_400.0])
    assert fit is not None
    assert fit.slope == pytest.approx(6.7)
    assert fit.intercept == pytest.approx(50_000.0)
    assert fit.points == 3
    assert fit_line([1.0, 1.0], [2.0, 3.0]) is None
    assert fit_line([1.0], [2.0]) is None


def test_memory_fit_uses_the_samples_before_the_drop(tmp_path: Path) -> None:
    # 7 KiB per connection while connecting; after the drop the memory stays.
    samples: list[dict[str, Any]] = []
    for t, (phase, connected) in enumerate(
        [("connect", 0), ("connect", 1000), ("connect", 2000), ("drop", 0), ("reconnect", 1000)]
    ):
        rss = 50_000 + 7 * (connected if phase == "connect" else 2000)
        samples.append(
            {
                "t": float(t),
                "phase": phase,
                "connected": connected,
                "processes": {"gateway": {"rss_kb": rss}},
            }
        )
    result = make_result("storm", timeline=samples)
    found = memory_fit(result)
    assert found is not None
    assert found.fit.slope == pytest.approx(7.0)
    assert found.fit.points == 3
    assert found.basis == "samples before the fleet closed"
    assert len(found.points) == 3  # the drop's samples are not drawn
    target = tmp_path / "m.png"
    assert_png(memory_against_connections(result, target), target)


def test_memory_fit_of_another_process() -> None:
    samples = [
        {"t": float(t), "connected": 10 * t, "processes": {"broker": {"rss_kb": 1_000 + 3 * t}}}
        for t in range(4)
    ]
    result = make_result("pipeline", timeline=samples)
    assert memory_fit(result) is None  # no gateway figures
    found = memory_fit(result, "broker")
    assert found is not None
    assert found.fit.slope == pytest.approx(0.3)
    assert found.basis == "all samples"
