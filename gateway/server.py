"""The gateway server: admits charge points, relays their frames to the bus.

Lifecycle: ``start()`` listens; ``shutdown()`` stops accepting and closes
every charge point with 1001 (going away) so it reconnects elsewhere. The
bus belongs to whoever built it; the gateway publishes to it and receives
downlink frames through ``deliver``.

This object only composes and runs the parts, one module per concern:

* ``admission``: the upgrade request, decided before picows owns the socket;
* ``connection_table``: one live connection per charge point, newest wins;
* ``relay``: what each connection reports (connect, frames, disconnect),
  and the periodic sweep over all of them;
* ``backpressure``: who stops being read while the bus is full;
* ``downlink``: backend frames to chargers, one outstanding CALL each.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from picows import WSCloseCode

from ocppj import Downlink

from .admission import Admission, AdmissionProtocol, Find
from .backpressure import Backpressure
from .bus import Bus
from .config import GatewayConfig
from .connection import ChargePointConnection
from .connection_table import ConnectionTable
from .metrics import GatewayMetrics
from .relay import Relay

__all__ = ["Find", "GatewayServer"]

log = logging.getLogger(__name__)


class GatewayServer:
    """One listener, its connections, and the bus they relay to."""

    def __init__(
        self,
        config: GatewayConfig,
        find: Find,
        bus: Bus,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self._bus = bus
        self._ssl = ssl_context
        self._table: ConnectionTable[ChargePointConnection] = ConnectionTable()
        self._backpressure = Backpressure(self._table, bus)
        self._relay = Relay(config, bus, self._table, self._backpressure, self.metrics)
        self._admission = Admission(config, find, self.metrics, self._relay, self)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("GatewayServer.port before start()")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._table)

    @property
    def registry_reads(self) -> int:
        return self._admission.registry_reads

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._relay.start()
        admission = self._admission
        self._server = await loop.create_server(
            lambda: AdmissionProtocol(admission),
            self.config.host,
            self.config.port,
            ssl=self._ssl,
            # A whole fleet reconnects at once after a restart; asyncio's
            # default accept backlog of 100 drops most of such a burst.
            backlog=self.config.accept_backlog,
            reuse_port=self.config.reuse_port or None,
        )
        log.info(
            "gateway listening",
            extra={
                "host": self.config.host,
                "port": self.port,
                "protocols": self.config.protocols,
                "securityProfile": self.config.security_profile,
                "tls": self._ssl is not None,
            },
        )

    def stop_accepting(self) -> None:
        """Close the listening socket and stop reading from charge points, so
        that what is in flight can drain while nothing new comes in."""
        if self._server is not None:
            self._server.close()
        self._admission.cancel_pending()
        for connection in self._table:
            connection.pause_reading()

    async def shutdown(self, code: WSCloseCode = WSCloseCode.GOING_AWAY) -> None:
        """Stop accepting, then close every charge point with ``code`` (1001:
        it reconnects, through the load balancer, to another task)."""
        self.stop_accepting()
        await self._relay.stop()
        for connection in self._table:
            connection.close(code, "server shutting down")
        if self._server is not None:
            await self._server.wait_closed()
        log.info("gateway stopped", extra={"closeCode": code.value})

    # -- what the bus calls -------------------------------------------------

    def deliver(self, charge_point_id: str, downlink: Downlink) -> bool:
        """Write a downlink to a connected charge point; False if it is not connected.

        A backend CALL waits while the charger's previous one is unanswered;
        answers to the charger's own CALLs go out at once.
        """
        return self._relay.downlinks.deliver(charge_point_id, downlink)

    def bus_drained(self) -> None:
        """The bus has room again: read from the paused charge points."""
        self._backpressure.drained()

    # -- what the backend and the probes read -------------------------------

    def subprotocol_of(self, charge_point_id: str) -> str | None:
        """The subprotocol of a connected charge point, or None."""
        return self._table.subprotocol_of(charge_point_id)

    def connections_by_protocol(self) -> dict[str, int]:
        """Connected charge points per enabled subprotocol (0 for an unused one)."""
        return self._table.by_protocol(self.config.protocols)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the bus can carry frames; the body of ``GET /health``."""
        healthy = self._bus.healthy
        return healthy, {
            "status": "ok" if healthy else "unhealthy",
            "connections": len(self._table),
            "bus": "up" if healthy else "down",
        }

    def render_metrics(self) -> bytes:
        """The body of ``GET /metrics``."""
        return self.metrics.render(
            connections=self.connections_by_protocol(),
            bus_up=self._bus.healthy,
            bus_pending=self._bus.pending,
            paused_readers=self._backpressure.paused,
        )
