"""Presence in AWS IoT shadows, safe when several Lambda containers race.

The processor functions take one SQS queue side by side, so one charger's
disconnect (from the gateway it left) and connect (on the one it joined)
can be judged at the same instant by two containers, each against the
record it read. Read, decide, write in two steps would let the stale
disconnect land last and call a connected charger offline.

IoT Core's shadows carry a version and take an update only at the version
named (optimistic locking). So each write names the version its decision
was made on; a conflict means another write came first, and the record is
read and judged again.
"""

from __future__ import annotations

from ..presence import Presence, presence_applies
from ._presence import connection_record
from .iot_shadow import IotShadowStore, ShadowStoreError, ShadowVersionConflict

__all__ = ["IotPresenceLedger"]


class IotPresenceLedger:
    """A ``PresenceLedger`` whose write is conditional on what it read."""

    def __init__(self, shadows: IotShadowStore, attempts: int = 5) -> None:
        self._shadows = shadows
        self._attempts = attempts

    async def record(self, charge_point_id: str, presence: Presence) -> bool:
        for _ in range(self._attempts):
            document = await self._shadows.get(charge_point_id)
            if not presence_applies(presence, connection_record(document)):
                return False
            # A charger without a shadow has no version to hold: its first
            # write is unconditional, as IoT Core offers nothing narrower.
            version = None if document is None else int(document["version"])
            try:
                await self._shadows.update(
                    charge_point_id,
                    {"reported": {"connection": presence.record()}},
                    version=version,
                )
            except ShadowVersionConflict:
                continue
            return True
        raise ShadowStoreError(
            f"the shadow of {charge_point_id!r} changed under {self._attempts} attempts "
            "to record its presence"
        )
