"""Presence: gateways' announcements that a charge point connected or disconnected.

A gateway publishes, retained, on ``{prefix}/presence/{cp}``::

    {"connected": true, "route": "gw-7f3a.2", "protocol": "ocpp1.6",
     "at": "2026-05-01T10:00:00.000Z"}

and whoever consumes it (the MQTT worker, or the Lambda behind the IoT rule)
keeps the latest one in the charger's shadow as
``state.reported.connection = {"connected", "route", "protocol", "since"}``,
the record the outbound adapters read to find the route of a command.

This module parses and orders presence and records it in any
``ShadowStore``; it imports no MQTT client, so both consumers share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from ocppj import downlink_topic, version_for

from .adapters._presence import connection_record
from .ports import ShadowStore

__all__ = [
    "Presence",
    "PresenceLedger",
    "ShadowPresenceLedger",
    "presence_applies",
    "routable_presence",
]


@dataclass(frozen=True, slots=True)
class Presence:
    """A gateway's announcement that a charge point connected or disconnected."""

    connected: bool
    route: str
    protocol: str
    #: When it happened, RFC 3339 with a zone, as the gateway wrote it.
    at: str

    @classmethod
    def from_payload(cls, payload: bytes) -> Presence:
        """Parse ``{"connected", "route", "protocol", "at"}``; ``ValueError`` names the field."""
        data = orjson.loads(payload)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        connected, route = data.get("connected"), data.get("route")
        protocol, at = data.get("protocol"), data.get("at")
        if not isinstance(connected, bool):
            raise ValueError("connected: must be true or false")
        if not isinstance(route, str) or not route:
            raise ValueError("route: must be a non-empty string")
        if not isinstance(protocol, str) or not protocol:
            raise ValueError("protocol: must be a non-empty string")
        if connected:
            try:
                version_for(protocol)
            except KeyError:
                raise ValueError(f"protocol: {protocol!r} is not an OCPP subprotocol") from None
        if not isinstance(at, str):
            raise ValueError("at: must be an RFC 3339 timestamp")
        _instant(at)
        return cls(connected, route, protocol, at)

    @property
    def instant(self) -> datetime:
        return _instant(self.at)

    def record(self) -> dict[str, Any]:
        """The shadow's connection record this presence makes."""
        return {
            "connected": self.connected,
            "route": self.route,
            "protocol": self.protocol,
            "since": self.at,
        }


def routable_presence(payload: bytes, prefix: str, charge_point_id: str) -> Presence:
    """``Presence.from_payload``, also refusing a route no command could be sent to.

    The record is only worth keeping if a command can be routed with it, so
    the route must make a valid ``{prefix}/out/{route}/{cp}`` topic.
    ``ValueError`` (``orjson.JSONDecodeError`` is one) names the problem.
    """
    presence = Presence.from_payload(payload)
    downlink_topic(prefix, presence.route, charge_point_id)
    return presence


def _instant(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError("at: must be an RFC 3339 timestamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"at: {text!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"at: {text!r} has no time zone")
    return moment


def presence_applies(presence: Presence, recorded: Any) -> bool:
    """Whether ``presence`` should replace the connection record ``recorded``.

    Presence messages of one charger may arrive out of order: they come from
    different gateways (a charger that reconnects elsewhere), and with a
    shared subscription (or SQS) different consumers handle them side by side. So:

    * a presence older than the record (by ``since``) is ignored;
    * a disconnect of route A never replaces a connect on route B: a gateway
      notices a dead connection late (keepalive), after the charger is
      already back on another route, and its "disconnected" is about a
      connection that is no longer the charger's;
    * a presence identical to the record changes nothing (a redelivery).

    A record that cannot be read is replaced.
    """
    if not isinstance(recorded, dict):
        return True
    try:
        since = _instant(recorded.get("since"))
    except ValueError:
        return True
    if presence.instant < since:
        return False
    if (
        not presence.connected
        and recorded.get("connected") is True
        and recorded.get("route") != presence.route
    ):
        return False
    return bool(recorded != presence.record())


class PresenceLedger(Protocol):
    """Where presence is recorded: the shadow's ``connection`` record."""

    async def record(self, charge_point_id: str, presence: Presence) -> bool:
        """Record ``presence`` unless ``presence_applies`` says no; True if written."""
        ...


class ShadowPresenceLedger:
    """Presence in any ``ShadowStore``, written with its conditional update.

    The store reads the record, lets ``presence_applies`` decide and writes
    as one step (``ShadowStore.update_if``), so consumers recording one
    charger side by side (two workers on one SQLite folder, two Lambda
    containers on one IoT shadow) cannot leave a stale record: the newer
    presence wins whatever the order.
    """

    def __init__(self, shadows: ShadowStore) -> None:
        self._shadows = shadows

    async def record(self, charge_point_id: str, presence: Presence) -> bool:
        return await self._shadows.update_if(
            charge_point_id,
            lambda document: presence_applies(presence, connection_record(document)),
            {"reported": {"connection": presence.record()}},
        )
