"""The charge point registry in SQLite: who may connect."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ocppj import check_identity

from ..clock import rfc3339
from ._sqlite import Database, transaction

__all__ = ["SqliteRegistry"]


class SqliteRegistry:
    """Registered charge points. Reads are point look-ups on the primary key
    (microseconds), cheap enough for the gateway's synchronous handshake."""

    def __init__(self, database: Database) -> None:
        self._db = database.connection

    async def is_registered(self, charge_point_id: str) -> bool:
        return charge_point_id in self

    async def registered(self) -> list[tuple[str, str]]:
        return self.list()

    def __contains__(self, charge_point_id: object) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM charge_points WHERE charge_point_id = ?", (charge_point_id,)
        ).fetchone()
        return row is not None

    def add(self, charge_point_ids: Iterable[str], now: datetime) -> list[str]:
        """Register identities (validated first, all or none); return those that were new."""
        ids = [check_identity(cp) for cp in charge_point_ids]
        registered_at = rfc3339(now)
        added = []
        with transaction(self._db):
            for cp in ids:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO charge_points VALUES (?, ?)", (cp, registered_at)
                )
                if cursor.rowcount:
                    added.append(cp)
        return added

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

    def list(self) -> list[tuple[str, str]]:
        """(identity, registration time) of every charge point, sorted by identity."""
        rows = self._db.execute(
            "SELECT charge_point_id, registered_at FROM charge_points ORDER BY charge_point_id"
        )
        return [(cp, at) for cp, at in rows]
