"""Counting what crosses the broker: an MQTT observer of every topic.

The pipeline scenario's bill (``bench.cost``) needs the publishes the system
makes, not the CALLs the fleet sends: a batch carries many frames in one
publish, and AWS IoT Core meters publishes (in 5 KB units), not frames. So a
plain subscriber, not in the workers' shared-subscription group, takes a copy
of everything under ``{prefix}/#`` and counts it by topic class:

| class | topic | frames it carries |
|---|---|---|
| ``uplink`` | ``{prefix}/in/{cp}/{protocol}/{route}`` | 1 |
| ``uplink_batch`` | ``{prefix}/batch/in/{route}`` | its items (presence items apart) |
| ``presence`` | ``{prefix}/presence/{cp}`` | 1 presence |
| ``downlink`` | ``{prefix}/out/{route}/{cp}`` | 1 |
| ``downlink_batch`` | ``{prefix}/batch/out/{route}`` | its items |
| ``other`` | anything else under the prefix | 0 |

It subscribes at QoS 0 and asks for no retained messages (presence is
retained), so it sees each publish once, as it happens. The broker delivers
one more copy of every publish for it: the broker's CPU per message rises a
little (bench/README.md says so beside the pipeline's figures).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields, replace

import orjson

from mqttio import BrokerAddress, Session, Subscription
from ocppj.batch import PRESENCE

__all__ = [
    "CLASSES",
    "IOT_MESSAGE_BYTES",
    "ClassCounts",
    "TopicCounts",
    "classify",
    "iot_units",
    "observe",
]

#: AWS IoT Core meters a message in 5 KB increments.
IOT_MESSAGE_BYTES = 5 * 1024
CLASSES = ("uplink", "uplink_batch", "presence", "downlink", "downlink_batch", "other")
#: Seconds to connect and have the subscription granted.
START_TIMEOUT = 10.0


def iot_units(payload_bytes: int) -> int:
    """The messages IoT Core bills for one publish of ``payload_bytes``."""
    return max(1, -(-payload_bytes // IOT_MESSAGE_BYTES))


def classify(topic: str, payload: bytes, prefix: str) -> tuple[str, int, int]:
    """(class, frames, presence items) of one publish (see the module's table)."""
    levels = topic.split("/")
    if len(levels) < 2 or levels[0] != prefix:
        return "other", 0, 0
    kind, rest = levels[1], levels[2:]
    if kind == "in" and len(rest) == 3:
        return "uplink", 1, 0
    if kind == "out" and len(rest) == 2:
        return "downlink", 1, 0
    if kind == "presence" and len(rest) == 1:
        return "presence", 0, 1
    if kind == "batch" and len(rest) == 2 and rest[0] in ("in", "out"):
        try:
            items = orjson.loads(payload).get("frames")
        except (orjson.JSONDecodeError, AttributeError):
            items = None
        if not isinstance(items, list):
            return "other", 0, 0
        if rest[0] == "out":
            return "downlink_batch", len(items), 0
        presence = sum(1 for item in items if isinstance(item, list) and item[1:2] == [PRESENCE])
        return "uplink_batch", len(items) - presence, presence
    return "other", 0, 0


@dataclass(slots=True)
class ClassCounts:
    """What one topic class carried: publishes, payload bytes, IoT Core's
    5 KB message units, frames and presence items."""

    publishes: int = 0
    payload_bytes: int = 0
    iot_units: int = 0
    frames: int = 0
    presence: int = 0

    def minus(self, earlier: ClassCounts) -> ClassCounts:
        return ClassCounts(
            *(getattr(self, f.name) - getattr(earlier, f.name) for f in fields(ClassCounts))
        )


@dataclass(slots=True)
class TopicCounts:
    """Counts by class (``CLASSES``) since the observer subscribed."""

    by_class: dict[str, ClassCounts] = field(
        default_factory=lambda: {name: ClassCounts() for name in CLASSES}
    )

    def add(self, topic: str, payload: bytes, prefix: str) -> None:
        name, frames, presence = classify(topic, payload, prefix)
        counts = self.by_class[name]
        counts.publishes += 1
        counts.payload_bytes += len(payload)
        counts.iot_units += iot_units(len(payload))
        counts.frames += frames
        counts.presence += presence

    def copy(self) -> TopicCounts:
        return TopicCounts({name: replace(c) for name, c in self.by_class.items()})

    def minus(self, earlier: TopicCounts) -> TopicCounts:
        """What was counted between ``earlier`` (a copy) and now."""
        return TopicCounts(
            {name: c.minus(earlier.by_class[name]) for name, c in self.by_class.items()}
        )

    def total(self, *names: str) -> ClassCounts:
        """The sum of the classes ``names`` (every class if none)."""
        result = ClassCounts()
        for name in names or CLASSES:
            result = ClassCounts(
                *(
                    getattr(result, f.name) + getattr(self.by_class[name], f.name)
                    for f in fields(ClassCounts)
                )
            )
        return result

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            name: {f.name: getattr(c, f.name) for f in fields(ClassCounts)}
            for name, c in self.by_class.items()
        }


@contextlib.asynccontextmanager
async def observe(host: str, port: int, prefix: str) -> AsyncIterator[TopicCounts]:
    """Counts of every publish under ``{prefix}/#`` on the broker at
    ``host:port``, kept up to date until the block exits."""
    counts = TopicCounts()

    def on_message(topic: str | bytes, payload: bytes, qos: int) -> int:
        text = topic if isinstance(topic, str) else topic.decode("utf-8", "replace")
        counts.add(text, payload, prefix)
        return 0

    session = Session(f"bench-observer-{os.getpid()}", on_message=on_message)
    await session.start(
        BrokerAddress(host, port),
        subscriptions=[Subscription(f"{prefix}/#", qos=0, retained=False)],
        timeout=START_TIMEOUT,
    )
    try:
        yield counts
    finally:
        await session.close()
