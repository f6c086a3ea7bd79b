"""Frames to charge points over the MQTT worker's own broker connection.

The twin of ``iot_outbound.IotOutbound`` for the long-running worker: a
charge point is held by one gateway connection, its *route*, and a frame for
it goes to ``{prefix}/out/{route}/{cp}``. Commands the backend starts
(remote start / stop) look the route and the subprotocol up in the presence
record that the worker keeps in the charger's shadow,
``state.reported.connection = {"connected", "route", "protocol", "since"}``.

This module does no MQTT itself: it publishes through a ``Publisher`` (the
``ocppgw.mqtt_worker.MqttWorker``), so that replies and commands share the
worker's one connection, and it imports neither gmqtt nor boto3.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ocppj import DEFAULT_PREFIX, Downlink, downlink_topic, uplink_subscription

from ..ports import ChargePointOffline, ShadowStore
from ._presence import Connection, connection_record, find_connection

__all__ = [
    "Connection",
    "MqttOutbound",
    "PublishError",
    "Publisher",
    "connection_record",
]

log = logging.getLogger(__name__)


class PublishError(Exception):
    """The broker could not take a frame in time; the message names the topic."""


class Publisher(Protocol):
    """Something that publishes a frame with QoS 1 (the worker's connection)."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish, or raise ``PublishError`` if the broker stays unreachable."""
        ...


class MqttOutbound:
    """An ``Outbound`` that publishes to the route held in the charger's presence record.

    The publisher may be attached after construction: the worker that
    publishes needs the processor, whose services need this outbound (the
    embedded default gives its bus a handler last for the same reason).
    """

    def __init__(
        self,
        shadows: ShadowStore,
        prefix: str = DEFAULT_PREFIX,
        publisher: Publisher | None = None,
    ) -> None:
        uplink_subscription(prefix)  # refuses a prefix that is not one topic level
        self._shadows = shadows
        self._prefix = prefix
        self._publisher = publisher

    def attach(self, publisher: Publisher) -> None:
        """Publish through ``publisher`` from now on."""
        self._publisher = publisher

    async def subprotocol(self, charge_point_id: str) -> str | None:
        connection = await self.connection(charge_point_id)
        return None if connection is None else connection.protocol

    async def send(self, charge_point_id: str, downlink: Downlink) -> None:
        connection = await self.connection(charge_point_id)
        if connection is None:
            raise ChargePointOffline(f"charge point {charge_point_id!r} is not connected")
        if self._publisher is None:
            raise RuntimeError("MqttOutbound has no publisher attached")
        topic = downlink_topic(self._prefix, connection.route, charge_point_id)
        await self._publisher.publish(topic, downlink.frame)
        log.debug("frame sent", extra={"chargePointId": charge_point_id, "route": connection.route})

    async def connection(self, charge_point_id: str) -> Connection | None:
        """The charger's route and protocol from its presence record, or None if offline."""
        return await find_connection(self._shadows, charge_point_id)
