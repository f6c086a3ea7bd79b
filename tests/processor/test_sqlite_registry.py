"""The SQLite registry's passwords, and the migration of older state files."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocppj import ChargePointAccess, InvalidIdentity, hash_password, verify_password
from processor.adapters import DATABASE_FILE, Database, SqliteRegistry

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = b"0123456789abcdef0123"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SqliteRegistry]:
    database = Database(tmp_path)
    try:
        yield SqliteRegistry(database)
    finally:
        database.close()


async def test_find_returns_the_access_record_of_registered_charge_points(
    registry: SqliteRegistry,
) -> None:
    stored = hash_password(PASSWORD)
    assert registry.add(["CP1", "CP2"], NOW, passwords={"CP1": stored}) == ["CP1", "CP2"]
    assert await registry.find("CP1") == ChargePointAccess("CP1", stored)
    assert registry.find_sync("CP2") == ChargePointAccess("CP2", None)
    assert await registry.find("CP3") is None
    assert registry.find_sync("cp1") is None  # identities are case-sensitive


def test_add_without_passwords_works_as_before(registry: SqliteRegistry) -> None:
    assert registry.add(["A", "B"], NOW) == ["A", "B"]
    assert registry.list() == [("A", "2026-01-01T00:00:00.000Z"), ("B", "2026-01-01T00:00:00.000Z")]
    assert registry.entries() == [
        ("A", "2026-01-01T00:00:00.000Z", False),
        ("B", "2026-01-01T00:00:00.000Z", False),
    ]


def test_adding_again_keeps_the_existing_password(registry: SqliteRegistry) -> None:
    first = hash_password(PASSWORD)
    registry.add(["CP1"], NOW, passwords={"CP1": first})
    assert registry.add(["CP1"], NOW, passwords={"CP1": hash_password(b"another password!")}) == []
    access = registry.find_sync("CP1")
    assert access is not None and access.password_hash == first


def test_set_password_hash_rotates_and_clears(registry: SqliteRegistry) -> None:
    registry.add(["CP1"], NOW, passwords={"CP1": hash_password(PASSWORD)})
    new_password = b"a brand new key, 32 bytes long!!"
    assert registry.set_password_hash("CP1", hash_password(new_password))
    access = registry.find_sync("CP1")
    assert access is not None and access.password_hash is not None
    assert verify_password(new_password, access.password_hash)
    assert not verify_password(PASSWORD, access.password_hash)
    assert registry.entries()[0][2] is True

    assert registry.set_password_hash("CP1", None)
    assert registry.find_sync("CP1") == ChargePointAccess("CP1", None)
    assert registry.entries()[0][2] is False


def test_set_password_hash_of_an_unknown_charge_point_is_false(registry: SqliteRegistry) -> None:
    assert not registry.set_password_hash("NOPE", hash_password(PASSWORD))
    assert registry.find_sync("NOPE") is None


@pytest.mark.parametrize(
    ("passwords", "message"),
    [
        ({"CP1": "0123456789abcdef0123"}, "the value for 'CP1' is not a password hash"),
        ({"CPX": hash_password(PASSWORD)}, "'CPX' is not among the identities"),
    ],
)
def test_add_refuses_bad_passwords_before_writing_anything(
    registry: SqliteRegistry, passwords: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        registry.add(["CP0", "CP1"], NOW, passwords=passwords)
    assert registry.list() == []


def test_an_invalid_identity_registers_nothing_even_with_passwords(
    registry: SqliteRegistry,
) -> None:
    with pytest.raises(InvalidIdentity):
        registry.add(["CP1", "bad:id"], NOW, passwords={"CP1": hash_password(PASSWORD)})
    assert registry.list() == []


def test_set_password_hash_refuses_a_plain_password(registry: SqliteRegistry) -> None:
    registry.add(["CP1"], NOW)
    with pytest.raises(ValueError, match="not a hash"):
        registry.set_password_hash("CP1", PASSWORD.decode())
    assert registry.find_sync("CP1") == ChargePointAccess("CP1", None)


def test_the_hash_stays_out_of_the_access_record_repr() -> None:
    stored = hash_password(PASSWORD)
    assert stored not in repr(ChargePointAccess("CP1", stored))
    assert "CP1" in repr(ChargePointAccess("CP1", stored))


# -- migration ---------------------------------------------------------------

_OLD_SCHEMA = """
CREATE TABLE charge_points (
    charge_point_id TEXT PRIMARY KEY,
    registered_at   TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO charge_points VALUES ('OLD1', '2025-06-01T00:00:00.000Z');
"""


def _old_state_file(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(folder / DATABASE_FILE)
    connection.executescript(_OLD_SCHEMA)
    connection.close()


def _columns(folder: Path) -> list[str]:
    connection = sqlite3.connect(folder / DATABASE_FILE)
    try:
        return [row[1] for row in connection.execute("PRAGMA table_info(charge_points)")]
    finally:
        connection.close()


def test_an_older_state_file_gains_the_password_column(tmp_path: Path) -> None:
    _old_state_file(tmp_path)
    assert _columns(tmp_path) == ["charge_point_id", "registered_at"]
    database = Database(tmp_path)
    try:
        registry = SqliteRegistry(database)
        assert _columns(tmp_path) == ["charge_point_id", "registered_at", "password_hash"]
        assert registry.find_sync("OLD1") == ChargePointAccess("OLD1", None)
        assert registry.list() == [("OLD1", "2025-06-01T00:00:00.000Z")]
        assert registry.set_password_hash("OLD1", hash_password(PASSWORD))
        registry.add(["NEW1"], NOW, passwords={"NEW1": hash_password(PASSWORD)})
        assert [has for _, _, has in registry.entries()] == [True, True]
    finally:
        database.close()
    # Opening it again finds the column there and changes nothing.
    Database(tmp_path).close()
    assert _columns(tmp_path) == ["charge_point_id", "registered_at", "password_hash"]


def test_processes_opening_an_older_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    _old_state_file(tmp_path)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Database(tmp_path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _columns(tmp_path) == ["charge_point_id", "registered_at", "password_hash"]


def test_a_new_state_file_has_the_column_from_the_start(tmp_path: Path) -> None:
    Database(tmp_path).close()
    assert _columns(tmp_path) == ["charge_point_id", "registered_at", "password_hash"]
