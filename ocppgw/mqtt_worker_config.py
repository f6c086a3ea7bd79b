"""How a processor worker meets its broker (``ocppgw.mqtt_worker.MqttWorker``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mqttio import Backoff, BrokerAddress
from ocppj import DEFAULT_BATCH_BYTES, MAX_BATCH_BYTES, shared_subscription

__all__ = ["DEFAULT_GROUP", "WorkerConfig"]

DEFAULT_GROUP = "ocpp-workers"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker meets its broker and how much it takes on at once.

    Errors read ``field: problem`` like the other component configs.
    """

    #: The broker, e.g. ``mqtt://127.0.0.1:1883`` (``mqttio.BrokerAddress``).
    #: Not in ``repr``: it may carry a password; log ``broker`` instead.
    url: str = field(default="mqtt://127.0.0.1:1883", repr=False)
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
    #: The largest downlink batch (payload bytes, ``ocppj.batch``): answers for
    #: one route that are ready together go out in one publish of at most this
    #: size; 0 publishes each answer alone.
    batch_bytes: int = DEFAULT_BATCH_BYTES
    #: The longest an answer waits for company (seconds): answers go out as
    #: soon as every admitted message is handled or waiting for its answer to
    #: be published, and at the latest after this.
    batch_window: float = 0.01
    #: Take the retained presence of every charger when subscribing (see the
    #: module's docstring): costs a shadow read per charger per (re)subscription.
    replay_presence: bool = False

    def __post_init__(self) -> None:
        try:
            BrokerAddress.parse(self.url)
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from None
        try:
            shared_subscription(self.group, "#")
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
        self._check_batches()

    def _check_batches(self) -> None:
        if not 0 <= self.batch_bytes <= MAX_BATCH_BYTES:
            raise ValueError(f"batch_bytes: must be a whole number from 0 to {MAX_BATCH_BYTES:,}")
        if not 0 < self.batch_window <= 1:
            raise ValueError("batch_window: must be a number of seconds above 0, at most 1")

    @property
    def broker(self) -> BrokerAddress:
        return BrokerAddress.parse(self.url)

    @property
    def backoff(self) -> Backoff:
        """How the worker backs off before connecting again."""
        return Backoff(self.backoff_initial, self.backoff_max)
