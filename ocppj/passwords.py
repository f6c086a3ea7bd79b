"""Charge point passwords of OCPP security profiles 1 and 2 (HTTP Basic auth).

A charger authenticates its WebSocket upgrade with HTTP Basic auth: the
username is its identity and the password its ``AuthorizationKey`` (1.6) or
``BasicAuthPassword`` (2.0.1), 16 to 40 bytes. The 1.6 security whitepaper
lets the key be 20 raw bytes, so a password is ``bytes`` here and is never
assumed to be UTF-8.

Why a fast hash: these passwords are machine-generated random keys (the CSMS
sets them, :func:`generate_password` makes them with ~186 bits of entropy),
not human-chosen words, so no dictionary exists to grind through and a slow
KDF (bcrypt, scrypt) would only cost the gateway CPU on every reconnect of a
whole fleet. A 16-byte random salt still keeps equal passwords from having
equal hashes, and a stolen table from being matched against precomputed
tables.

The digest is HMAC-SHA256 keyed with the salt rather than ``sha256(salt +
password)``: HMAC is a PRF by construction, so there is no question of
length extension or of where salt ends and password begins. The stored form
is ``sha256$<salt, base64>$<digest, base64>``; the scheme name leaves room
for another algorithm later.

Nothing here logs; callers must never log a password or a hash either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from .identity import InvalidIdentity, check_identity

__all__ = [
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_BYTES",
    "PASSWORD_ALPHABET",
    "check_password_length",
    "generate_password",
    "hash_password",
    "is_password_hash",
    "parse_basic_auth",
    "verify_password",
]

MIN_PASSWORD_BYTES = 16
MAX_PASSWORD_BYTES = 40
#: Letters and digits without the look-alikes 0/O/o, 1/l/I: the password may
#: be typed into a charger's web page. Alphanumerics are also safe in every
#: OCPP character set for the key and in any configuration value.
PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
GENERATED_LENGTH = 32

_SCHEME = "sha256"
_SALT_BYTES = 16
_DIGEST_BYTES = 32
#: Longest token68 a valid header can carry (48 identity characters of up to
#: 4 UTF-8 bytes, a colon, 40 password bytes, in base64), with room to spare;
#: anything longer is refused before it is decoded.
_MAX_TOKEN_CHARS = 512


def check_password_length(password: bytes) -> bytes:
    """Return ``password`` if it is 16 to 40 bytes long, else raise ``ValueError``."""
    if not MIN_PASSWORD_BYTES <= len(password) <= MAX_PASSWORD_BYTES:
        raise ValueError(
            f"a charge point password must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} "
            f"bytes (OCPP AuthorizationKey / BasicAuthPassword), not {len(password)}"
        )
    return password


def generate_password() -> str:
    """A new random password: 32 unambiguous letters and digits (about 186 bits)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_LENGTH))


def hash_password(password: bytes) -> str:
    """The storable form of ``password``: ``sha256$<salt>$<digest>`` with a fresh salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _digest(salt, password)
    return f"{_SCHEME}${_b64(salt)}${_b64(digest)}"


def verify_password(password: bytes, stored: str) -> bool:
    """True if ``password`` matches the stored hash.

    The comparison takes the same time wherever the digests differ. A stored
    value that is not a hash this module made (or not a string at all) never
    matches and never raises: a damaged registry entry locks one charger out
    rather than failing the handshake code.
    """
    parsed = _parse(stored)
    if parsed is None or not isinstance(password, bytes | bytearray | memoryview):
        return False
    salt, expected = parsed
    return hmac.compare_digest(_digest(salt, bytes(password)), expected)


def is_password_hash(value: object) -> bool:
    """True if ``value`` has the form :func:`hash_password` produces.

    Registries check this before storing, so a plain password passed where a
    hash belongs is refused instead of stored.
    """
    return _parse(value) is not None


def parse_basic_auth(header_value: str) -> tuple[str, bytes] | None:
    """(identity, password) from an ``Authorization: Basic <base64>`` value, or None.

    The scheme name is case-insensitive (RFC 7235). The decoded bytes are
    split at the first ``:`` (an identity never holds one, a password may);
    the username must be UTF-8 and a valid identity, the password stays raw
    bytes. Padding may be left off, as some clients do. Anything else (another
    scheme, bad base64, no colon) gives None; so does an over-long value,
    before any decoding.
    """
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic" or not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        return None
    username, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        identity = check_identity(username.decode("utf-8"))
    except (UnicodeDecodeError, InvalidIdentity):
        return None
    return identity, password


def _digest(salt: bytes, password: bytes) -> bytes:
    return hmac.digest(salt, password, hashlib.sha256)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse(stored: object) -> tuple[bytes, bytes] | None:
    """(salt, digest) of a stored hash, or None if it is not one."""
    if not isinstance(stored, str):
        return None
    parts = stored.split("$")
    if len(parts) != 3 or parts[0] != _SCHEME:
        return None
    try:
        salt = base64.b64decode(parts[1], validate=True)
        digest = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(salt) != _SALT_BYTES or len(digest) != _DIGEST_BYTES:
        return None
    return salt, digest
