"""One SQLite file holds the embedded default's state.

WAL mode lets the CLI read and register charge points while ``ocppgw dev``
runs; writes from the event loop go through one worker thread, so the loop
never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["DATABASE_FILE", "Database", "transaction"]

DATABASE_FILE = "ocppgw.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charge_points (
    charge_point_id TEXT PRIMARY KEY,
    registered_at   TEXT NOT NULL,
    password_hash   TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shadows (
    thing_name TEXT PRIMARY KEY,
    document   TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transaction_events (
    sequence        INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    event_key       TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    timestamp       TEXT NOT NULL,
    data            TEXT NOT NULL,
    -- 1 once the event has changed the shadow (see Transactions.mark_applied).
    applied         INTEGER NOT NULL DEFAULT 1,
    UNIQUE (charge_point_id, transaction_id, event_key)
);
-- 1.6 transaction ids: the rowid is the id, the start key makes it idempotent.
CREATE TABLE IF NOT EXISTS transaction_starts (
    transaction_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id TEXT NOT NULL,
    start_key       TEXT NOT NULL,
    UNIQUE (charge_point_id, start_key)
);
CREATE TABLE IF NOT EXISTS pending_calls (
    charge_point_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    action          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    expires_at      REAL NOT NULL,
    PRIMARY KEY (charge_point_id, message_id)
) WITHOUT ROWID;
"""

#: Columns added since a table was first created: (table, column, declaration).
#: ``CREATE TABLE IF NOT EXISTS`` leaves an older file's table as it was, so
#: these are added to it on opening.
_ADDED_COLUMNS = (
    ("charge_points", "password_hash", "TEXT"),
    # Events recorded before this column counted as applied, as they did then.
    ("transaction_events", "applied", "INTEGER NOT NULL DEFAULT 1"),
)

T = TypeVar("T")


class Database:
    """The state file of one data folder, created on first use.

    ``connection`` belongs to the thread that opened the database (the event
    loop's, or the CLI's) and serves point reads; ``run`` sends work to a
    single writer thread with a connection of its own.
    """

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DATABASE_FILE
        self.connection = self._connect()
        _when_unlocked(lambda: self.connection.executescript(_SCHEMA))
        _add_missing_columns(self.connection)
        # Opened here so that it always exists; only the writer thread uses it
        # afterwards (check_same_thread=False allows that one hand-over).
        self._writer_connection = self._connect(check_same_thread=False)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

    def _connect(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; a statement commits
        # by itself unless wrapped in transaction().
        connection = sqlite3.connect(
            self.path, isolation_level=None, timeout=5.0, check_same_thread=check_same_thread
        )
        _when_unlocked(lambda: connection.execute("PRAGMA journal_mode=WAL"))
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the writer thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, work, self._writer_connection)

    def close(self) -> None:
        """Finish queued writes, then close both connections."""
        self._writer.submit(self._writer_connection.close).result()
        self._writer.shutdown(wait=True)
        self.connection.close()


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Bring a state file made by an older version up to the current schema.

    The check is repeated inside a write transaction: the CLI and ``ocppgw
    dev`` may open the same old file at the same moment, and only one of them
    may add the column.
    """
    for table, column, declaration in _ADDED_COLUMNS:
        if _has_column(connection, table, column):
            continue
        with transaction(connection):
            if not _has_column(connection, table, column):
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _has_column(connection: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in connection.execute(f"PRAGMA table_info({table})"))


def _when_unlocked(statement: Callable[[], object], patience: float = 5.0) -> None:
    """Run ``statement``, retrying while another process holds the file.

    SQLite's busy timeout does not cover every case: switching a file to WAL
    while other processes open it (several workers starting at once) fails
    at once with "database is locked".
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
