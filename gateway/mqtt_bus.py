"""The production bus: frames over a small pool of MQTT connections.

Why a pool: AWS IoT Core limits each connection to 100 publishes a second
and 100 unacknowledged QoS 1 messages, while one gateway task holds tens of
thousands of charge points. One connection per charge point would cost a
TLS session and a broker connection each; one connection for all would cap
the task at 100 frames a second. So the pool starts at ``min_connections``
and opens another (up to ``max_connections``) when none of its connections
has room for more load.

Routes (``ocppj.topics``): pool connection ``n`` has client id and route
``{gateway_id}.{n}`` and subscribes to exactly one filter, its own
``{prefix}/out/{route}/+``. A charge point is given the least loaded
connection when it connects and keeps it while connected: its uplink frames
go out on ``{prefix}/in/{cp}/{protocol}/{route}``, in order, and the backend
answers on ``{prefix}/out/{route}/{cp}``.

Quotas and the buffer: each connection (``gateway.mqtt_connection``) drains
its own line within AWS IoT Core's quotas and puts back what a lost session
did not acknowledge. The pool counts every publish until its PUBACK:
``publish`` raises ``BusFull`` only when ``buffer_size`` frames are held;
``saturated`` is true from 3/4 of that until it drains to 1/4.

Presence (``{prefix}/presence/{cp}``): retained by default, because presence
is state, not an event: a worker that subscribes later gets the last word on
every charge point from the broker instead of waiting for each to reconnect.
Presence goes through the charge point's connection line, so it precedes the
frames that follow it; it is never refused for a full buffer, and while one
for a charge point waits unsent a newer one replaces its payload, so presence
adds at most one waiting message per charge point.

Outages: a lost connection reconnects through ``mqttio.supervise`` with the
settings' ``backoff`` and a fresh, clean MQTT session, then subscribes to
its filter again before it counts as up; what it held is sent after that.
``healthy`` is false while no connection is up, and publishing meanwhile
fills the same bounded buffer.

Growth: routes are sticky, so another connection helps only the charge
points that connect after it opens. The pool therefore opens one when a
connection's line crosses 80 % of a second's quota or a charge point is
assigned, and only if every connection is up and already that loaded. It
never shrinks while running; a fleet of known size should set
``min_connections`` to what it needs, so a reconnect storm spreads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from ocppj import PRESENCE, Downlink, describe_downlink, presence_topic, uplink_topic

from .bus import BusFull, Deliver
from .mqtt_connection import QUOTA_WINDOW, Outgoing, PoolConnection
from .mqtt_settings import MqttSettings

__all__ = ["QUOTA_WINDOW", "ConnectionStatus", "MqttBus"]

log = logging.getLogger(__name__)

#: A connection is "full" for new charge points at this share of its rate;
#: the pool grows when every connection is full.
_FULL = 0.8


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _nowhere(charge_point_id: str, downlink: Downlink) -> bool:
    return False


def _nothing() -> None:
    pass


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """What one pool connection is doing."""

    route: str
    up: bool
    #: Charge points that hold this route.
    chargers: int
    #: Publishes waiting in its line, and sent but not yet acknowledged.
    waiting: int
    inflight: int


class _Charger:
    """A connected charge point: the connection that holds it and its uplink topic."""

    __slots__ = ("connection", "subprotocol", "topic")

    def __init__(self, connection: PoolConnection, subprotocol: str, topic: bytes) -> None:
        self.connection = connection
        self.subprotocol = subprotocol
        self.topic = topic


class MqttBus:
    """``gateway.bus.Bus`` over a pool of MQTT connections (see the module's docstring).

    ``clock`` gives the ``at`` of presence messages.
    """

    def __init__(self, settings: MqttSettings, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.settings = settings
        self.ssl_context: ssl.SSLContext | None = settings.ssl_context
        if settings.broker.tls and self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        self._clock = clock
        self._pool: list[PoolConnection] = []
        self._chargers: dict[str, _Charger] = {}
        #: The latest presence of a charge point not yet acknowledged, and its connection.
        self._presence: dict[str, tuple[PoolConnection, Outgoing]] = {}
        self._deliver: Deliver = _nowhere
        self._on_drained: Callable[[], None] = _nothing
        #: Publishes held: waiting in a line or for their PUBACK.
        self._held = 0
        self._high = max(1, settings.buffer_size * 3 // 4)
        self._low = settings.buffer_size // 4
        self._saturated = False
        self._emptied = asyncio.Event()
        self._changed = asyncio.Event()
        self._up = 0
        self._closing = False
        # The line length at which a connection counts as full.
        self._full = max(1, int(settings.publish_rate * _FULL))

    # the Bus port --------------------------------------------------------

    async def start(self, deliver: Deliver, on_drained: Callable[[], None] = _nothing) -> None:
        """Open ``min_connections`` and wait (at most ``connect_timeout``)
        for them; if the broker is not there, the pool keeps trying in the
        background and publishes wait in the buffer."""
        if self._pool:
            raise RuntimeError("MqttBus.start() called twice")
        self._deliver = deliver
        self._on_drained = on_drained
        for _ in range(self.settings.min_connections):
            self._grow()
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                while self._up < len(self._pool):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            log.warning(
                "mqtt bus started before its connections; they keep trying",
                extra={
                    "connections": len(self._pool),
                    "up": self._up,
                    "broker": str(self.settings.broker),
                },
            )

    def publish(self, charge_point_id: str, subprotocol: str, frame: bytes) -> None:
        if self._closing:
            raise BusFull("the MQTT bus is closing")
        if self._held >= self.settings.buffer_size:
            raise BusFull(f"{self._held} frames waiting for the MQTT broker")
        charger = self._chargers.get(charge_point_id)
        if charger is None or charger.subprotocol != subprotocol:
            charger = self._admit(charge_point_id, subprotocol, charger)
        connection = charger.connection
        self._hold(
            connection,
            Outgoing(charger.topic, frame, charge_point_id=charge_point_id, kind=subprotocol),
        )
        if len(connection.line) == self._full:
            self._maybe_grow()

    def announce(self, charge_point_id: str, subprotocol: str, connected: bool) -> None:
        """Publish the charge point's presence (retained unless configured
        otherwise): its route on connect, which it keeps until the matching
        disconnect releases it. Call with ``connected=False`` only when its
        last connection is gone (not for one a newer connection replaced)."""
        if self._closing and connected:
            return
        if connected:
            charger = self._chargers.get(charge_point_id)
            if charger is None or charger.subprotocol != subprotocol:
                try:
                    charger = self._admit(charge_point_id, subprotocol, charger)
                except BusFull:
                    return  # logged; the charge point cannot be carried at all
            connection = charger.connection
        else:
            released = self._chargers.pop(charge_point_id, None)
            if released is not None:
                released.connection.chargers -= 1
                connection = released.connection
            elif self._pool:
                connection = self._sticky(charge_point_id) or self._least_loaded()
            else:
                return  # not started: nothing was announced either
        self._announce(charge_point_id, subprotocol, connected, connection)

    @property
    def saturated(self) -> bool:
        return self._saturated

    @property
    def healthy(self) -> bool:
        """Up while at least one pool connection is."""
        return self._up > 0

    @property
    def pending(self) -> int:
        """Publishes (frames and presence) not yet acknowledged by the broker."""
        return self._held

    async def close(self, timeout: float) -> None:
        """Deliver what is held within ``timeout`` seconds, then disconnect."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._held:
                    self._emptied.clear()
                    await self._emptied.wait()
        await asyncio.gather(*(c.stop() for c in self._pool), return_exceptions=True)
        if self._held:
            log.warning("mqtt bus closed with frames undelivered", extra={"frames": self._held})
        else:
            log.info("mqtt bus closed", extra={"connections": len(self._pool)})

    # what operators and tests look at -----------------------------------

    @property
    def connections(self) -> int:
        """Connections in the pool (up or not)."""
        return len(self._pool)

    @property
    def connections_up(self) -> int:
        return self._up

    def pool_status(self) -> list[ConnectionStatus]:
        """One line per pool connection, for metrics and logs."""
        return [
            ConnectionStatus(c.route, c.up, c.chargers, len(c.line), c.inflight) for c in self._pool
        ]

    def route_of(self, charge_point_id: str) -> str | None:
        """The route that holds a charge point, None if it holds none."""
        charger = self._chargers.get(charge_point_id)
        return None if charger is None else charger.connection.route

    # routes --------------------------------------------------------------

    def _admit(self, charge_point_id: str, subprotocol: str, previous: _Charger | None) -> _Charger:
        if not self._pool:
            raise BusFull("the MQTT bus is not started")
        if previous is not None:
            connection = previous.connection  # a new subprotocol keeps the route
            connection.chargers -= 1
        else:
            connection = self._sticky(charge_point_id) or self._least_loaded()
        try:
            topic = uplink_topic(
                self.settings.prefix, charge_point_id, subprotocol, connection.route
            )
        except ValueError as exc:
            self._chargers.pop(charge_point_id, None)
            log.error(
                "charge point cannot be carried over MQTT",
                extra={"chargePointId": charge_point_id, "error": str(exc)},
            )
            raise BusFull(f"no MQTT topic for this charge point: {exc}") from None
        charger = self._chargers[charge_point_id] = _Charger(
            connection, subprotocol, topic.encode()
        )
        connection.chargers += 1
        if connection.demand(asyncio.get_running_loop().time()) >= self._full:
            self._maybe_grow()
        return charger

    def _sticky(self, charge_point_id: str) -> PoolConnection | None:
        """The connection that still carries this charge point's last
        presence: a reconnect goes there, so its presences stay in order."""
        entry = self._presence.get(charge_point_id)
        return None if entry is None else entry[0]

    def _least_loaded(self) -> PoolConnection:
        """The connection with the least demand (then the fewest charge
        points), among those up if any is."""
        candidates = [c for c in self._pool if c.up] or self._pool
        now = asyncio.get_running_loop().time()
        return min(candidates, key=lambda c: (c.demand(now), c.chargers, c.index))

    def _maybe_grow(self) -> None:
        """Open one more connection when every connection is full. One at a
        time, and not while any is down: an outage is not load."""
        pool = self._pool
        if self._closing or len(pool) >= self.settings.max_connections:
            return
        if self._up < len(pool):
            return
        now = asyncio.get_running_loop().time()
        if min(c.demand(now) for c in pool) < self._full:
            return
        connection = self._grow()
        log.info(
            "mqtt pool grows",
            extra={"connections": len(pool), "route": connection.route},
        )

    def _grow(self) -> PoolConnection:
        connection = PoolConnection(self, self.settings, len(self._pool), self.ssl_context)
        self._pool.append(connection)
        return connection

    # presence ------------------------------------------------------------

    def _announce(
        self, charge_point_id: str, subprotocol: str, connected: bool, connection: PoolConnection
    ) -> None:
        payload = orjson.dumps(
            {
                "connected": connected,
                "route": connection.route,
                "protocol": subprotocol,
                "at": _rfc3339(self._clock()),
            }
        )
        waiting = self._presence.get(charge_point_id)
        if waiting is not None and waiting[0] is connection and not waiting[1].sent:
            connection.renew(waiting[1], payload)  # the newer state replaces one not yet sent
            return
        try:
            topic = presence_topic(self.settings.prefix, charge_point_id).encode()
        except ValueError as exc:
            log.error(
                "presence not published: no topic",
                extra={"chargePointId": charge_point_id, "error": str(exc)},
            )
            return
        item = Outgoing(
            topic,
            payload,
            self.settings.retain_presence,
            charge_point_id,
            charge_point_id=charge_point_id,
            kind=PRESENCE,
        )
        self._presence[charge_point_id] = (connection, item)
        self._hold(connection, item)

    # bookkeeping ---------------------------------------------------------

    def _hold(self, connection: PoolConnection, item: Outgoing) -> None:
        connection.offer(item)
        self._held += 1
        if self._held >= self._high:
            self._saturated = True

    def delivered(self, item: Outgoing) -> None:
        """The broker acknowledged a publish (told by a pool connection)."""
        self._held -= 1
        cp = item.presence_of
        if cp is not None:
            entry = self._presence.get(cp)
            if entry is not None and entry[1] is item:
                del self._presence[cp]
        if self._saturated and self._held <= self._low:
            self._saturated = False
            try:
                self._on_drained()
            except Exception:
                log.exception("on_drained failed")
        if not self._held:
            self._emptied.set()

    def downlink(self, charge_point_id: str, frame: bytes, route: str) -> None:
        """A frame for a charge point arrived on ``route`` (told by a pool connection)."""
        # Read once, here where only bytes arrive: the gateway queues CALLs by id.
        try:
            downlink = describe_downlink(frame)
        except ValueError as exc:
            log.warning(
                "downlink dropped: not an OCPP-J message",
                extra={"chargePointId": charge_point_id, "route": route, "error": str(exc)},
            )
            return
        try:
            delivered = self._deliver(charge_point_id, downlink)
        except Exception:
            log.exception(
                "downlink delivery failed", extra={"chargePointId": charge_point_id, "route": route}
            )
            return
        if not delivered:
            log.info(
                "downlink dropped: charge point not connected here",
                extra={"chargePointId": charge_point_id, "route": route},
            )

    def connection_changed(self, connection: PoolConnection) -> None:
        """A pool connection went up or down."""
        before = self._up
        self._up = sum(1 for c in self._pool if c.up)
        log.info(
            "mqtt connection up" if connection.up else "mqtt connection down",
            extra={"route": connection.route, "connectionsUp": self._up},
        )
        if before == 0 and self._up:
            log.info("mqtt bus up", extra={"broker": str(self.settings.broker)})
        elif before and not self._up and not self._closing:
            log.warning("mqtt bus down: no connection to the broker", extra={"held": self._held})
        self._changed.set()
