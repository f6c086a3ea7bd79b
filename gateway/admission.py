"""The first bytes of every connection: admit it, refuse it, or serve a probe.

picows decides an upgrade synchronously, inside its listener factory, and
without the transport. Admission needs more: the registry may be a network
away (DynamoDB), and security profile 3 needs the client certificate. So an
``AdmissionProtocol`` reads the HTTP request itself, takes its decision
(asynchronously only on a registry cache miss), and then hands the socket to
a picows ``WSProtocol`` whose listener factory returns the decision already
taken. From then on picows owns the connection and this object is gone: it
costs nothing per established connection.

``Admission`` takes the decisions (identity, registry, credentials,
subprotocol; ``/health`` and ``/metrics`` through ``Probes``), one object per
gateway; an ``AdmissionProtocol`` per connection asks it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Protocol, cast

import orjson
from picows import (
    WSAutoPingStrategy,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

# WSProtocol is picows' own protocol class (what ws_create_server uses); the
# picows major version is pinned. Its stub file does not declare it.
from picows.picows import WSProtocol  # type: ignore[attr-defined]

from ocppj import InvalidIdentity, identity_from_path

from .config import GatewayConfig
from .connection import ChargePointConnection, ConnectionEvents, RefusedConnection
from .handshake import Request, choose_subprotocol, offered_subprotocols, parse_request
from .lookup_cache import MISSING, LookupCache
from .metrics import GatewayMetrics
from .security import Credentials, check_credentials

__all__ = ["Admission", "AdmissionProtocol", "Find", "Probes"]

log = logging.getLogger(__name__)

#: Largest upgrade request accepted (request line and headers).
MAX_REQUEST = 8 * 1024
#: Bytes of the first read buffer of each connection (picows allocates at
#: least 2048); OCPP frames are small and the buffer grows on demand.
READ_BUFFER_INIT_SIZE = 2048
_END = b"\r\n\r\n"
_JSON = {"Content-Type": "application/json"}
_PROMETHEUS = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
# One logger for every picows connection: given a Logger, picows creates a
# child Logger object per connection, which costs memory and never goes away.
_PICOWS_LOGGER = logging.LoggerAdapter(logging.getLogger("picows.server"), {})

Decision = WSUpgradeResponseWithListener
#: ``find(charge_point_id)``: the registry's record of a charge point, or None.
Find = Callable[[str], Awaitable[Credentials | None]]


class Probes(Protocol):
    """What ``GET /health`` and ``GET /metrics`` report."""

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the gateway can serve, and the facts that say so."""
        ...

    def render_metrics(self) -> bytes:
        """The Prometheus text of the gateway's metrics."""
        ...


class Admission:
    """Decides each upgrade request: a charge point's connection, a refusal, or a probe.

    At once when the registry cache knows the identity, otherwise after one
    (shared) registry read in a task this object owns; ``cancel_pending``
    ends those at shutdown. Admitted connections report to ``events``.
    """

    def __init__(
        self,
        config: GatewayConfig,
        find: Find,
        metrics: GatewayMetrics,
        events: ConnectionEvents,
        probes: Probes,
    ) -> None:
        self.config = config
        self.read_buffer_size = READ_BUFFER_INIT_SIZE
        self._directory: LookupCache[Credentials] = LookupCache(
            find, ttl=config.registry_ttl, negative_ttl=config.registry_negative_ttl
        )
        self._metrics = metrics
        self._events = events
        self._probes = probes
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def registry_reads(self) -> int:
        """Registry look-ups made (cache misses), for tests and benchmarks."""
        return self._directory.reads

    def cancel_pending(self) -> None:
        """Give up the registry reads in flight (their connections get no answer)."""
        for task in list(self._tasks):
            task.cancel()

    def admit(
        self, request: Request, transport: asyncio.Transport, finish: Callable[[Decision], None]
    ) -> None:
        """Decide on a request and call ``finish`` with the decision, now or later."""
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

    def count_rejection(self, reason: str) -> None:
        self._metrics.rejections[reason] += 1

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
            self._metrics.rejections["no acceptable subprotocol"] += 1
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
            ChargePointConnection(self._events, charge_point_id, protocol),
        )

    def _refuse(
        self,
        status: HTTPStatus,
        reason: str,
        charge_point_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Decision:
        self._metrics.rejections[reason] += 1
        log.info(
            "handshake refused",
            extra={"chargePointId": charge_point_id, "status": status.value, "reason": reason},
        )
        body = orjson.dumps({"error": reason})
        response = WSUpgradeResponse.create_error_response(
            status, body, {**_JSON, **(headers or {})}
        )
        return Decision(response, None)

    def _probe(self, path: bytes) -> Decision:
        if path == b"/metrics":
            body = self._probes.render_metrics()
            return Decision(WSUpgradeResponse.create_ok_response(body, _PROMETHEUS), None)
        healthy, facts = self._probes.health()
        body = orjson.dumps(facts)
        if healthy:
            return Decision(WSUpgradeResponse.create_ok_response(body, _JSON), None)
        error = WSUpgradeResponse.create_error_response(HTTPStatus.SERVICE_UNAVAILABLE, body, _JSON)
        return Decision(error, None)


class AdmissionProtocol(asyncio.Protocol):
    """One connection until its upgrade request is decided."""

    __slots__ = ("_admission", "_buffer", "_timeout", "_transport")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timeout: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they quack alike.
        self._transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        self._timeout = loop.call_later(
            self._admission.config.handshake_timeout, self._handshake_timed_out
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
        self._admission.admit(request, self._transport, self._finish)

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
            self._admission.config.max_message_size,
            None,
            self._admission.read_buffer_size,
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
        self._admission.count_rejection(status.phrase)
        body = orjson.dumps({"error": text or status.phrase})
        self._transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status.value, status.phrase.encode(), len(body), body)
        )
        self._transport.close()

    def _handshake_timed_out(self) -> None:
        self._timeout = None
        if self._transport is not None:
            self._admission.count_rejection("handshake timeout")
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
