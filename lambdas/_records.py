"""The SQS records of one invocation, read into the work they hold.

Three IoT rules feed the queue, and each record's body says which one wrote
it: ``message`` (a frame, from the uplink rule), ``presence`` (the presence
rule) or ``frames`` (a batch, from the batch rule; or an item that failed,
sent back by the processor itself). Each becomes a ``Record`` of ``Item``\\ s
in the order they were sent. Everything that can never succeed (a body not
of a rule's shape, a batch item of an unknown kind or identity, a malformed
presence) is logged here, by reason only, and left out: redelivering it
would fail forever. Nothing here does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ocppj import (
    PRESENCE,
    SUBPROTOCOLS,
    check_identity,
    decode_segment,
    decode_uplink_batch,
    downlink_batch_topic,
    downlink_topic,
)
from processor.presence import Presence, routable_presence

__all__ = ["Item", "Record", "read_record", "resend_body"]

# The Lambda's one logger: its level is the one OCPP_LOG_LEVEL sets.
log = logging.getLogger("lambdas.handlers")

#: How many times an item goes back to the queue as a record of its own
#: before its record fails as a whole, so that SQS's own redrive (and in
#: the end the dead-letter queue) takes over from an item that never succeeds.
MAX_RESENDS = 3
#: Longest ``kind`` quoted in a log line (it comes from a gateway).
_KIND_SHOWN = 32


@dataclass(frozen=True, slots=True)
class Item:
    """One frame or presence message of a record."""

    #: The index of its record in the event.
    record: int
    charge_point_id: str
    #: The charger's subprotocol, or ``PRESENCE``.
    kind: str
    #: The text the gateway sent, as it was (the frame, or the presence document).
    payload: bytes
    #: The presence message read from ``payload``; None for a frame.
    presence: Presence | None = None


@dataclass(slots=True)
class Record:
    """One SQS record: its items, and where its answers go."""

    index: int
    message_id: str
    #: The queue it came from (``arn:aws:sqs:region:account:name``).
    source_arn: str
    #: The gateway connection the frames came from ("" for a presence record).
    route: str
    #: A batch record: an item that fails goes back to the queue on its own,
    #: since failing the record would handle (and answer) its neighbours again.
    batch: bool
    items: list[Item] = field(default_factory=list)
    #: How many times the processor has sent these items back already.
    resends: int = 0

    @property
    def may_resend(self) -> bool:
        return self.batch and self.resends < MAX_RESENDS


def read_record(index: int, record: Mapping[str, Any], prefix: str) -> Record | None:
    """The work of one SQS record; None (logged) if it holds none that can succeed."""
    message_id = str(record.get("messageId", ""))
    source = str(record.get("eventSourceARN", ""))
    try:
        body = orjson.loads(record["body"])
    except (KeyError, TypeError, ValueError) as exc:
        _dropped(message_id, "not the IoT rule's shape", exc)
        return None
    if isinstance(body, dict) and "frames" in body:
        return _batch(Record(index, message_id, source, "", batch=True), body, prefix)
    if isinstance(body, dict) and "presence" in body:
        return _presence(Record(index, message_id, source, "", batch=False), body, prefix)
    try:
        charge_point_id, protocol, route, frame = _frame_of(body, prefix)
    except (KeyError, TypeError, ValueError) as exc:
        _dropped(message_id, "not the IoT rule's shape", exc)
        return None
    item = Item(index, charge_point_id, protocol, frame)
    return Record(index, message_id, source, route, batch=False, items=[item])


def resend_body(record: Record, items: Sequence[Item]) -> bytes:
    """A batch record of ``items`` alone, as the batch rule would have written it."""
    frames = [[i.charge_point_id, i.kind, i.payload.decode("utf-8")] for i in items]
    return orjson.dumps({"frames": frames, "route": record.route, "resends": record.resends + 1})


def _frame_of(body: Any, prefix: str) -> tuple[str, str, str, bytes]:
    """(charge point, protocol, route, frame) from an SQS body of the uplink rule."""
    charge_point_id = decode_segment(body["chargePointId"])
    protocol, route = body["protocol"], body["route"]
    if not isinstance(protocol, str) or not isinstance(route, str):
        raise TypeError("protocol and route must be strings")
    downlink_topic(prefix, route, charge_point_id)  # the answer must have somewhere to go
    # The rule re-serialises the frame; the processor parses it as JSON again.
    return charge_point_id, protocol, route, orjson.dumps(body["message"])


def _presence(record: Record, body: Mapping[str, Any], prefix: str) -> Record | None:
    charge_point_id = None
    try:
        charge_point_id = decode_segment(body["chargePointId"])
        # The rule re-serialises the payload; parse it as the worker does.
        payload = orjson.dumps(body["presence"])
        presence = routable_presence(payload, prefix, charge_point_id)
    except (KeyError, TypeError, ValueError) as exc:
        _dropped(record.message_id, "malformed presence", exc, chargePointId=charge_point_id)
        return None
    record.items.append(Item(record.index, charge_point_id, PRESENCE, payload, presence))
    return record


def _batch(record: Record, body: Mapping[str, Any], prefix: str) -> Record | None:
    try:
        route = body.get("route")
        if not isinstance(route, str):
            raise TypeError("route must be a string")
        downlink_batch_topic(prefix, route)
        resends = body.get("resends", 0)
        if not isinstance(resends, int) or isinstance(resends, bool) or resends < 0:
            raise TypeError("resends must be a whole number")
        entries, skipped = decode_uplink_batch(dict(body))
    except (TypeError, ValueError) as exc:
        _dropped(record.message_id, "not the batch rule's shape", exc)
        return None
    record.route, record.resends = route, resends
    for position, entry in enumerate(entries):
        try:
            check_identity(entry.charge_point_id)
            downlink_topic(prefix, route, entry.charge_point_id)
            presence = None
            if entry.kind == PRESENCE:
                presence = routable_presence(entry.payload, prefix, entry.charge_point_id)
            elif entry.kind not in SUBPROTOCOLS:
                raise ValueError(f"unknown kind {entry.kind[:_KIND_SHOWN]!r}")
        except ValueError as exc:
            # Counted among the items decoding kept; those it skipped say their own.
            skipped.append(f"decoded item {position}: {exc}")
            continue
        record.items.append(
            Item(record.index, entry.charge_point_id, entry.kind, entry.payload, presence)
        )
    if skipped:
        log.error(
            "batch items dropped",
            extra={
                "messageId": record.message_id,
                "route": route,
                "dropped": len(skipped),
                "reasons": skipped[:10],
            },
        )
    return record


def _dropped(message_id: str, why: str, exc: Exception, **facts: Any) -> None:
    """Log a record that can never succeed: SQS need not deliver it again."""
    log.error(
        "record dropped: %s",
        why,
        extra={"messageId": message_id, **facts, "reason": str(exc)},
    )
