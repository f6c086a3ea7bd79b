"""Batches: many frames in one MQTT publish (the topic contract's batch half).

AWS IoT Core meters a publish in 5 KB units and allows a connection 100 of
them a second; one frame is usually 50 to 500 bytes. So when frames queue on
a gateway's pool connection they travel together, and the processor answers
one batch of them with one batch per route:

| direction | topic | payload |
|---|---|---|
| gateway -> backend | ``{prefix}/batch/in/{route}`` | ``{"frames": [[cp, kind, text], ...]}`` |
| backend -> gateway | ``{prefix}/batch/out/{route}`` | ``{"frames": [[cp, text], ...]}`` |

``cp`` is the charge point identity as it is (JSON holds any string; only a
topic level needs percent-encoding). ``kind`` is the charge point's OCPP
subprotocol for a frame it sent (``"ocpp1.6"``), or ``"presence"`` for a
presence message. ``text`` is the frame, or the presence document, as a JSON
*string*: carried byte for byte, never re-serialised, and nesting a frame as
deep as a charger may send cannot push the batch past a parser's depth limit.

Order: items are in the order the gateway received them, so one charge
point's frames keep their order within a batch, as across publishes of one
connection. A batch is the unit of delivery (one PUBACK, one SQS message);
what it holds is handled item by item, and one item that cannot be read is
logged and skipped without touching its neighbours. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .topics import _check_level, _check_prefix, _levels, _topic, downlink_topic

__all__ = [
    "BATCH_OVERHEAD",
    "DEFAULT_BATCH_BYTES",
    "MAX_BATCH_BYTES",
    "PRESENCE",
    "BatchItem",
    "decode_downlink_batch",
    "decode_uplink_batch",
    "downlink_batch_subscription",
    "downlink_batch_topic",
    "downlink_publishes",
    "encode_batch",
    "encode_downlink_item",
    "encode_uplink_item",
    "parse_uplink_batch",
    "uplink_batch_subscription",
    "uplink_batch_topic",
]

#: The largest batch payload (bytes): AWS IoT Core's payload limit, 128 KB.
MAX_BATCH_BYTES = 131_072
#: The default batch size (bytes): AWS IoT Core meters a message in 5 KB
#: (5,120-byte) units, so a batch this big, with its topic and the MQTT
#: header, is billed as one message.
DEFAULT_BATCH_BYTES = 5_000

#: The ``kind`` of a presence message in an uplink batch.
PRESENCE = "presence"

_HEAD = b'{"frames":['
_TAIL = b"]}"
#: Bytes a batch adds around its items (plus one comma between two items).
BATCH_OVERHEAD = len(_HEAD) + len(_TAIL)


def uplink_batch_topic(prefix: str, route: str) -> str:
    """Where the pool connection ``route`` publishes a batch of uplinks."""
    return _topic(_check_prefix(prefix), "batch", "in", _check_level("route", route))


def downlink_batch_topic(prefix: str, route: str) -> str:
    """Where the backend publishes a batch of frames for charge points on ``route``."""
    return _topic(_check_prefix(prefix), "batch", "out", _check_level("route", route))


def uplink_batch_subscription(prefix: str) -> str:
    """The filter of every uplink batch (the batch rule's ``FROM``, or a worker's)."""
    return _topic(_check_prefix(prefix), "batch", "in", "+")


def downlink_batch_subscription(prefix: str, route: str) -> str:
    """The second filter a pooled gateway connection subscribes to (no wildcard)."""
    return downlink_batch_topic(prefix, route)


def parse_uplink_batch(topic: str, prefix: str) -> str:
    """The route of an uplink batch topic; ValueError naming the problem otherwise."""
    _, _, direction, route = _levels(topic, prefix, "batch", 4)
    if direction != "in":
        raise ValueError(f"topic {topic!r} is not an uplink batch ('{prefix}/batch/in/...')")
    return _check_level("route", route)


def encode_uplink_item(charge_point_id: str, kind: str, payload: bytes) -> bytes:
    """One item of an uplink batch. ``payload`` is UTF-8 JSON text (a frame the
    gateway has parsed, or a presence document)."""
    return orjson.dumps([charge_point_id, kind, payload.decode("utf-8")])


def encode_downlink_item(charge_point_id: str, frame: bytes) -> bytes:
    """One item of a downlink batch."""
    return orjson.dumps([charge_point_id, frame.decode("utf-8")])


def encode_batch(items: Iterable[bytes]) -> bytes:
    """A batch of encoded items; its size is ``BATCH_OVERHEAD`` plus the items'
    and one comma between each two."""
    return _HEAD + b",".join(items) + _TAIL


def downlink_publishes(
    prefix: str, route: str, answers: Sequence[tuple[str, bytes]], limit: int
) -> list[tuple[str, bytes, int]]:
    """The publishes that carry ``answers`` (charge point, frame) to ``route``,
    in order, as (topic, payload, how many answers it carries): batches of at
    most ``limit`` bytes, and an answer that travels alone on its own
    downlink topic (every one alone if ``limit`` is 0)."""
    publishes: list[tuple[str, bytes, int]] = []
    parts: list[bytes] = []
    empty = BATCH_OVERHEAD - 1  # each item adds a comma but the first
    size = empty
    start = 0

    def close(stop: int) -> None:
        if stop - start == 1:
            charge_point_id, frame = answers[start]
            publishes.append((downlink_topic(prefix, route, charge_point_id), frame, 1))
        elif stop > start:
            batch = encode_batch(parts)
            publishes.append((downlink_batch_topic(prefix, route), batch, stop - start))

    for index, (charge_point_id, frame) in enumerate(answers):
        part = encode_downlink_item(charge_point_id, frame) if limit else b""
        if index > start and (not limit or size + 1 + len(part) > limit):
            close(index)
            parts, size, start = [], empty, index
        parts.append(part)
        size += 1 + len(part)
    close(len(answers))
    return publishes


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One item of a batch: ``kind`` is a subprotocol, ``PRESENCE``, or "" in a downlink batch."""

    charge_point_id: str
    kind: str
    payload: bytes


def decode_uplink_batch(payload: bytes | str | dict[str, Any]) -> tuple[list[BatchItem], list[str]]:
    """The items of an uplink batch, and why each unreadable item was skipped.

    ``payload`` is the publish's bytes or, from the IoT rule's SQS body, the
    object already parsed. ValueError if it is not a batch at all.
    """
    return _decode(payload, 3)


def decode_downlink_batch(payload: bytes | str) -> tuple[list[BatchItem], list[str]]:
    """The items of a downlink batch, and why each unreadable item was skipped."""
    return _decode(payload, 2)


def _decode(payload: bytes | str | dict[str, Any], width: int) -> tuple[list[BatchItem], list[str]]:
    if isinstance(payload, dict):
        body: Any = payload
    else:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"batch is not JSON: {exc}") from None
    frames = body.get("frames") if isinstance(body, dict) else None
    if not isinstance(frames, list):
        raise ValueError('batch is not an object with a "frames" array')
    items: list[BatchItem] = []
    skipped: list[str] = []
    for index, entry in enumerate(frames):
        if (
            not isinstance(entry, list)
            or len(entry) != width
            or not all(isinstance(part, str) for part in entry)
        ):
            skipped.append(f"item {index}: not an array of {width} strings")
            continue
        if not entry[0]:
            skipped.append(f"item {index}: charge point identity is empty")
            continue
        if width == 3:
            items.append(BatchItem(entry[0], entry[1], entry[2].encode("utf-8")))
        else:
            items.append(BatchItem(entry[0], "", entry[1].encode("utf-8")))
    return items, skipped
