"""Counters for ``GET /metrics``, in the Prometheus text format.

Plain integer attributes, bumped on the hot path with one ``+= 1``: a metrics
library's locks and label look-ups would cost more than relaying a frame.
Rendering happens only when scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    __slots__ = ("errors", "frames_in", "frames_out", "handshakes", "rejections")

    def __init__(self) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.handshakes = 0
        #: Handshakes refused, by reason.
        self.rejections: Counter[str] = Counter()
        #: Things that went wrong after the handshake, by kind.
        self.errors: Counter[str] = Counter()

    def render(
        self,
        *,
        connections: Mapping[str, int],
        bus_up: bool,
        bus_pending: int,
        paused_readers: int,
    ) -> bytes:
        lines: list[str] = []
        _family(
            lines,
            "ocppgw_connections",
            "gauge",
            "Charge points connected, by subprotocol.",
            ((f'protocol="{_escape(p)}"', n) for p, n in sorted(connections.items())),
        )
        _family(
            lines,
            "ocppgw_handshakes_total",
            "counter",
            "Connections upgraded.",
            [("", self.handshakes)],
        )
        _family(
            lines,
            "ocppgw_handshake_rejections_total",
            "counter",
            "Connections refused before or at the upgrade, by reason.",
            ((f'reason="{_escape(r)}"', n) for r, n in sorted(self.rejections.items())),
        )
        _family(
            lines,
            "ocppgw_frames_received_total",
            "counter",
            "Messages from charge points.",
            [("", self.frames_in)],
        )
        _family(
            lines,
            "ocppgw_frames_sent_total",
            "counter",
            "Messages to charge points.",
            [("", self.frames_out)],
        )
        _family(
            lines,
            "ocppgw_errors_total",
            "counter",
            "Errors after the handshake, by kind.",
            ((f'kind="{_escape(k)}"', n) for k, n in sorted(self.errors.items())),
        )
        _family(lines, "ocppgw_bus_up", "gauge", "1 if the bus takes frames.", [("", int(bus_up))])
        _family(
            lines,
            "ocppgw_bus_pending_frames",
            "gauge",
            "Frames waiting on the bus.",
            [("", bus_pending)],
        )
        _family(
            lines,
            "ocppgw_paused_readers",
            "gauge",
            "Charge points not read from because the bus is full or they flood.",
            [("", paused_readers)],
        )
        return ("\n".join(lines) + "\n").encode()


def _family(
    lines: list[str], name: str, kind: str, help_text: str, samples: Iterable[tuple[str, int]]
) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
