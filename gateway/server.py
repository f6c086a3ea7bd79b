"""The gateway server: admits charge points, relays their frames to the bus.

Lifecycle: ``start()`` listens; ``shutdown()`` stops accepting and closes
every charge point with 1001 (going away) so it reconnects elsewhere. The
bus belongs to whoever built it; the gateway publishes to it and receives
downlink frames through ``deliver``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import orjson
from picows import WSCloseCode, WSUpgradeResponse, WSUpgradeResponseWithListener

from ocppj import (
    Call,
    GenericError,
    InvalidIdentity,
    MalformedFrame,
    encode_error,
    identity_from_path,
    parse,
)

from .admission import AdmissionProtocol, Request
from .bus import Bus, BusFull
from .config import GatewayConfig
from .connection import ChargePointConnection, RefusedConnection
from .handshake import choose_subprotocol, offered_subprotocols
from .lookup_cache import MISSING, LookupCache
from .metrics import GatewayMetrics
from .security import Credentials, check_credentials

__all__ = ["GatewayServer"]

log = logging.getLogger(__name__)

#: Bytes of the first read buffer of each connection (picows allocates at
#: least 2048); OCPP frames are small and the buffer grows on demand.
READ_BUFFER_INIT_SIZE = 2048
_JSON = {"Content-Type": "application/json"}
_PROMETHEUS = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}

Decision = WSUpgradeResponseWithListener
#: ``find(charge_point_id)``: the registry's record of a charge point, or None.
Find = Callable[[str], Awaitable[Credentials | None]]


class GatewayServer:
    def __init__(
        self,
        config: GatewayConfig,
        find: Find,
        bus: Bus,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self._directory: LookupCache[Credentials] = LookupCache(
            find, ttl=config.registry_ttl, negative_ttl=config.registry_negative_ttl
        )
        self._bus = bus
        self._ssl = ssl_context
        self._connections: dict[str, ChargePointConnection] = {}
        self._paused: set[ChargePointConnection] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.metrics = GatewayMetrics()
        self.read_buffer_size = READ_BUFFER_INIT_SIZE

    @property
    def port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def registry_reads(self) -> int:
        return self._directory.reads

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AdmissionProtocol(self),
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

    async def shutdown(self, code: WSCloseCode = WSCloseCode.GOING_AWAY) -> None:
        """Stop accepting, then close every charge point with ``code``."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self._connections.values()):
            connection.close(code, "server shutting down")
        if self._server is not None:
            await self._server.wait_closed()
        log.info("gateway stopped")

    # -- admission ------------------------------------------------------------

    def admit(
        self, request: Request, transport: asyncio.Transport, finish: Callable[[Decision], None]
    ) -> None:
        """Decide on an upgrade request: at once when the registry cache knows
        the identity, otherwise after one (shared) registry read."""
        if not request.is_upgrade and request.path in (b"/health", b"/metrics"):
            finish(self._probe(request.path))
            return
        try:
            charge_point_id = identity_from_path(request.path)
        except InvalidIdentity as exc:
            finish(self._refuse(HTTPStatus.NOT_FOUND, f"not a charge point identity: {exc}"))
            return
        known = self._directory.peek(charge_point_id)
        if known is not MISSING:
            finish(self._decide(request, charge_point_id, known, transport))  # type: ignore[arg-type]
            return
        task = asyncio.get_running_loop().create_task(
            self._admit_later(request, charge_point_id, transport, finish)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _admit_later(
        self,
        request: Request,
        charge_point_id: str,
        transport: asyncio.Transport,
        finish: Callable[[Decision], None],
    ) -> None:
        try:
            record = await self._directory.get(charge_point_id)
        except Exception:
            log.exception("registry lookup failed", extra={"chargePointId": charge_point_id})
            finish(self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "registry unavailable, retry"))
            return
        finish(self._decide(request, charge_point_id, record, transport))

    def _decide(
        self,
        request: Request,
        charge_point_id: str,
        record: Credentials | None,
        transport: asyncio.Transport,
    ) -> Decision:
        if record is None:
            return self._refuse(HTTPStatus.NOT_FOUND, "unknown charge point", charge_point_id)
        problem = check_credentials(self.config, charge_point_id, record, request, transport)
        if problem is not None:
            headers = {"WWW-Authenticate": 'Basic realm="OCPP", charset="UTF-8"'}
            return self._refuse(HTTPStatus.UNAUTHORIZED, problem, charge_point_id, headers)

        offers = offered_subprotocols(request.headers.getall("Sec-WebSocket-Protocol", ()))
        protocol = choose_subprotocol(offers, self.config.protocols, self.config.default_protocol)
        if protocol is None:
            self.metrics.rejections["no acceptable subprotocol"] += 1
            log.info(
                "handshake refused: no acceptable subprotocol",
                extra={"chargePointId": charge_point_id, "offers": offers},
            )
            speaks = ",".join(self.config.protocols)
            reason = f"no supported OCPP version offered; this server speaks {speaks}"
            return Decision(WSUpgradeResponse.create_101_response(), RefusedConnection(reason))
        headers = {"Sec-WebSocket-Protocol": protocol} if offers else {}
        return Decision(
            WSUpgradeResponse.create_101_response(headers),
            ChargePointConnection(self, charge_point_id, protocol),
        )

    def _refuse(
        self,
        status: HTTPStatus,
        reason: str,
        charge_point_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Decision:
        self.metrics.rejections[reason] += 1
        log.info(
            "handshake refused",
            extra={"chargePointId": charge_point_id, "status": status.value, "reason": reason},
        )
        body = orjson.dumps({"error": reason})
        response = WSUpgradeResponse.create_error_response(
            status, body, {**_JSON, **(headers or {})}
        )
        return Decision(response, None)

    def count_rejection(self, reason: str) -> None:
        self.metrics.rejections[reason] += 1

    def _probe(self, path: bytes) -> Decision:
        if path == b"/metrics":
            body = self.render_metrics()
            return Decision(WSUpgradeResponse.create_ok_response(body, _PROMETHEUS), None)
        healthy = self._bus.healthy
        body = orjson.dumps(
            {
                "status": "ok" if healthy else "unhealthy",
                "connections": len(self._connections),
                "bus": "up" if healthy else "down",
            }
        )
        if healthy:
            return Decision(WSUpgradeResponse.create_ok_response(body, _JSON), None)
        error = WSUpgradeResponse.create_error_response(HTTPStatus.SERVICE_UNAVAILABLE, body, _JSON)
        return Decision(error, None)

    def render_metrics(self) -> bytes:
        by_protocol = Counter(c.subprotocol for c in self._connections.values())
        return self.metrics.render(
            connections={p: by_protocol.get(p, 0) for p in self.config.protocols},
            bus_up=self._bus.healthy,
            bus_pending=self._bus.pending,
            paused_readers=len(self._paused),
        )

    # -- connections ----------------------------------------------------------

    def connected(self, connection: ChargePointConnection) -> None:
        self.metrics.handshakes += 1
        previous = self._connections.get(connection.charge_point_id)
        self._connections[connection.charge_point_id] = connection
        if previous is not None:
            previous.close(WSCloseCode.POLICY_VIOLATION, "replaced by a newer connection")
        log.info(
            "charge point connected",
            extra={
                "chargePointId": connection.charge_point_id,
                "subprotocol": connection.subprotocol,
                "replaced": previous is not None,
            },
        )

    def disconnected(self, connection: ChargePointConnection) -> None:
        self._paused.discard(connection)
        # A replaced connection must not remove its successor.
        if self._connections.get(connection.charge_point_id) is connection:
            del self._connections[connection.charge_point_id]
        log.info("charge point disconnected", extra={"chargePointId": connection.charge_point_id})

    # -- frames ---------------------------------------------------------------

    def uplink(self, connection: ChargePointConnection, frame: bytes) -> None:
        """A whole message from a charge point: check its framing, then publish it."""
        self.metrics.frames_in += 1
        try:
            message = parse(frame)
        except MalformedFrame as exc:
            self.metrics.errors["malformed frame"] += 1
            log.info(
                "malformed frame",
                extra={"chargePointId": connection.charge_point_id, "error": exc.error.code},
            )
            if exc.answer:
                self._send(connection, encode_error(exc.error, exc.message_id, connection.version))
            return
        bus = self._bus
        try:
            bus.publish(connection.charge_point_id, connection.subprotocol, frame)
        except BusFull:
            self.metrics.errors["bus full"] += 1
            log.warning(
                "bus full: frame refused", extra={"chargePointId": connection.charge_point_id}
            )
            if isinstance(message, Call):
                busy = GenericError("the backend is busy; retry later")
                self._send(connection, encode_error(busy, message.message_id, connection.version))
        if bus.saturated and connection not in self._paused:
            # Stop reading from whoever sends while the bus is full: their
            # frames wait in the kernel, not in our memory.
            connection.pause_reading()
            self._paused.add(connection)

    def bus_drained(self) -> None:
        """The bus has room again: read from the paused charge points."""
        paused, self._paused = self._paused, set()
        for connection in paused:
            connection.resume_reading()

    def subprotocol_of(self, charge_point_id: str) -> str | None:
        """The subprotocol of a connected charge point, or None."""
        connection = self._connections.get(charge_point_id)
        return None if connection is None else connection.subprotocol

    def deliver(self, charge_point_id: str, frame: bytes) -> bool:
        """Write a downlink frame to a connected charge point; False if it is not connected."""
        connection = self._connections.get(charge_point_id)
        if connection is None:
            return False
        self._send(connection, frame)
        return True

    def _send(self, connection: ChargePointConnection, frame: bytes) -> None:
        self.metrics.frames_out += 1
        if not connection.send(frame, self.config.max_write_buffer):
            self.metrics.errors["slow reader"] += 1
            log.warning(
                "charge point too slow to read: disconnected",
                extra={"chargePointId": connection.charge_point_id},
            )
