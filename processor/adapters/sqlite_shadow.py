"""Device shadows in SQLite, with the update rules of AWS IoT classic shadows."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from ..ports import Clock
from ..shadow import apply_update
from ._sqlite import Database, transaction

__all__ = ["SqliteShadowStore"]


class SqliteShadowStore:
    """A ``ShadowStore`` whose documents live in the ``shadows`` table."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def get(self, thing: str) -> dict[str, Any] | None:
        return await self._database.run(lambda db: _read(db, thing))

    async def update(self, thing: str, state: dict[str, Any]) -> None:
        timestamp = int(self._clock.now().timestamp())

        def write(db: sqlite3.Connection) -> None:
            with transaction(db):
                document = apply_update(_read(db, thing), state, timestamp)
                db.execute(
                    "INSERT OR REPLACE INTO shadows VALUES (?, ?)",
                    (thing, orjson.dumps(document).decode()),
                )

        await self._database.run(write)


def _read(db: sqlite3.Connection, thing: str) -> dict[str, Any] | None:
    row = db.execute("SELECT document FROM shadows WHERE thing_name = ?", (thing,)).fetchone()
    return None if row is None else orjson.loads(row[0])
