"""What the SQLite and DynamoDB registries share, without importing either store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ocppj import is_password_hash

__all__ = ["check_password_hashes"]


def check_password_hashes(passwords: Mapping[str, str], ids: Iterable[str]) -> dict[str, str]:
    """``passwords`` as a dict, if every key is among ``ids`` and every value a hash.

    Both registries check before writing anything: a password for an identity
    not being registered is a caller's mistake, and a value that is not a hash
    may be a plain password that must never be stored.
    """
    wanted = set(ids)
    hashes = dict(passwords)
    for cp, password_hash in hashes.items():
        if cp not in wanted:
            raise ValueError(f"passwords: {cp!r} is not among the identities to register")
        if not is_password_hash(password_hash):
            raise ValueError(f"passwords: the value for {cp!r} is not a password hash")
    return hashes
