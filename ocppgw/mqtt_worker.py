"""The processor worker's MQTT side: OCPP frames straight from the MQTT bus.

The MQTT twin of the Lambda entry points. Where IoT Core's rule hands frames
to a Lambda through SQS, a worker subscribes itself, with QoS 1, to

* ``$share/{group}/{prefix}/in/+/+/+``: every frame a charge point sent. The
  subscription is *shared*, so the broker gives each message to one worker of
  the group and several workers split the load;
* ``$share/{group}/{prefix}/batch/in/+``: the same frames, and presence,
  packed into one publish by a gateway connection when they queued
  (``ocppj.batch``). A batch is acknowledged once all it holds is handled;
  each item goes to its charger's consumer as a message of its own would;
* ``$share/{group}/{prefix}/presence/+``: connects and disconnects. Shared as
  well: a presence message only has to be written to the shadow once, and
  every worker reads the record from the shared state when it needs a route.
  Delivering it to every worker would multiply the shadow writes (IoT allows
  20 updates per second per thing) and race them against each other.
  Gateways publish presence *retained*; Mosquitto replays retained messages
  to a new shared subscriber, so every worker that (re)subscribes would
  reread the last presence of the whole fleet, which the shadow already
  holds. The presence subscription therefore asks for no retained messages
  (MQTT 5 Retain Handling 2) unless ``WorkerConfig.replay_presence`` is set,
  which recovers presence published while no worker at all was running.

Each frame goes through the same ``Processor`` as everywhere else and the
answer goes back with QoS 1 to the route the CALL came from. Answers for one
route that are ready together travel together (``_Replies``): they wait
until every admitted message is handled or waiting for its answer (the
queues are drained), at most ``batch_window``, and go out as one batch per
route on ``{prefix}/batch/out/{route}`` (an answer alone on
``{prefix}/out/{route}/{cp}``). A presence message updates the shadow's connection record
``{"connected", "route", "protocol", "since"}`` unless the record already
says something newer (``presence_applies``). Presence itself, parsing and
ledgers, lives in ``processor.presence`` (shared with the Lambda).

Flow control. Messages are handled by a fixed pool of consumer tasks, each
reading its own queue; a charge point's messages always go to the same
consumer (a hash of its identity), so its frames are processed and answered
in the order they arrived while other chargers' frames run concurrently. The
worker acknowledges a QoS 1 message (PUBACK) only once it is handled, so a
broker that honours the Receive Maximum the worker announces never has more
than that many messages outstanding with it; past ``max_pending`` messages
(a broker that ignores it, or QoS 0) a message is refused with PUBACK
"quota exceeded" and logged, rather than letting memory grow. (Mosquitto
2.0.11, measured, keeps sending past the Receive Maximum; there the limit is
what bounds the worker.) The session runs the handler as one task per
message; each only queues its message and waits for its acknowledgement,
so their number is bounded the same way.

Connection. One MQTT connection per worker (``mqttio.Session``), kept up by
``mqttio.supervise``: a fresh session per connection, jittered exponential
backoff, and the subscriptions made again each time. With ``client_id`` and
``session_expiry`` set, the broker keeps the worker's session (its
subscriptions and the QoS 1 messages for it) while it is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mqttio import PubAck, Session, Subscription, supervise
from ocppj import (
    BATCH_OVERHEAD,
    DEFAULT_PREFIX,
    PRESENCE,
    decode_uplink_batch,
    downlink_publishes,
    parse_presence,
    parse_uplink,
    parse_uplink_batch,
    presence_subscription,
    shared_subscription,
    uplink_batch_subscription,
    uplink_subscription,
)
from processor.adapters.routed_outbound import PublishError
from processor.ports import ShadowStore
from processor.presence import PresenceLedger, ShadowPresenceLedger, routable_presence

from .mqtt_worker_config import WorkerConfig

__all__ = ["FrameHandler", "MqttWorker", "WorkerStats"]

log = logging.getLogger(__name__)

#: PUBACK reason codes the worker answers with (MQTT 5; 3.1.1 has none).
_SUCCESS = int(PubAck.SUCCESS)
_NOT_PROCESSED = int(PubAck.UNSPECIFIED_ERROR)
_QUOTA_EXCEEDED = int(PubAck.QUOTA_EXCEEDED)
_BAD_TOPIC = int(PubAck.TOPIC_NAME_INVALID)
_BAD_PAYLOAD = int(PubAck.PAYLOAD_FORMAT_INVALID)

#: Bound on waiting for an UNSUBACK (seconds).
_ACK_TIMEOUT = 5.0
#: Pause between attempts while the broker's in-flight window is full (seconds).
_WINDOW_POLL = 0.005
#: At most one "worker full" log line per this many seconds.
_REFUSAL_LOG_PERIOD = 1.0


class _BadBatch(ValueError):
    """A batch's payload is not a batch."""


# -- the worker -----------------------------------------------------------------------


class FrameHandler(Protocol):
    """What the worker feeds frames to: ``processor.Processor``.

    Build it without ``raise_failures``: a failure must reach the charger as
    ``InternalError`` (a live connection waits for an answer), since MQTT,
    unlike SQS, will not deliver the message again.
    """

    async def handle(self, charge_point_id: str, subprotocol: str, frame: bytes) -> bytes | None:
        """Process one frame a charge point sent; return the frame to send back, if any."""
        ...


@dataclass(slots=True)
class WorkerStats:
    """Counters since start, for logs, metrics and tests."""

    frames: int = 0
    #: Uplink batches received (their frames count in ``frames``).
    batches: int = 0
    answers: int = 0
    #: Publishes that carried the answers (one per batch or lone answer).
    answer_publishes: int = 0
    presence_recorded: int = 0
    presence_ignored: int = 0
    #: Malformed topics and payloads, logged and dropped.
    dropped: int = 0
    #: Refused because the worker was full or stopping.
    refused: int = 0
    #: Messages whose handling raised (logged).
    failed: int = 0


class _Kind(enum.Enum):
    UPLINK = "uplink"
    PRESENCE = "presence"


class _Ack:
    """One admitted message: once each of the ``left`` items it brought (one,
    or a batch's) is handled, ``finished`` is called and the PUBACK (None for
    QoS 0) resolved with its reason code."""

    __slots__ = ("code", "finished", "future", "left")

    def __init__(
        self, future: asyncio.Future[int] | None, left: int, finished: Callable[[], None]
    ) -> None:
        self.future = future
        self.left = left
        self.finished = finished
        self.code = _SUCCESS

    def done(self, code: int) -> None:
        if code != _SUCCESS:
            self.code = code
        self.left -= 1
        if self.left == 0:
            self.finished()
            if self.future is not None and not self.future.done():
                self.future.set_result(self.code)


@dataclass(slots=True)
class _Item:
    kind: _Kind
    charge_point_id: str
    protocol: str
    route: str
    payload: bytes
    #: Told once this item is handled; None for QoS 0.
    ack: _Ack | None


class MqttWorker:
    """Reads uplink frames and presence from a shared subscription; answers over MQTT.

    ``start()`` starts the consumers and the connection supervisor;
    ``wait_subscribed()`` waits until the subscriptions are in place;
    ``stop(timeout)`` unsubscribes, lets in-flight messages finish within the
    timeout, and disconnects. It also serves as the ``Publisher`` of
    ``processor.adapters.routed_outbound.RoutedOutbound``.
    """

    def __init__(
        self,
        handler: FrameHandler,
        shadows: ShadowStore,
        prefix: str = DEFAULT_PREFIX,
        config: WorkerConfig | None = None,
        *,
        presence: PresenceLedger | None = None,
    ) -> None:
        self._config = config = config or WorkerConfig()
        self._handler = handler
        self._presence = presence or ShadowPresenceLedger(shadows)
        self._prefix = prefix
        self._filters = (
            shared_subscription(config.group, uplink_subscription(prefix)),
            shared_subscription(config.group, uplink_batch_subscription(prefix)),
            shared_subscription(config.group, presence_subscription(prefix)),
        )
        self._broker = config.broker
        self.client_id = config.client_id or f"ocpp-worker-{uuid.uuid4().hex[:12]}"
        self.stats = WorkerStats()

        self._queues: list[asyncio.Queue[_Item]] = [
            asyncio.Queue() for _ in range(config.consumers)
        ]
        self._pending = 0
        #: Messages admitted and not yet finished (a batch is one): what
        #: ``max_pending`` bounds, as the broker's in-flight window does.
        self._messages = 0
        self._refusal_logged_at = float("-inf")
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True
        self._stopping = False
        self._session: Session | None = None
        self._connected = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._replies = _Replies(self, prefix, config.batch_bytes, config.batch_window)
        self._consumers: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start consuming and connecting (in the background; see ``wait_subscribed``)."""
        if self._supervisor is not None:
            raise RuntimeError("worker already started")
        loop = asyncio.get_running_loop()
        self._consumers = [
            loop.create_task(self._consume(queue), name=f"mqtt-worker-consumer-{n}")
            for n, queue in enumerate(self._queues)
        ]
        self._supervisor = loop.create_task(
            supervise(
                self._connect, self._serve, self._config.backoff, facts={"clientId": self.client_id}
            ),
            name="mqtt-worker-connection",
        )
        log.info(
            "worker starting",
            extra={
                "broker": str(self._broker),
                "group": self._config.group,
                "clientId": self.client_id,
                "consumers": self._config.consumers,
            },
        )

    async def wait_subscribed(self, timeout: float | None) -> None:
        """Wait until the worker is connected and subscribed; TimeoutError if
        not within ``timeout`` seconds (None: as long as it takes)."""
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def stop(self, timeout: float = 5.0) -> None:
        """Unsubscribe, let admitted messages finish (within ``timeout``), disconnect.

        What is still unhandled at the deadline is acknowledged as not
        processed and dropped; the chargers' own retries cover it.
        """
        if self._supervisor is None or self._stopping:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._stopping = True
        session = self._session
        if session is not None and self._subscribed.is_set():
            try:
                await session.unsubscribe(self._filters, timeout=min(_ACK_TIMEOUT, timeout))
            except (TimeoutError, OSError) as exc:
                log.warning("unsubscribe failed", extra={"error": repr(exc)})
        self._subscribed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - loop.time()))
        self._accepting = False
        unfinished = self._pending
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        for queue in self._queues:
            while not queue.empty():
                self._finish(queue.get_nowait(), _NOT_PROCESSED)
        # Let the acknowledgements of the last messages reach the socket: the
        # callbacks finish on the next turn of the loop, the PUBACK is written on the one after.
        for _ in range(3):
            await asyncio.sleep(0)
        self._supervisor.cancel()  # closes the session it serves
        await asyncio.gather(self._supervisor, return_exceptions=True)
        self._connected.clear()
        log.info(
            "worker stopped",
            extra={"unfinished": unfinished, "frames": self.stats.frames},
        )

    # -- publishing ------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1, waiting (up to ``publish_wait``) for a connection and
        for room in the broker's in-flight window; ``PublishError`` after that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.publish_wait
        while True:
            session = self._session
            if session is not None and session.usable:
                if session.publish(topic, payload):
                    return
                wait_for_room = True
            else:
                wait_for_room = False
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PublishError(
                    f"broker {self._broker} did not take a frame for {topic!r}"
                    f" within {self._config.publish_wait:g} s"
                )
            if wait_for_room:
                await asyncio.sleep(min(_WINDOW_POLL, remaining))
            else:
                # The supervisor has not noticed the loss yet; it sets the
                # event again once a new connection is up.
                self._connected.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._connected.wait(), remaining)

    # -- the connection --------------------------------------------------------------

    async def _connect(self) -> Session:
        config = self._config
        session = Session(
            self.client_id,
            on_message=self._on_message,
            ack_when_handled=True,
            receive_maximum=config.receive_maximum,
            session_expiry=config.session_expiry,
        )
        uplinks, batches, presence = self._filters
        subscriptions = (
            ()  # stopping: a connection to finish publishing with, no new messages
            if self._stopping
            else (
                Subscription(uplinks),
                Subscription(batches),
                Subscription(presence, retained=config.replay_presence),
            )
        )
        await session.start(
            self._broker,
            subscriptions=subscriptions,
            keepalive=config.keepalive,
            timeout=config.connect_timeout,
        )
        return session

    async def _serve(self, session: Session) -> None:
        self._session = session
        self._connected.set()
        if not self._stopping:
            self._subscribed.set()
        log.info(
            "connected to the broker",
            extra={"broker": str(self._broker), "subscriptions": list(self._filters)},
        )
        try:
            await session.wait_lost()
        finally:
            self._session = None
            self._connected.clear()
            self._subscribed.clear()

    # -- intake ------------------------------------------------------------------------

    def _on_message(
        self, topic: str | bytes, payload: bytes, qos: int
    ) -> int | asyncio.Future[int]:
        """The session's callback: admit the message now (arrival order); the
        PUBACK's reason code, or a future of it that resolves once handled.

        Never raises: the broker would then get no PUBACK at all.
        """
        ack = self._admit(topic, payload, qos)
        if isinstance(ack, int):
            return ack
        if ack is None:
            return _SUCCESS
        return ack.future if ack.future is not None else _SUCCESS

    def _admit(self, topic: Any, payload: bytes, qos: int) -> _Ack | int | None:
        """Queue the message's items for their chargers' consumers: what tells
        the PUBACK (None for QoS 0), or the reason code it is refused with."""
        if not self._accepting:
            self.stats.refused += 1
            return _NOT_PROCESSED
        if self._messages >= self._config.max_pending:
            self.stats.refused += 1
            now = asyncio.get_running_loop().time()
            if now - self._refusal_logged_at >= _REFUSAL_LOG_PERIOD:
                # Once per period: an overload must not also flood the logs.
                self._refusal_logged_at = now
                log.warning(
                    "worker full: messages refused",
                    extra={"pending": self._pending, "refusedSoFar": self.stats.refused},
                )
            return _QUOTA_EXCEEDED
        try:
            if not isinstance(topic, str):
                raise ValueError("topic is not UTF-8")
            items = self._items(topic, payload)
        except ValueError as exc:
            self.stats.dropped += 1
            log.warning("message dropped", extra={"topic": str(topic), "reason": str(exc)})
            return _BAD_PAYLOAD if isinstance(exc, _BadBatch) else _BAD_TOPIC
        if not items:
            return _SUCCESS  # an empty batch: nothing to do
        future = asyncio.get_running_loop().create_future() if qos > 0 else None
        ack = _Ack(future, len(items), self._message_finished)
        self._messages += 1
        self._pending += len(items)
        self._idle.clear()
        queues = self._queues
        for item in items:
            item.ack = ack
            consumer = zlib.crc32(item.charge_point_id.encode("utf-8")) % len(queues)
            queues[consumer].put_nowait(item)
        return ack if future is not None else None

    def _message_finished(self) -> None:
        self._messages -= 1

    def _items(self, topic: str, payload: bytes) -> list[_Item]:
        levels = topic.split("/")
        kind = levels[1] if len(levels) > 1 else ""
        if kind == "in":
            charge_point_id, protocol, route = parse_uplink(topic, self._prefix)
            return [_Item(_Kind.UPLINK, charge_point_id, protocol, route, payload, None)]
        if kind == "presence":
            charge_point_id = parse_presence(topic, self._prefix)
            return [_Item(_Kind.PRESENCE, charge_point_id, "", "", payload, None)]
        if kind == "batch":
            return self._batch(parse_uplink_batch(topic, self._prefix), payload)
        raise ValueError("not an uplink, batch or presence topic")

    def _batch(self, route: str, payload: bytes) -> list[_Item]:
        try:
            entries, skipped = decode_uplink_batch(payload)
        except ValueError as exc:
            raise _BadBatch(str(exc)) from None
        self.stats.batches += 1
        if skipped:
            self.stats.dropped += len(skipped)
            log.warning("batch items dropped", extra={"route": route, "reasons": skipped[:10]})
        return [
            _Item(_Kind.PRESENCE, e.charge_point_id, "", "", e.payload, None)
            if e.kind == PRESENCE
            else _Item(_Kind.UPLINK, e.charge_point_id, e.kind, route, e.payload, None)
            for e in entries
        ]

    def _finish(self, item: _Item, code: int) -> None:
        if item.ack is not None:
            item.ack.done(code)
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()
        self._replies.settle(self._pending)

    # -- handling ----------------------------------------------------------------------

    async def _consume(self, queue: asyncio.Queue[_Item]) -> None:
        """Handle one charger's items in order. An answer is left to be
        published with its route's others: the consumer goes on to the next
        item at once, and the item counts as handled (its PUBACK) once its
        answer is published."""
        while True:
            item = await queue.get()
            code = _NOT_PROCESSED
            sent: asyncio.Future[None] | None = None
            try:
                if item.kind is _Kind.UPLINK:
                    sent = await self._uplink(item)
                else:
                    await self._presence_message(item)
                code = _SUCCESS
            except asyncio.CancelledError:
                raise
            except Exception:
                self._failed(item)
                code = _SUCCESS  # handled as well as it ever will be; no redelivery helps
            finally:
                if sent is None:
                    self._finish(item, code)
            if sent is not None:
                sent.add_done_callback(functools.partial(self._answered, item))

    def _answered(self, item: _Item, sent: asyncio.Future[None]) -> None:
        if sent.cancelled() or sent.exception() is not None:
            self._failed(item, sent.exception() if not sent.cancelled() else None)
        else:
            self.stats.answers += 1
        self._finish(item, _SUCCESS)

    def _failed(self, item: _Item, error: BaseException | None = None) -> None:
        self.stats.failed += 1
        facts = {"chargePointId": item.charge_point_id, "kind": item.kind.value}
        if error is None:
            log.exception("message failed", extra=facts)
        else:
            log.error(
                "message failed: its answer was not published",
                extra={**facts, "reason": str(error)},
            )

    async def _uplink(self, item: _Item) -> asyncio.Future[None] | None:
        """Handle a frame; what tells when its answer is published, if it has one."""
        self.stats.frames += 1
        answer = await self._handler.handle(item.charge_point_id, item.protocol, item.payload)
        if answer is None:
            return None
        sent = self._replies.add(item.route, item.charge_point_id, answer)
        self._replies.settle(self._pending)
        return sent

    async def _presence_message(self, item: _Item) -> None:
        facts: dict[str, Any] = {"chargePointId": item.charge_point_id}
        try:
            presence = routable_presence(item.payload, self._prefix, item.charge_point_id)
        except ValueError as exc:
            self.stats.dropped += 1
            log.warning("presence dropped: malformed", extra={**facts, "reason": str(exc)})
            return
        facts.update(connected=presence.connected, route=presence.route, at=presence.at)
        if await self._presence.record(item.charge_point_id, presence):
            self.stats.presence_recorded += 1
            log.info("presence recorded", extra=facts)
        else:
            self.stats.presence_ignored += 1
            log.info("presence ignored: the record is newer or the same", extra=facts)


class _Replies:
    """Answers waiting to be published, per route; each batch of them goes out
    as one publish (``ocppj.batch``) of at most ``limit`` bytes.

    ``settle(pending)`` flushes once every admitted item (``pending``) is
    waiting for its answer here: nothing more can join this round. A timer
    of ``window`` seconds flushes a round that never settles (a steady
    stream), and a route whose answers fill a batch goes at once.
    """

    def __init__(self, worker: MqttWorker, prefix: str, limit: int, window: float) -> None:
        self._worker = worker
        self._prefix = prefix
        self._limit = limit
        self._window = window
        #: route -> (charge point, answer, told when published), in order.
        self._waiting: dict[str, list[tuple[str, bytes, asyncio.Future[None]]]] = {}
        self._sizes: dict[str, int] = {}
        self._count = 0
        #: Answers added and not yet published (waiting, or being published).
        self._outstanding = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, route: str, charge_point_id: str, frame: bytes) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        sent: asyncio.Future[None] = loop.create_future()
        self._waiting.setdefault(route, []).append((charge_point_id, frame, sent))
        self._count += 1
        self._outstanding += 1
        size = self._sizes.get(route, BATCH_OVERHEAD) + len(frame) + len(charge_point_id) + 8
        self._sizes[route] = size
        if size >= self._limit:
            self._flush([route])
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self._flush_all)
        return sent

    def settle(self, pending: int) -> None:
        if self._count and self._outstanding >= pending:
            self._flush_all()

    def _flush_all(self) -> None:
        self._flush(list(self._waiting))

    def _flush(self, routes: list[str]) -> None:
        for route in routes:
            answers = self._waiting.pop(route, None)
            self._sizes.pop(route, None)
            if answers:
                self._count -= len(answers)
                task = asyncio.get_running_loop().create_task(self._publish(route, answers))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if not self._waiting and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _publish(
        self, route: str, answers: list[tuple[str, bytes, asyncio.Future[None]]]
    ) -> None:
        start = 0
        try:
            publishes = downlink_publishes(
                self._prefix, route, [(cp, frame) for cp, frame, _ in answers], self._limit
            )
        except ValueError as exc:  # a route or identity that makes no topic
            self._resolve(answers, exc)
            return
        for topic, payload, count in publishes:
            chunk, start = answers[start : start + count], start + count
            try:
                await self._worker.publish(topic, payload)
            except Exception as exc:  # PublishError
                self._resolve(chunk, exc)
                continue
            self._worker.stats.answer_publishes += 1
            self._resolve(chunk, None)

    def _resolve(
        self, chunk: list[tuple[str, bytes, asyncio.Future[None]]], error: Exception | None
    ) -> None:
        self._outstanding -= len(chunk)
        for _, _, sent in chunk:
            if sent.done():
                continue
            if error is None:
                sent.set_result(None)
            else:
                sent.set_exception(error)
