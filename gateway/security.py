"""OCPP security profiles, checked on the upgrade request.

Profile 1 and 2: HTTP Basic auth, username = identity, password = the
charger's AuthorizationKey (16-40 bytes, perhaps not UTF-8), compared against
a salted hash in constant time. Profile 2 adds TLS, which the listener
provides. Profile 3: mutual TLS; the client certificate's CN must be the
identity (and its O the operator, if configured). One profile per listener
(OCPP A00.FR.006): a charger never talks its way down to a weaker one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ocppj import ChargePointAccess, parse_basic_auth, verify_password

from .tls import peer_identity

if TYPE_CHECKING:
    from .config import GatewayConfig
    from .handshake import Request

__all__ = ["Credentials", "check_credentials"]

#: What the gateway needs to know of a registered charge point.
Credentials = ChargePointAccess


def check_credentials(
    config: GatewayConfig,
    charge_point_id: str,
    record: Credentials,
    request: Request,
    transport: asyncio.Transport,
) -> str | None:
    """None if the request may proceed, else why not (never the secret itself)."""
    profile = config.security_profile
    if profile in (1, 2):
        credentials = parse_basic_auth(request.headers.get("Authorization", ""))
        if credentials is None:
            return "missing or malformed Basic credentials"
        username, password = credentials
        if username != charge_point_id:
            return "the username is not the charge point's identity"
        if record.password_hash is None:
            return "no password is set for this charge point"
        if not verify_password(password, record.password_hash):
            return "wrong password"
    elif profile == 3:
        common_name, organization = peer_identity(transport.get_extra_info("peercert"))
        if common_name != charge_point_id:
            return "the client certificate is not this charge point's"
        if config.tls_organization is not None and organization != config.tls_organization:
            return "the client certificate is not the operator's"
    return None
