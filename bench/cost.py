"""What the system costs on AWS a month: measured counts times list prices.

``monthly_bill`` is a pure function, like ``bench.report.scaling``: from
the pipeline scenario's counts per charger-second at the standard mix
(``Usage``, read from a result by ``usage_from``), the list prices of
``bench/aws_prices.json`` (``Prices``), the Fargate tasks the scaling report
says a fleet needs, and the sizing of the task and of the Lambda function, it
gives the bill per service for one fleet. Every assumption it makes is in
``ASSUMPTIONS`` (and ``Sizing.notes``), which the report prints beside the
table. The model, per month of ``hours_per_month`` hours and N chargers:

* IoT Core messaging: every publish the pipeline's observer counted, in 5 KB
  units, **twice** (published to IoT Core and delivered by it: to the gateway's
  connection for a downlink, to the rules engine for an uplink, which is the
  conservative reading), priced in the account's monthly tiers.
* IoT Core rules: one rule triggered and one action (SQS) per uplink or
  presence publish; downlinks trigger none.
* Device Shadow: the measured updates and reads, in 1 KB units
  (``bench.store_counts``).
* IoT Core connectivity: the gateway's pool connections, every task's
  ``mqtt_connections`` all month (only they connect to IoT Core; chargers
  connect to the NLB).
* SQS: per message (one rule action), a SendMessage, and a receive and a
  delete per batch of ``batch_size`` (the event source mapping's); empty
  polls of the event source mapping are left out (a few hundred thousand a
  month, cents).
* Lambda: one invocation per ``batch_size`` SQS messages (full batches: the
  fewest invocations); duration per frame handled, times the frames, at the
  function's memory.
* DynamoDB: the measured write and read request units; storage for one
  month's new items (it accumulates month on month unless items expire).
* Fargate: tasks x (vCPU x vCPU-hour + GB x GB-hour) x hours.
* NLB: one load balancer, and NLCU-hours with active connections binding
  (N / ``nlcu_active_connections``).
* CloudWatch Logs: the log bytes the pipeline's processes wrote in the load
  window per charger-second, plus ``Sizing.log_bytes_per_invocation``.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ASSUMPTIONS",
    "DEFAULT_PRICES",
    "SERVICES",
    "Bill",
    "Line",
    "Prices",
    "Sizing",
    "Usage",
    "load_prices",
    "monthly_bill",
    "sizing_from",
    "usage_from",
]

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_PRICES = BENCH_DIR / "aws_prices.json"
PROCESSING = BENCH_DIR.parent / "infra" / "components" / "processing.py"
_MILLION = 1e6
_GB = 1024**3
SECONDS_PER_HOUR = 3600
_X = "\N{MULTIPLICATION SIGN}"

#: The bill's lines, in the report's order.
FARGATE = "Fargate (gateway tasks)"
NLB = "NLB"
IOT_CONNECTIVITY = "IoT Core connectivity"
IOT_MESSAGING = "IoT Core messaging"
IOT_RULES = "IoT Core rules"
IOT_SHADOW = "IoT Device Shadow"
SQS = "SQS"
LAMBDA = "Lambda"
DYNAMODB = "DynamoDB"
LOGS = "CloudWatch Logs"
SERVICES = (
    FARGATE,
    NLB,
    IOT_CONNECTIVITY,
    IOT_MESSAGING,
    IOT_RULES,
    IOT_SHADOW,
    SQS,
    LAMBDA,
    DYNAMODB,
    LOGS,
)

#: What the model assumes beyond the measurements (``Sizing.notes`` adds the
#: function's sizing). Shown beside the report's table.
ASSUMPTIONS = (
    "Prices: us-east-1 on-demand list prices from `bench/aws_prices.json`, remembered by the "
    "team and not re-checked (no network on the build machine): verify before budgeting. "
    "Free tiers are ignored.",
    "Counts are per charger-second of the pipeline scenario's load window (time-compressed: "
    "per equivalent charger), scaled to the fleet and to the month; the standard mix only "
    "(boots, reconnections and firmware traffic are not in the window).",
    "IoT Core messaging counts every publish twice (published in, delivered out), each in "
    "5 KB units of its payload; an uplink's delivery to the rules engine may not be billed as "
    "a message, so this is the upper reading.",
    "IoT rules: one rule and one SQS action per uplink or presence publish.",
    "Device Shadow: an update is one 1 KB unit (every update of the mix is smaller); a read is "
    "billed on the document IoT returns, its metadata included (twice the stored document). "
    "Reads are inferred from the events recorded (bench/README.md has the mapping).",
    "SQS: one SendMessage per rule action, one ReceiveMessage and one DeleteMessageBatch per "
    "batch of the event source mapping; every message under 64 KB; empty polls left out.",
    "Lambda: full SQS batches (the fewest invocations); the remote-start and remote-stop "
    "functions (a few calls an hour) are left out.",
    "DynamoDB: the item sizes the DynamoDB adapters would write for the rows SQLite recorded; "
    "no redeliveries (each would add a read); storage is one month's new items and grows "
    "each month the history is kept.",
    "IoT connectivity: each task's whole MQTT pool connected all month.",
    "NLB: one load balancer; active connections bind its NLCUs (100,000 each, the TCP "
    "figure). A TLS listener's NLCU counts far fewer TLS connections (verify on the price "
    "page): if the listener on 443 terminates TLS, the NLB line grows accordingly.",
    "Fargate: the tasks the capacity computation above needs for each design (its limiting "
    "resource decides), Linux/x86, all month.",
)


@dataclass(frozen=True, slots=True)
class Prices:
    """The list prices the model uses (``load_prices`` reads them)."""

    hours_per_month: float
    #: (upper bound in millions of messages or None for the rest, $ per million).
    iot_message_tiers: tuple[tuple[float | None, float], ...]
    iot_rule_per_million: float
    iot_action_per_million: float
    shadow_per_million: float
    connection_minute_per_million: float
    sqs_per_million: float
    lambda_request_per_million: float
    lambda_gb_second: float
    dynamodb_write_per_million: float
    dynamodb_read_per_million: float
    dynamodb_gb_month: float
    fargate_vcpu_hour: float
    fargate_gb_hour: float
    nlb_hour: float
    nlcu_hour: float
    nlcu_active_connections: float
    logs_gb: float
    #: Service -> (as_of, source) of its prices.
    provenance: dict[str, tuple[str, str]] = field(default_factory=dict)
    note: str = ""

    @property
    def seconds_per_month(self) -> float:
        return self.hours_per_month * SECONDS_PER_HOUR


def load_prices(path: Path = DEFAULT_PRICES) -> Prices:
    """The prices of ``path`` (the format of ``bench/aws_prices.json``);
    ValueError naming what is missing."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return prices_from(document)


def prices_from(document: Mapping[str, Any]) -> Prices:
    """``load_prices`` on a document already parsed."""
    try:
        p = document["prices"]
        tiers = tuple(
            (_optional(t["first_million"]), float(t["usd_per_million"]))
            for t in p["iot_core_messaging"]["tiers"]
        )
        provenance = {name: (str(e["as_of"]), str(e["source"])) for name, e in p.items()}
        return Prices(
            hours_per_month=float(document["hours_per_month"]),
            iot_message_tiers=tiers,
            iot_rule_per_million=float(p["iot_core_rules"]["usd_per_million_rules_triggered"]),
            iot_action_per_million=float(p["iot_core_rules"]["usd_per_million_actions_executed"]),
            shadow_per_million=float(p["iot_core_shadow"]["usd_per_million_operations"]),
            connection_minute_per_million=float(
                p["iot_core_connectivity"]["usd_per_million_connection_minutes"]
            ),
            sqs_per_million=float(p["sqs"]["usd_per_million_requests"]),
            lambda_request_per_million=float(p["lambda"]["usd_per_million_requests"]),
            lambda_gb_second=float(p["lambda"]["usd_per_gb_second"]),
            dynamodb_write_per_million=float(p["dynamodb"]["usd_per_million_write_units"]),
            dynamodb_read_per_million=float(p["dynamodb"]["usd_per_million_read_units"]),
            dynamodb_gb_month=float(p["dynamodb"]["usd_per_gb_month"]),
            fargate_vcpu_hour=float(p["fargate"]["usd_per_vcpu_hour"]),
            fargate_gb_hour=float(p["fargate"]["usd_per_gb_hour"]),
            nlb_hour=float(p["nlb"]["usd_per_hour"]),
            nlcu_hour=float(p["nlb"]["usd_per_nlcu_hour"]),
            nlcu_active_connections=float(p["nlb"]["nlcu_active_connections"]),
            logs_gb=float(p["cloudwatch_logs"]["usd_per_gb_ingested"]),
            provenance=provenance,
            note=str(document.get("note", "")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"prices: missing or malformed {exc}") from None


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Usage:
    """One design's counts per charger-second at the standard mix."""

    uplink_publishes: float
    downlink_publishes: float
    presence_publishes: float
    #: IoT Core's 5 KB units of every publish, each counted once.
    iot_message_units: float
    #: Frames and presence items the processor handles.
    frames: float
    shadow_units: float
    dynamodb_write_units: float
    dynamodb_read_units: float
    dynamodb_stored_bytes: float
    log_bytes: float
    frames_per_publish: float | None = None

    @property
    def rule_triggers(self) -> float:
        return self.uplink_publishes + self.presence_publishes


_USAGE_KEYS = {
    "uplink_publishes": "mqtt_uplink_publishes_per_charger_second",
    "downlink_publishes": "mqtt_downlink_publishes_per_charger_second",
    "presence_publishes": "mqtt_presence_publishes_per_charger_second",
    "iot_message_units": "iot_message_units_per_charger_second",
    "frames": "mqtt_uplink_frames_per_charger_second",
    "shadow_units": "shadow_units_per_charger_second",
    "dynamodb_write_units": "dynamodb_write_units_per_charger_second",
    "dynamodb_read_units": "dynamodb_read_units_per_charger_second",
    "dynamodb_stored_bytes": "dynamodb_stored_bytes_per_charger_second",
    "log_bytes": "log_bytes_per_charger_second",
}


def usage_from(result: Mapping[str, Any] | None) -> Usage | None:
    """The counts of a pipeline result (its ``derived``), or None if it has
    none (not run, or run before the counts were measured)."""
    derived = (result or {}).get("derived")
    if not isinstance(derived, Mapping):
        return None
    values: dict[str, float] = {}
    for name, key in _USAGE_KEYS.items():
        value = derived.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        values[name] = float(value)
    ratio = derived.get("mqtt_frames_per_publish")
    per_publish = float(ratio) if isinstance(ratio, int | float) else None
    return Usage(**values, frames_per_publish=per_publish)


@dataclass(frozen=True, slots=True)
class Sizing:
    """The deployment the bill is for: the gateway's task and the processor
    function (``sizing_from`` reads them), and the per-invocation log bytes."""

    task_vcpu: float = 0.25
    task_memory_gb: float = 0.5
    #: MQTT connections each task holds to IoT Core.
    pool_connections: int = 16
    lambda_memory_mb: float = 128.0
    #: Billed duration per frame handled, milliseconds.
    lambda_ms_per_frame: float = 10.0
    #: SQS messages per invocation (the event source mapping's batch size).
    sqs_batch_size: int = 10
    #: CloudWatch bytes per invocation beyond what the processes logged.
    log_bytes_per_invocation: float = 100.0
    #: How each figure was found.
    notes: tuple[str, ...] = ()


def _infra_constants(path: Path) -> dict[str, int]:
    """Module-level integer constants of ``path``, read without importing it
    (it imports Pulumi)."""
    constants: dict[str, int] = {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return constants
    for node in tree.body:
        target: ast.expr
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, int)
            and not isinstance(value.value, bool)
        ):
            constants[target.id] = value.value
    return constants


def sizing_from(
    lambda_result: Mapping[str, Any] | None,
    *,
    task_vcpu: float,
    task_memory_mib: float,
    pool_connections: int,
    processing: Path = PROCESSING,
) -> Sizing:
    """The sizing: the task from the report's ``Limits``; the function's memory
    and the SQS batch size from ``infra/components/processing.py``; the time
    per frame from the Lambda footprint (``bench/results/lambda.json``) when
    it was measured, else the assumption of ``Sizing``."""
    defaults = Sizing()
    constants = _infra_constants(processing)
    memory = constants.get("LAMBDA_MEMORY_MB")
    batch = constants.get("_BATCH_SIZE")
    notes = [
        f"Gateway task: {task_vcpu:g} vCPU, {task_memory_mib:g} MiB; {pool_connections} pool "
        "connections to IoT Core per task.",
        f"Lambda memory {memory} MB and SQS batch size {batch} (infra/components/processing.py)."
        if memory and batch
        else f"Lambda memory {defaults.lambda_memory_mb:g} MB and SQS batch size "
        f"{defaults.sqs_batch_size}: assumed (not found in infra/components/processing.py).",
    ]
    measured = (lambda_result or {}).get("ms_per_record_warm_vs_moto")
    if isinstance(measured, int | float) and not isinstance(measured, bool) and measured > 0:
        ms = float(measured)
        notes.append(
            f"Lambda duration: {ms:g} ms per frame, the warm time per record of the Lambda "
            "footprint (`bench.lambda_footprint`, against moto on loopback: the real IoT and "
            "DynamoDB calls take longer, so this may be low)."
        )
    else:
        ms = defaults.lambda_ms_per_frame
        notes.append(
            f"Lambda duration: {ms:g} ms per frame, assumed (no Lambda footprint result: "
            "`python -m bench.lambda_footprint`)."
        )
    notes.append(
        f"CloudWatch Logs: what the gateway and workers logged in the load window (the bench runs "
        f"them at WARNING; production logs at INFO, whose extra lines are off the normal path), "
        f"plus {defaults.log_bytes_per_invocation:g} bytes per invocation, assumed (the "
        "function's platform START/END/REPORT lines are off at system log level WARN)."
    )
    return Sizing(
        task_vcpu=task_vcpu,
        task_memory_gb=task_memory_mib / 1024,
        pool_connections=pool_connections,
        lambda_memory_mb=float(memory or defaults.lambda_memory_mb),
        lambda_ms_per_frame=ms,
        sqs_batch_size=batch or defaults.sqs_batch_size,
        notes=tuple(notes),
    )


@dataclass(frozen=True, slots=True)
class Line:
    service: str
    usd: float
    #: How the figure was made, for the report.
    basis: str


@dataclass(frozen=True, slots=True)
class Bill:
    chargers: int
    tasks: int
    lines: tuple[Line, ...]

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    @property
    def per_charger_month(self) -> float:
        return self.total / self.chargers if self.chargers else math.nan

    def usd(self, service: str) -> float:
        return sum(line.usd for line in self.lines if line.service == service)


def tiered(millions: float, tiers: tuple[tuple[float | None, float], ...]) -> float:
    """Dollars for ``millions`` of messages in a month over ``tiers`` (each
    tier's size in millions, None for the rest, and its price per million)."""
    left, usd = millions, 0.0
    for size, price in tiers:
        taken = left if size is None else min(left, size)
        usd += taken * price
        left -= taken
        if left <= 0:
            break
    return usd


def monthly_bill(
    usage: Usage, prices: Prices, *, chargers: int, tasks: int, sizing: Sizing
) -> Bill:
    """The monthly bill per service of ``chargers`` at the standard mix."""
    scale = chargers * prices.seconds_per_month  # charger-seconds in a month
    hours = prices.hours_per_month
    messages = 2 * usage.iot_message_units * scale
    triggers = usage.rule_triggers * scale
    sqs_messages = triggers  # one SQS action per rule
    batches = sqs_messages / sizing.sqs_batch_size
    sqs_requests = sqs_messages + 2 * batches
    frames = usage.frames * scale
    gb_seconds = frames * sizing.lambda_ms_per_frame / 1000 * sizing.lambda_memory_mb / 1024
    connection_minutes = tasks * sizing.pool_connections * hours * 60
    log_gb = (usage.log_bytes * scale + sizing.log_bytes_per_invocation * batches) / _GB
    task_hour = sizing.task_vcpu * prices.fargate_vcpu_hour + sizing.task_memory_gb * (
        prices.fargate_gb_hour
    )
    nlcus = chargers / prices.nlcu_active_connections
    m = _MILLION
    lines = (
        Line(FARGATE, tasks * task_hour * hours, f"{tasks:,} tasks {_X} ${task_hour:.5f}/h"),
        Line(
            NLB,
            prices.nlb_hour * hours + nlcus * prices.nlcu_hour * hours,
            f"1 NLB + {nlcus:,.2f} NLCU (active connections)",
        ),
        Line(
            IOT_CONNECTIVITY,
            connection_minutes / m * prices.connection_minute_per_million,
            f"{tasks * sizing.pool_connections:,} pool connections all month",
        ),
        Line(
            IOT_MESSAGING,
            tiered(messages / m, prices.iot_message_tiers),
            f"{messages / 1e9:,.2f} billion messages (5 KB units, in and out)",
        ),
        Line(
            IOT_RULES,
            triggers / m * (prices.iot_rule_per_million + prices.iot_action_per_million),
            f"{triggers / 1e9:,.2f} billion rules + actions",
        ),
        Line(
            IOT_SHADOW,
            usage.shadow_units * scale / m * prices.shadow_per_million,
            f"{usage.shadow_units * scale / 1e9:,.2f} billion 1 KB operations",
        ),
        Line(
            SQS,
            sqs_requests / m * prices.sqs_per_million,
            f"{sqs_requests / 1e9:,.2f} billion requests",
        ),
        Line(
            LAMBDA,
            batches / m * prices.lambda_request_per_million + gb_seconds * prices.lambda_gb_second,
            f"{batches / 1e6:,.0f} M invocations, {gb_seconds / 1e6:,.2f} M GB-s",
        ),
        Line(
            DYNAMODB,
            usage.dynamodb_write_units * scale / m * prices.dynamodb_write_per_million
            + usage.dynamodb_read_units * scale / m * prices.dynamodb_read_per_million
            + usage.dynamodb_stored_bytes * scale / _GB * prices.dynamodb_gb_month,
            f"{usage.dynamodb_write_units * scale / 1e9:,.2f} billion WRU, "
            f"{usage.dynamodb_read_units * scale / 1e9:,.2f} billion RRU, "
            f"+{usage.dynamodb_stored_bytes * scale / _GB:,.0f} GB",
        ),
        Line(LOGS, log_gb * prices.logs_gb, f"{log_gb:,.1f} GB"),
    )
    return Bill(chargers, tasks, lines)
