"""One MQTT session over gmqtt, by composition: the only module that touches gmqtt.

gmqtt is a good MQTT 5 codec with three habits that a server cannot live
with, each handled here so that its users never see them:

* It reconnects by itself, after a fixed delay, forever and in step with
  every other client; a reconnect already sleeping survives ``disconnect()``
  and comes back as a second client with the same id. A ``Session`` is one
  connection and never reconnects: ``mqttio.supervise`` makes a fresh
  session with backoff instead. gmqtt has no switch for that (its
  ``reconnect_retries=0`` still reconnects once: it allows attempts while
  failures <= retries), so the session sets a retry budget that is already
  spent (``_NO_RECONNECTS``) and drops gmqtt's log line about it.
* It reports a PUBACK only by removing the message from its store. The
  store is a public constructor argument, so a session gives gmqtt a small
  one of its own (``_Inflight``) and turns removals into ``on_ack(token)``:
  the publisher learns which of its publishes the broker took, and, when a
  session ends, which it did not (``unacknowledged``).
* It answers ``OverflowError`` when the broker's Receive Maximum is used
  up; ``publish`` returns False instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

from .address import BrokerAddress

__all__ = ["ConnectError", "MessageHandler", "PubAck", "Session", "Subscription"]

log = logging.getLogger(__name__)

#: gmqtt reconnects while ``failures <= reconnect_retries`` (-1: forever);
#: below -1 no attempt is allowed.
_NO_RECONNECTS = -2
#: Seconds to wait for a DISCONNECT to be written when closing.
_CLOSE_TIMEOUT = 1.0

#: ``on_message(topic, payload, qos)``: the PUBACK reason code (0: success),
#: or an awaitable of it when the session acknowledges once handled. A topic
#: that is not UTF-8 arrives as bytes.
MessageHandler = Callable[[str | bytes, bytes, int], int | Awaitable[int]]


class PubAck(enum.IntEnum):
    """The MQTT 5 PUBACK reason codes a message handler answers with."""

    SUCCESS = 0x00
    UNSPECIFIED_ERROR = 0x80
    TOPIC_NAME_INVALID = 0x90
    PAYLOAD_FORMAT_INVALID = 0x99
    QUOTA_EXCEEDED = 0x97


class ConnectError(Exception):
    """The broker answered, but refused what the session asked for."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter to subscribe to with QoS ``qos``; ``retained=False``
    asks for no retained messages on subscribing (MQTT 5 Retain Handling 2)."""

    topic_filter: str
    qos: int = 1
    retained: bool = True


class _QuietReconnectRefusal(logging.Filter):
    """gmqtt logs an error each time the spent budget stops its reconnect: that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "max number of failed connection attempts" not in record.getMessage()


#: gmqtt logs every packet at INFO; owners quieten this logger (``ocppgw.logs``).
_GMQTT_LOG = logging.getLogger("mqttio.gmqtt")
_GMQTT_LOG.addFilter(_QuietReconnectRefusal())


class _Inflight:
    """gmqtt's store of unacknowledged QoS 1 publishes, kept by the session.

    gmqtt stores each QoS 1 PUBLISH as it writes it and removes it on its
    PUBACK. The publish's packet id is known only at that moment, so the
    session names the token of the publish it is about to write
    (``sending``) and the store pairs the two.
    """

    __slots__ = ("_on_ack", "_waiting", "sending")

    def __init__(self, on_ack: Callable[[object], None] | None) -> None:
        self._on_ack = on_ack
        self._waiting: dict[int, tuple[bytes, object]] = {}
        self.sending: object = None

    @property
    def count(self) -> int:
        # Not __len__: gmqtt takes ``persistent_storage or its own``, and an
        # empty store must not read as "none given".
        return len(self._waiting)

    def take_all(self) -> list[object]:
        """The tokens of every publish not acknowledged, oldest first; forgets them."""
        tokens = [token for _, token in self._waiting.values() if token is not None]
        self._waiting.clear()
        return tokens

    # gmqtt's storage interface -------------------------------------------

    def push_message(self, mid: int, raw_package: bytes) -> None:
        token, self.sending = self.sending, None
        previous = self._waiting.get(mid)
        if token is None and previous is not None:
            token = previous[1]  # QoS 2 swaps PUBLISH for PUBREL; kept for completeness
        self._waiting[mid] = (raw_package, token)

    def remove_message_by_mid(self, mid: int) -> None:
        entry = self._waiting.pop(mid, None)
        if entry is not None and entry[1] is not None and self._on_ack is not None:
            self._on_ack(entry[1])

    @property
    def is_empty(self) -> bool:
        return not self._waiting

    async def wait_empty(self) -> None:
        # gmqtt waits for a resumed session's replay to drain; a session
        # here is always fresh and has nothing to replay.
        return None

    def clear(self) -> None:
        # A CONNACK without a session: nothing of a fresh client to drop.
        return None

    def get_all(self) -> list[tuple[int, bytes]]:
        return [(mid, raw) for mid, (raw, _) in self._waiting.items()]


class Session:
    """One MQTT 5 connection: connect and subscribe, publish, receive, lose it once.

    ``on_message`` gets every message received. With ``ack_when_handled``
    the PUBACK waits for the awaitable it returns (the broker then holds at
    most ``receive_maximum`` unacknowledged messages for this client);
    otherwise gmqtt acknowledges on receipt. ``on_ack(token)`` is told of
    each PUBACK of a ``publish`` made with a token; ``on_lost()`` once, when
    the connection is gone, whoever ended it.
    """

    def __init__(
        self,
        client_id: str,
        *,
        on_message: MessageHandler,
        on_ack: Callable[[object], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        ack_when_handled: bool = False,
        receive_maximum: int | None = None,
        session_expiry: int = 0,
    ) -> None:
        properties: dict[str, Any] = {"session_expiry_interval": session_expiry}
        if receive_maximum is not None:
            properties["receive_maximum"] = receive_maximum
        self.client_id = client_id
        self._inflight = _Inflight(on_ack)
        self._client = gmqtt.Client(
            client_id,
            # A kept session (expiry > 0) is resumed by the next session of
            # the same id: the broker keeps its subscriptions and messages.
            clean_session=session_expiry == 0,
            optimistic_acknowledgement=not ack_when_handled,
            persistent_storage=self._inflight,
            logger=_GMQTT_LOG,
            **properties,
        )
        self._client.set_config({"reconnect_retries": _NO_RECONNECTS})
        self._on_message = on_message
        self._on_lost = on_lost
        self._lost = asyncio.Event()
        self._acks: dict[int, asyncio.Future[tuple[int, ...]]] = {}
        self._broker_receive_maximum = 65_535
        client = self._client
        # gmqtt holds the PUBACK only for a coroutine function's result.
        client.on_message = self._message_handled if ack_when_handled else self._message
        client.on_connect = self._connected
        client.on_subscribe = self._subscribed
        client.on_unsubscribe = self._unsubscribed
        client.on_disconnect = self._disconnected

    # connecting ----------------------------------------------------------

    async def start(
        self,
        broker: BrokerAddress,
        *,
        subscriptions: Sequence[Subscription] = (),
        ssl_context: ssl.SSLContext | None = None,
        keepalive: int = 60,
        timeout: float = 10.0,
    ) -> None:
        """Connect and subscribe within ``timeout`` seconds (TCP, TLS,
        CONNACK, SUBACK), or close and raise: ``OSError`` or ``TimeoutError``
        when the broker is not reached, ``ConnectError`` when it refuses."""
        client = self._client
        if broker.username is not None:
            client.set_auth_credentials(broker.username, broker.password)
        try:
            async with asyncio.timeout(timeout):
                await client.connect(
                    broker.host,
                    broker.port,
                    ssl=ssl_context or broker.tls,
                    keepalive=keepalive,
                    version=MQTTv50,
                )
                if subscriptions:
                    await self._subscribe(subscriptions)
        except BaseException:
            await self.close()
            raise
        if self._lost.is_set():
            raise ConnectionError(f"connection to {broker} lost while subscribing")

    async def _subscribe(self, subscriptions: Sequence[Subscription]) -> None:
        mid = self._client.subscribe(
            [
                gmqtt.Subscription(
                    s.topic_filter, qos=s.qos, retain_handling_options=0 if s.retained else 2
                )
                for s in subscriptions
            ]
        )
        granted = await self._acknowledgement(mid)
        refused = [
            s.topic_filter for s, code in zip(subscriptions, granted, strict=False) if code >= 0x80
        ]
        if refused or len(granted) != len(subscriptions):
            raise ConnectError(f"the broker refused subscriptions {refused} (codes {granted})")

    async def unsubscribe(self, topic_filters: Sequence[str], timeout: float = 5.0) -> None:
        """Unsubscribe and wait (at most ``timeout``) for the UNSUBACK."""
        async with asyncio.timeout(timeout):
            await self._acknowledgement(self._client.unsubscribe(list(topic_filters)))

    async def _acknowledgement(self, mid: int) -> tuple[int, ...]:
        future: asyncio.Future[tuple[int, ...]] = asyncio.get_running_loop().create_future()
        self._acks[mid] = future
        lost: asyncio.Future[object] = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait((future, lost), return_when=asyncio.FIRST_COMPLETED)
            if not future.done():
                raise ConnectionError("connection lost while waiting for the broker's answer")
            return future.result()
        finally:
            lost.cancel()
            self._acks.pop(mid, None)
            if not future.done():
                future.cancel()

    # using it ------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Connected, acknowledged by the broker, and not lost since."""
        return not self._lost.is_set() and self._client.is_connected

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    async def wait_lost(self) -> None:
        """Return once the connection is gone."""
        await self._lost.wait()

    @property
    def broker_receive_maximum(self) -> int:
        """QoS 1 publishes the broker lets this client have unacknowledged (CONNACK)."""
        return self._broker_receive_maximum

    @property
    def inflight(self) -> int:
        """Publishes written and not yet acknowledged."""
        return self._inflight.count

    def publish(
        self,
        topic: str | bytes,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        token: object = None,
    ) -> bool:
        """Write a PUBLISH; False if the broker's in-flight window is full.

        A QoS 1 publish with a ``token`` is reported to ``on_ack`` when the
        broker acknowledges it, or returned by ``unacknowledged`` if the
        session ends first. Other failures (a closing transport) raise.
        """
        self._inflight.sending = token
        try:
            self._client.publish(gmqtt.Message(topic, payload, qos=qos, retain=retain))
        except OverflowError:
            return False
        finally:
            self._inflight.sending = None
        return True

    def unacknowledged(self) -> list[object]:
        """The tokens of the publishes the broker has not acknowledged,
        oldest first; the session forgets them (call once it is lost)."""
        return self._inflight.take_all()

    async def close(self, timeout: float = _CLOSE_TIMEOUT) -> None:
        """Disconnect politely if connected, else release the socket; never raises."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await self._client.disconnect()
        self._mark_lost()

    # gmqtt's callbacks ---------------------------------------------------

    def _message(
        self, client: Any, topic: str | bytes, payload: bytes, qos: int, properties: Any
    ) -> None:
        self._on_message(topic, payload, qos)

    async def _message_handled(
        self, client: Any, topic: str | bytes, payload: bytes, qos: int, properties: Any
    ) -> int:
        code = self._on_message(topic, payload, qos)
        return await code if inspect.isawaitable(code) else code

    def _connected(self, client: Any, flags: int, rc: int, properties: Any) -> None:
        # gmqtt never uses more than receive maximum - 1 packet ids at once.
        # gmqtt 0.7 passes the CONNACK's properties (values in lists); 0.8
        # merges this client's CONNECT properties over them (plain values),
        # so a client that sets its own receive maximum reads that one: a
        # cap no higher than its own, and running out of ids is handled anyway.
        value = (properties or {}).get("receive_maximum", 65_535)
        maximum = value[0] if isinstance(value, list | tuple) else value
        self._broker_receive_maximum = max(1, int(maximum) - 1)

    def _subscribed(self, client: Any, mid: int, granted: Sequence[int], properties: Any) -> None:
        self._resolve(mid, granted)

    def _unsubscribed(self, client: Any, mid: int, granted: Sequence[int]) -> None:
        self._resolve(mid, granted)

    def _resolve(self, mid: int, granted: Sequence[int]) -> None:
        future = self._acks.get(mid)
        if future is not None and not future.done():
            future.set_result(tuple(int(code) for code in granted))

    def _disconnected(self, client: Any, packet: Any, exc: Any = None) -> None:
        self._mark_lost()

    def _mark_lost(self) -> None:
        if self._lost.is_set():
            return
        self._lost.set()
        if self._on_lost is not None:
            try:
                self._on_lost()
            except Exception:
                log.exception("on_lost failed", extra={"clientId": self.client_id})
