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
    CallError,
    CallResult,
    GenericError,
    InvalidIdentity,
    MalformedFrame,
    encode_error,
    identity_from_path,
    parse,
)

from .admission import AdmissionProtocol, Request
from .bus import Bus, BusFull
from .callqueue import CallQueue, CallQueueConfig, QueueFull
from .config import GatewayConfig
from .connection import ChargePointConnection, RefusedConnection
from .handshake import choose_subprotocol, offered_subprotocols
from .keepalive import Action, keepalive_action
from .lookup_cache import MISSING, LookupCache
from .metrics import GatewayMetrics
from .ratelimit import DISCONNECT, FloodPolicy, Slow
from .security import Credentials, check_credentials
from .sweep import Sweeper

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
        #: Every charge point is paused until the bus drains.
        self._holding = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.metrics = GatewayMetrics()
        self.read_buffer_size = READ_BUFFER_INIT_SIZE
        self._flood = FloodPolicy(
            rate=config.rate_limit, burst=config.rate_burst, strikes=config.flood_strikes
        )
        self._calls = CallQueueConfig(
            call_timeout=config.call_timeout,
            queue_ttl=config.queue_ttl,
            max_queued=config.max_queued,
        )
        # One sweep visits every connection once per sweep_period: keepalive
        # pings, zombies, command timeouts. No timer or task per connection.
        self._sweeper: Sweeper[ChargePointConnection] = Sweeper(
            self._visit, period=config.sweep_period, tick=min(1.0, config.sweep_period)
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop_time(self) -> float:
        if self._loop is None:
            raise RuntimeError("GatewayServer.loop_time() before start()")
        return self._loop.time()

    @property
    def port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("GatewayServer.port before start()")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def registry_reads(self) -> int:
        return self._directory.reads

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._sweeper.start()
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

    def stop_accepting(self) -> None:
        """Close the listening socket and stop reading from charge points, so
        that what is in flight can drain while nothing new comes in."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for connection in self._connections.values():
            connection.pause_reading()

    async def shutdown(self, code: WSCloseCode = WSCloseCode.GOING_AWAY) -> None:
        """Stop accepting, then close every charge point with ``code`` (1001:
        it reconnects, through the load balancer, to another task)."""
        self.stop_accepting()
        await self._sweeper.stop()
        for connection in list(self._connections.values()):
            connection.close(code, "server shutting down")
        if self._server is not None:
            await self._server.wait_closed()
        log.info("gateway stopped", extra={"closeCode": code.value})

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

    def connections_by_protocol(self) -> dict[str, int]:
        """Connected charge points per enabled subprotocol (0 for an unused one)."""
        by_protocol = Counter(c.subprotocol for c in self._connections.values())
        return {p: by_protocol.get(p, 0) for p in self.config.protocols}

    def render_metrics(self) -> bytes:
        return self.metrics.render(
            connections=self.connections_by_protocol(),
            bus_up=self._bus.healthy,
            bus_pending=self._bus.pending,
            paused_readers=len(self._paused),
        )

    # -- connections ----------------------------------------------------------

    def connected(self, connection: ChargePointConnection) -> None:
        self.metrics.handshakes += 1
        self._sweeper.add(connection)
        previous = self._connections.get(connection.charge_point_id)
        self._connections[connection.charge_point_id] = connection
        if previous is not None:
            previous.close(WSCloseCode.POLICY_VIOLATION, "replaced by a newer connection")
        self._bus.announce(connection.charge_point_id, connection.subprotocol, True)
        if self._holding:  # its first frame waits in the kernel like the others'
            connection.pause_reading()
            self._paused.add(connection)
        elif self._bus.saturated:  # its presence filled the bus (a reconnect storm)
            self._hold_everyone()
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
        self._sweeper.discard(connection)
        if connection.calls is not None:
            dropped = connection.calls.drain()
            if dropped:
                log.info(
                    "commands dropped: charge point gone",
                    extra={"chargePointId": connection.charge_point_id, "messageIds": dropped},
                )
        # A replaced connection must not remove its successor, nor announce
        # the charger gone.
        if self._connections.get(connection.charge_point_id) is connection:
            del self._connections[connection.charge_point_id]
            self._bus.announce(connection.charge_point_id, connection.subprotocol, False)
        log.info("charge point disconnected", extra={"chargePointId": connection.charge_point_id})

    # -- frames ---------------------------------------------------------------

    def uplink(self, connection: ChargePointConnection, frame: bytes, now: float) -> None:
        """A whole message from a charge point: police its rate, check its
        framing, release the next command if it answers one, publish it."""
        self.metrics.frames_in += 1
        if connection.closing:
            return
        flood = connection.flood
        if flood is None:
            flood = connection.flood = self._flood.new_state(now)
        verdict = self._flood.judge(flood, now)
        if verdict is DISCONNECT:
            self.metrics.errors["flood"] += 1
            log.warning(
                "charge point floods: disconnected",
                extra={"chargePointId": connection.charge_point_id},
            )
            connection.close(WSCloseCode.POLICY_VIOLATION, "too many messages")
            return
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
        if connection.calls is not None and isinstance(message, CallResult | CallError):
            self._release(connection, connection.calls.answered(message.message_id, now))
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
        if isinstance(verdict, Slow):
            self.metrics.errors["rate limited"] += 1
            self._pause_for(connection, verdict.delay)
        elif bus.saturated and not self._holding:
            self._hold_everyone()

    def _hold_everyone(self) -> None:
        """The bus is filling up: stop reading from every charge point until it
        drains, so that their frames wait in the kernel, not in our memory.
        Pausing only those that send is not enough when many send at once: in
        a reconnect storm every charger sends one BootNotification, and
        thousands of first frames would overflow the bus and be refused."""
        self._holding = True
        for connection in self._connections.values():
            if connection not in self._paused:
                connection.pause_reading()
                self._paused.add(connection)

    def _pause_for(self, connection: ChargePointConnection, delay: float) -> None:
        """Slow a charger down: stop reading it for ``delay`` seconds (one
        timer, and only while it is slowed)."""
        if connection in self._paused:
            return
        connection.pause_reading()
        self._paused.add(connection)
        if self._loop is None:
            raise RuntimeError("GatewayServer._pause_for() before start()")
        self._loop.call_later(delay, self._resume, connection)

    def _resume(self, connection: ChargePointConnection) -> None:
        if connection in self._paused and not self._bus.saturated:
            self._paused.discard(connection)
            connection.resume_reading()

    def bus_drained(self) -> None:
        """The bus has room again: read from the paused charge points."""
        self._holding = False
        paused, self._paused = self._paused, set()
        for connection in paused:
            connection.resume_reading()

    def subprotocol_of(self, charge_point_id: str) -> str | None:
        """The subprotocol of a connected charge point, or None."""
        connection = self._connections.get(charge_point_id)
        return None if connection is None else connection.subprotocol

    def deliver(self, charge_point_id: str, frame: bytes) -> bool:
        """Write a downlink frame to a connected charge point; False if it is not connected.

        A CALL from the backend waits in the charger's command line while an
        earlier one is unanswered (OCPP: one outstanding CALL per direction);
        answers to the charger's own CALLs go out at once.
        """
        connection = self._connections.get(charge_point_id)
        if connection is None:
            self.metrics.errors["downlink for a charge point not here"] += 1
            return False
        if frame.lstrip()[:2] != b"[2":
            self._send(connection, frame)
            return True
        try:
            message_id = str(orjson.loads(frame)[1])
        except (orjson.JSONDecodeError, IndexError, TypeError):
            self._send(connection, frame)  # not ours to judge; the charger will answer it
            return True
        calls = connection.calls
        if calls is None:
            calls = connection.calls = CallQueue(self._calls)
        try:
            self._release(connection, calls.send_or_queue(message_id, frame, self.loop_time()))
        except QueueFull:
            self.metrics.errors["command line full"] += 1
            log.warning(
                "command dropped: too many waiting",
                extra={"chargePointId": charge_point_id, "messageId": message_id},
            )
        return True

    def _release(self, connection: ChargePointConnection, frame: bytes | None) -> None:
        if frame is not None:
            self._send(connection, frame)
        if connection.calls is not None and connection.calls.is_idle:
            connection.calls = None

    def _visit(self, connection: ChargePointConnection, now: float) -> None:
        """The sweep's visit: keepalive, command timeouts, forgetting a settled flood."""
        config = self.config
        action = keepalive_action(
            connection.last_received,
            connection.ping_sent,
            now,
            config.ping_interval,
            config.pong_timeout,
        )
        if action is Action.PING:
            connection.ping(now)
        elif action is Action.CLOSE and connection not in self._paused:
            # (A paused charger's pong waits unread in the kernel: its silence
            # is ours, and it is judged again once reading resumes.)
            self.metrics.errors["no pong"] += 1
            log.info(
                "charge point silent: dropped", extra={"chargePointId": connection.charge_point_id}
            )
            connection.abort()
            return
        calls = connection.calls
        if calls is not None:
            expired, frame = calls.tick(now)
            if expired:
                self.metrics.errors["command expired in line"] += len(expired)
                log.info(
                    "commands expired before they could be sent",
                    extra={"chargePointId": connection.charge_point_id, "messageIds": expired},
                )
            self._release(connection, frame)
        if connection.flood is not None and self._flood.is_settled(connection.flood, now):
            connection.flood = None

    def _send(self, connection: ChargePointConnection, frame: bytes) -> None:
        self.metrics.frames_out += 1
        if not connection.send(frame, self.config.max_write_buffer):
            self.metrics.errors["slow reader"] += 1
            log.warning(
                "charge point too slow to read: disconnected",
                extra={"chargePointId": connection.charge_point_id},
            )
