"""The AWS cost model (``bench.cost``), its counts (``bench.mqtt_observer``,
``bench.store_counts``) and the report's "What it costs on AWS" section, on
inputs small enough to check by hand.

A month here is 730 hours = 2,628,000 seconds, so one event per
charger-second is 2,628,000 events per charger a month.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import cost
from bench.cost import (
    DYNAMODB,
    FARGATE,
    IOT_CONNECTIVITY,
    IOT_MESSAGING,
    IOT_RULES,
    LAMBDA,
    NLB,
    SQS,
    Sizing,
    Usage,
    load_prices,
    monthly_bill,
    sizing_from,
    tiered,
    usage_from,
)
from bench.mqtt_observer import TopicCounts, classify, iot_units
from bench.report import build_report
from bench.store_counts import tally

from .test_report import all_results, make_result

MONTH_S = 730 * 3600
PRICES = load_prices()
#: The sizing the hand computations use: the seed's task, 16 pool
#: connections, 128 MB for 10 ms per frame, batches of 10, no extra logs.
SIZING = Sizing(log_bytes_per_invocation=0.0)


def usage(**figures: float) -> Usage:
    """A usage of nothing but ``figures``."""
    values = {f.name: 0.0 for f in dataclasses.fields(Usage) if f.name != "frames_per_publish"}
    return Usage(**(values | figures))


# -- the prices file ---------------------------------------------------------


def test_every_price_has_a_date_and_an_aws_source() -> None:
    document = json.loads(cost.DEFAULT_PRICES.read_text(encoding="utf-8"))
    assert "verify" in document["note"] and "no network" in document["note"]
    assert document["region"] == "us-east-1"
    assert document["hours_per_month"] == 730
    assert len(document["prices"]) == 10
    for name, entry in document["prices"].items():
        date.fromisoformat(entry["as_of"])
        assert entry["source"].startswith("https://aws.amazon.com/"), name
        assert entry["source"].endswith("/pricing/"), name
    assert set(PRICES.provenance) == set(document["prices"])


def test_the_prices_are_the_ones_the_model_was_written_for() -> None:
    assert PRICES.iot_message_tiers == ((1000.0, 1.0), (4000.0, 0.8), (None, 0.7))
    assert (PRICES.shadow_per_million, PRICES.sqs_per_million) == (1.25, 0.4)
    assert (PRICES.dynamodb_write_per_million, PRICES.dynamodb_read_per_million) == (0.625, 0.125)
    assert (PRICES.fargate_vcpu_hour, PRICES.fargate_gb_hour) == (0.04048, 0.004445)
    assert PRICES.nlcu_active_connections == 100_000
    assert PRICES.seconds_per_month == MONTH_S


def test_a_prices_file_without_a_service_is_refused(tmp_path: Path) -> None:
    document = json.loads(cost.DEFAULT_PRICES.read_text(encoding="utf-8"))
    del document["prices"]["sqs"]
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match="sqs"):
        load_prices(path)


# -- the bill by hand ----------------------------------------------------------


def test_tiers() -> None:
    tiers = PRICES.iot_message_tiers
    assert tiered(500, tiers) == pytest.approx(500.0)
    assert tiered(1000, tiers) == pytest.approx(1000.0)
    # 1,000 M at $1, 4,000 M at $0.80, 1,000 M at $0.70.
    assert tiered(6000, tiers) == pytest.approx(1000 + 3200 + 700)


def test_one_small_publish_per_charger_second() -> None:
    """1 KB a second, one 5 KB unit, counted in and out: 2 x 2,628,000
    messages a month, all in the first tier."""
    bill = monthly_bill(
        usage(uplink_publishes=1.0, iot_message_units=1.0),
        PRICES,
        chargers=1,
        tasks=1,
        sizing=SIZING,
    )
    assert bill.usd(IOT_MESSAGING) == pytest.approx(5.256)
    # One rule and one action per uplink: 2,628,000 x $0.30 per million.
    assert bill.usd(IOT_RULES) == pytest.approx(0.7884)


def test_a_million_chargers_cross_the_tiers() -> None:
    """0.001 publishes per charger-second: 5.256 billion messages a month."""
    bill = monthly_bill(
        usage(uplink_publishes=0.001, iot_message_units=0.001, frames=0.001),
        PRICES,
        chargers=1_000_000,
        tasks=20,
        sizing=SIZING,
    )
    assert bill.usd(IOT_MESSAGING) == pytest.approx(1000 + 3200 + 256 * 0.7)
    # 2.628 billion SQS messages: a send each, a receive and a delete per 10.
    assert bill.usd(SQS) == pytest.approx(2.628e9 * 1.2 / 1e6 * 0.40)
    # 262.8 M invocations; 2.628 billion frames x 10 ms x 0.125 GB.
    assert bill.usd(LAMBDA) == pytest.approx(262.8 * 0.2 + 2.628e9 * 0.010 * 0.125 * 0.0000166667)
    # 20 tasks of 0.25 vCPU and 0.5 GB all month.
    assert bill.usd(FARGATE) == pytest.approx(20 * (0.25 * 0.04048 + 0.5 * 0.004445) * 730)
    # One NLB and 10 NLCUs (1,000,000 / 100,000 active connections).
    assert bill.usd(NLB) == pytest.approx(0.0225 * 730 + 10 * 0.006 * 730)
    # 320 pool connections x 43,800 minutes.
    assert bill.usd(IOT_CONNECTIVITY) == pytest.approx(320 * 43_800 / 1e6 * 0.08)
    assert bill.per_charger_month == pytest.approx(bill.total / 1_000_000)


def test_dynamodb_units_and_storage() -> None:
    bill = monthly_bill(
        usage(dynamodb_write_units=0.01, dynamodb_read_units=0.01, dynamodb_stored_bytes=1.0),
        PRICES,
        chargers=1000,
        tasks=1,
        sizing=SIZING,
    )
    units = 0.01 * 1000 * MONTH_S / 1e6
    stored_gb = 1000 * MONTH_S / 1024**3
    assert bill.usd(DYNAMODB) == pytest.approx(units * 0.625 + units * 0.125 + stored_gb * 0.25)


def test_usage_needs_every_count() -> None:
    derived: dict[str, Any] = {key: 0.001 for key in cost._USAGE_KEYS.values()}
    assert usage_from({"derived": derived}) == usage(**dict.fromkeys(cost._USAGE_KEYS, 0.001))
    del derived["shadow_units_per_charger_second"]
    assert usage_from({"derived": derived}) is None
    assert usage_from(None) is None


def test_sizing_comes_from_the_infrastructure_and_the_lambda_footprint(tmp_path: Path) -> None:
    processing = tmp_path / "processing.py"
    processing.write_text("LAMBDA_MEMORY_MB = 256\n_BATCH_SIZE: int = 5\n", encoding="utf-8")
    sizing = sizing_from(
        {"ms_per_record_warm_vs_moto": 6.5},
        task_vcpu=0.5,
        task_memory_mib=1024,
        pool_connections=8,
        processing=processing,
    )
    assert (sizing.lambda_memory_mb, sizing.sqs_batch_size, sizing.lambda_ms_per_frame) == (
        256,
        5,
        6.5,
    )
    assert (sizing.task_vcpu, sizing.task_memory_gb, sizing.pool_connections) == (0.5, 1.0, 8)
    assumed = sizing_from(None, task_vcpu=0.25, task_memory_mib=512, pool_connections=16)
    assert assumed.lambda_ms_per_frame == Sizing().lambda_ms_per_frame
    assert any("assumed" in note for note in assumed.notes)
    # The repository's own infrastructure: the seed's 128 MB and batches of 10.
    assert (assumed.lambda_memory_mb, assumed.sqs_batch_size) == (128, 10)


# -- the counts ------------------------------------------------------------------


def test_topics_are_classified() -> None:
    batch = orjson.dumps({"frames": [["cp1", "ocpp1.6", "[2]"], ["cp2", "presence", "{}"]]})
    assert classify("bench/in/cp1/ocpp1.6/gw.0", b"[2]", "bench") == ("uplink", 1, 0)
    assert classify("bench/out/gw.0/cp1", b"[3]", "bench") == ("downlink", 1, 0)
    assert classify("bench/presence/cp1", b"{}", "bench") == ("presence", 0, 1)
    assert classify("bench/batch/in/gw.0", batch, "bench") == ("uplink_batch", 1, 1)
    assert classify("bench/batch/out/gw.0", batch, "bench") == ("downlink_batch", 2, 0)
    assert classify("bench/batch/in/gw.0", b"not json", "bench") == ("other", 0, 0)
    assert classify("other/in/cp1/ocpp1.6/gw.0", b"[2]", "bench") == ("other", 0, 0)


def test_publishes_are_metered_in_5_kb_units() -> None:
    assert [iot_units(n) for n in (0, 1, 5120, 5121, 10_240)] == [1, 1, 1, 2, 2]
    counts = TopicCounts()
    counts.add("bench/in/cp1/ocpp1.6/gw.0", b"x" * 6000, "bench")
    before = counts.copy()
    counts.add("bench/out/gw.0/cp1", b"y" * 10, "bench")
    window = counts.minus(before)
    assert window.total().publishes == 1
    assert window.by_class["downlink"].payload_bytes == 10
    assert counts.total().iot_units == 3


def test_state_changes_map_to_aws_operations() -> None:
    meter = orjson.dumps({"meterValue": [{"x": 1}]}).decode()
    started = orjson.dumps({"transactionInfo": {"transactionId": "t1"}}).decode()
    updated = orjson.dumps({"transactionInfo": {"chargingState": "Charging"}}).decode()
    events = [
        # 1.6 MeterValues: recorded, never marked applied.
        ("cp1", "7", "meter:2026", "Updated", "2026", meter, 0),
        # 2.0.1 Started: recorded, marked, and _has_ended queries the history.
        ("cp2", "t1", "seq:0", "Started", "2026", started, 1),
        # 2.0.1 Updated with a charging state: the active transaction is read.
        ("cp2", "t1", "seq:1", "Updated", "2026", updated, 1),
        # 2.0.1 periodic reading: recorded only, never applied, reads nothing.
        ("cp2", "t1", "seq:2", "Updated", "2026", updated, 0),
        # 1.6 StopTransaction: _complete reads the shadow.
        ("cp1", "7", "stop", "Ended", "2026", meter, 1),
        # An event between 1 and 2 KB: two write units a write.
        ("cp3", "9", "stop", "Ended", "2026", "x" * 1500, 1),
    ]
    counts = tally(
        events,
        [("cp1", "1|2026|0|TAG")],
        shadow_updates=6,
        shadow_read_units=2.0,
        commands_sent=2,
        commands_answered=1,
    )
    assert counts.transaction_events == 6 and counts.transaction_starts == 1
    # Events: 6 puts + 4 marks, 12 units (the large one 2 + 2); the start: a
    # counter update and a put; the commands: 2 puts and 1 delete.
    assert counts.dynamodb_writes == 10 + 2 + 3
    assert counts.dynamodb_write_units == 12 + 2 + 3
    # The Started query and the start's GetItem.
    assert (counts.dynamodb_reads, counts.dynamodb_read_units) == (2, 2)
    # Two ends, one Updated with changes, two commands sent and one answered.
    assert counts.shadow_reads == 6
    assert counts.shadow_units == 6 + 6 * 2.0
    assert counts.dynamodb_stored_bytes > 1500 + 6 * 100


# -- the report ------------------------------------------------------------------

#: Counts per charger-second of the two designs, in the shape the pipeline writes.
COUNTS = {
    "mqtt_uplink_publishes_per_charger_second": 0.0087,
    "mqtt_downlink_publishes_per_charger_second": 0.0087,
    "mqtt_presence_publishes_per_charger_second": 0.0,
    "mqtt_uplink_frames_per_charger_second": 0.0087,
    "mqtt_frames_per_publish": 1.0,
    "iot_message_units_per_charger_second": 0.0174,
    "shadow_updates_per_charger_second": 0.005,
    "shadow_reads_per_charger_second": 0.001,
    "shadow_units_per_charger_second": 0.007,
    "dynamodb_write_units_per_charger_second": 0.008,
    "dynamodb_read_units_per_charger_second": 0.0002,
    "dynamodb_stored_bytes_per_charger_second": 3.0,
    "log_bytes_per_charger_second": 0.0,
}


def batched(share: float) -> dict[str, float]:
    """The counts with ``share`` of the publishes."""
    scaled = {
        key: COUNTS[key] * share
        for key in (
            "mqtt_uplink_publishes_per_charger_second",
            "mqtt_downlink_publishes_per_charger_second",
            "iot_message_units_per_charger_second",
        )
    }
    return COUNTS | scaled | {"mqtt_frames_per_publish": 1 / share}


def test_the_report_sets_both_designs_side_by_side() -> None:
    results = all_results(pipeline=batched(0.1), **{"pipeline-one-per-frame": COUNTS})
    text = build_report(results)
    assert "## What it costs on AWS" in text
    assert (
        "| service | one-per-frame, 100,000 | batched, 100,000 | one-per-frame, 1,000,000 |" in text
    )
    for service in cost.SERVICES:
        assert f"| {service} | $" in text
    assert "| **total a month** | **$" in text
    assert "per charger-month" in text and "Assumptions:" in text
    assert "https://aws.amazon.com/iot-core/pricing/" in text
    # Shadow and DynamoDB do not shrink with batching: the target is missed.
    target = next(line for line in text.splitlines() if line.startswith("| AWS bill of 1,000,000"))
    assert "**not met**" in target and "batched $" in target and "one-per-frame $" in target


def test_the_cost_target_is_met_when_the_bill_shrinks_enough() -> None:
    cheap = {key: value / 10 for key, value in batched(0.1).items()}
    results = all_results(pipeline=cheap, **{"pipeline-one-per-frame": COUNTS})
    target = next(
        line for line in build_report(results).splitlines() if line.startswith("| AWS bill of")
    )
    assert "**met**" in target


def test_the_cost_section_says_not_run() -> None:
    results = all_results(pipeline=batched(0.1))
    del results["pipeline-one-per-frame"]
    text = build_report(results)
    assert "one-per-frame (`pipeline-one-per-frame.json`): not run" in text
    assert "| IoT Core messaging | not run | $" in text
    target = next(line for line in text.splitlines() if line.startswith("| AWS bill of"))
    assert "not measured (one-per-frame: not run)" in target


def test_a_result_without_counts_asks_for_a_new_run() -> None:
    results = {"pipeline": make_result("pipeline")}
    text = build_report(results)
    assert "batched (`pipeline.json`): no counts; run it again" in text
    assert "one-per-frame (`pipeline-one-per-frame.json`): not run" in text


def test_without_prices_the_section_says_why() -> None:
    text = build_report(all_results(), prices="no prices file here")
    assert "No prices: no prices file here." in text
