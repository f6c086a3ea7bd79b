"""The gateway's port to the rest of the system: a bus that carries frames.

Uplink: the gateway publishes each frame a charge point sends, with its
identity and subprotocol. Downlink: the bus hands frames for a charge point
to the ``Deliver`` callback the gateway gave it at start, each described as
an ``ocppj.Downlink`` (kind and message id) by whoever knows what it is: the
processor that made it, or the bus that received it as bytes.

Backpressure: while ``saturated`` is true the gateway stops reading from the
charge points that send (their frames wait in the kernel and in the
chargers, not in our memory); the bus calls ``on_drained`` once it has room
again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ocppj import Downlink

__all__ = ["Bus", "BusFull", "Deliver", "Downlink"]

#: ``deliver(charge_point_id, downlink) -> delivered``: write a frame to a charge point.
Deliver = Callable[[str, Downlink], bool]


class BusFull(Exception):
    """The bus cannot take another frame now; the caller must not lose it silently."""


class Bus(Protocol):
    async def start(self, deliver: Deliver, on_drained: Callable[[], None]) -> None:
        """Begin carrying frames; downlink frames go to ``deliver``."""
        ...

    def publish(self, charge_point_id: str, subprotocol: str, frame: bytes) -> None:
        """Queue an uplink frame without waiting; raise ``BusFull`` if it cannot."""
        ...

    def announce(self, charge_point_id: str, subprotocol: str, connected: bool) -> None:
        """Tell the backend that a charge point connected (``connected=True``,
        with the subprotocol it speaks) or that its last connection is gone.

        A bus that routes downlinks (MQTT) assigns the charge point its route
        on connect and releases it on disconnect; the backend learns the route
        from this presence message. Never raises, never waits.
        """
        ...

    @property
    def saturated(self) -> bool:
        """True from the high-water mark until ``on_drained`` is called."""
        ...

    @property
    def healthy(self) -> bool:
        """False while the bus cannot carry frames at all (a broker outage)."""
        ...

    @property
    def pending(self) -> int:
        """Frames published and not yet taken by the other side."""
        ...

    async def close(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop."""
        ...
