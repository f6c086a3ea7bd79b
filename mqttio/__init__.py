"""The MQTT layer every MQTT client of this project uses (gateway pool, processor worker).

* ``BrokerAddress``: one parser of broker URLs;
* ``Session``: one MQTT 5 connection over gmqtt, by composition;
* ``supervise``: connect, serve, reconnect with ``Backoff``, forever.

Nothing here knows OCPP or the topic contract (``ocppj.topics``).
"""

from __future__ import annotations

from .address import BrokerAddress
from .backoff import Backoff
from .session import ConnectError, MessageHandler, PubAck, Session, Subscription
from .supervisor import supervise

__all__ = [
    "Backoff",
    "BrokerAddress",
    "ConnectError",
    "MessageHandler",
    "PubAck",
    "Session",
    "Subscription",
    "supervise",
]
