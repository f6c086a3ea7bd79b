"""One charge point's WebSocket: frames in, frames out, nothing held longer than needed.

A connection reports what happens to it through ``ConnectionEvents`` (the
gateway's relay implements it) and knows nothing else of the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from multidict import CIMultiDict, CIMultiDictProxy
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from ocppj import OcppVersion, version_for

if TYPE_CHECKING:
    from .callqueue import CallQueue
    from .ratelimit import FloodState

__all__ = ["ChargePointConnection", "ConnectionEvents", "RefusedConnection"]


class ConnectionEvents(Protocol):
    """What a connection tells the gateway, and the two things it asks of it."""

    @property
    def max_message_size(self) -> int:
        """Bytes a reassembled message may have."""
        ...

    def loop_time(self) -> float:
        """The event loop's clock."""
        ...

    def connected(self, connection: ChargePointConnection) -> None:
        """The upgrade completed; frames may flow."""
        ...

    def disconnected(self, connection: ChargePointConnection) -> None:
        """The connection is gone, whoever closed it."""
        ...

    def uplink(self, connection: ChargePointConnection, frame: bytes, now: float) -> None:
        """A whole text message from the charge point, received at ``now``."""
        ...


class ChargePointConnection(WSListener):
    """The listener picows calls for each frame of one charge point.

    Per-connection memory is the point of this class: slots only, and
    helpers (fragment buffer, flood standing, command queue) that exist only
    while they have something to hold.
    """

    __slots__ = (
        "_events",
        "_fragments",
        "_writing_paused",
        "calls",
        "charge_point_id",
        "flood",
        "last_received",
        "ping_sent",
        "subprotocol",
        "transport",
        "version",
    )

    def __init__(self, events: ConnectionEvents, charge_point_id: str, subprotocol: str) -> None:
        self.charge_point_id = charge_point_id
        self.subprotocol = subprotocol
        self.version: OcppVersion = version_for(subprotocol)
        self.transport: WSTransport | None = None
        self._events = events
        self._fragments: bytearray | None = None
        self._writing_paused = False
        #: Loop time of the last frame of any kind (pongs included), for keepalive.
        self.last_received = 0.0
        self.ping_sent: float | None = None
        #: Standing with the flood policy; None while the charger is within it.
        self.flood: FloodState | None = None
        #: Backend commands in flight and waiting; None while there are none.
        self.calls: CallQueue | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.last_received = self._events.loop_time()
        _forget_handshake(transport)
        self._events.connected(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._events.disconnected(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        now = self.last_received = self._events.loop_time()
        kind = frame.msg_type
        if kind is WSMsgType.TEXT and frame.fin:
            self._events.uplink(self, frame.get_payload_as_bytes(), now)
        elif kind is WSMsgType.TEXT or kind is WSMsgType.CONTINUATION:
            self._fragment(frame)
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif kind is WSMsgType.BINARY:
            self.close(WSCloseCode.UNSUPPORTED_DATA, "OCPP-J messages are text frames")
        # PING is answered by picows; a PONG only needed to arrive (last_received).

    def _fragment(self, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self._fragments = bytearray()
        elif self._fragments is None:
            self.close(WSCloseCode.PROTOCOL_ERROR, "continuation frame without a first fragment")
            return
        self._fragments += frame.get_payload_as_memoryview()
        if len(self._fragments) > self._events.max_message_size:
            self._fragments = None
            self.close(WSCloseCode.MESSAGE_TOO_BIG, "message exceeds the size limit")
        elif frame.fin:
            message, self._fragments = bytes(self._fragments), None
            self._events.uplink(self, message, self.last_received)

    def send(self, frame: bytes, max_write_buffer: int) -> bool:
        """Write a frame; False (and the connection closed) if the charger
        reads so slowly that more than ``max_write_buffer`` bytes wait."""
        transport = self.transport
        if transport is None:
            return True
        if (
            self._writing_paused
            and transport.underlying_transport.get_write_buffer_size() > max_write_buffer
        ):
            # A close frame would only join the queue it does not read: abort.
            transport.disconnect(graceful=False)
            return False
        transport.send(WSMsgType.TEXT, frame)
        return True

    # picows calls these at the transport's write-buffer watermarks.
    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.underlying_transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_disconnected:
            transport.underlying_transport.resume_reading()
            if self.ping_sent is not None and self.last_received < self.ping_sent:
                # Its pong may wait unread in the kernel, and the sweep can
                # run before the read does: the outstanding ping gets its
                # whole timeout again from now, as if it had just been sent.
                self.ping_sent = self._events.loop_time()

    @property
    def closing(self) -> bool:
        """True once we sent a close frame: what it still sends is not relayed."""
        return self.transport is not None and self.transport.is_close_frame_sent

    def ping(self, now: float) -> None:
        if self.transport is not None:
            self.transport.send_ping()
            self.ping_sent = now

    def abort(self) -> None:
        """Drop the connection without a closing handshake (a zombie would not answer it)."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

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


def _forget_handshake(transport: WSTransport) -> None:
    """Drop the upgrade request's and response's headers, which picows keeps
    on the transport for the connection's life: about a kilobyte per idle
    charger, needed by nobody once the handshake is done."""
    for message in (transport.request, transport.response):
        if message is not None:
            message.headers = _NO_HEADERS  # type: ignore[assignment]


_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
