"""The gateway: terminates charge point WebSockets and relays frames to a bus.

It decides the handshake (identity, registration, subprotocol), checks
OCPP-J framing and does no OCPP business logic.
"""

from __future__ import annotations

from .bus import Bus, BusFull, Deliver, Downlink
from .config import GatewayConfig
from .inprocess_bus import InProcessBus
from .server import GatewayServer

__all__ = [
    "Bus",
    "BusFull",
    "Deliver",
    "Downlink",
    "GatewayConfig",
    "GatewayServer",
    "InProcessBus",
]
