"""One SQLite file holds the embedded default's state.

WAL mode lets the CLI read and register charge points while ``ocppgw dev``
runs; writes from the event loop go through one writer thread, so the loop
never waits on the disk.

The writer commits in groups: whatever work has queued while it was busy
runs in one ``BEGIN IMMEDIATE`` ... ``COMMIT``, each work inside a savepoint
of its own, so that one that fails is rolled back alone and the others
stand. A work's result is handed back only once its group has committed (an
answer never goes out for state that is not written), and the event loop is
woken once per group, not once per work. Under load that is one commit, one
lock of the file (which the pipeline's workers share) and one wake-up for
many messages; with nothing queued, a work commits alone as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

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

#: The most works one commit holds: bounds how long the first of them waits.
GROUP_LIMIT = 256

#: A queued work: what to run, and the future (on its loop) that awaits it.
_Work = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]
#: What became of a work: its future, and its result or its exception.
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class Database:
    """The state file of one data folder, created on first use.

    ``connection`` belongs to the thread that opened the database (the event
    loop's, or the CLI's) and serves point reads; ``run`` sends work to a
    single writer thread with a connection of its own, which commits what
    queued together (see the module's docstring).
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
        self._works: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="sqlite", daemon=True)
        self._writer.start()

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
        """Run ``work`` on the writer thread; its result once it is committed.

        ``work`` runs inside a transaction (its own ``transaction()`` nests as
        a savepoint) and must not commit or roll back by itself.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._works.put((work, future, loop))
        return await future

    def close(self) -> None:
        """Finish queued writes, then close both connections."""
        self._works.put(None)
        self._writer.join()
        self.connection.close()

    def _write(self) -> None:
        """The writer thread: run queued works a group at a time until ``close``."""
        db, works = self._writer_connection, self._works
        closing = False
        while not closing:
            first = works.get()
            if first is None:
                break
            group = [first]
            while len(group) < GROUP_LIMIT:
                try:
                    work = works.get_nowait()
                except queue.Empty:
                    break
                if work is None:
                    closing = True
                    break
                group.append(work)
            _hand_back(group, _commit_group(db, group))
        db.close()


def _commit_group(db: sqlite3.Connection, group: list[_Work]) -> list[_Outcome]:
    """Run ``group`` in one transaction, each work in a savepoint of its own;
    if the commit fails, every work of the group fails with it."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        return [(future, None, exc) for _, future, _ in group]
    outcomes: list[_Outcome] = []
    for work, future, _ in group:
        try:
            with transaction(db):
                outcomes.append((future, work(db), None))
        except Exception as exc:
            outcomes.append((future, None, exc))
    try:
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        return [(future, None, exc) for future, _, _ in outcomes]
    return outcomes


def _hand_back(group: list[_Work], outcomes: list[_Outcome]) -> None:
    """Settle the futures of ``outcomes``: one wake-up per event loop."""
    loops: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for (_, _, loop), outcome in zip(group, outcomes, strict=True):
        loops.setdefault(loop, []).append(outcome)
    for loop, settled in loops.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(_settle, settled)


def _settle(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


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
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises; inside a
    transaction already (a group of the writer), a savepoint that is
    released, or rolled back to, the same way."""
    if connection.in_transaction:
        connection.execute("SAVEPOINT work")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK TO work")
            connection.execute("RELEASE work")
            raise
        connection.execute("RELEASE work")
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
