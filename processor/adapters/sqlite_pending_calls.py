"""Backend commands waiting for the charger's answer, in SQLite."""

from __future__ import annotations

import sqlite3

import orjson

from ..ports import PendingCall
from ._sqlite import Database, transaction

__all__ = ["SqlitePendingCalls"]


class SqlitePendingCalls:
    """A ``PendingCalls`` store; expired calls are swept as new ones arrive."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, call: PendingCall) -> None:
        def insert(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute(
                    "DELETE FROM pending_calls WHERE expires_at < ?", (call.expires_at - 3600,)
                )
                db.execute(
                    "INSERT OR REPLACE INTO pending_calls VALUES (?, ?, ?, ?, ?)",
                    (
                        call.charge_point_id,
                        call.message_id,
                        call.action,
                        orjson.dumps(call.payload).decode(),
                        call.expires_at,
                    ),
                )

        await self._database.run(insert)

    async def take(self, charge_point_id: str, message_id: str, now: float) -> PendingCall | None:
        def delete(db: sqlite3.Connection) -> PendingCall | None:
            row = db.execute(
                "DELETE FROM pending_calls WHERE charge_point_id = ? AND message_id = ?"
                " RETURNING action, payload, expires_at",
                (charge_point_id, message_id),
            ).fetchone()
            if row is None or row[2] < now:
                return None
            action, payload, expires_at = row
            return PendingCall(
                charge_point_id, message_id, action, orjson.loads(payload), expires_at
            )

        return await self._database.run(delete)
