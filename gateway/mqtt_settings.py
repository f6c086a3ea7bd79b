"""Settings of the MQTT bus, and the TLS context that AWS IoT Core needs.

One frozen object, validated when it is made (errors read ``field: problem``)
and built by the deployable from its environment: nothing here reads the
environment. The defaults are AWS IoT Core's per-connection quotas, so a
gateway configured only with a URL and an id stays within them.
"""

from __future__ import annotations

import os
import re
import secrets
import ssl
import tempfile
from dataclasses import dataclass, field

from mqttio import Backoff, BrokerAddress
from ocppj import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_PREFIX,
    MAX_BATCH_BYTES,
    MAX_IDENTITY,
    presence_subscription,
    uplink_topic,
)

__all__ = ["MqttSettings", "new_gateway_id", "ssl_context_from_pem"]

# Letters, digits, '_' and '-': a valid MQTT client id on every broker, an
# AWS IoT policy variable value, and one topic level. No '.', which joins the
# gateway id to the connection number in a route.
_GATEWAY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The longest level an ASCII identity can need (every character escaped) and
# the longest subprotocol: if this topic fits AWS IoT's 256 bytes, every
# ASCII identity's topics fit.
_WORST_IDENTITY = "%" * MAX_IDENTITY
_LONGEST_PROTOCOL = "ocpp2.0.1"
#: Routes carry at most three digits of connection number (see ``max_connections``).
_MAX_POOL = 1000


def new_gateway_id() -> str:
    """A fresh gateway id (``gw-`` and 8 hex digits) for a process that has
    no stable name of its own: pool connections of two gateways must never
    share a client id, or the broker disconnects one for the other."""
    return f"gw-{secrets.token_hex(4)}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    #: ``mqtt://[user[:password]@]host[:port]`` (plain, 1883) or ``mqtts://``
    #: (TLS, 8883): see ``mqttio.BrokerAddress``. Not in ``repr``: it may
    #: carry a password; log ``broker`` instead.
    url: str = field(repr=False)
    #: Names this gateway process; pool connection ``n`` is client id and
    #: route ``{gateway_id}.{n}``. Unique per process (see ``new_gateway_id``).
    gateway_id: str
    #: First level of every topic (the topic contract's ``prefix``).
    prefix: str = DEFAULT_PREFIX
    #: Connections opened at start, and the most the pool grows to under load.
    min_connections: int = 1
    max_connections: int = 16
    #: Publishes per second per connection (AWS IoT Core: 100, counting both
    #: directions, and it drops the excess).
    publish_rate: int = 100
    #: Unacknowledged QoS 1 publishes per connection (AWS IoT Core: 100).
    max_inflight: int = 100
    #: The largest batch (payload bytes): frames that queue on a connection go
    #: out together in one publish of at most this size (``ocppj.batch``). The
    #: default fits AWS IoT Core's 5 KB metering unit with the topic; at most
    #: 131,072 (IoT Core's payload limit is 128 KB); 0 sends one frame per publish.
    batch_bytes: int = DEFAULT_BATCH_BYTES
    #: Seconds the head of the line may wait for company while less than a
    #: batch waits and the connection is under its quota (0: it goes at once,
    #: alone if it is alone). Every publish is billed: the window is what
    #: fills batches at a steady load below the quota.
    batch_window: float = 0.1
    #: Frames the bus holds (waiting, or sent and not yet acknowledged) before
    #: ``publish`` raises ``BusFull``; what rides out a broker outage.
    buffer_size: int = 10_000
    #: MQTT keepalive in seconds (AWS IoT Core accepts 30 to 1200).
    keepalive: int = 60
    #: Seconds one connection attempt (TCP, TLS, CONNACK, SUBACK) may take.
    connect_timeout: float = 10.0
    #: Reconnect backoff: the first delay and the ceiling, in seconds.
    reconnect_initial: float = 1.0
    reconnect_max: float = 30.0
    #: Presence messages are retained, so that a consumer that subscribes
    #: later learns who is connected where.
    retain_presence: bool = True
    #: The TLS context of ``mqtts://`` (``ssl_context_from_pem`` for AWS IoT
    #: Core); None uses the system's CAs without a client certificate.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_url()
        self._check_names()
        self._check_pool()
        self._check_timing()

    @property
    def broker(self) -> BrokerAddress:
        """The broker, parsed from ``url`` (credentials included)."""
        return BrokerAddress.parse(self.url)

    @property
    def backoff(self) -> Backoff:
        """How a lost pool connection backs off before connecting again."""
        return Backoff(self.reconnect_initial, self.reconnect_max)

    def route(self, index: int) -> str:
        """The route (and client id) of pool connection ``index``."""
        return f"{self.gateway_id}.{index}"

    def _check_url(self) -> None:
        try:
            broker = BrokerAddress.parse(self.url)
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from None
        if self.ssl_context is not None and not broker.tls:
            raise ValueError("ssl_context: given for a plain mqtt:// URL; use mqtts://")

    def _check_names(self) -> None:
        try:
            presence_subscription(self.prefix)
        except ValueError as exc:
            raise ValueError(f"prefix: {exc}") from None
        if not isinstance(self.gateway_id, str) or not _GATEWAY_ID.fullmatch(self.gateway_id):
            raise ValueError(
                f"gateway_id: {self.gateway_id!r} must be 1 to 64 letters, digits, '_' or '-'"
            )
        try:
            uplink_topic(self.prefix, _WORST_IDENTITY, _LONGEST_PROTOCOL, self.route(_MAX_POOL - 1))
        except ValueError as exc:
            raise ValueError(f"gateway_id: with this prefix, {exc}") from None

    def _check_pool(self) -> None:
        counts = ("min_connections", "max_connections", "publish_rate", "max_inflight")
        for name in (*counts, "buffer_size", "keepalive"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"{name}: must be a positive whole number")
        if self.max_connections < self.min_connections:
            raise ValueError("max_connections: must be at least min_connections")
        if self.max_connections > _MAX_POOL:
            raise ValueError(f"max_connections: at most {_MAX_POOL}")
        if self.max_inflight > 65_534:
            raise ValueError("max_inflight: MQTT packet ids allow at most 65534")
        if not _is_int(self.batch_bytes) or not 0 <= self.batch_bytes <= MAX_BATCH_BYTES:
            raise ValueError(f"batch_bytes: must be a whole number from 0 to {MAX_BATCH_BYTES:,}")
        if self.keepalive > 65_535:
            raise ValueError("keepalive: MQTT allows at most 65535 seconds")

    def _check_timing(self) -> None:
        for name in ("connect_timeout", "reconnect_initial", "reconnect_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}: must be a positive number of seconds")
        window = self.batch_window
        if isinstance(window, bool) or not isinstance(window, int | float) or not 0 <= window <= 1:
            raise ValueError("batch_window: must be a number of seconds from 0 to 1")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max: must be at least reconnect_initial")


def _refuse_password() -> bytes:
    # A passphrase would make OpenSSL prompt on the terminal of a server.
    raise ValueError("private_key: encrypted keys are not supported")


def ssl_context_from_pem(root_ca: str, certificate: str, private_key: str) -> ssl.SSLContext:
    """A client TLS context for AWS IoT Core (mutual TLS) from PEM *contents*.

    The secrets arrive as strings (the seed injects them). The CA loads from
    memory and is the only one trusted. Python's ``ssl`` reads a certificate
    and key only from a file, so they are written to a temporary file that
    only this user may read (``mkstemp`` creates it 0600) and that is deleted
    as soon as they are loaded, success or not.
    """
    for name, text in (
        ("root_ca", root_ca),
        ("certificate", certificate),
        ("private_key", private_key),
    ):
        if not isinstance(text, str) or "-----BEGIN " not in text or not text.isascii():
            raise ValueError(f"{name}: not PEM text")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=root_ca)
    except ssl.SSLError as exc:
        raise ValueError(f"root_ca: cannot be loaded ({exc.reason or exc})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    descriptor, path = tempfile.mkstemp(prefix="mqtt-client-", suffix=".pem")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(f"{certificate.strip()}\n{private_key.strip()}\n")
        context.load_cert_chain(path, password=_refuse_password)
    except ssl.SSLError as exc:
        raise ValueError(
            f"certificate: it and the private key cannot be loaded together ({exc.reason or exc})"
        ) from None
    finally:
        os.unlink(path)
    return context
