"""Frames to charge points over a publish/subscribe broker, by route.

A charge point is held by one gateway connection, its *route*, and a frame
for it goes to ``{prefix}/out/{route}/{cp}``, which only that connection
subscribes to. Commands the backend starts (remote start / stop) look the
route and the subprotocol up in the presence record kept in the charger's
shadow, ``state.reported.connection = {"connected", "route", "protocol",
"since"}``; replies to a charger's CALL go to the route the CALL came from.

How a frame is published is the ``Publisher``'s business: the MQTT worker's
own broker connection (``ocppgw.mqtt_worker.MqttWorker``), or IoT Core's data
plane (``iot_publisher.IotDataPublisher``). This module imports neither
gmqtt nor boto3.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ocppj import DEFAULT_PREFIX, Downlink, downlink_topic, uplink_subscription

from ..ports import ChargePointOffline, ShadowStore
from ._presence import Connection, find_connection

__all__ = ["Connection", "PublishError", "Publisher", "RoutedOutbound"]

log = logging.getLogger(__name__)


class PublishError(Exception):
    """The broker did not take a frame; the message names the topic."""


class Publisher(Protocol):
    """Something that publishes a frame with QoS 1."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish, or raise ``PublishError`` if the broker does not take it."""
        ...


class RoutedOutbound:
    """An ``Outbound`` that publishes to the route held in the charger's presence record.

    The publisher may be attached after construction: the MQTT worker that
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
        await self.reply(connection.route, charge_point_id, downlink.frame)

    async def reply(self, route: str, charge_point_id: str, frame: bytes) -> None:
        """Publish ``frame`` to the charge point held by ``route`` (QoS 1).

        ``ValueError`` if the route cannot make a topic, ``PublishError`` if
        the broker does not take the frame.
        """
        if self._publisher is None:
            raise RuntimeError("RoutedOutbound has no publisher attached")
        topic = downlink_topic(self._prefix, route, charge_point_id)
        facts = {"chargePointId": charge_point_id, "route": route}
        try:
            await self._publisher.publish(topic, frame)
        except PublishError as exc:
            log.warning("publish failed", extra={**facts, "error": str(exc)})
            raise
        log.debug("frame published", extra=facts)

    async def connection(self, charge_point_id: str) -> Connection | None:
        """The charger's route and protocol from its presence record, or None if offline."""
        return await find_connection(self._shadows, charge_point_id)
