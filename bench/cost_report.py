"""The scaling report's "What it costs on AWS" section (``bench.cost``'s bills).

Two designs, each measured by the pipeline scenario the same way: batched
(``pipeline.json``, ``OCPP_MQTT_BATCH_BYTES`` at its default) and one frame
per publish (``pipeline-one-per-frame.json``, ``--batch-bytes 0``). The
report hands in each design's result and the Fargate tasks its capacity
figures need (``bench.report.scaling`` on that result); this module prices
them and writes the Markdown, the assumptions and the cost target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .cost import (
    ASSUMPTIONS,
    SERVICES,
    Bill,
    Prices,
    Sizing,
    monthly_bill,
    usage_from,
)

__all__ = ["DESIGNS", "Costs", "Design", "cost_section", "cost_target", "costs"]

#: Design -> the scenario result that measured it, in the table's order.
DESIGNS = {"one-per-frame": "pipeline-one-per-frame", "batched": "pipeline"}
#: The target: the batched bill of the target fleet at most this share of
#: the one-per-frame bill.
TARGET_SHARE = 0.2
#: Below this share of the planned mix, a run did not carry the whole load.
CARRIED_WARNING = 0.9
_NOT_RUN = "not run"


@dataclass(frozen=True, slots=True)
class Design:
    """One design's measurement and what it needs."""

    name: str
    scenario: str
    result: Mapping[str, Any] | None
    #: Fleet -> Fargate tasks (None: unknown).
    tasks: Mapping[int, int | None]


@dataclass(frozen=True, slots=True)
class Costs:
    designs: tuple[Design, ...]
    fleets: tuple[int, ...]
    prices: Prices | None
    sizing: Sizing
    #: (design, fleet) -> its bill, or why there is none.
    bills: Mapping[tuple[str, int], Bill | str]
    target_fleet: int
    prices_problem: str | None = None

    def bill(self, design: str, fleet: int) -> Bill | None:
        found = self.bills.get((design, fleet))
        return found if isinstance(found, Bill) else None


def costs(
    designs: Sequence[Design],
    prices: Prices | None,
    sizing: Sizing,
    *,
    fleets: Sequence[int],
    target_fleet: int,
    prices_problem: str | None = None,
) -> Costs:
    """Every design's bill for every fleet (or why it has none)."""
    bills: dict[tuple[str, int], Bill | str] = {}
    for design in designs:
        usage = usage_from(design.result)
        for fleet in fleets:
            tasks = design.tasks.get(fleet)
            if prices is None:
                bills[design.name, fleet] = "no prices"
            elif design.result is None:
                bills[design.name, fleet] = _NOT_RUN
            elif usage is None:
                bills[design.name, fleet] = "no counts (run before they were measured)"
            elif tasks is None:
                bills[design.name, fleet] = "tasks unknown"
            else:
                bills[design.name, fleet] = monthly_bill(
                    usage, prices, chargers=fleet, tasks=tasks, sizing=sizing
                )
    return Costs(tuple(designs), tuple(fleets), prices, sizing, bills, target_fleet, prices_problem)


def cost_target(result: Costs) -> tuple[str, str, str, bool | None]:
    """(name, design, measured, met) of the cost target for the targets list."""
    fleet = result.target_fleet
    name = f"AWS bill of {fleet:,} charge points at the standard mix"
    target = f"≤ 1/{round(1 / TARGET_SHARE)} of the one-per-frame design's"
    batched, single = result.bill("batched", fleet), result.bill("one-per-frame", fleet)
    if batched is None or single is None:
        why = [
            f"{design}: {result.bills.get((design, fleet), _NOT_RUN)}"
            for design, bill in (("batched", batched), ("one-per-frame", single))
            if bill is None
        ]
        return name, target, "not measured (" + "; ".join(why) + ")", None
    share = batched.total / single.total if single.total else float("inf")
    measured = (
        f"batched {_usd(batched.total)}, one-per-frame {_usd(single.total)} a month: "
        f"{share:.2f} of it"
    )
    return name, target, measured, batched.total <= TARGET_SHARE * single.total


def _usd(value: float) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.3g}"


def _per_charger(value: float) -> str:
    return f"${value:.4f}" if value >= 0.001 else f"${value:.3g}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _rate(value: float | None) -> str:
    return "\N{EN DASH}" if value is None else f"{value:.3g}"


def cost_section(result: Costs) -> list[str]:
    lines = ["## What it costs on AWS", ""]
    lines.append(
        "The monthly bill of the standard mix, from the counts the pipeline scenario measured "
        "per charger-second (an MQTT observer on the broker for the publishes, the SQLite "
        "state for the shadow and DynamoDB operations; `bench/README.md`), times the list "
        "prices of `bench/aws_prices.json` (`bench/cost.py`). The one-per-frame design is "
        "`python -m bench pipeline --batch-bytes 0` (one frame per publish, and every reading "
        "of a transaction in the shadow too, as before batches), measured the same way as the "
        "batched one."
    )
    lines.append("")
    if result.prices is None:
        lines += [f"No prices: {result.prices_problem or 'bench/aws_prices.json missing'}.", ""]
        return lines
    for design in result.designs:
        if design.result is None:
            lines.append(
                f"* {design.name} (`{design.scenario}.json`): {_NOT_RUN}: "
                f"`.venv/bin/python -m bench {_command(design)}`."
            )
        elif usage_from(design.result) is None:
            lines.append(
                f"* {design.name} (`{design.scenario}.json`): no counts; run it again: "
                f"`.venv/bin/python -m bench {_command(design)}`."
            )
    if any(d.result is None or usage_from(d.result) is None for d in result.designs):
        lines.append("")
    lines += _bill_table(result)
    lines += _carried(result)
    lines += _counts_table(result)
    lines += ["Assumptions:", ""]
    lines += [f"* {text}" for text in (*ASSUMPTIONS, *result.sizing.notes)]
    dates = sorted({as_of for as_of, _ in result.prices.provenance.values()})
    sources = sorted({source for _, source in result.prices.provenance.values()})
    lines += [
        f"* Prices as of {', '.join(dates)}; sources: {', '.join(sources)}.",
        f"* {result.prices.hours_per_month:g} hours a month.",
        "",
    ]
    return lines


def _command(design: Design) -> str:
    return "pipeline --batch-bytes 0" if design.name == "one-per-frame" else "pipeline"


def _bill_table(result: Costs) -> list[str]:
    columns = [(d.name, fleet) for fleet in result.fleets for d in result.designs]
    header = ["service", *(f"{name}, {fleet:,}" for name, fleet in columns)]
    lines = [_row(*header), _row("---", *("---:" for _ in columns))]

    def cells(value: Any) -> list[str]:
        out = []
        for name, fleet in columns:
            bill = result.bills.get((name, fleet))
            out.append(value(bill) if isinstance(bill, Bill) else str(bill or _NOT_RUN))
        return out

    for service in SERVICES:
        lines.append(_row(service, *cells(lambda b, s=service: _usd(b.usd(s)))))
    lines.append(_row("**total a month**", *cells(lambda b: f"**{_usd(b.total)}**")))
    lines.append(_row("per charger-month", *cells(lambda b: _per_charger(b.per_charger_month))))
    lines.append(_row("Fargate tasks", *cells(lambda b: f"{b.tasks:,}")))
    lines.append("")
    largest = max(result.fleets)
    for design in result.designs:
        bill = result.bill(design.name, largest)
        if bill is not None:
            basis = "; ".join(f"{line.service}: {line.basis}" for line in bill.lines)
            lines.append(f"How the {design.name} bill of {largest:,} is made: {basis}.")
            lines.append("")
    return lines


def _carried(result: Costs) -> list[str]:
    """Warn when a run carried less than the mix it was asked for: its counts
    per charger-second, and its bill, are then low."""
    lines: list[str] = []
    for design in result.designs:
        derived = (design.result or {}).get("derived") or {}
        carried = derived.get("messages_per_charger_second")
        planned = derived.get("planned_messages_per_charger_second")
        if not isinstance(carried, int | float) or not isinstance(planned, int | float):
            continue
        if planned > 0 and carried < CARRIED_WARNING * planned:
            lines.append(
                f"**{design.name}**: the run carried {carried:.3g} CALLs per charger-second of "
                f"the {planned:.3g} planned ({carried / planned:.0%}): a short window, or a "
                "system that could not keep up; its per charger-second counts and bill are low "
                "by about as much."
            )
            lines.append("")
    return lines


def _counts_table(result: Costs) -> list[str]:
    rows = (
        ("CALLs carried", "messages_per_charger_second"),
        ("uplink publishes", "mqtt_uplink_publishes_per_charger_second"),
        ("downlink publishes", "mqtt_downlink_publishes_per_charger_second"),
        ("presence publishes", "mqtt_presence_publishes_per_charger_second"),
        ("frames per publish", "mqtt_frames_per_publish"),
        ("IoT 5 KB message units (each publish once)", "iot_message_units_per_charger_second"),
        ("shadow updates", "shadow_updates_per_charger_second"),
        ("shadow reads", "shadow_reads_per_charger_second"),
        ("shadow 1 KB units", "shadow_units_per_charger_second"),
        ("DynamoDB write units", "dynamodb_write_units_per_charger_second"),
        ("DynamoDB read units", "dynamodb_read_units_per_charger_second"),
        ("log bytes", "log_bytes_per_charger_second"),
    )
    measured = [d for d in result.designs if usage_from(d.result) is not None]
    if not measured:
        return []
    lines = [
        "The counts, per charger-second (frames per publish: a ratio):",
        "",
        _row("count", *(d.name for d in measured)),
        _row("---", *("---:" for _ in measured)),
    ]
    for label, key in rows:
        values = [((d.result or {}).get("derived") or {}).get(key) for d in measured]
        lines.append(
            _row(label, *(_rate(v if isinstance(v, int | float) else None) for v in values))
        )
    lines.append("")
    return lines
