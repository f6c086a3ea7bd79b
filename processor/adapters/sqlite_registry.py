"""The charge point registry in SQLite: who may connect, and with what password."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from ocppj import ChargePointAccess, check_identity, is_password_hash

from ..clock import rfc3339
from ._registry import check_password_hashes
from ._sqlite import Database, transaction

__all__ = ["SqliteRegistry"]


class SqliteRegistry:
    """Registered charge points. Reads are point look-ups on the primary key
    (microseconds), cheap enough for the gateway's synchronous handshake.

    Passwords (security profiles 1 and 2) are stored only as hashes made by
    ``ocppj.hash_password``; this class never sees a password.
    """

    def __init__(self, database: Database) -> None:
        self._db = database.connection

    async def is_registered(self, charge_point_id: str) -> bool:
        return charge_point_id in self

    async def registered(self) -> list[tuple[str, str]]:
        return self.list()

    async def find(self, charge_point_id: str) -> ChargePointAccess | None:
        """The gateway's look-up (``gateway.directory.Directory``).

        A primary-key read on the loop thread's own connection: it takes
        microseconds, less than handing it to a thread would.
        """
        return self.find_sync(charge_point_id)

    def find_sync(self, charge_point_id: str) -> ChargePointAccess | None:
        """The charge point's access record, or None if it is not registered."""
        row = self._db.execute(
            "SELECT password_hash FROM charge_points WHERE charge_point_id = ?",
            (charge_point_id,),
        ).fetchone()
        return None if row is None else ChargePointAccess(charge_point_id, row[0])

    def __contains__(self, charge_point_id: object) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM charge_points WHERE charge_point_id = ?", (charge_point_id,)
        ).fetchone()
        return row is not None

    def add(
        self,
        charge_point_ids: Iterable[str],
        now: datetime,
        passwords: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Register identities (validated first, all or none); return those that were new.

        ``passwords`` maps identities to password *hashes*
        (``ocppj.hash_password``). A hash is stored only with a new
        registration: an identity already registered keeps its password
        (rotating one is ``set_password_hash``).
        """
        ids = [check_identity(cp) for cp in charge_point_ids]
        hashes = check_password_hashes(passwords or {}, ids)
        registered_at = rfc3339(now)
        added = []
        with transaction(self._db):
            for cp in ids:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO charge_points"
                    " (charge_point_id, registered_at, password_hash) VALUES (?, ?, ?)",
                    (cp, registered_at, hashes.get(cp)),
                )
                if cursor.rowcount:
                    added.append(cp)
        return added

    def set_password_hash(self, charge_point_id: str, password_hash: str | None) -> bool:
        """Replace (or, with None, clear) a charge point's password hash.

        Returns False if the charge point is not registered. The old password
        stops working at once for new connections (the gateway may cache a
        record for its registry TTL).
        """
        if password_hash is not None and not is_password_hash(password_hash):
            raise ValueError("password_hash: not a hash made by ocppj.hash_password")
        cursor = self._db.execute(
            "UPDATE charge_points SET password_hash = ? WHERE charge_point_id = ?",
            (password_hash, charge_point_id),
        )
        return cursor.rowcount > 0

    def remove(self, charge_point_ids: Iterable[str]) -> list[str]:
        """Unregister identities; return those that were registered."""
        removed = []
        with transaction(self._db):
            for cp in charge_point_ids:
                cursor = self._db.execute(
                    "DELETE FROM charge_points WHERE charge_point_id = ?", (cp,)
                )
                if cursor.rowcount:
                    removed.append(cp)
        return removed

    def entries(self) -> list[tuple[str, str, bool]]:
        """(identity, registration time, has a password) of every charge point, sorted."""
        rows = self._db.execute(
            "SELECT charge_point_id, registered_at, password_hash IS NOT NULL"
            " FROM charge_points ORDER BY charge_point_id"
        )
        return [(cp, at, bool(has_password)) for cp, at, has_password in rows]

    def list(self) -> list[tuple[str, str]]:
        """(identity, registration time) of every charge point, sorted by identity."""
        return [(cp, at) for cp, at, _ in self.entries()]
