"""The gateway's side of every established connection.

``Relay`` is the ``ConnectionEvents`` that each ``ChargePointConnection``
reports to: it enters connections in the table and tells the bus of them,
polices and publishes what chargers send, and visits every connection from
one periodic sweep (keepalive pings, zombies, command time-outs, forgetting a
settled flood). What it needs it is given: the connection table, the
backpressure, the downlinks and the bus.
"""

from __future__ import annotations

import asyncio
import logging

from picows import WSCloseCode

from ocppj import Call, CallError, CallResult, GenericError, MalformedFrame, encode_error, parse

from .backpressure import Backpressure
from .bus import Bus, BusFull
from .config import GatewayConfig
from .connection import ChargePointConnection
from .connection_table import ConnectionTable
from .downlink import Downlinks
from .keepalive import Action, keepalive_action
from .metrics import GatewayMetrics
from .ratelimit import DISCONNECT, FloodPolicy, Slow
from .sweep import Sweeper

__all__ = ["Relay"]

log = logging.getLogger(__name__)


class Relay:
    """Lifecycle: ``start()`` in the running loop (the sweep begins), ``await stop()``."""

    def __init__(
        self,
        config: GatewayConfig,
        bus: Bus,
        table: ConnectionTable[ChargePointConnection],
        backpressure: Backpressure[ChargePointConnection],
        metrics: GatewayMetrics,
    ) -> None:
        self._config = config
        self._bus = bus
        self._table = table
        self._backpressure = backpressure
        self._metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self.downlinks = Downlinks(config, table, metrics, self.loop_time)
        self._flood = FloodPolicy(
            rate=config.rate_limit, burst=config.rate_burst, strikes=config.flood_strikes
        )
        # One sweep visits every connection once per sweep_period. No timer
        # or task per connection.
        self._sweeper: Sweeper[ChargePointConnection] = Sweeper(
            self._visit, period=config.sweep_period, tick=min(1.0, config.sweep_period)
        )

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sweeper.start()

    async def stop(self) -> None:
        await self._sweeper.stop()

    # -- ConnectionEvents ---------------------------------------------------

    @property
    def max_message_size(self) -> int:
        return self._config.max_message_size

    def loop_time(self) -> float:
        if self._loop is None:
            raise RuntimeError("Relay.loop_time() before start()")
        return self._loop.time()

    def connected(self, connection: ChargePointConnection) -> None:
        self._metrics.handshakes += 1
        self._sweeper.add(connection)
        previous = self._table.add(connection)
        self._bus.announce(connection.charge_point_id, connection.subprotocol, True)
        self._backpressure.joined(connection)
        log.info(
            "charge point connected",
            extra={
                "chargePointId": connection.charge_point_id,
                "subprotocol": connection.subprotocol,
                "replaced": previous is not None,
            },
        )

    def disconnected(self, connection: ChargePointConnection) -> None:
        self._backpressure.left(connection)
        self._sweeper.discard(connection)
        self.downlinks.forget(connection)
        # A replaced connection must not announce the charger gone.
        if self._table.remove(connection):
            self._bus.announce(connection.charge_point_id, connection.subprotocol, False)
        log.info("charge point disconnected", extra={"chargePointId": connection.charge_point_id})

    def uplink(self, connection: ChargePointConnection, frame: bytes, now: float) -> None:
        """A whole message from a charge point: police its rate, check its
        framing, release the next command if it answers one, publish it."""
        metrics = self._metrics
        metrics.frames_in += 1
        if connection.closing:
            return
        flood = connection.flood
        if flood is None:
            flood = connection.flood = self._flood.new_state(now)
        verdict = self._flood.judge(flood, now)
        if verdict is DISCONNECT:
            metrics.errors["flood"] += 1
            log.warning(
                "charge point floods: disconnected",
                extra={"chargePointId": connection.charge_point_id},
            )
            connection.close(WSCloseCode.POLICY_VIOLATION, "too many messages")
            return
        try:
            message = parse(frame)
        except MalformedFrame as exc:
            metrics.errors["malformed frame"] += 1
            log.info(
                "malformed frame",
                extra={"chargePointId": connection.charge_point_id, "error": exc.error.code},
            )
            if exc.answer:
                error = encode_error(exc.error, exc.message_id, connection.version)
                self.downlinks.send(connection, error)
            return
        if isinstance(message, CallResult | CallError):
            self.downlinks.answered(connection, message.message_id, now)
        try:
            self._bus.publish(connection.charge_point_id, connection.subprotocol, frame)
        except BusFull:
            metrics.errors["bus full"] += 1
            log.warning(
                "bus full: frame refused", extra={"chargePointId": connection.charge_point_id}
            )
            if isinstance(message, Call):
                busy = GenericError("the backend is busy; retry later")
                error = encode_error(busy, message.message_id, connection.version)
                self.downlinks.send(connection, error)
        if isinstance(verdict, Slow):
            metrics.errors["rate limited"] += 1
            self._backpressure.slow_down(connection, verdict.delay)
        else:
            self._backpressure.check()

    # -- the sweep ----------------------------------------------------------

    def _visit(self, connection: ChargePointConnection, now: float) -> None:
        """Keepalive, command time-outs, forgetting a settled flood."""
        config = self._config
        action = keepalive_action(
            connection.last_received,
            connection.ping_sent,
            now,
            config.ping_interval,
            config.pong_timeout,
        )
        if action is Action.PING:
            connection.ping(now)
        elif action is Action.CLOSE and not self._backpressure.is_paused(connection):
            # (A paused charger's pong waits unread in the kernel: its silence
            # is ours, and it is judged again once reading resumes.)
            self._metrics.errors["no pong"] += 1
            log.info(
                "charge point silent: dropped", extra={"chargePointId": connection.charge_point_id}
            )
            connection.abort()
            return
        self.downlinks.expire(connection, now)
        if connection.flood is not None and self._flood.is_settled(connection.flood, now):
            connection.flood = None
