"""What the gateway needs to know, decided once by the deployable."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ocppj import SUBPROTOCOLS

from .callqueue import CallQueueConfig
from .keepalive import NLB_IDLE_TIMEOUT
from .ratelimit import FloodPolicy

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
    #: Several processes may listen on the same port (SO_REUSEPORT).
    reuse_port: bool = False

    #: OCPP security profile of this listener: 0 none (development only),
    #: 1 Basic auth, 2 TLS + Basic auth, 3 mutual TLS.
    security_profile: int = 0
    #: (certificate chain, private key) files; an RSA and an ECDSA pair may both be given.
    tls_certificates: tuple[tuple[Path, Path], ...] = ()
    #: CA that signs charge point certificates (profile 3).
    tls_client_ca: Path | None = None
    #: Profile 3: the certificate's O must be this operator name, if set.
    tls_organization: str | None = None

    #: Seconds a registry answer is cached, and an "unknown" answer.
    registry_ttl: float = 300.0
    registry_negative_ttl: float = 30.0
    #: Bytes waiting to be written to one charge point before it counts as
    #: too slow and is disconnected.
    max_write_buffer: int = 1024 * 1024

    #: Seconds of silence before the server pings (below the NLB's 350 s idle
    #: timeout), and seconds a ping may go unanswered before the connection
    #: counts as a zombie and is dropped.
    ping_interval: float = 60.0
    pong_timeout: float = 30.0
    #: Messages per second a charge point may send on average, the burst it
    #: may send at once, and how many refusals within a minute mean a flood.
    rate_limit: float = 10.0
    rate_burst: float = 50.0
    flood_strikes: int = 20
    #: Seconds a backend command waits for the charger's answer before the
    #: next one may go, and seconds a command may wait in line.
    call_timeout: float = 30.0
    queue_ttl: float = 10.0
    max_queued: int = 16
    #: Every connection is visited once per this many seconds (keepalive,
    #: command timeouts) by one shared sweep.
    sweep_period: float = 5.0

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
        self._check_security()
        self._check_timing()

    def _check_security(self) -> None:
        if self.security_profile not in (0, 1, 2, 3):
            raise ValueError(f"security_profile: {self.security_profile} is not 0, 1, 2 or 3")
        if self.security_profile >= 2 and not self.tls_certificates:
            raise ValueError(
                f"tls_certificates: security profile {self.security_profile} needs a certificate"
            )
        if self.security_profile == 1 and self.tls_certificates:
            raise ValueError(
                "security_profile: profile 1 is Basic auth without TLS; use 2 for TLS + Basic auth"
            )
        if self.security_profile == 3 and self.tls_client_ca is None:
            raise ValueError("tls_client_ca: security profile 3 needs the chargers' CA")
        if self.security_profile != 3 and self.tls_client_ca is not None:
            raise ValueError("tls_client_ca: client certificates are profile 3 only")

    def _check_timing(self) -> None:
        # Each error names the one field at fault: the deployable tells the
        # user which variable feeds it.
        for name in ("registry_ttl", "registry_negative_ttl"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: a cache lifetime cannot be negative")
        if not 0 < self.ping_interval < NLB_IDLE_TIMEOUT:
            raise ValueError(
                f"ping_interval: must be more than 0 and less than the NLB's "
                f"{NLB_IDLE_TIMEOUT:g} s idle timeout"
            )
        for name in ("pong_timeout", "sweep_period"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}: must be a positive number of seconds")
        # Their own checks at configuration time, their field names made ours.
        self._check_part(
            FloodPolicy, rate="rate_limit", burst="rate_burst", strikes="flood_strikes"
        )
        self._check_part(
            CallQueueConfig,
            call_timeout="call_timeout",
            queue_ttl="queue_ttl",
            max_queued="max_queued",
        )

    def _check_part(self, part: Callable[..., object], **ours: str) -> None:
        """Build ``part`` from our fields (its field -> ours); its ``field:
        problem`` errors name our field."""
        try:
            part(**{theirs: getattr(self, mine) for theirs, mine in ours.items()})
        except ValueError as exc:
            theirs, _, problem = str(exc).partition(": ")
            raise ValueError(f"{ours.get(theirs, theirs)}: {problem}") from None

    @property
    def tls(self) -> bool:
        return bool(self.tls_certificates)
