"""What the gateway needs to know, decided once by the deployable."""

from __future__ import annotations

from dataclasses import dataclass

from ocppj import SUBPROTOCOLS

__all__ = ["GatewayConfig"]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    #: Enabled subprotocols, in the server's order of preference for docs;
    #: the choice itself follows the charge point's order of offers.
    protocols: tuple[str, ...] = ("ocpp1.6", "ocpp2.0", "ocpp2.0.1")
    #: Served to a charge point that offers no subprotocol at all; None
    #: refuses such a charge point like one whose offers are all unknown.
    default_protocol: str | None = None
    #: Largest OCPP-J message accepted, in bytes (AWS IoT Core's payload cap).
    max_message_size: int = 128 * 1024
    #: Seconds a client has to send its upgrade request.
    handshake_timeout: float = 5.0
    #: Connections the kernel queues before accept (capped by somaxconn).
    accept_backlog: int = 4096

    def __post_init__(self) -> None:
        if not self.protocols:
            raise ValueError("protocols: at least one subprotocol must be enabled")
        unknown = [p for p in self.protocols if p not in SUBPROTOCOLS]
        if unknown:
            raise ValueError(
                f"protocols: unknown subprotocol {', '.join(unknown)} "
                f"(known: {', '.join(SUBPROTOCOLS)})"
            )
        if self.default_protocol is not None and self.default_protocol not in self.protocols:
            raise ValueError(
                f"default_protocol: {self.default_protocol} is not one of the enabled protocols"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port number")
        if self.max_message_size < 1024:
            raise ValueError("max_message_size: must be at least 1024 bytes")
