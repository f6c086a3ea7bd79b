"""Heartbeat and StatusNotification: is the charge point there, and how are its connectors.

Connector status goes to the shadow in each version's own addressing:
1.6 ``connectors.{connectorId}`` (0 is the charge point itself), 2.0.1
``evses.{evseId}.connectors.{connectorId}``.
"""

from __future__ import annotations

from typing import Any

from ocppj import OcppVersion

from ..context import Context
from ..router import ALL_VERSIONS, HandlerSet

__all__ = ["handlers"]

handlers = HandlerSet()


@handlers.on("Heartbeat", versions=ALL_VERSIONS)
async def heartbeat(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    # Deliberately no shadow write: heartbeats are the most frequent message,
    # and IoT Core caps shadow updates per thing. Presence tracks liveness.
    return {"currentTime": ctx.now()}


@handlers.on("StatusNotification", versions=[OcppVersion.V16])
async def status_notification_v16(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    connector = {
        "status": request["status"],
        "errorCode": request["errorCode"],
        "info": request.get("info"),
        "vendorId": request.get("vendorId"),
        "vendorErrorCode": request.get("vendorErrorCode"),
        "timestamp": request.get("timestamp") or ctx.now(),
    }
    connectors = {str(request["connectorId"]): connector}
    await ctx.shadows.update(ctx.charge_point_id, {"reported": {"connectors": connectors}})
    return {}


@handlers.on("StatusNotification", versions=[OcppVersion.V201])
async def status_notification_v201(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    connector = {"status": request["connectorStatus"], "timestamp": request["timestamp"]}
    evses = {str(request["evseId"]): {"connectors": {str(request["connectorId"]): connector}}}
    await ctx.shadows.update(ctx.charge_point_id, {"reported": {"evses": evses}})
    return {}
