"""Charge point identities: the last segment of the WebSocket URL path.

OCPP-J puts the identity at the end of the connection URL, percent-encoded
(``RDAM 123`` arrives as ``RDAM%20123``; ``+`` is a literal plus, not a
space). It is at most 48 characters and holds no ``:``, because it doubles as
the HTTP Basic-auth username of security profiles 1 and 2.
"""

from __future__ import annotations

from urllib.parse import unquote

__all__ = ["MAX_IDENTITY", "InvalidIdentity", "check_identity", "identity_from_path"]

MAX_IDENTITY = 48


class InvalidIdentity(ValueError):
    """The text cannot be a charge point identity; the message says why."""


def check_identity(identity: str) -> str:
    """Return ``identity`` if it is a valid (decoded) identity, else raise."""
    if not identity:
        raise InvalidIdentity("identity is empty")
    if len(identity) > MAX_IDENTITY:
        raise InvalidIdentity(f"identity is longer than {MAX_IDENTITY} characters")
    if ":" in identity:
        raise InvalidIdentity("identity contains ':' (it is the Basic-auth username)")
    if "/" in identity:
        raise InvalidIdentity("identity contains '/'")
    if not identity.isprintable():
        raise InvalidIdentity("identity contains control or non-printable characters")
    return identity


def identity_from_path(path: bytes | str) -> str:
    """Decode the identity at the end of a request path such as ``/ocpp/CP%20001``."""
    if isinstance(path, bytes):
        try:
            path = path.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidIdentity("request path is not ASCII") from None
    path = path.partition("?")[0].partition("#")[0]
    segment = path.rpartition("/")[2]
    try:
        # unquote() never turns '+' into a space; that is what OCPP wants.
        identity = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise InvalidIdentity("identity is not valid percent-encoded UTF-8") from None
    return check_identity(identity)
