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

Batches (``ocppj.batch``). While the connection is under its quota a frame
goes out at once, on its own topic; with a ``batch_window``, the line's head
waits up to that long for company, until a batch's worth waits. When frames queue, because the quota
window or the in-flight cap holds them back or because several arrived in
one turn of the loop, the next publish packs as many from the head of the
line as fit in ``batch_bytes`` onto the connection's batch topic. So a
connection at its quota moves up to ``publish_rate`` times ``batch_bytes``
a second instead of ``publish_rate`` frames, and a storm costs the broker
(and the AWS bill) one publish per batch. A batch is acknowledged, and put
back after a lost session, as the frames it holds; they may travel in other
company the next time. Batches that arrive on ``{prefix}/batch/out/{route}``
are split and each frame delivered as if it had come alone.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from typing import Protocol

from mqttio import BrokerAddress, Session, Subscription, supervise
from ocppj import (
    BATCH_OVERHEAD,
    decode_downlink_batch,
    downlink_batch_subscription,
    downlink_reader,
    downlink_subscription,
    encode_batch,
    encode_uplink_item,
    uplink_batch_topic,
)

from .mqtt_settings import MqttSettings

__all__ = ["QUOTA_WINDOW", "Batch", "Outgoing", "PoolConnection", "PoolOwner"]

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

    __slots__ = (
        "charge_point_id",
        "kind",
        "payload",
        "presence_of",
        "queued_at",
        "retain",
        "sent",
        "topic",
    )

    def __init__(
        self,
        topic: bytes,
        payload: bytes,
        retain: bool = False,
        presence_of: str | None = None,
        *,
        charge_point_id: str = "",
        kind: str = "",
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.retain = retain
        #: The charge point whose presence this is, None for a frame.
        self.presence_of = presence_of
        #: Who and what, for a batch (``ocppj.batch``): the charge point, and
        #: its subprotocol or ``ocppj.PRESENCE``. "" for a publish that never batches.
        self.charge_point_id = charge_point_id
        self.kind = kind
        #: Handed to the session (a waiting presence may still be replaced).
        self.sent = False
        #: Loop time it joined a line, kept while ``batch_window`` is set.
        self.queued_at = 0.0


class Batch:
    """Frames that travel in one publish: its PUBACK acknowledges each of them."""

    __slots__ = ("items",)

    def __init__(self, items: list[Outgoing]) -> None:
        self.items = items


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
        self._subscriptions = (
            Subscription(downlink_subscription(settings.prefix, self.route)),
            Subscription(downlink_batch_subscription(settings.prefix, self.route)),
        )
        self._read_downlink = downlink_reader(settings.prefix, self.route)
        self._batch_in = uplink_batch_topic(settings.prefix, self.route).encode()
        self._batch_out = downlink_batch_subscription(settings.prefix, self.route)
        self._batch_bytes = settings.batch_bytes
        self._batch_window = settings.batch_window
        self.line: deque[Outgoing] = deque()
        #: Charge points that hold this route.
        self.chargers = 0
        #: Connected and subscribed to its downlink filter.
        self.up = False
        self._session: Session | None = None
        self._window = _QuotaWindow(settings.publish_rate)
        self._cap = settings.max_inflight
        self._wake = asyncio.Event()
        # Load: frames offered, and publishes made, both directions, since
        # ``_since``; the rate measured over the last window of at least a second.
        self._loop = asyncio.get_running_loop()
        self._offered = 0
        self._moved = 0
        self._waiting_bytes = 0
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
        if self._batch_window:  # only a lingering line reads when a frame came
            item.queued_at = self._loop.time()
        self.line.append(item)
        self._offered += 1
        self._waiting_bytes += len(item.payload)
        self._wake.set()

    def demand(self, now: float) -> float:
        """What this connection must move in the next second, in publishes:
        its recent rate plus what waits in its line or for an acknowledgement.
        With batches on, frames that go out alone under the quota are one
        publish each and those that queue share one per ``batch_bytes``: so
        the rate is the publishes made (a connection at its quota shows it)
        and the line counts in the batches it makes."""
        elapsed = now - self._since
        if elapsed >= 1.0:
            self._rate = (self._moved if self._batch_bytes else self._offered) / elapsed
            self._offered = 0
            self._moved = 0
            self._since = now
        limit = self._batch_bytes
        waiting = self._waiting_bytes / limit if limit else len(self.line)
        return self._rate + waiting + self.inflight

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
                subscriptions=self._subscriptions,
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
        linger = self._batch_window if self._batch_bytes else 0.0
        while session.usable:
            if not line or session.inflight >= self._cap:
                wake.clear()
                await wake.wait()
                continue
            now = self._loop.time()
            wait = window.wait(now)
            if wait <= 0 and linger and self._waiting_bytes < self._batch_bytes:
                # Less than a batch waits: the head lingers for company.
                wait = line[0].queued_at + linger - now
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            token, topic, payload, retain = self._next_publish()
            try:
                taken = session.publish(topic, payload, retain=retain, token=token)
            except Exception:
                self._unpop(token)
                log.exception("mqtt publish failed; reconnecting", extra={"route": self.route})
                return
            if not taken:
                # Out of packet ids: the broker allows fewer in flight than
                # we assumed. Wait for an acknowledgement and try again.
                self._unpop(token)
                self._cap = max(1, session.inflight)
                if not session.inflight:
                    await asyncio.sleep(_NO_PACKET_ID_PAUSE)
                continue
            for item in _items(token):
                item.sent = True
            window.record(now)
            self._moved += 1

    def _next_publish(self) -> tuple[Outgoing | Batch, bytes, bytes, bool]:
        """Take the next publish off the line: the head alone, or as many
        frames from the head as fit in one batch."""
        line = self.line
        first = line.popleft()
        self._waiting_bytes -= len(first.payload)
        limit = self._batch_bytes
        if not line or not limit or not first.kind:
            return first, first.topic, first.payload, first.retain
        part = encode_uplink_item(first.charge_point_id, first.kind, first.payload)
        size = BATCH_OVERHEAD + len(part)
        parts = [part]
        items = [first]
        while line and line[0].kind:
            head = line[0]
            part = encode_uplink_item(head.charge_point_id, head.kind, head.payload)
            if size + 1 + len(part) > limit:
                break
            items.append(line.popleft())
            self._waiting_bytes -= len(head.payload)
            parts.append(part)
            size += 1 + len(part)
        if len(items) == 1:
            return first, first.topic, first.payload, first.retain
        return Batch(items), self._batch_in, encode_batch(parts), False

    def _unpop(self, token: Outgoing | Batch) -> None:
        """Put what a publish that did not happen took back at the head of the line."""
        items = _items(token)
        self.line.extendleft(reversed(items))
        self._waiting_bytes += sum(len(item.payload) for item in items)

    def renew(self, item: Outgoing, payload: bytes) -> None:
        """Replace the payload of ``item``, waiting unsent in this line."""
        self._waiting_bytes += len(payload) - len(item.payload)
        item.payload = payload

    def _acked(self, token: object) -> None:
        if isinstance(token, Outgoing):
            self._owner.delivered(token)
        elif isinstance(token, Batch):
            for item in token.items:
                self._owner.delivered(item)
        if self.line:
            self._wake.set()

    def _put_back(self, tokens: list[object]) -> None:
        """Publishes a lost session did not acknowledge go first when the
        connection is back, in their order."""
        kept = [token for token in tokens if isinstance(token, Outgoing | Batch)]
        items = [item for token in kept for item in _items(token)]
        for item in reversed(items):
            item.sent = False
            self.line.appendleft(item)
            self._waiting_bytes += len(item.payload)
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
        self._moved += 1
        if topic == self._batch_out:
            self._batch_downlink(payload)
            return 0
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

    def _batch_downlink(self, payload: bytes) -> None:
        """Each frame of a batch for this route, delivered in order."""
        try:
            items, skipped = decode_downlink_batch(payload)
        except ValueError as exc:
            log.warning(
                "downlink batch dropped: not a batch",
                extra={"route": self.route, "error": str(exc)},
            )
            return
        if skipped:
            log.warning(
                "downlink batch items dropped",
                extra={"route": self.route, "errors": skipped[:10], "dropped": len(skipped)},
            )
        for item in items:
            self._owner.downlink(item.charge_point_id, item.payload, self.route)

    async def stop(self) -> None:
        """Stop the connection's task and disconnect."""
        session = self._session
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        if session is not None:
            await session.close()


def _items(token: Outgoing | Batch) -> list[Outgoing]:
    return token.items if isinstance(token, Batch) else [token]
