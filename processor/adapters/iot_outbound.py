"""Frames to charge points over AWS IoT Core.

A charge point is held by one gateway connection, its *route*; a frame for
it is published on ``{prefix}/out/{route}/{cp}``, which only that connection
subscribes to. Replies to a charger's CALL go to the route the CALL came from
(``publish_reply``). Commands the backend starts look the route up in the
charger's shadow, where the MQTT worker keeps the presence record
``state.reported.connection = {"connected", "route", "protocol", "since"}``.

Frames go out with QoS 1: IoT Core then holds them until the gateway's
connection acknowledges, and the gateway tolerates a duplicate (OCPP-J
answers are matched by message id).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import Executor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ocppj import DEFAULT_PREFIX, Downlink, downlink_topic, uplink_subscription

from ..ports import ChargePointOffline, ShadowStore
from ._presence import Connection, find_connection

__all__ = ["Connection", "IotOutbound", "PublishError", "publish_reply"]

log = logging.getLogger(__name__)


class PublishError(Exception):
    """IoT Core did not take a frame; the message names the charge point and topic."""


class IotOutbound:
    """An ``Outbound`` that publishes to the route held in the charger's presence record."""

    def __init__(
        self,
        client: Any,
        shadows: ShadowStore,
        prefix: str = DEFAULT_PREFIX,
        executor: Executor | None = None,
    ) -> None:
        uplink_subscription(prefix)  # refuses a prefix that is not one topic level
        self._client = client
        self._shadows = shadows
        self._prefix = prefix
        self._executor = executor

    async def subprotocol(self, charge_point_id: str) -> str | None:
        connection = await self.connection(charge_point_id)
        return None if connection is None else connection.protocol

    async def send(self, charge_point_id: str, downlink: Downlink) -> None:
        connection = await self.connection(charge_point_id)
        if connection is None:
            raise ChargePointOffline(f"charge point {charge_point_id!r} is not connected")
        await publish_reply(
            self._client,
            self._prefix,
            connection.route,
            charge_point_id,
            downlink.frame,
            executor=self._executor,
        )

    async def connection(self, charge_point_id: str) -> Connection | None:
        """The charger's route and protocol from its presence record, or None if offline."""
        return await find_connection(self._shadows, charge_point_id)


async def publish_reply(
    client: Any,
    prefix: str,
    route: str,
    charge_point_id: str,
    frame: bytes,
    *,
    executor: Executor | None = None,
) -> None:
    """Publish ``frame`` (QoS 1) to the charge point held by ``route``."""
    topic = downlink_topic(prefix, route, charge_point_id)
    publish = functools.partial(client.publish, topic=topic, qos=1, payload=frame)
    try:
        await asyncio.get_running_loop().run_in_executor(executor, publish)
    except (ClientError, BotoCoreError) as exc:
        code = (
            str(exc.response.get("Error", {}).get("Code", "ClientError"))
            if isinstance(exc, ClientError)
            else type(exc).__name__
        )
        log.warning(
            "publish failed",
            extra={"chargePointId": charge_point_id, "route": route, "error": code},
        )
        raise PublishError(
            f"could not publish to charge point {charge_point_id!r} on {topic!r}: {code}"
        ) from exc
    log.debug("frame published", extra={"chargePointId": charge_point_id, "route": route})
