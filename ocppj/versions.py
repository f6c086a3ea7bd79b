"""OCPP versions and the WebSocket subprotocols that select them."""

from __future__ import annotations

import enum

__all__ = ["OcppVersion", "SUBPROTOCOLS", "version_for"]


class OcppVersion(enum.Enum):
    """A message-set version: decides schemas, action names and error spellings."""

    V16 = "1.6"
    V201 = "2.0.1"


#: Subprotocol name -> message set. ``ocpp2.0`` chargers speak the 2.0.1
#: message set in practice (2.0 was superseded by 2.0.1 within months), so they
#: share its schemas.
SUBPROTOCOLS: dict[str, OcppVersion] = {
    "ocpp1.6": OcppVersion.V16,
    "ocpp2.0": OcppVersion.V201,
    "ocpp2.0.1": OcppVersion.V201,
}


def version_for(subprotocol: str) -> OcppVersion:
    """Return the message set of a subprotocol; ``KeyError`` names an unknown one."""
    return SUBPROTOCOLS[subprotocol]
