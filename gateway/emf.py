"""The gateway's metrics as CloudWatch embedded metric format (EMF) lines.

A JSON line on standard output that CloudWatch Logs turns into metrics (ECS
with the awslogs driver): no AWS call, no dependency. Each report is one
document per dimension set, every metric with unit Count:

* no dimensions (``"Dimensions": [[]]``): ``ActiveConnections`` (connected
  now), and ``MessagesIn``, ``MessagesOut``, ``Handshakes``,
  ``HandshakeRejections`` (how many since the previous report);
* ``Protocol``: ``ActiveConnections`` per enabled subprotocol, 0 included,
  so that a protocol's graph has no gaps.

Pure: the caller reads the counters and the clock and writes the lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from .metrics import GatewayMetrics

__all__ = ["EmfMetrics", "Snapshot", "check_namespace"]

#: CloudWatch's rule for custom namespaces ("AWS/" is reserved for AWS).
_NAMESPACE = re.compile(r"[0-9A-Za-z._/#: -]{1,255}")


def check_namespace(namespace: str) -> None:
    """Raise ValueError ("namespace: problem") if CloudWatch would refuse it."""
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"namespace: {namespace!r} is not 1 to 255 of the characters "
            "A-Z a-z 0-9 . - _ / # : and space"
        )
    if namespace.startswith("AWS/"):
        raise ValueError(f"namespace: {namespace!r} starts with AWS/, which AWS reserves")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The gateway's numbers at one instant; counters count since start-up."""

    #: Milliseconds since the Unix epoch (EMF's ``Timestamp``).
    timestamp_ms: int
    #: Connected charge points by subprotocol (enabled ones may be missing).
    connections: Mapping[str, int]
    frames_in: int
    frames_out: int
    handshakes: int
    #: Handshakes refused, all reasons together.
    rejections: int

    @classmethod
    def of(
        cls, metrics: GatewayMetrics, connections: Mapping[str, int], timestamp_ms: int
    ) -> Snapshot:
        return cls(
            timestamp_ms=timestamp_ms,
            connections=connections,
            frames_in=metrics.frames_in,
            frames_out=metrics.frames_out,
            handshakes=metrics.handshakes,
            rejections=sum(metrics.rejections.values()),
        )


class EmfMetrics:
    """Turns snapshots into EMF lines, remembering the counters last reported
    so that each report carries what happened since the previous one."""

    def __init__(self, namespace: str, protocols: Iterable[str]) -> None:
        check_namespace(namespace)
        self.namespace = namespace
        self.protocols = tuple(protocols)
        self._reported = (0, 0, 0, 0)

    def report(self, snapshot: Snapshot) -> list[bytes]:
        """The lines of one report (without line ends); the next report's
        counts start from this one's."""
        counters = (
            snapshot.frames_in,
            snapshot.frames_out,
            snapshot.handshakes,
            snapshot.rejections,
        )
        messages_in, messages_out, handshakes, rejections = (
            now - before for now, before in zip(counters, self._reported, strict=True)
        )
        self._reported = counters
        by_protocol = dict.fromkeys(self.protocols, 0) | dict(snapshot.connections)
        at = snapshot.timestamp_ms
        lines = [
            self._document(
                at,
                {},
                {
                    "ActiveConnections": sum(by_protocol.values()),
                    "MessagesIn": messages_in,
                    "MessagesOut": messages_out,
                    "Handshakes": handshakes,
                    "HandshakeRejections": rejections,
                },
            )
        ]
        lines.extend(
            self._document(at, {"Protocol": protocol}, {"ActiveConnections": count})
            for protocol, count in by_protocol.items()
        )
        return lines

    def _document(
        self, timestamp_ms: int, dimensions: Mapping[str, str], values: Mapping[str, int]
    ) -> bytes:
        directive = {
            "Namespace": self.namespace,
            # One dimension set; an empty one ([[]]) is the metric without dimensions.
            "Dimensions": [list(dimensions)],
            "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
        }
        return orjson.dumps(
            {
                "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]},
                **dimensions,
                **values,
            }
        )
