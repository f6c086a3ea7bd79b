"""One connection of the gateway's MQTT pool: its route, its line, its quotas.

Each connection has its own line of publishes and one task (``mqttio.supervise``)
that connects it, drains the line and reconnects it, never more than
``publish_rate`` publishes (downlinks received count too: AWS counts both
directions) in any quota window and never more than ``max_inflight`` (or the
broker's receive maximum) unacknowledged. Frames wait in the line until then,
and until a lost connection is back. A frame counts until its PUBACK; frames
sent but unacknowledged when a connection drops go back to the head of its
line (delivery is at least once, as the processor expects).

A connection comes back with a fresh, clean MQTT session and subscribes to
its downlink filter again before it counts as up; what it held is sent after
that. The pool (``gateway.mqtt_bus``) decides what goes into which line.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from typing import Protocol

from mqttio import BrokerAddress, Session, Subscription, supervise
from ocppj import downlink_reader, downlink_subscription

from .mqtt_settings import MqttSettings

__all__ = ["QUOTA_WINDOW", "Outgoing", "PoolConnection", "PoolOwner"]

log = logging.getLogger(__name__)

#: Seconds in which at most ``publish_rate`` publishes happen on a connection.
#: The broker counts after the network has jittered them, and AWS IoT Core
#: drops what exceeds its quota: 5 % of headroom costs 5 % of the peak rate,
#: a dropped frame costs a charge point's conversation.
QUOTA_WINDOW = 1.05
#: Pause before trying again when the broker has no packet id to spare and
#: nothing is in flight to free one (seconds).
_NO_PACKET_ID_PAUSE = 0.1


class Outgoing:
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
        #: Handed to the session (a waiting presence may still be replaced).
        self.sent = False


class PoolOwner(Protocol):
    """What a pool connection tells the pool (``gateway.mqtt_bus.MqttBus``)."""

    def delivered(self, item: Outgoing) -> None:
        """The broker acknowledged ``item``."""
        ...

    def downlink(self, charge_point_id: str, frame: bytes, route: str) -> None:
        """A frame arrived for a charge point on ``route``."""
        ...

    def connection_changed(self, connection: PoolConnection) -> None:
        """``connection.up`` changed."""
        ...


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


class PoolConnection:
    """One MQTT connection of the pool: route ``{gateway_id}.{index}``, a line
    of publishes, and the task that keeps it connected and drains the line."""

    def __init__(
        self,
        owner: PoolOwner,
        settings: MqttSettings,
        index: int,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._owner = owner
        self._settings = settings
        self._broker: BrokerAddress = settings.broker
        self._ssl_context = ssl_context
        self.index = index
        self.route = settings.route(index)
        self._subscription = Subscription(downlink_subscription(settings.prefix, self.route))
        self._read_downlink = downlink_reader(settings.prefix, self.route)
        self.line: deque[Outgoing] = deque()
        #: Charge points that hold this route.
        self.chargers = 0
        #: Connected and subscribed to its downlink filter.
        self.up = False
        self._session: Session | None = None
        self._window = _QuotaWindow(settings.publish_rate)
        self._cap = settings.max_inflight
        self._wake = asyncio.Event()
        # Load: publishes offered (both directions) since ``_since``, and
        # the rate measured over the last window of at least a second.
        self._loop = asyncio.get_running_loop()
        self._offered = 0
        self._since = self._loop.time()
        self._rate = 0.0
        self.task = self._loop.create_task(
            supervise(self._connect, self._serve, settings.backoff, facts={"route": self.route}),
            name=f"mqtt-{self.route}",
        )

    # load ----------------------------------------------------------------

    @property
    def inflight(self) -> int:
        session = self._session
        return 0 if session is None else session.inflight

    def offer(self, item: Outgoing) -> None:
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
        return self._rate + len(self.line) + self.inflight

    # the session ---------------------------------------------------------

    async def _connect(self) -> Session:
        settings = self._settings
        session = Session(
            self.route,
            on_message=self._on_message,
            on_ack=self._acked,
            on_lost=self._wake.set,
        )
        self._session = session
        try:
            await session.start(
                self._broker,
                subscriptions=(self._subscription,),
                ssl_context=self._ssl_context,
                keepalive=settings.keepalive,
                timeout=settings.connect_timeout,
            )
        except BaseException:
            self._session = None
            raise
        self._cap = max(1, min(settings.max_inflight, session.broker_receive_maximum))
        return session

    async def _serve(self, session: Session) -> None:
        self._set_up(True)
        try:
            await self._drain(session)
        finally:
            self._set_up(False)
            self._session = None
            self._put_back(session.unacknowledged())

    async def _drain(self, session: Session) -> None:
        """Publish the line while the session is usable, within the quotas:
        the only place this connection publishes, so no task per message."""
        line, window, wake = self.line, self._window, self._wake
        while session.usable:
            if not line or session.inflight >= self._cap:
                wake.clear()
                await wake.wait()
                continue
            now = self._loop.time()
            wait = window.wait(now)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            item = line.popleft()
            try:
                taken = session.publish(item.topic, item.payload, retain=item.retain, token=item)
            except Exception:
                line.appendleft(item)
                log.exception("mqtt publish failed; reconnecting", extra={"route": self.route})
                return
            if not taken:
                # Out of packet ids: the broker allows fewer in flight than
                # we assumed. Wait for an acknowledgement and try again.
                line.appendleft(item)
                self._cap = max(1, session.inflight)
                if not session.inflight:
                    await asyncio.sleep(_NO_PACKET_ID_PAUSE)
                continue
            item.sent = True
            window.record(now)

    def _acked(self, token: object) -> None:
        if isinstance(token, Outgoing):
            self._owner.delivered(token)
        if self.line:
            self._wake.set()

    def _put_back(self, tokens: list[object]) -> None:
        """Publishes a lost session did not acknowledge go first when the
        connection is back, in their order."""
        items = [token for token in tokens if isinstance(token, Outgoing)]
        for item in reversed(items):
            item.sent = False
            self.line.appendleft(item)
        if items:
            self._wake.set()
            log.info(
                "mqtt publishes to send again",
                extra={"route": self.route, "frames": len(items)},
            )

    def _set_up(self, up: bool) -> None:
        if self.up != up:
            self.up = up
            self._owner.connection_changed(self)

    # downlink ------------------------------------------------------------

    def _on_message(self, topic: str | bytes, payload: bytes, qos: int) -> int:
        self._window.record(self._loop.time())
        self._offered += 1
        try:
            if not isinstance(topic, str):
                raise ValueError("topic is not UTF-8")
            charge_point_id = self._read_downlink(topic)
        except ValueError as exc:
            log.warning(
                "downlink dropped: not a downlink topic of this connection",
                extra={"route": self.route, "topic": repr(topic), "error": str(exc)},
            )
            return 0
        self._owner.downlink(charge_point_id, bytes(payload), self.route)
        return 0

    async def stop(self) -> None:
        """Stop the connection's task and disconnect."""
        session = self._session
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        if session is not None:
            await session.close()
