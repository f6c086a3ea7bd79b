"""AWS IoT thing names for charge point identities.

A thing name is 1 to 128 characters of ``[a-zA-Z0-9:_-]``, while an identity
is up to 48 printable characters of any script (``RDAM 123``, ``a.b``,
``été``). The mapping keeps letters, digits, ``_`` and ``-`` and writes every
other character as ``:`` followed by the lower-case hex of its UTF-8 bytes
(``RDAM 123`` -> ``RDAM:20123``, ``a.b`` -> ``a:2eb``).

Why it is injective: ``:`` never stands for itself (identities cannot hold
it, and it would be escaped anyway), so every ``:`` starts an escape, and the
first byte of a UTF-8 sequence says how many bytes (so hex digits) follow.
A name therefore reads back one way only: the code is prefix-free.

A name longer than 128 characters (only identities with many escaped
characters: 48 four-byte characters need 432) becomes ``h:`` followed by the
SHA-256 hex digest of the identity's UTF-8 bytes. Two hashed names collide
only if SHA-256 does. A hashed name could equal a plain one only if an
identity starting with ``h`` and an escaped character happened to spell out,
in exactly 66 characters, the digest of some other identity: a chance of
about 2**-256 per pair, which is what "injective in practice" means here.
"""

from __future__ import annotations

import hashlib

__all__ = ["MAX_THING_NAME", "thing_name"]

MAX_THING_NAME = 128

_KEPT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def thing_name(charge_point_id: str) -> str:
    """The IoT thing (and shadow) name of a charge point identity."""
    if not charge_point_id:
        raise ValueError("charge point identity is empty")
    name = "".join(c if c in _KEPT else ":" + c.encode("utf-8").hex() for c in charge_point_id)
    if len(name) <= MAX_THING_NAME:
        return name
    return "h:" + hashlib.sha256(charge_point_id.encode("utf-8")).hexdigest()
