"""Transaction history and 1.6 transaction ids in SQLite."""

from __future__ import annotations

import sqlite3

import orjson

from ..ports import TransactionEvent
from ._sqlite import Database, transaction

__all__ = ["SqliteTransactions"]

#: OCPP 1.6 transactionId is an int32.
MAX_TRANSACTION_ID = 2**31 - 1


class SqliteTransactions:
    """A ``Transactions`` store; uniqueness constraints make it idempotent."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def append(self, event: TransactionEvent) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO transaction_events"
                " (charge_point_id, transaction_id, event_key, event_type, timestamp, data,"
                " applied) VALUES (?, ?, ?, ?, ?, ?, 0)",
                (
                    event.charge_point_id,
                    event.transaction_id,
                    event.event_key,
                    event.event_type,
                    event.timestamp,
                    orjson.dumps(event.data).decode(),
                ),
            )
            return cursor.rowcount == 1

        return await self._database.run(insert)

    async def mark_applied(self, event: TransactionEvent) -> None:
        def mark(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE transaction_events SET applied = 1"
                " WHERE charge_point_id = ? AND transaction_id = ? AND event_key = ?",
                (event.charge_point_id, event.transaction_id, event.event_key),
            )

        await self._database.run(mark)

    async def is_applied(self, event: TransactionEvent) -> bool:
        def select(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT applied FROM transaction_events"
                " WHERE charge_point_id = ? AND transaction_id = ? AND event_key = ?",
                (event.charge_point_id, event.transaction_id, event.event_key),
            ).fetchone()
            return row is not None and bool(row[0])

        return await self._database.run(select)

    async def events(self, charge_point_id: str, transaction_id: str) -> list[TransactionEvent]:
        def select(db: sqlite3.Connection) -> list[TransactionEvent]:
            rows = db.execute(
                "SELECT event_key, event_type, timestamp, data FROM transaction_events"
                " WHERE charge_point_id = ? AND transaction_id = ? ORDER BY sequence",
                (charge_point_id, transaction_id),
            )
            return [
                TransactionEvent(charge_point_id, transaction_id, key, kind, at, orjson.loads(data))
                for key, kind, at, data in rows
            ]

        return await self._database.run(select)

    async def allocate_id(self, charge_point_id: str, start_key: str) -> tuple[int, bool]:
        def allocate(db: sqlite3.Connection) -> tuple[int, bool]:
            with transaction(db):
                row = db.execute(
                    "SELECT transaction_id FROM transaction_starts"
                    " WHERE charge_point_id = ? AND start_key = ?",
                    (charge_point_id, start_key),
                ).fetchone()
                if row is not None:
                    return int(row[0]), False
                cursor = db.execute(
                    "INSERT INTO transaction_starts (charge_point_id, start_key) VALUES (?, ?)",
                    (charge_point_id, start_key),
                )
                new_id = int(cursor.lastrowid or 0)
                if new_id > MAX_TRANSACTION_ID:
                    raise OverflowError("1.6 transaction ids are exhausted (int32)")
                return new_id, True

        return await self._database.run(allocate)
