"""The gateway's view of the registry: who may connect, and with what password.

The gateway asks its ``Directory`` once per handshake. Adapters live with the
processor's registries (``SqliteRegistry``, ``DynamoDbRegistry`` implement
``find``); the gateway never imports them, only this port.
"""

from __future__ import annotations

from typing import Protocol

from ocppj.access import ChargePointAccess

__all__ = ["ChargePointAccess", "Directory"]


class Directory(Protocol):
    """Registered charge points, looked up by identity."""

    async def find(self, charge_point_id: str) -> ChargePointAccess | None:
        """The charge point's access record, or None if it is not registered.

        Reads must be strongly consistent: a charger registered (or a password
        rotated) a moment ago is let in (or out) at once.
        """
        ...
