"""BootNotification: a charge point says who it is.

The charge point's description goes to ``state.reported.chargingStation`` in
the seed's shape (2.0.1 names; 1.6 fields are mapped onto them). A boot
replaces the whole description: a field the charger no longer sends is
removed (written as ``null``), not left over from an earlier boot.
"""

from __future__ import annotations

from typing import Any

from ocppj import OcppVersion

from ..context import Context
from ..router import HandlerSet

__all__ = ["handlers"]

handlers = HandlerSet()


@handlers.on("BootNotification", versions=[OcppVersion.V201])
async def boot_notification_v201(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    station = request["chargingStation"]
    modem = station.get("modem") or {}
    description = _description(
        model=station["model"],
        vendorName=station["vendorName"],
        serialNumber=station.get("serialNumber"),
        firmwareVersion=station.get("firmwareVersion"),
        modem=_object_or_null(iccid=modem.get("iccid"), imsi=modem.get("imsi")),
    )
    return await _accept(ctx, description, reason=request["reason"])


@handlers.on("BootNotification", versions=[OcppVersion.V16])
async def boot_notification_v16(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    description = _description(
        model=request["chargePointModel"],
        vendorName=request["chargePointVendor"],
        serialNumber=request.get("chargePointSerialNumber"),
        chargeBoxSerialNumber=request.get("chargeBoxSerialNumber"),
        firmwareVersion=request.get("firmwareVersion"),
        modem=_object_or_null(iccid=request.get("iccid"), imsi=request.get("imsi")),
        meter=_object_or_null(
            type=request.get("meterType"), serialNumber=request.get("meterSerialNumber")
        ),
    )
    return await _accept(ctx, description, reason=None)


async def _accept(ctx: Context, description: dict[str, Any], reason: str | None) -> dict[str, Any]:
    now = ctx.now()
    await ctx.shadows.update(
        ctx.charge_point_id,
        {
            "reported": {
                "chargingStation": description,
                "ocppVersion": ctx.version.value,
                "lastBoot": {"at": now, "reason": reason},
            }
        },
    )
    return {"status": "Accepted", "currentTime": now, "interval": ctx.config.heartbeat_interval}


#: Every key either version writes: a boot writes them all (null where it has
#: no value), so a charger that moves from 1.6 to 2.0.1 keeps no 1.6 leftovers.
_DESCRIPTION_KEYS = (
    "model",
    "vendorName",
    "serialNumber",
    "chargeBoxSerialNumber",
    "firmwareVersion",
    "modem",
    "meter",
)


def _description(**fields: Any) -> dict[str, Any]:
    return {key: fields.get(key) for key in _DESCRIPTION_KEYS}


def _object_or_null(**fields: Any) -> dict[str, Any] | None:
    """The fields as an object (absent ones as null), or null if none is present."""
    return fields if any(value is not None for value in fields.values()) else None
