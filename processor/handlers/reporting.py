"""Messages a charger sends to tell, not to ask: acknowledged and recorded.

DataTransfer, FirmwareStatusNotification, SecurityEventNotification and
(2.0.1) NotifyEvent each leave their latest occurrence in the shadow, small
enough for IoT Core's 8 KB document limit (no vendor data, no event lists).
"""

from __future__ import annotations

from typing import Any

from ocppj import OcppVersion

from ..context import Context
from ..router import ALL_VERSIONS, HandlerSet

__all__ = ["handlers"]

handlers = HandlerSet()


@handlers.on("DataTransfer", versions=ALL_VERSIONS)
async def data_transfer(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    await ctx.report(
        {
            "lastDataTransfer": {
                "vendorId": request["vendorId"],
                "messageId": request.get("messageId"),
                "at": ctx.now(),
            }
        }
    )
    # No vendor extension is implemented: the specification's answer for a
    # vendorId the receiver does not know.
    return {"status": "UnknownVendorId"}


@handlers.on("FirmwareStatusNotification", versions=ALL_VERSIONS)
async def firmware_status(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    firmware = {"status": request["status"], "requestId": request.get("requestId"), "at": ctx.now()}
    await ctx.report({"firmware": firmware})
    return {}


@handlers.on("SecurityEventNotification", versions=ALL_VERSIONS)
async def security_event(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    event = {
        "type": request["type"],
        "timestamp": request["timestamp"],
        "techInfo": request.get("techInfo"),
    }
    await ctx.report({"lastSecurityEvent": event})
    return {}


@handlers.on("NotifyEvent", versions=[OcppVersion.V201])
async def notify_event(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    summary = {
        "generatedAt": request["generatedAt"],
        "seqNo": request["seqNo"],
        "events": len(request["eventData"]),
        "triggers": sorted({event["trigger"] for event in request["eventData"]}),
    }
    await ctx.report({"lastNotifyEvent": summary})
    return {}
