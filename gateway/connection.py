"""One charge point's WebSocket: frames in, frames out, nothing held longer than needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from ocppj import OcppVersion, version_for

if TYPE_CHECKING:
    from .server import GatewayServer

__all__ = ["ChargePointConnection", "RefusedConnection"]


class ChargePointConnection(WSListener):
    """The listener picows calls for each frame of one charge point.

    Per-connection memory is the point of this class: slots only, and a
    fragment buffer that exists only while a fragmented message arrives.
    """

    __slots__ = ("charge_point_id", "subprotocol", "version", "transport", "_gateway", "_fragments")

    def __init__(self, gateway: GatewayServer, charge_point_id: str, subprotocol: str) -> None:
        self.charge_point_id = charge_point_id
        self.subprotocol = subprotocol
        self.version: OcppVersion = version_for(subprotocol)
        self.transport: WSTransport | None = None
        self._gateway = gateway
        self._fragments: bytearray | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self._gateway.connected(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._gateway.disconnected(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT and frame.fin:
            self._gateway.uplink(self, frame.get_payload_as_bytes())
        elif kind is WSMsgType.TEXT or kind is WSMsgType.CONTINUATION:
            self._fragment(frame)
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif kind is WSMsgType.BINARY:
            self.close(WSCloseCode.UNSUPPORTED_DATA, "OCPP-J messages are text frames")
        # PING is answered by picows; PONG needs nothing yet.

    def _fragment(self, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self._fragments = bytearray()
        elif self._fragments is None:
            self.close(WSCloseCode.PROTOCOL_ERROR, "continuation frame without a first fragment")
            return
        self._fragments += frame.get_payload_as_memoryview()
        if len(self._fragments) > self._gateway.config.max_message_size:
            self._fragments = None
            self.close(WSCloseCode.MESSAGE_TOO_BIG, "message exceeds the size limit")
        elif frame.fin:
            message, self._fragments = bytes(self._fragments), None
            self._gateway.uplink(self, message)

    def send(self, frame: bytes) -> None:
        if self.transport is not None:
            self.transport.send(WSMsgType.TEXT, frame)

    def close(self, code: WSCloseCode, reason: str) -> None:
        if self.transport is not None:
            self.transport.send_close(code, reason.encode())
            self.transport.disconnect()


class RefusedConnection(WSListener):
    """A charge point that offered no subprotocol we serve.

    OCPP-J §3.2: finish the handshake without ``Sec-WebSocket-Protocol``, then
    close at once, so the charger can tell this apart from a wrong URL.
    """

    __slots__ = ("_reason",)

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send_close(WSCloseCode.PROTOCOL_ERROR, self._reason.encode())
        transport.disconnect()
