"""PNG plots of one scenario's result (the JSON ``python -m bench SCENARIO`` writes).

Each plot function takes a result dict and an output path, writes a small PNG
(8 x 4.5 in at 100 dpi) and returns the path written, or returns None and
writes nothing when the result lacks what that plot needs. ``plot_all``
writes every plot that applies as ``<scenario>-<kind>.png``.

Figures are drawn on ``matplotlib.figure.Figure`` objects directly (rendered
by Agg on ``savefig``): no pyplot, so no global figure state, no GUI backend,
and nothing to close.

* ``latency_distribution``: ``latency_ms.buckets`` as a histogram on a log
  axis, the cumulative share of calls over it, p50/p90/p99 (and max) marked.
* ``throughput_over_time``: answers per second (from the cumulative
  ``answered`` of the timeline) and connected chargers, phases shaded.
* ``memory_against_connections``: the gateway's resident memory against the
  chargers connected, with a least-squares line whose slope is KiB per
  connection.
* ``cpu_over_time``: cores busy per process (1.0 = one core).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

__all__ = [
    "KINDS",
    "LineFit",
    "MemoryFit",
    "cpu_over_time",
    "fit_line",
    "latency_distribution",
    "memory_against_connections",
    "memory_fit",
    "plot_all",
    "throughput_over_time",
]

#: Figure size in inches and resolution: 800 x 450 pixels, a few tens of KB.
SIZE = (8.0, 4.5)
DPI = 100
#: Display bins of the latency histogram per decade, when the result's own
#: buckets are finer than that (the runner's grow by 2 %: ~116 per decade).
BINS_PER_DECADE = 20
#: Growth assumed between bucket bounds when a histogram has a single bucket.
DEFAULT_BUCKET_GROWTH = 1.02
#: The process whose memory ``memory_against_connections`` plots.
GATEWAY = "gateway"

_PHASE_COLOURS = {
    "start": "tab:cyan",
    "connect": "tab:blue",
    "load": "tab:green",
    "idle": "tab:olive",
    "drop": "tab:red",
    "reconnect": "tab:orange",
    "settle": "tab:gray",
    "finish": "tab:brown",
}
#: Colours of phases not named above, in order of appearance (then repeated).
_OTHER_PHASE_COLOURS = ("tab:purple", "tab:pink", "gold", "teal")
_PHASE_ALPHA = 0.12
_PERCENTILE_STYLE = {"p50": "tab:green", "p90": "tab:orange", "p99": "tab:red", "max": "black"}


# --------------------------------------------------------------------------
# reading the result


def _number(value: object) -> float | None:
    """A finite int or float as float; None for anything else (bool, None, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _timeline(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The timeline's samples that carry a time, in time order."""
    samples = result.get("timeline")
    if not isinstance(samples, Sequence) or isinstance(samples, str):
        return []
    timed = [s for s in samples if isinstance(s, Mapping) and _number(s.get("t")) is not None]
    return sorted(timed, key=lambda s: float(s["t"]))


#: The shortest interval a rate is computed over, in seconds.
MIN_INTERVAL_S = 0.5


def _process_value(sample: Mapping[str, Any], process: str, key: str) -> float | None:
    return _number(_mapping(_mapping(sample.get("processes")).get(process)).get(key))


def _rates(
    samples: Sequence[Mapping[str, Any]], value: Callable[[Mapping[str, Any]], float | None]
) -> tuple[list[float], list[float]]:
    """The rate of ``value`` (difference / dt) between consecutive samples
    where it is known at both ends and at least ``MIN_INTERVAL_S`` apart, as
    step-plot points: (start times and the last end time, rates and the last
    rate repeated), for ``step(..., where="post")``. Empty without one such
    interval. Closer samples (one taken as a phase ends) are merged into the
    next interval: counters arrive from the load generators in steps, and a
    difference over a sliver of a second would show a spike that is not there."""
    times: list[float] = []
    rates: list[float] = []
    previous: tuple[float, float] | None = None
    end = 0.0
    for sample in samples:
        t = float(sample["t"])
        v = value(sample)
        if v is None:
            continue
        if previous is None:
            previous = (t, v)
        elif t - previous[0] >= MIN_INTERVAL_S:
            times.append(previous[0])
            rates.append((v - previous[1]) / (t - previous[0]))
            end = t
            previous = (t, v)
    if times:
        times.append(end)
        rates.append(rates[-1])
    return times, rates


# --------------------------------------------------------------------------
# drawing helpers


def _figure() -> Figure:
    return Figure(figsize=SIZE, dpi=DPI, layout="constrained")


def _title(result: Mapping[str, Any], what: str) -> str:
    name = result.get("title") or result.get("scenario") or "result"
    return f"{name} \N{EM DASH} {what}"


def _save(figure: Figure, path: Path | str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=DPI, format="png")
    return target


def _phase_spans(samples: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, float]]:
    """Consecutive samples of one phase as (phase, start, end): a phase runs
    from its first sample to the next phase's first sample (the last to the
    last sample)."""
    spans: list[tuple[str, float, float]] = []
    for sample in samples:
        phase = sample.get("phase")
        if not isinstance(phase, str) or not phase:
            continue
        t = float(sample["t"])
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], t)
        else:
            if spans:
                spans[-1] = (spans[-1][0], spans[-1][1], t)
            spans.append((phase, t, t))
    return [span for span in spans if span[2] > span[1]]


def _shade_phases(axes: Axes, samples: Sequence[Mapping[str, Any]]) -> list[Artist]:
    """Shade each phase of the timeline; legend handles, one per phase."""
    handles: dict[str, Artist] = {}
    others: dict[str, str] = {}
    for phase, start, end in _phase_spans(samples):
        colour = _PHASE_COLOURS.get(phase) or others.setdefault(
            phase, _OTHER_PHASE_COLOURS[len(others) % len(_OTHER_PHASE_COLOURS)]
        )
        axes.axvspan(start, end, color=colour, alpha=_PHASE_ALPHA, linewidth=0)
        handles.setdefault(phase, Patch(color=colour, alpha=_PHASE_ALPHA * 2, label=phase))
    return list(handles.values())


def _legend(figure: Figure, handles: Iterable[Artist]) -> None:
    shown = list(handles)
    if shown:
        figure.legend(
            handles=shown, loc="outside lower center", ncols=min(len(shown), 6), fontsize="small"
        )


# --------------------------------------------------------------------------
# latency


@dataclass(frozen=True, slots=True)
class _Histogram:
    """Buckets as (lower, upper, count), ascending, lower < upper."""

    buckets: list[tuple[float, float, int]]

    @property
    def total(self) -> int:
        return sum(count for _, _, count in self.buckets)


def _histogram(latency: Mapping[str, Any]) -> _Histogram | None:
    raw = latency.get("buckets")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return None
    pairs: list[tuple[float, int]] = []
    for entry in raw:
        if not isinstance(entry, Sequence) or isinstance(entry, str) or len(entry) != 2:
            continue
        upper, count = _number(entry[0]), _number(entry[1])
        if upper is None or upper <= 0 or count is None or count <= 0:
            continue
        pairs.append((upper, int(count)))
    pairs.sort()
    if not pairs:
        return None
    ratios = [b[0] / a[0] for a, b in itertools.pairwise(pairs) if b[0] > a[0]]
    growth = min(ratios) if ratios else DEFAULT_BUCKET_GROWTH
    buckets: list[tuple[float, float, int]] = []
    for upper, count in pairs:
        if buckets and buckets[-1][1] == upper:  # the same bound twice: add up
            lower, _, seen = buckets[-1]
            buckets[-1] = (lower, upper, seen + count)
        else:
            buckets.append((upper / growth, upper, count))
    return _Histogram(buckets)


def _display_bins(histogram: _Histogram) -> tuple[list[float], list[float]]:
    """Edges and counts to draw: the result's buckets when they are coarse
    enough, else ``BINS_PER_DECADE`` log bins aligned on powers of ten (each
    bucket counted in the bin holding its geometric middle)."""
    buckets = histogram.buckets
    finest = min(math.log10(upper / lower) for lower, upper, _ in buckets)
    if finest >= 1.0 / BINS_PER_DECADE:
        edges: list[float] = []
        counts: list[float] = []
        for lower, upper, count in buckets:
            if edges and lower > edges[-1]:  # a gap between sparse buckets
                counts.append(0.0)
                edges.append(lower)
            if not edges:
                edges.append(lower)
            counts.append(float(count))
            edges.append(upper)
        return edges, counts
    binned: dict[int, float] = {}
    for lower, upper, count in buckets:
        middle = math.sqrt(lower * upper)
        index = math.floor(math.log10(middle) * BINS_PER_DECADE)
        binned[index] = binned.get(index, 0.0) + count
    first, last = min(binned), max(binned)
    edges = [10 ** (i / BINS_PER_DECADE) for i in range(first, last + 2)]
    counts = [binned.get(i, 0.0) for i in range(first, last + 1)]
    return edges, counts


def _plain_log_labels(axes: Axes, low: float, high: float) -> None:
    """Tick labels as plain numbers (0.1, 2, 30) on a log x axis; the
    minor ticks labelled too when the axis spans less than about a decade
    and a half, so that a narrow distribution still gets numbers."""
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axes.xaxis.set_major_formatter(plain)
    if math.log10(high / low) < 1.5:
        axes.xaxis.set_minor_formatter(plain)
        axes.tick_params(axis="x", which="minor", labelsize="x-small")
    else:
        axes.xaxis.set_minor_formatter(NullFormatter())


def latency_distribution(result: Mapping[str, Any], path: Path | str) -> Path | None:
    """Histogram of ``latency_ms.buckets`` (log x axis, ms) with the
    cumulative share of calls, and p50/p90/p99 and max marked. None when the
    result holds no non-empty bucket."""
    latency = _mapping(result.get("latency_ms"))
    histogram = _histogram(latency)
    if histogram is None:
        return None
    total = histogram.total
    edges, counts = _display_bins(histogram)
    figure = _figure()
    axes = figure.add_subplot()
    axes.set_xscale("log")
    axes.stairs([100.0 * c / total for c in counts], edges, fill=True, color="tab:blue", alpha=0.5)
    _plain_log_labels(axes, edges[0], edges[-1])
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("share of calls per bin (%)")
    axes.set_ylim(bottom=0)
    axes.grid(True, which="major", axis="x", alpha=0.3)
    handles: list[Artist] = [Patch(color="tab:blue", alpha=0.5, label=f"calls ({total:,})")]

    cumulative = axes.twinx()
    xs = [histogram.buckets[0][0]]
    ys = [0.0]
    seen = 0
    for _, upper, count in histogram.buckets:
        seen += count
        xs.append(upper)
        ys.append(100.0 * seen / total)
    (cdf,) = cumulative.plot(xs, ys, color="tab:purple", linewidth=1.5, label="cumulative %")
    cumulative.set_ylim(0, 102)
    cumulative.set_ylabel("cumulative share of calls (%)")
    handles.append(cdf)

    for name, colour in _PERCENTILE_STYLE.items():
        value = _number(latency.get(name))
        if value is None or value <= 0:
            continue
        style = ":" if name == "max" else "--"
        handles.append(
            axes.axvline(value, color=colour, linestyle=style, label=f"{name} {value:,.3g} ms")
        )
    axes.set_title(_title(result, "latency of charger CALLs"))
    _legend(figure, handles)
    return _save(figure, path)


# --------------------------------------------------------------------------
# throughput


def throughput_over_time(result: Mapping[str, Any], path: Path | str) -> Path | None:
    """Answers per second (and errors per second, if any) and connected
    chargers against time, phases shaded. None without two timeline samples
    carrying ``answered``."""
    samples = _timeline(result)
    times, answers = _rates(samples, lambda s: _number(s.get("answered")))
    if not times:
        return None
    err_times, errors = _rates(samples, lambda s: _number(s.get("errors")))
    figure = _figure()
    axes = figure.add_subplot()
    handles = _shade_phases(axes, samples)
    (line,) = axes.step(times, answers, where="post", color="tab:green", label="answers/s")
    handles.insert(0, line)
    if any(e > 0 for e in errors):
        (err,) = axes.step(err_times, errors, where="post", color="tab:red", label="errors/s")
        handles.insert(1, err)
    axes.set_xlabel("time since start (s)")
    axes.set_ylabel("answers per second")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter("{x:,.0f}")

    connected = [
        (float(s["t"]), c) for s in samples if (c := _number(s.get("connected"))) is not None
    ]
    if connected:
        chargers = axes.twinx()
        (conn,) = chargers.plot(
            [t for t, _ in connected],
            [c for _, c in connected],
            color="tab:blue",
            linewidth=1.2,
            label="connected chargers",
        )
        chargers.set_ylabel("connected chargers")
        chargers.set_ylim(bottom=0, top=max(1.0, *(c for _, c in connected)) * 1.05)
        chargers.yaxis.set_major_formatter("{x:,.0f}")
        handles.insert(1, conn)
    axes.set_title(_title(result, "answers per second"))
    _legend(figure, handles)
    return _save(figure, path)


# --------------------------------------------------------------------------
# memory


@dataclass(frozen=True, slots=True)
class LineFit:
    """A least-squares line ``y = intercept + slope * x`` over ``points`` points."""

    slope: float
    intercept: float
    points: int


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LineFit | None:
    """Least squares; None unless there are two distinct x values."""
    n = len(xs)
    if n != len(ys) or n < 2:
        return None
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var <= 0:
        return None
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = cov / var
    return LineFit(slope, mean_y - slope * mean_x, n)


@dataclass(frozen=True, slots=True)
class MemoryFit:
    """The timeline's (connected, RSS KiB) points of a process and the line
    fitted to them; ``basis`` says which samples the fit used."""

    points: list[tuple[float, float]]
    fit: LineFit
    basis: str


#: Phases in which connections close while their memory is still being freed.
_CLOSING_PHASES = ("drop", "finish")


def memory_fit(result: Mapping[str, Any], process: str = GATEWAY) -> MemoryFit | None:
    """``process``'s RSS against connected chargers, from the timeline, and a
    least-squares line whose slope is KiB per connection. The fit uses the
    samples before the fleet is first dropped or closed (phases ``drop`` and
    ``finish``: memory freed then lags the count, which would bend the line)
    and plots only those, unless they span fewer than two connection counts.
    None without two samples at different connection counts."""
    points: list[tuple[float, float, bool]] = []  # connected, rss KiB, before the drop
    dropped = False
    for sample in _timeline(result):
        dropped = dropped or sample.get("phase") in _CLOSING_PHASES
        connected = _number(sample.get("connected"))
        rss = _process_value(sample, process, "rss_kb")
        if connected is not None and rss is not None:
            points.append((connected, rss, not dropped))
    early = [(c, r) for c, r, before in points if before]
    fit = fit_line([c for c, _ in early], [r for _, r in early])
    basis = "samples before the fleet closed" if dropped else "all samples"
    if fit is None:
        early = [(c, r) for c, r, _ in points]
        fit = fit_line([c for c, _ in early], [r for _, r in early])
        basis = "all samples"
    if fit is None:
        return None
    return MemoryFit(early, fit, basis)


def memory_against_connections(
    result: Mapping[str, Any], path: Path | str, process: str = GATEWAY
) -> Path | None:
    """``process``'s resident memory (MiB) against connected chargers, from
    the timeline, with the line of ``memory_fit`` and its slope (KiB per
    connection) annotated. None when ``memory_fit`` has no line."""
    found = memory_fit(result, process)
    if found is None:
        return None
    fit, basis = found.fit, found.basis
    points = found.points
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot(
        [c for c, _ in points],
        [r / 1024 for _, r in points],
        color="tab:blue",
        linewidth=0.8,
        alpha=0.6,
        marker="o",
        markersize=3,
        label=f"{process} RSS (timeline)",
    )
    low = min(c for c, _ in points)
    high = max(c for c, _ in points)
    (fitted,) = axes.plot(
        [low, high],
        [(fit.intercept + fit.slope * low) / 1024, (fit.intercept + fit.slope * high) / 1024],
        color="tab:red",
        linestyle="--",
        label=f"fit: {fit.slope:,.2f} KiB per connection ({basis})",
    )
    text = f"{fit.slope:,.2f} KiB per connection\nintercept {fit.intercept / 1024:,.1f} MiB"
    reported = _number(_mapping(result.get("derived")).get("kb_per_connection"))
    if reported is not None:
        text += f"\nscenario reports {reported:,.2f} KiB"
    axes.text(
        0.02,
        0.97,
        text,
        transform=axes.transAxes,
        va="top",
        fontsize="small",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
    )
    axes.set_xlabel("connected chargers")
    axes.set_ylabel(f"{process} resident memory (MiB)")
    axes.xaxis.set_major_formatter("{x:,.0f}")
    axes.set_title(_title(result, "memory against connections"))
    handles: list[Artist] = [Line2D([], [], color="tab:blue", marker="o", label="RSS"), fitted]
    _legend(figure, handles)
    return _save(figure, path)


# --------------------------------------------------------------------------
# CPU


def _process_names(samples: Sequence[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for sample in samples:
        for name in _mapping(sample.get("processes")):
            names.setdefault(str(name), None)
    return list(names)


def _reader(process: str, key: str) -> Callable[[Mapping[str, Any]], float | None]:
    """Reads ``processes[process][key]`` of a sample."""

    def read(sample: Mapping[str, Any]) -> float | None:
        return _process_value(sample, process, key)

    return read


def cpu_over_time(result: Mapping[str, Any], path: Path | str) -> Path | None:
    """Cores busy per process (difference of cumulative ``cpu_s`` / dt)
    against time, phases shaded; the machine's CPU count in the axis label.
    None unless some process has two CPU readings."""
    samples = _timeline(result)
    series: list[tuple[str, list[float], list[float]]] = []
    for name in _process_names(samples):
        times, busy = _rates(samples, _reader(name, "cpu_s"))
        if times:
            series.append((name, times, busy))
    if not series:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    phases = _shade_phases(axes, samples)
    handles: list[Artist] = []
    for name, times, busy in series:
        (line,) = axes.step(times, busy, where="post", linewidth=1.2, label=name)
        handles.append(line)
    cpus = _number(_mapping(result.get("machine")).get("cpus"))
    machine = f"; the machine has {cpus:g}" if cpus is not None and cpus > 0 else ""
    axes.set_xlabel("time since start (s)")
    axes.set_ylabel(f"cores busy (1.0 = one core{machine})")
    axes.set_ylim(bottom=0)
    axes.set_title(_title(result, "CPU per process"))
    _legend(figure, handles + phases)
    return _save(figure, path)


# --------------------------------------------------------------------------
# all of them

PlotFunction = Callable[[Mapping[str, Any], Path], Path | None]

#: File name suffix of each plot and the function that draws it.
KINDS: dict[str, PlotFunction] = {
    "latency": latency_distribution,
    "throughput": throughput_over_time,
    "memory": memory_against_connections,
    "cpu": cpu_over_time,
}


def _file_stem(result: Mapping[str, Any]) -> str:
    name = str(result.get("scenario") or "result")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "result"


def plot_all(result: Mapping[str, Any], folder: Path | str) -> list[Path]:
    """Every plot the result has data for, as ``folder/<scenario>-<kind>.png``
    (kinds: latency, throughput, memory, cpu); the paths written, in that order."""
    stem = _file_stem(result)
    written: list[Path] = []
    for kind, draw in KINDS.items():
        path = draw(result, Path(folder) / f"{stem}-{kind}.png")
        if path is not None:
            written.append(path)
    return written
