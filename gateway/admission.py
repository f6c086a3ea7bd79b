"""The first bytes of every connection: admit it, refuse it, or serve a probe.

picows decides an upgrade synchronously, inside its listener factory, and
without the transport. Admission needs more: the registry may be a network
away (DynamoDB), and security profile 3 needs the client certificate. So an
``AdmissionProtocol`` reads the HTTP request itself, takes its decision
(asynchronously only on a registry cache miss), and then hands the socket to
a picows ``WSProtocol`` whose listener factory returns the decision already
taken. From then on picows owns the connection and this object is gone: it
costs nothing per established connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

import orjson
from multidict import CIMultiDict
from picows import WSAutoPingStrategy, WSUpgradeRequest, WSUpgradeResponseWithListener

# WSProtocol is picows' own protocol class (what ws_create_server uses); the
# picows major version is pinned. Its stub file does not declare it.
from picows.picows import WSProtocol  # type: ignore[attr-defined]

if TYPE_CHECKING:
    from .server import GatewayServer

__all__ = ["AdmissionProtocol", "Request", "parse_request"]

log = logging.getLogger(__name__)

#: Largest upgrade request accepted (request line and headers).
MAX_REQUEST = 8 * 1024
_END = b"\r\n\r\n"
# One logger for every picows connection: given a Logger, picows creates a
# child Logger object per connection, which costs memory and never goes away.
_PICOWS_LOGGER = logging.LoggerAdapter(logging.getLogger("picows.server"), {})


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: bytes
    headers: CIMultiDict[str]

    @property
    def path(self) -> bytes:
        return self.target.partition(b"?")[0]

    @property
    def is_upgrade(self) -> bool:
        return "upgrade" in self.headers.get("Connection", "").lower()


def parse_request(head: bytes) -> Request:
    """The request line and headers; ValueError says what is wrong."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("malformed request line")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ValueError("malformed header line")
        headers.add(name, value.strip())
    return Request(parts[0], parts[1].encode("latin-1"), headers)


Decision = WSUpgradeResponseWithListener


class AdmissionProtocol(asyncio.Protocol):
    """One connection until its upgrade request is decided."""

    __slots__ = ("_buffer", "_server", "_timeout", "_transport")

    def __init__(self, server: GatewayServer) -> None:
        self._server = server
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timeout: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they quack alike.
        self._transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        self._timeout = loop.call_later(
            self._server.config.handshake_timeout, self._handshake_timed_out
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timeout()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(_END)
        if end < 0:
            if len(self._buffer) > MAX_REQUEST:
                self._respond_and_close(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        if self._transport is None:
            raise RuntimeError("data_received() before connection_made()")
        self._transport.pause_reading()
        try:
            request = parse_request(bytes(self._buffer[:end]))
        except ValueError as exc:
            self._respond_and_close(HTTPStatus.BAD_REQUEST, str(exc))
            return
        self._server.admit(request, self._transport, self._finish)

    def _finish(self, decision: Decision) -> None:
        """Send a refusal, or hand the connection to picows with ``decision``."""
        self._cancel_timeout()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        ws = WSProtocol(
            None,
            "/",
            False,
            _answer(decision),
            _PICOWS_LOGGER,
            True,
            None,  # the request is already here: no handshake timeout
            False,  # keepalive is the gateway's own sweep, not a task per connection
            0,
            0,
            WSAutoPingStrategy.PING_WHEN_IDLE,
            True,
            self._server.config.max_message_size,
            None,
            self._server.read_buffer_size,
        )
        transport.set_protocol(ws)
        ws.connection_made(transport)
        # Resume before feeding what was read: completing the upgrade calls the
        # gateway, which may pause this charger at once (the bus is full), and
        # that pause must stand. Nothing is read before this callback returns.
        transport.resume_reading()
        _feed(ws, self._buffer)
        self._buffer = bytearray()

    def _respond_and_close(self, status: HTTPStatus, text: str = "") -> None:
        self._cancel_timeout()
        if self._transport is None:
            return
        self._server.count_rejection(status.phrase)
        body = orjson.dumps({"error": text or status.phrase})
        self._transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status.value, status.phrase.encode(), len(body), body)
        )
        self._transport.close()

    def _handshake_timed_out(self) -> None:
        self._timeout = None
        if self._transport is not None:
            self._server.count_rejection("handshake timeout")
            self._transport.abort()

    def _cancel_timeout(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None


def _answer(decision: Decision) -> Callable[[WSUpgradeRequest], Decision]:
    def factory(request: WSUpgradeRequest) -> Decision:
        return decision

    return factory


def _feed(ws: WSProtocol, data: bytearray) -> None:
    """Give picows the bytes read so far, through its buffered-protocol API."""
    view = memoryview(data)
    while view:
        buffer = ws.get_buffer(len(view))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        ws.buffer_updated(size)
        view = view[size:]
