"""The gateway server: accepts charge points, relays their frames to the bus.

Lifecycle: ``start()`` listens; ``shutdown()`` stops accepting and closes
every charge point with 1001 (going away) so it reconnects elsewhere. The
bus belongs to whoever built it; the gateway only publishes to it and
receives downlink frames through ``deliver``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container
from http import HTTPStatus

import orjson
from picows import (
    WSCloseCode,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from ocppj import (
    Call,
    GenericError,
    InvalidIdentity,
    MalformedFrame,
    encode_error,
    identity_from_path,
    parse,
)

from .bus import Bus, BusFull
from .config import GatewayConfig
from .connection import ChargePointConnection, RefusedConnection
from .handshake import choose_subprotocol, offered_subprotocols

__all__ = ["GatewayServer"]

log = logging.getLogger(__name__)

HEALTH_PATH = b"/health"
#: Bytes of the first read buffer of each connection (picows allocates at
#: least 2048); OCPP frames are small and the buffer grows on demand.
READ_BUFFER_INIT_SIZE = 2048
_JSON = {"Content-Type": "application/json"}


class GatewayServer:
    def __init__(self, config: GatewayConfig, registry: Container[str], bus: Bus) -> None:
        self.config = config
        self._registry = registry
        self._bus = bus
        self._connections: dict[str, ChargePointConnection] = {}
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        self._server = await ws_create_server(
            self._accept,
            self.config.host,
            self.config.port,
            max_frame_size=self.config.max_message_size,
            websocket_handshake_timeout=self.config.handshake_timeout,
            # Idle chargers dominate: a small first read buffer (it grows on
            # demand) and the event loop's own transports keep each
            # connection at about a third of picows' default footprint.
            read_buffer_init_size=READ_BUFFER_INIT_SIZE,
            use_aiofastnet=False,
            # A whole fleet reconnects at once after a restart; asyncio's
            # default accept backlog of 100 drops most of such a burst.
            backlog=self.config.accept_backlog,
        )
        log.info(
            "gateway listening",
            extra={"host": self.config.host, "port": self.port, "protocols": self.config.protocols},
        )

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections.values()):
            connection.close(WSCloseCode.GOING_AWAY, "server shutting down")
        if self._server is not None:
            await self._server.wait_closed()
        log.info("gateway stopped")

    # -- handshake --------------------------------------------------------

    def _accept(self, request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
        # picows turns an exception here into a 500 carrying the exception
        # text; nothing internal may reach a client, so catch everything.
        try:
            return self._decide(request)
        except Exception:
            log.exception("handshake failed")
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    def _decide(self, request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
        path = request.path.partition(b"?")[0]
        if path == HEALTH_PATH and "upgrade" not in request.headers.get("Connection", "").lower():
            return self._health()
        try:
            charge_point_id = identity_from_path(path)
        except InvalidIdentity as exc:
            log.info("handshake refused: bad identity", extra={"reason": str(exc)})
            return _error(HTTPStatus.NOT_FOUND, f"not a charge point identity: {exc}")
        if charge_point_id not in self._registry:
            log.info(
                "handshake refused: unknown charge point", extra={"chargePointId": charge_point_id}
            )
            return _error(HTTPStatus.NOT_FOUND, "unknown charge point")

        offers = offered_subprotocols(request.headers.getall("Sec-WebSocket-Protocol", ()))
        protocol = choose_subprotocol(offers, self.config.protocols, self.config.default_protocol)
        if protocol is None:
            log.info(
                "handshake refused: no acceptable subprotocol",
                extra={"chargePointId": charge_point_id, "offers": offers},
            )
            speaks = ",".join(self.config.protocols)
            reason = f"no supported OCPP version offered; this server speaks {speaks}"
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_101_response(), RefusedConnection(reason)
            )
        headers = {"Sec-WebSocket-Protocol": protocol} if offers else {}
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response(headers),
            ChargePointConnection(self, charge_point_id, protocol),
        )

    def _health(self) -> WSUpgradeResponseWithListener:
        body = orjson.dumps({"status": "ok", "connections": len(self._connections)})
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_ok_response(body, _JSON), None
        )

    # -- connections --------------------------------------------------------

    def connected(self, connection: ChargePointConnection) -> None:
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
        # A replaced connection must not remove its successor.
        if self._connections.get(connection.charge_point_id) is connection:
            del self._connections[connection.charge_point_id]
        log.info("charge point disconnected", extra={"chargePointId": connection.charge_point_id})

    # -- frames -------------------------------------------------------------

    def uplink(self, connection: ChargePointConnection, frame: bytes) -> None:
        """A whole message from a charge point: check its framing, then publish it."""
        try:
            message = parse(frame)
        except MalformedFrame as exc:
            log.info(
                "malformed frame",
                extra={"chargePointId": connection.charge_point_id, "error": exc.error.code},
            )
            if exc.answer:
                connection.send(encode_error(exc.error, exc.message_id, connection.version))
            return
        try:
            self._bus.publish(connection.charge_point_id, connection.subprotocol, frame)
        except BusFull:
            log.warning(
                "bus full: frame refused", extra={"chargePointId": connection.charge_point_id}
            )
            if isinstance(message, Call):
                busy = GenericError("the backend is busy; retry later")
                connection.send(encode_error(busy, message.message_id, connection.version))

    def subprotocol_of(self, charge_point_id: str) -> str | None:
        """The subprotocol of a connected charge point, or None."""
        connection = self._connections.get(charge_point_id)
        return None if connection is None else connection.subprotocol

    def deliver(self, charge_point_id: str, frame: bytes) -> bool:
        """Write a downlink frame to a connected charge point; False if it is not connected."""
        connection = self._connections.get(charge_point_id)
        if connection is None:
            return False
        connection.send(frame)
        return True


def _error(status: HTTPStatus, text: str) -> WSUpgradeResponseWithListener:
    body = orjson.dumps({"error": text})
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_error_response(status, body, _JSON), None
    )
