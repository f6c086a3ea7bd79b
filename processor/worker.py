"""The processor worker: OCPP frames straight from the MQTT bus.

The MQTT twin of ``processor.aws_lambda``. Where IoT Core's rule hands frames
to a Lambda through SQS, a worker subscribes itself, with QoS 1, to

* ``$share/{group}/{prefix}/in/+/+/+``: every frame a charge point sent. The
  subscription is *shared*, so the broker gives each message to one worker of
  the group and several workers split the load;
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
answer goes back with QoS 1 to ``{prefix}/out/{route}/{cp}``, the route the
CALL came from. A presence message updates the shadow's connection record
``{"connected", "route", "protocol", "since"}`` unless the record already
says something newer (``presence_applies``). Presence itself, parsing and
ledgers, lives in ``processor.presence`` (shared with the Lambda); this
module re-exports its names.

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
what bounds the worker.) gmqtt runs an async ``on_message`` as one task per
message; each only queues its message and waits for its acknowledgement,
so their number is bounded the same way.

Connection. One MQTT connection per worker, supervised here rather than by
gmqtt: gmqtt reconnects with a fixed delay, and a reconnect that is already
sleeping survives ``disconnect()``, so a stopped worker could come back as a
zombie. The supervisor makes a fresh client per connection, reconnects with
jittered exponential backoff and subscribes again each time (clean sessions:
a worker's id means nothing after it is gone, and the group's other members
take the traffic meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import uuid
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import gmqtt  # type: ignore[import-untyped, unused-ignore]
from gmqtt.mqtt.constants import (  # type: ignore[import-untyped, unused-ignore]
    MQTTv50,
    PubAckReasonCode,
)

from ocppj import (
    DEFAULT_PREFIX,
    downlink_topic,
    parse_presence,
    parse_uplink,
    presence_subscription,
    uplink_subscription,
)

from .adapters.routed_outbound import PublishError
from .ports import ShadowStore
from .presence import (
    Presence,
    PresenceLedger,
    ShadowPresenceLedger,
    presence_applies,
    routable_presence,
)

__all__ = [
    "DEFAULT_GROUP",
    "BrokerAddress",
    "ClientFactory",
    "FrameHandler",
    "MqttClient",
    "MqttWorker",
    "Presence",
    "PresenceLedger",
    "ShadowPresenceLedger",
    "WorkerConfig",
    "WorkerStats",
    "presence_applies",
    "shared_subscription",
]

log = logging.getLogger(__name__)

DEFAULT_GROUP = "ocpp-workers"

#: PUBACK reason codes the worker answers with (MQTT 5; 3.1.1 has none).
_SUCCESS = int(PubAckReasonCode.SUCCESS)
_NOT_PROCESSED = int(PubAckReasonCode.UNSPECIFIED_ERROR)
_QUOTA_EXCEEDED = int(PubAckReasonCode.QUOTA_EXCEEDED)
_BAD_TOPIC = int(PubAckReasonCode.TOPIC_NAME_INVALID)

_SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True), "ssl": (8883, True)}
_LEVEL_FORBIDDEN = frozenset("/+#")

#: A connection that lived this long resets the backoff (seconds).
_STABLE_CONNECTION = 10.0
#: Bound on waiting for a SUBACK or UNSUBACK (seconds).
_ACK_TIMEOUT = 5.0
#: Pause between attempts while the broker's in-flight window is full (seconds).
_WINDOW_POLL = 0.005
#: At most one "worker full" log line per this many seconds.
_REFUSAL_LOG_PERIOD = 1.0


# -- configuration ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is: ``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL; ``ValueError`` says what is wrong without echoing a password."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError("the scheme must be mqtt:// or mqtts://")
        default_port, tls = _SCHEMES[scheme]
        if not parts.hostname:
            raise ValueError("no host name")
        try:
            port = parts.port or default_port
        except ValueError:
            raise ValueError("the port is not a TCP port number") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("a broker URL has no path, query or fragment")
        username = None if parts.username is None else unquote(parts.username)
        password = None if parts.password is None else unquote(parts.password)
        return cls(parts.hostname, port, tls, username, password)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker meets its broker and how much it takes on at once.

    Errors read ``field: problem`` like the other component configs.
    """

    #: The broker, e.g. ``mqtt://127.0.0.1:1883``.
    url: str = "mqtt://127.0.0.1:1883"
    #: The shared-subscription group; workers of one group split the messages.
    group: str = DEFAULT_GROUP
    #: Consumer tasks, i.e. messages handled concurrently (of different chargers).
    consumers: int = 8
    #: The Receive Maximum the worker announces: QoS 1 messages the broker may
    #: have outstanding with it (AWS IoT Core allows at most 100).
    receive_maximum: int = 100
    #: Messages admitted and not yet handled beyond which a message is refused.
    max_pending: int = 1000
    #: MQTT keepalive (seconds); a silent broker is noticed after twice this.
    keepalive: int = 30
    #: Bound on one connection attempt (TCP, TLS, CONNECT, SUBSCRIBE), seconds.
    connect_timeout: float = 10.0
    #: Reconnect backoff: the first delay, doubled per failure up to the maximum.
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: How long a publish waits for the connection to come back (seconds).
    publish_wait: float = 5.0
    #: MQTT client id; None makes ``ocpp-worker-<random>`` (clean sessions).
    client_id: str | None = None
    #: Seconds the broker keeps this worker's session (its subscriptions and
    #: the QoS 1 messages for it) while it is disconnected; 0: clean sessions.
    #: With a stable ``client_id``, a broker that persists sessions (IoT Core,
    #: Mosquitto with persistence) then loses nothing across a restart, even
    #: if the gateways reconnect before this worker does.
    session_expiry: int = 0
    #: Take the retained presence of every charger when subscribing (see the
    #: module's docstring): costs a shadow read per charger per (re)subscription.
    replay_presence: bool = False

    def __post_init__(self) -> None:
        try:
            BrokerAddress.parse(self.url)
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from None
        try:
            _check_group(self.group)
        except ValueError as exc:
            raise ValueError(f"group: {exc}") from None
        for name in ("consumers", "receive_maximum", "max_pending", "keepalive"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive whole number")
        if self.receive_maximum > 65535:
            raise ValueError("receive_maximum: at most 65535")
        for name in ("connect_timeout", "backoff_initial", "backoff_max", "publish_wait"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive number of seconds")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max: must not be less than backoff_initial")
        if self.client_id is not None and not self.client_id:
            raise ValueError("client_id: must not be empty")
        if self.session_expiry < 0:
            raise ValueError("session_expiry: cannot be negative")
        if self.session_expiry and self.client_id is None:
            raise ValueError("session_expiry: a kept session needs a stable client_id")

    @property
    def broker(self) -> BrokerAddress:
        return BrokerAddress.parse(self.url)


def _check_group(group: str) -> str:
    if not group:
        raise ValueError("is empty")
    bad = sorted(_LEVEL_FORBIDDEN.intersection(group))
    if bad:
        raise ValueError(f"{group!r} contains {', '.join(map(repr, bad))}")
    if not group.isprintable():
        raise ValueError(f"{group!r} contains control or non-printable characters")
    return group


def shared_subscription(group: str, topic_filter: str) -> str:
    """``topic_filter`` shared by ``group``: the broker gives each message to one member."""
    return f"$share/{_check_group(group)}/{topic_filter}"


# -- the MQTT client ---------------------------------------------------------------


class MqttClient(gmqtt.Client):  # type: ignore[misc, unused-ignore]
    """A gmqtt client for one connection, whose owner decides about reconnecting.

    gmqtt calls ``reconnect`` whenever the connection is lost or refused;
    here that only sets ``lost``. Subscribe and unsubscribe wait for the
    broker's acknowledgement. By default a QoS 1 message is acknowledged when
    an async ``on_message`` returns (pass ``optimistic_acknowledgement=True``
    to acknowledge on receipt, e.g. with a plain function).
    """

    def __init__(
        self,
        client_id: str,
        *,
        optimistic_acknowledgement: bool = False,
        clean_session: bool = True,
        **properties: Any,
    ) -> None:
        super().__init__(
            client_id,
            clean_session=clean_session,
            optimistic_acknowledgement=optimistic_acknowledgement,
            **properties,
        )
        self.lost = asyncio.Event()
        self._acks: dict[int, asyncio.Future[tuple[int, ...]]] = {}
        self.on_subscribe = self._acknowledged
        self.on_unsubscribe = self._unsubscribed
        self.on_disconnect = self._disconnected

    async def reconnect(self, delay: bool = False) -> None:
        """gmqtt's own reconnect, replaced: the owner is told and decides."""
        self.lost.set()

    async def open(self, broker: BrokerAddress, *, keepalive: int = 60) -> None:
        """Connect (MQTT 5); raise if the broker is unreachable or refuses."""
        if broker.username is not None:
            self.set_auth_credentials(broker.username, broker.password)
        await self.connect(
            broker.host, broker.port, ssl=broker.tls, keepalive=keepalive, version=MQTTv50
        )

    async def subscribe_all(
        self,
        filters: Sequence[str],
        qos: int = 1,
        timeout: float = _ACK_TIMEOUT,
        *,
        without_retained: Collection[str] = (),
    ) -> tuple[int, ...]:
        """Subscribe to every filter in one SUBSCRIBE; the granted codes, in order.

        Filters in ``without_retained`` get no retained messages on subscribing
        (MQTT 5 Retain Handling 2).
        """
        subscriptions = [
            gmqtt.Subscription(
                f, qos=qos, retain_handling_options=2 if f in without_retained else 0
            )
            for f in filters
        ]
        mid = self.subscribe(subscriptions)
        return await self._ack(mid, timeout)

    async def unsubscribe_all(
        self, filters: Sequence[str], timeout: float = _ACK_TIMEOUT
    ) -> tuple[int, ...]:
        mid = self.unsubscribe(list(filters))
        return await self._ack(mid, timeout)

    def try_publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Publish; False if the broker's in-flight window (its Receive Maximum) is full."""
        try:
            self.publish(topic, payload, qos=qos, retain=retain)
        except OverflowError:
            return False
        return True

    @property
    def usable(self) -> bool:
        """Connected, acknowledged, and not lost since."""
        return not self.lost.is_set() and self._connection is not None and self.is_connected

    async def close(self, timeout: float = 2.0) -> None:
        """Disconnect politely if the connection is up, else just release it."""
        connection = self._connection
        try:
            if connection is not None and not connection.is_closing():
                await asyncio.wait_for(self.disconnect(), timeout)
            elif connection is not None:
                await asyncio.wait_for(connection.close(), timeout)
        except (OSError, TimeoutError) as exc:
            log.debug("MQTT connection closed uncleanly", extra={"error": repr(exc)})

    async def _ack(self, mid: int, timeout: float) -> tuple[int, ...]:
        future = self._acks[mid] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._acks.pop(mid, None)

    def _acknowledged(self, client: Any, mid: int, granted: Sequence[int], props: Any) -> None:
        self._resolve(mid, granted)

    def _unsubscribed(self, client: Any, mid: int, granted: Sequence[int]) -> None:
        self._resolve(mid, granted)

    def _resolve(self, mid: int, granted: Sequence[int]) -> None:
        future = self._acks.get(mid)
        if future is not None and not future.done():
            future.set_result(tuple(int(code) for code in granted))

    def _disconnected(self, client: Any, packet: Any, exc: Any = None) -> None:
        self.lost.set()


class ClientFactory(Protocol):
    """Makes the client of one connection (a test seam; the default suits brokers)."""

    def __call__(
        self, client_id: str, *, receive_maximum: int, session_expiry: int = 0
    ) -> MqttClient: ...


def _default_client(client_id: str, *, receive_maximum: int, session_expiry: int = 0) -> MqttClient:
    # Session expiry 0: the session ends with the connection (clean sessions).
    return MqttClient(
        client_id,
        receive_maximum=receive_maximum,
        session_expiry_interval=session_expiry,
        clean_session=session_expiry == 0,
    )


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
    answers: int = 0
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


@dataclass(slots=True)
class _Item:
    kind: _Kind
    charge_point_id: str
    protocol: str
    route: str
    payload: bytes
    #: Resolved with the PUBACK reason code once handled; None for QoS 0.
    ack: asyncio.Future[int] | None


class MqttWorker:
    """Reads uplink frames and presence from a shared subscription; answers over MQTT.

    ``start()`` starts the consumers and the connection supervisor;
    ``wait_subscribed()`` waits until the subscriptions are in place;
    ``stop(timeout)`` unsubscribes, lets in-flight messages finish within the
    timeout, and disconnects. It also serves as the ``Publisher`` of
    ``processor.adapters.mqtt_outbound.MqttOutbound``.
    """

    def __init__(
        self,
        handler: FrameHandler,
        shadows: ShadowStore,
        prefix: str = DEFAULT_PREFIX,
        config: WorkerConfig | None = None,
        *,
        presence: PresenceLedger | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self._config = config = config or WorkerConfig()
        self._handler = handler
        self._presence = presence or ShadowPresenceLedger(shadows)
        self._prefix = prefix
        self._filters = (
            shared_subscription(config.group, uplink_subscription(prefix)),
            shared_subscription(config.group, presence_subscription(prefix)),
        )
        self._broker = config.broker
        self._client_factory = client_factory or _default_client
        self.client_id = config.client_id or f"ocpp-worker-{uuid.uuid4().hex[:12]}"
        self.stats = WorkerStats()

        self._queues: list[asyncio.Queue[_Item]] = [
            asyncio.Queue() for _ in range(config.consumers)
        ]
        self._pending = 0
        self._refusal_logged_at = float("-inf")
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True
        self._stopping = False
        self._client: MqttClient | None = None
        self._connected = asyncio.Event()
        self._subscribed = asyncio.Event()
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
        self._supervisor = loop.create_task(self._supervise(), name="mqtt-worker-connection")
        log.info(
            "worker starting",
            extra={
                "broker": str(self._broker),
                "group": self._config.group,
                "clientId": self.client_id,
                "consumers": self._config.consumers,
            },
        )

    async def wait_subscribed(self, timeout: float) -> None:
        """Wait until the worker is connected and subscribed; TimeoutError if not in time."""
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
        client = self._client
        if client is not None and self._subscribed.is_set():
            try:
                await client.unsubscribe_all(self._filters, timeout=min(_ACK_TIMEOUT, timeout))
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
        self._supervisor.cancel()
        await asyncio.gather(self._supervisor, return_exceptions=True)
        # Let the acknowledgements of the last messages reach the socket: the
        # callbacks finish on the next turn of the loop, gmqtt writes on the one after.
        for _ in range(3):
            await asyncio.sleep(0)
        if self._client is not None:
            await self._client.close()
            self._client = None
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
            client = self._client
            if client is not None and client.usable:
                if client.try_publish(topic, payload):
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

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            client = self._client_factory(
                self.client_id,
                receive_maximum=self._config.receive_maximum,
                session_expiry=self._config.session_expiry,
            )
            client.on_message = self._on_message
            try:
                await asyncio.wait_for(self._open(client), self._config.connect_timeout)
            except asyncio.CancelledError:
                await client.close()
                raise
            except Exception as exc:
                await client.close()
                delay = self._backoff(failures)
                failures += 1
                log.warning(
                    "broker connection failed; retrying",
                    extra={"broker": str(self._broker), "error": repr(exc), "retryIn": delay},
                )
                await asyncio.sleep(delay)
                continue
            self._client = client
            self._connected.set()
            if not self._stopping:
                self._subscribed.set()
            log.info(
                "connected to the broker",
                extra={"broker": str(self._broker), "subscriptions": list(self._filters)},
            )
            opened = loop.time()
            await client.lost.wait()
            self._client = None
            self._connected.clear()
            self._subscribed.clear()
            await client.close()
            if loop.time() - opened >= _STABLE_CONNECTION:
                failures = 0
            delay = self._backoff(failures)
            failures += 1
            log.warning(
                "broker connection lost; reconnecting",
                extra={"broker": str(self._broker), "retryIn": delay},
            )
            await asyncio.sleep(delay)

    async def _open(self, client: MqttClient) -> None:
        await client.open(self._broker, keepalive=self._config.keepalive)
        if self._stopping:
            return  # a connection to finish publishing with, no new messages
        presence = self._filters[1]
        granted = await client.subscribe_all(
            self._filters,
            qos=1,
            without_retained=() if self._config.replay_presence else (presence,),
        )
        refused = [f for f, code in zip(self._filters, granted, strict=False) if code >= 0x80]
        if refused or len(granted) != len(self._filters):
            raise ConnectionError(f"broker refused subscriptions {refused} (codes {granted})")

    def _backoff(self, failures: int) -> float:
        """Exponential, capped, with +-20 % jitter so that a fleet does not reconnect in step."""
        growth: float = 2.0 ** min(failures, 30)
        base = min(self._config.backoff_max, self._config.backoff_initial * growth)
        return round(base * random.uniform(0.8, 1.2), 3)

    # -- intake ------------------------------------------------------------------------

    async def _on_message(
        self, client: Any, topic: Any, payload: bytes, qos: int, properties: Any
    ) -> int:
        """gmqtt's callback: admit the message now (arrival order), PUBACK once handled.

        Never raises: gmqtt would then send no PUBACK at all.
        """
        item = self._admit(topic, payload, qos)
        if isinstance(item, int):
            return item
        if item.ack is None:
            return _SUCCESS
        return await item.ack

    def _admit(self, topic: Any, payload: bytes, qos: int) -> _Item | int:
        """Queue the message for its charger's consumer, or the reason code it is refused with."""
        if not self._accepting:
            self.stats.refused += 1
            return _NOT_PROCESSED
        if self._pending >= self._config.max_pending:
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
            item = self._item(topic, payload, qos)
        except ValueError as exc:
            self.stats.dropped += 1
            log.warning("message dropped", extra={"topic": str(topic), "reason": str(exc)})
            return _BAD_TOPIC
        self._pending += 1
        self._idle.clear()
        consumer = zlib.crc32(item.charge_point_id.encode("utf-8")) % len(self._queues)
        self._queues[consumer].put_nowait(item)
        return item

    def _item(self, topic: str, payload: bytes, qos: int) -> _Item:
        levels = topic.split("/")
        kind = levels[1] if len(levels) > 1 else ""
        if kind == "in":
            charge_point_id, protocol, route = parse_uplink(topic, self._prefix)
            item_kind = _Kind.UPLINK
        elif kind == "presence":
            charge_point_id, protocol, route = parse_presence(topic, self._prefix), "", ""
            item_kind = _Kind.PRESENCE
        else:
            raise ValueError("not an uplink or presence topic")
        ack = asyncio.get_running_loop().create_future() if qos > 0 else None
        return _Item(item_kind, charge_point_id, protocol, route, payload, ack)

    def _finish(self, item: _Item, code: int) -> None:
        if item.ack is not None and not item.ack.done():
            item.ack.set_result(code)
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    # -- handling ----------------------------------------------------------------------

    async def _consume(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            item = await queue.get()
            code = _NOT_PROCESSED
            try:
                if item.kind is _Kind.UPLINK:
                    await self._uplink(item)
                else:
                    await self._presence_message(item)
                code = _SUCCESS
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.failed += 1
                log.exception(
                    "message failed",
                    extra={"chargePointId": item.charge_point_id, "kind": item.kind.value},
                )
                code = _SUCCESS  # handled as well as it ever will be; no redelivery helps
            finally:
                self._finish(item, code)

    async def _uplink(self, item: _Item) -> None:
        self.stats.frames += 1
        answer = await self._handler.handle(item.charge_point_id, item.protocol, item.payload)
        if answer is None:
            return
        await self.publish(downlink_topic(self._prefix, item.route, item.charge_point_id), answer)
        self.stats.answers += 1

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
