"""The presence record in a charge point's shadow, read the same way by every
outbound adapter: ``state.reported.connection = {"connected", "route",
"protocol", "since"}``, written from the gateways' presence messages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..ports import ShadowStore

__all__ = ["Connection", "connection_record", "find_connection"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Connection:
    """Where a connected charge point is held."""

    route: str
    protocol: str


def connection_record(document: Any) -> Any:
    """``state.reported.connection`` of a shadow document, or None."""
    for key in ("state", "reported", "connection"):
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


async def find_connection(shadows: ShadowStore, charge_point_id: str) -> Connection | None:
    """The charger's route and protocol from its presence record, or None if offline."""
    record = connection_record(await shadows.get(charge_point_id))
    if not isinstance(record, dict) or record.get("connected") is not True:
        return None
    route, protocol = record.get("route"), record.get("protocol")
    if not (isinstance(route, str) and route and isinstance(protocol, str) and protocol):
        log.warning(
            "presence record without route or protocol", extra={"chargePointId": charge_point_id}
        )
        return None
    return Connection(route, protocol)
