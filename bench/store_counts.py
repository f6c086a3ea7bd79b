"""What the processor wrote, read off the SQLite state that stands in for AWS.

The pipeline's workers keep their state in one SQLite file
(``processor/adapters/_sqlite.py``); on AWS the same ports are the IoT
Device Shadow (``iot_shadow.py``) and DynamoDB (``dynamodb_transactions.py``,
``dynamodb_pending_calls.py``). A snapshot before and after the load window
says what changed, and the AWS adapters say what each change costs there:

* **shadow updates**: the sum of every shadow's ``version`` (+1 per update,
  as IoT's classic shadow), one UpdateThingShadow each;
* **shadow reads** (GetThingShadow) leave no trace in the state; they are
  counted from what does: one per transaction end (``_complete`` reads the
  active transaction), per applied 2.0.1 ``Updated`` event that carries a
  charging state, token or remote-start id (``_active_id``; a reading the
  shadow does not keep is never applied), per presence
  (``update_if`` reads, then writes), and per remote command sent (the route
  lookup) and answered (``lastCallResult``);
* **DynamoDB**, per new row of ``transaction_events``: a conditional
  PutItem, and an UpdateItem (``mark_applied``) when the row is marked
  applied, each ⌈item / 1 KB⌉ write units; a 2.0.1 ``Started`` event adds a
  Query (``_has_ended``, ⌈item / 4 KB⌉ strongly consistent read units); per
  new row of ``transaction_starts`` (a 1.6 id): a GetItem (1 read unit), the
  counter's UpdateItem (1 write unit) and a PutItem; per remote command a
  PutItem of the pending call and, once answered, its DeleteItem.

Item sizes follow DynamoDB's rule (attribute names and values in UTF-8
bytes; a number about one byte per two digits) on the items the DynamoDB
adapters would write for these rows; storage adds DynamoDB's 100 bytes of
overhead per item. bench/README.md has the same mapping as a table.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["StoreCounts", "StoreSnapshot", "count_changes", "snapshot"]

#: DynamoDB: a write unit per 1 KB, a strongly consistent read unit per 4 KB.
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
#: DynamoDB bills this much storage per item beyond its attributes.
ITEM_OVERHEAD_BYTES = 100
#: IoT Device Shadow operations are metered in 1 KB increments.
SHADOW_UNIT_BYTES = 1024
#: A shadow read returns IoT's ``metadata`` (a timestamp per leaf) beside the
#: state: about as big again as the document the SQLite store keeps.
SHADOW_READ_FACTOR = 2
#: ``recordedAt`` (ns, 19 digits) and the counter as DynamoDB numbers.
_NS_NUMBER_BYTES = 11
_SMALL_NUMBER_BYTES = 6


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """The state at one instant: enough to find what came after it."""

    shadow_versions: int
    shadows: int
    last_event: int
    last_start: int
    #: Mean IoT read units of one shadow (twice its document, in 1 KB units).
    shadow_read_units: float


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What the processor did to its state between two snapshots, as AWS
    would bill it (requests and units)."""

    shadow_updates: int = 0
    shadow_reads: int = 0
    #: 1 KB units of the updates (1 each: every update of the mix is smaller)
    #: and of the reads.
    shadow_units: float = 0.0
    dynamodb_writes: int = 0
    dynamodb_write_units: int = 0
    dynamodb_reads: int = 0
    dynamodb_read_units: int = 0
    dynamodb_stored_bytes: int = 0
    transaction_events: int = 0
    transaction_starts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _connect(database: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0)


def snapshot(database: Path) -> StoreSnapshot:
    """Read ``database`` (the workers' SQLite file) without writing to it."""
    with contextlib.closing(_connect(database)) as db:
        versions, shadows, units = db.execute(
            "SELECT COALESCE(SUM(json_extract(document, '$.version')), 0), COUNT(*),"
            f" COALESCE(SUM(({SHADOW_READ_FACTOR} * LENGTH(CAST(document AS BLOB))"
            f" + {SHADOW_UNIT_BYTES - 1}) / {SHADOW_UNIT_BYTES}), 0) FROM shadows"
        ).fetchone()
        (last_event,) = db.execute(
            "SELECT COALESCE(MAX(sequence), 0) FROM transaction_events"
        ).fetchone()
        (last_start,) = db.execute(
            "SELECT COALESCE(MAX(transaction_id), 0) FROM transaction_starts"
        ).fetchone()
    mean_units = units / shadows if shadows else 1.0
    return StoreSnapshot(int(versions), int(shadows), int(last_event), int(last_start), mean_units)


def count_changes(
    database: Path,
    before: StoreSnapshot,
    after: StoreSnapshot,
    *,
    commands_sent: int = 0,
    commands_answered: int = 0,
    presence: int = 0,
) -> StoreCounts:
    """The AWS operations behind what changed in ``database`` from ``before``
    to ``after`` (rows added up to ``after``'s last ids), plus the remote
    commands and presence messages of the window, which the state does not show."""
    with contextlib.closing(_connect(database)) as db:
        events = db.execute(
            "SELECT charge_point_id, transaction_id, event_key, event_type, timestamp, data,"
            " applied FROM transaction_events WHERE sequence > ? AND sequence <= ?",
            (before.last_event, after.last_event),
        ).fetchall()
        starts = db.execute(
            "SELECT charge_point_id, start_key FROM transaction_starts"
            " WHERE transaction_id > ? AND transaction_id <= ?",
            (before.last_start, after.last_start),
        ).fetchall()
    return tally(
        events,
        starts,
        shadow_updates=after.shadow_versions - before.shadow_versions,
        shadow_read_units=after.shadow_read_units,
        commands_sent=commands_sent,
        commands_answered=commands_answered,
        presence=presence,
    )


def tally(
    events: Sequence[Sequence[Any]],
    starts: Sequence[Sequence[Any]],
    *,
    shadow_updates: int,
    shadow_read_units: float,
    commands_sent: int = 0,
    commands_answered: int = 0,
    presence: int = 0,
) -> StoreCounts:
    """``count_changes`` on rows already read: ``events`` as (charge point,
    transaction, event key, event type, timestamp, data JSON, applied),
    ``starts`` as (charge point, start key)."""
    writes = write_units = reads = read_units = stored = 0
    shadow_reads = commands_sent + commands_answered + presence
    for cp, transaction, key, kind, timestamp, data, applied in events:
        size = _event_item_bytes(cp, transaction, key, kind, timestamp=timestamp, data=data)
        units = _units(size, WRITE_UNIT_BYTES)
        writes, write_units, stored = writes + 1, write_units + units, stored + size
        if applied:
            writes, write_units = writes + 1, write_units + units
        version_201 = key.startswith("seq:")
        # A reading the shadow does not keep is never marked applied, and reads nothing.
        reads_active = version_201 and kind == "Updated" and applied and _carries_changes(data)
        if kind == "Ended" or reads_active:
            shadow_reads += 1
        elif version_201 and kind == "Started":
            reads, read_units = reads + 1, read_units + _units(size, READ_UNIT_BYTES)
    for cp, start_key in starts:
        size = _start_item_bytes(cp, start_key)
        reads, read_units = reads + 1, read_units + 1
        writes, write_units = writes + 2, write_units + 1 + _units(size, WRITE_UNIT_BYTES)
        stored += size
    # A pending call is small (under 1 KB) and deleted when answered.
    writes += commands_sent + commands_answered
    write_units += commands_sent + commands_answered
    return StoreCounts(
        shadow_updates=shadow_updates,
        shadow_reads=shadow_reads,
        shadow_units=shadow_updates + shadow_reads * shadow_read_units,
        dynamodb_writes=writes,
        dynamodb_write_units=write_units,
        dynamodb_reads=reads,
        dynamodb_read_units=read_units,
        dynamodb_stored_bytes=stored + ITEM_OVERHEAD_BYTES * (len(events) + len(starts)),
        transaction_events=len(events),
        transaction_starts=len(starts),
    )


def _units(size: int, unit: int) -> int:
    return max(1, -(-size // unit))


def _carries_changes(data: str) -> bool:
    """Whether a 2.0.1 ``Updated`` event makes the processor read the active
    transaction (``processor/handlers/transactions.py``, ``_apply_event``)."""
    try:
        request = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    info = request.get("transactionInfo") or {}
    token = (request.get("idToken") or {}).get("idToken")
    return any(v is not None for v in (info.get("chargingState"), token, info.get("remoteStartId")))


def _attributes_bytes(attributes: Mapping[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())


def _event_item_bytes(
    cp: str, transaction: str, key: str, kind: str, *, timestamp: str, data: str
) -> int:
    """The event item of ``DynamoDbTransactions.append``."""
    strings = {
        "transactionKey": f"tx:{cp}:{transaction}",
        "eventKey": key,
        "chargePointId": cp,
        "transactionId": transaction,
        "eventType": kind,
        "timestamp": timestamp,
        "data": data,
    }
    return _attributes_bytes(strings) + len("recordedAt") + _NS_NUMBER_BYTES + len("applied") + 1


def _start_item_bytes(cp: str, start_key: str) -> int:
    """The start mapping of ``DynamoDbTransactions.allocate_id``."""
    strings = {"transactionKey": f"start:{cp}", "eventKey": start_key}
    return _attributes_bytes(strings) + len("transactionId") + _SMALL_NUMBER_BYTES
