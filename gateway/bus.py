"""The gateway's port to the rest of the system: a bus that carries frames.

Uplink: the gateway publishes each frame a charge point sends, with its
identity and subprotocol. Downlink: the bus hands frames for a charge point
to the ``Deliver`` callback the gateway gave it at start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Bus", "BusFull", "Deliver"]

#: ``deliver(charge_point_id, frame) -> delivered``: write a frame to a charge point.
Deliver = Callable[[str, bytes], bool]


class BusFull(Exception):
    """The bus cannot take another frame now; the caller must not lose it silently."""


class Bus(Protocol):
    async def start(self, deliver: Deliver) -> None:
        """Begin carrying frames; downlink frames go to ``deliver``."""
        ...

    def publish(self, charge_point_id: str, subprotocol: str, frame: bytes) -> None:
        """Queue an uplink frame without waiting; raise ``BusFull`` if it cannot."""
        ...

    async def close(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop."""
        ...
