"""The production bus: frames over a small pool of MQTT connections (gmqtt).

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

Quotas and the buffer: each connection has its own line of publishes and one
task that connects it, reconnects it and drains its line, never more than
``publish_rate`` publishes (downlinks received count too: AWS counts both
directions) in any quota window and never more than ``max_inflight`` (or the
broker's receive maximum) unacknowledged. Frames wait in the line until then,
and until a lost connection is back. A frame counts until its PUBACK; frames
sent but unacknowledged when a connection drops go back to the head of its
line (delivery is at least once, as the processor expects). ``publish``
raises ``BusFull`` only when ``buffer_size`` frames are held; ``saturated``
is true from 3/4 of that until it drains to 1/4.

Presence (``{prefix}/presence/{cp}``): retained by default, because presence
is state, not an event: a worker that subscribes later gets the last word on
every charge point from the broker instead of waiting for each to reconnect.
Presence goes through the charge point's connection line, so it precedes the
frames that follow it; it is never refused for a full buffer, and while one
for a charge point waits unsent a newer one replaces its payload, so presence
adds at most one waiting message per charge point.

Outages: a lost connection reconnects with exponential backoff and jitter
(``reconnect_delay``) and a fresh, clean MQTT session, then subscribes to
its filter again before it counts as up; what it held is sent after that.
``healthy`` is false while no connection is up, and publishing meanwhile
fills the same bounded buffer. gmqtt's own reconnect (fixed delay, forever)
is switched off: it cannot back off, and a session it resumes would replay
publishes the pool has already put back in line.

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
import random
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import gmqtt
import orjson
from gmqtt.mqtt.constants import MQTTv50

from ocppj import (
    Downlink,
    describe_downlink,
    downlink_subscription,
    parse_downlink,
    presence_topic,
    uplink_topic,
)

from .bus import BusFull, Deliver
from .mqtt_settings import MqttSettings

__all__ = ["QUOTA_WINDOW", "ConnectionStatus", "MqttBus", "reconnect_delay"]

log = logging.getLogger(__name__)

#: Seconds in which at most ``publish_rate`` publishes happen on a connection.
#: The broker counts after the network has jittered them, and AWS IoT Core
#: drops what exceeds its quota: 5 % of headroom costs 5 % of the peak rate,
#: a dropped frame costs a charge point's conversation.
QUOTA_WINDOW = 1.05
#: A connection is "full" for new charge points at this share of its rate;
#: the pool grows when every connection is full.
_FULL = 0.8
#: Seconds to wait for a connection's DISCONNECT to be written when closing it.
_DISCONNECT_TIMEOUT = 1.0


def reconnect_delay(
    attempt: int, initial: float, maximum: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (1, 2, ...).

    Exponential from ``initial``, capped at ``maximum``, and jittered over
    the upper half of that: after a broker outage the connections of every
    gateway task come back spread out rather than in one CONNECT storm
    (AWS IoT Core allows 500 CONNECTs a second per account), and never
    sooner than half the nominal delay.
    """
    ceiling: float = min(maximum, initial * 2.0 ** min(max(attempt, 1) - 1, 32))
    return ceiling / 2 + rand() * ceiling / 2


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


class _Outgoing:
    """One publish, waiting in a connection's line or for its PUBACK."""

    __slots__ = ("payload", "presence_of", "retain", "sent", "topic")

    def __init__(
        self, topic: bytes, payload: bytes, retain: bool = False, presence_of: str | None = None
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.retain = retain
        #: The charge point whose presence this is, None for a frame.
        self.presence_of = presence_of
        #: Handed to gmqtt (a waiting presence may still be replaced).
        self.sent = False


class _Charger:
    """A connected charge point: the connection that holds it and its uplink topic."""

    __slots__ = ("connection", "subprotocol", "topic")

    def __init__(self, connection: _PoolConnection, subprotocol: str, topic: bytes) -> None:
        self.connection = connection
        self.subprotocol = subprotocol
        self.topic = topic


class _QuotaWindow:
    """At most ``limit`` publishes in any ``QUOTA_WINDOW``: remembers the
    times of the last ``limit`` of them (sent and received alike)."""

    __slots__ = ("_times",)

    def __init__(self, limit: int) -> None:
        self._times: deque[float] = deque(maxlen=limit)

    def wait(self, now: float) -> float:
        """Seconds until one more publish fits."""
        times = self._times
        if len(times) < (times.maxlen or 0):
            return 0.0
        return max(0.0, times[0] + QUOTA_WINDOW - now)

    def record(self, now: float) -> None:
        self._times.append(now)


class _Acks:
    """gmqtt's store of unacknowledged QoS 1 publishes, kept by us.

    gmqtt stores each QoS 1 PUBLISH as it writes it and removes it on its
    PUBACK; that removal is the only acknowledgement gmqtt reports, so this
    store is how the pool counts what is in flight and learns what was
    delivered. Each gmqtt client (one per MQTT session) gets its own store;
    when a session ends, what it still holds goes back to the line.
    """

    def __init__(
        self, on_ack: Callable[[_Outgoing], None], put_back: Callable[[list[_Outgoing]], None]
    ) -> None:
        self._on_ack = on_ack
        self._put_back = put_back
        self._waiting: dict[int, tuple[bytes, _Outgoing | None]] = {}
        self._empty_waiters: list[asyncio.Future[None]] = []
        #: The publish gmqtt is about to store (its mid is known only then).
        self.sending: _Outgoing | None = None

    @property
    def count(self) -> int:
        # Not __len__: gmqtt takes ``persistent_storage or its own``, and an
        # empty store must not read as "none given".
        return len(self._waiting)

    # gmqtt's storage interface -------------------------------------------

    def push_message(self, mid: int, raw_package: bytes) -> None:
        item, self.sending = self.sending, None
        previous = self._waiting.get(mid)
        if item is None and previous is not None:
            item = previous[1]  # QoS 2 swaps PUBLISH for PUBREL; the pool uses QoS 1
        self._waiting[mid] = (raw_package, item)

    def remove_message_by_mid(self, mid: int) -> None:
        entry = self._waiting.pop(mid, None)
        if entry is not None and entry[1] is not None:
            self._on_ack(entry[1])
        if not self._waiting:
            self._wake_empty()

    @property
    def is_empty(self) -> bool:
        return not self._waiting

    async def wait_empty(self) -> None:
        if not self._waiting:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._empty_waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._empty_waiters.remove(waiter)

    def clear(self) -> None:
        """gmqtt drops a session's publishes on a CONNACK without it; they go
        back to the line instead (a fresh client has none to drop)."""
        self._put_back(self.take_all())

    def get_all(self) -> list[tuple[int, bytes]]:
        return [(mid, raw) for mid, (raw, _) in self._waiting.items()]

    # ours ----------------------------------------------------------------

    def take_all(self) -> list[_Outgoing]:
        """Every publish not acknowledged, oldest first, and forget them."""
        items = [item for _, item in self._waiting.values() if item is not None]
        self._waiting.clear()
        self._wake_empty()
        return items

    def _wake_empty(self) -> None:
        waiters, self._empty_waiters = self._empty_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class _Client(gmqtt.Client):  # type: ignore[misc]
    """A gmqtt client that never reconnects by itself: gmqtt retries after a
    fixed delay, forever and in step with every other client; the pool
    connection reconnects instead, with backoff and jitter, and a fresh client
    (a fresh MQTT session) each time."""

    async def reconnect(self, delay: bool = False) -> None:
        return None


class _ConnectFailed(Exception):
    """The broker answered, but not as the pool needs (e.g. refused the subscription)."""


class _PoolConnection:
    """One MQTT connection of the pool: its route, its line of publishes, and
    the one task that connects it, drains the line and reconnects it."""

    def __init__(self, bus: MqttBus, index: int) -> None:
        settings = bus.settings
        self._bus = bus
        self._settings = settings
        self.index = index
        self.route = settings.route(index)
        self._subscription = downlink_subscription(settings.prefix, self.route)
        self.line: deque[_Outgoing] = deque()
        #: Charge points that hold this route.
        self.chargers = 0
        #: Connected and subscribed to its downlink filter.
        self.up = False
        self._client: _Client | None = None
        self._acks = _Acks(self._acked, self._put_back)
        self._window = _QuotaWindow(settings.publish_rate)
        self._cap = settings.max_inflight
        self._wake = asyncio.Event()
        self._subscribed: asyncio.Future[int] | None = None
        self._subscribe_mid: int | None = None
        # Load: publishes offered (both directions) since ``_since``, and
        # the rate measured over the last window of at least a second.
        self._loop = asyncio.get_running_loop()
        self._offered = 0
        self._since = self._loop.time()
        self._rate = 0.0
        self.task = self._loop.create_task(self._run(), name=f"mqtt-{self.route}")

    # load ----------------------------------------------------------------

    @property
    def inflight(self) -> int:
        return self._acks.count

    def offer(self, item: _Outgoing) -> None:
        self.line.append(item)
        self._offered += 1
        self._wake.set()

    def demand(self, now: float) -> float:
        """What this connection must move in the next second: its recent
        rate plus what waits in its line or for an acknowledgement."""
        elapsed = now - self._since
        if elapsed >= 1.0:
            self._rate = self._offered / elapsed
            self._offered = 0
            self._since = now
        return self._rate + len(self.line) + self._acks.count

    # connection ----------------------------------------------------------

    async def _run(self) -> None:
        settings = self._settings
        failures = 0
        while True:
            if failures:
                delay = reconnect_delay(
                    failures, settings.reconnect_initial, settings.reconnect_max
                )
                log.info(
                    "mqtt connection retries",
                    extra={"route": self.route, "attempt": failures, "delay": round(delay, 3)},
                )
                await asyncio.sleep(delay)
            try:
                client = await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning(
                    "mqtt connection failed",
                    extra={"route": self.route, "attempt": failures, "error": repr(exc)},
                )
                continue
            since = self._loop.time()
            self._set_up(True)
            try:
                await self._drain(client)
            finally:
                self._set_up(False)
                self._requeue()
            if client.is_connected:
                # The broker said DISCONNECT but left the socket open: close it.
                await self._discard(client)
            # A connection that lasted is retried at once (after the first
            # jittered delay); one that keeps dropping backs off further.
            failures = 1 if self._loop.time() - since >= settings.reconnect_max else failures + 1
            log.warning(
                "mqtt connection lost",
                extra={"route": self.route, "waiting": len(self.line)},
            )

    async def _connect(self) -> _Client:
        """Open a fresh session and subscribe to this route's downlinks:
        TCP, TLS, CONNACK and SUBACK within ``connect_timeout``."""
        settings = self._settings
        self._acks = acks = _Acks(self._acked, self._put_back)
        client = _Client(self.route, persistent_storage=acks)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self._subscribed = subscribed = self._loop.create_future()
        try:
            async with asyncio.timeout(settings.connect_timeout):
                await client.connect(
                    settings.host,
                    settings.port,
                    ssl=self._bus.ssl_context or False,
                    keepalive=settings.keepalive,
                    version=MQTTv50,
                )
                self._subscribe_mid = client.subscribe(self._subscription, qos=1)
                granted = await subscribed
            if granted >= 0x80:
                raise _ConnectFailed(f"subscription to {self._subscription} refused ({granted:#x})")
        except BaseException:
            await self._discard(client)
            raise
        finally:
            self._subscribed = None
            if not subscribed.done():
                subscribed.cancel()
            elif not subscribed.cancelled():
                subscribed.exception()  # retrieved: a loss while connecting is reported above
        return client

    def _on_connect(self, client: _Client, flags: int, rc: int, properties: Any) -> None:
        if client is not self._client:
            return
        # gmqtt never uses more than receive maximum - 1 packet ids at once.
        receive_maximum = (properties or {}).get("receive_maximum", [65_535])[0]
        self._cap = max(1, min(self._settings.max_inflight, receive_maximum - 1))

    def _on_subscribe(self, client: _Client, mid: int, granted: Any, properties: Any) -> None:
        waiter = self._subscribed
        mine = client is self._client and mid == self._subscribe_mid
        if mine and waiter is not None and not waiter.done():
            waiter.set_result(int(granted[0]) if granted else 0x80)

    def _on_disconnect(self, client: _Client, packet: Any, exc: Any = None) -> None:
        if client is not self._client:
            return
        waiter = self._subscribed
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("connection lost while subscribing"))
        if self.up:
            self._set_up(False)
        self._wake.set()

    async def _discard(self, client: _Client) -> None:
        """Close a client that will not be used again, if it is open."""
        if self._client is client:
            self._client = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_DISCONNECT_TIMEOUT):
                await client.disconnect()

    def _set_up(self, up: bool) -> None:
        if self.up != up:
            self.up = up
            self._bus._connection_changed(self)

    # uplink --------------------------------------------------------------

    async def _drain(self, client: _Client) -> None:
        """Publish the line while the connection is up, within the quotas:
        the only place this connection publishes, so no task per message."""
        line, acks, window, wake = self.line, self._acks, self._window, self._wake
        while self.up and self._client is client:
            if not line or acks.count >= self._cap:
                wake.clear()
                await wake.wait()
                continue
            now = self._loop.time()
            wait = window.wait(now)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            item = line.popleft()
            acks.sending = item
            try:
                client.publish(gmqtt.Message(item.topic, item.payload, qos=1, retain=item.retain))
            except OverflowError:
                # Out of packet ids: the broker allows fewer in flight than
                # we assumed. Wait for an acknowledgement and try again.
                acks.sending = None
                line.appendleft(item)
                self._cap = max(1, acks.count)
                if not acks.count:
                    await asyncio.sleep(0.1)
                continue
            except Exception:
                acks.sending = None
                line.appendleft(item)
                log.exception("mqtt publish failed; reconnecting", extra={"route": self.route})
                await self._discard(client)
                return
            item.sent = True
            window.record(now)

    def _acked(self, item: _Outgoing) -> None:
        self._bus._delivered(item)
        if self.line:
            self._wake.set()

    def _requeue(self) -> None:
        self._put_back(self._acks.take_all())

    def _put_back(self, items: list[_Outgoing]) -> None:
        """Publishes a lost session did not acknowledge go first when the
        connection is back, in their order."""
        for item in reversed(items):
            item.sent = False
            self.line.appendleft(item)
        if items:
            self._wake.set()
            log.info(
                "mqtt publishes to send again",
                extra={"route": self.route, "frames": len(items)},
            )

    # downlink ------------------------------------------------------------

    def _on_message(
        self, client: _Client, topic: Any, payload: bytes, qos: int, properties: Any
    ) -> int:
        now = self._loop.time()
        self._window.record(now)
        self._offered += 1
        prefix = self._settings.prefix
        try:
            if not isinstance(topic, str):
                raise ValueError("topic is not UTF-8")
            route, charge_point_id = parse_downlink(topic, prefix)
        except ValueError as exc:
            log.warning(
                "downlink dropped: not a downlink topic",
                extra={"route": self.route, "topic": repr(topic), "error": str(exc)},
            )
            return 0
        if route != self.route:
            log.warning(
                "downlink dropped: another route's",
                extra={"route": self.route, "topic": topic},
            )
            return 0
        self._bus._downlink(charge_point_id, bytes(payload), self.route)
        return 0

    async def disconnect(self) -> None:
        client = self._client
        if client is not None:
            await self._discard(client)


class MqttBus:
    """``gateway.bus.Bus`` over a pool of MQTT connections (see the module's docstring).

    ``clock`` gives the ``at`` of presence messages.
    """

    def __init__(self, settings: MqttSettings, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.settings = settings
        self.ssl_context: ssl.SSLContext | None = settings.ssl_context
        if settings.tls and self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        self._clock = clock
        self._pool: list[_PoolConnection] = []
        self._chargers: dict[str, _Charger] = {}
        #: The latest presence of a charge point not yet acknowledged, and its connection.
        self._presence: dict[str, tuple[_PoolConnection, _Outgoing]] = {}
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
                extra={"connections": len(self._pool), "up": self._up, "url": self.settings.url},
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
        self._hold(connection, _Outgoing(charger.topic, frame))
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
        for connection in self._pool:
            connection.task.cancel()
        await asyncio.gather(*(c.task for c in self._pool), return_exceptions=True)
        await asyncio.gather(*(c.disconnect() for c in self._pool), return_exceptions=True)
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

    def _sticky(self, charge_point_id: str) -> _PoolConnection | None:
        """The connection that still carries this charge point's last
        presence: a reconnect goes there, so its presences stay in order."""
        entry = self._presence.get(charge_point_id)
        return None if entry is None else entry[0]

    def _least_loaded(self) -> _PoolConnection:
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

    def _grow(self) -> _PoolConnection:
        connection = _PoolConnection(self, len(self._pool))
        self._pool.append(connection)
        return connection

    # presence ------------------------------------------------------------

    def _announce(
        self, charge_point_id: str, subprotocol: str, connected: bool, connection: _PoolConnection
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
            waiting[1].payload = payload  # the newer state replaces one not yet sent
            return
        try:
            topic = presence_topic(self.settings.prefix, charge_point_id).encode()
        except ValueError as exc:
            log.error(
                "presence not published: no topic",
                extra={"chargePointId": charge_point_id, "error": str(exc)},
            )
            return
        item = _Outgoing(topic, payload, self.settings.retain_presence, charge_point_id)
        self._presence[charge_point_id] = (connection, item)
        self._hold(connection, item)

    # bookkeeping ---------------------------------------------------------

    def _hold(self, connection: _PoolConnection, item: _Outgoing) -> None:
        connection.offer(item)
        self._held += 1
        if self._held >= self._high:
            self._saturated = True

    def _delivered(self, item: _Outgoing) -> None:
        """The broker acknowledged a publish."""
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

    def _downlink(self, charge_point_id: str, frame: bytes, route: str) -> None:
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

    def _connection_changed(self, connection: _PoolConnection) -> None:
        before = self._up
        self._up = sum(1 for c in self._pool if c.up)
        log.info(
            "mqtt connection up" if connection.up else "mqtt connection down",
            extra={"route": connection.route, "connectionsUp": self._up},
        )
        if before == 0 and self._up:
            log.info("mqtt bus up", extra={"url": self.settings.url})
        elif before and not self._up and not self._closing:
            log.warning("mqtt bus down: no connection to the broker", extra={"held": self._held})
        self._changed.set()
