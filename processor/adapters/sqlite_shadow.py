"""Device shadows in SQLite, with the update rules of AWS IoT classic shadows."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
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
        await self.update_if(thing, _always, state)

    async def update_if(
        self,
        thing: str,
        condition: Callable[[dict[str, Any] | None], bool],
        state: dict[str, Any],
    ) -> bool:
        """Read, decide and write in one ``BEGIN IMMEDIATE`` transaction.

        The write lock is taken before the read, so two processes on one data
        folder updating the same shadow take turns, and the second decides on
        what the first wrote.
        """
        timestamp = int(self._clock.now().timestamp())

        def write(db: sqlite3.Connection) -> bool:
            with transaction(db):
                current = _read(db, thing)
                if not condition(current):
                    return False
                db.execute(
                    "INSERT OR REPLACE INTO shadows VALUES (?, ?)",
                    (thing, orjson.dumps(apply_update(current, state, timestamp)).decode()),
                )
                return True

        return await self._database.run(write)


def _always(document: dict[str, Any] | None) -> bool:
    return True


def _read(db: sqlite3.Connection, thing: str) -> dict[str, Any] | None:
    row = db.execute("SELECT document FROM shadows WHERE thing_name = ?", (thing,)).fetchone()
    return None if row is None else orjson.loads(row[0])
