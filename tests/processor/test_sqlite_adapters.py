from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocppj import InvalidIdentity
from processor.adapters import Database, SqliteRegistry, SqliteShadowStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return NOW


async def test_concurrent_updates_of_one_shadow_all_count(tmp_path: Path) -> None:
    database = Database(tmp_path)
    try:
        store = SqliteShadowStore(database, Clock())
        await asyncio.gather(
            *(store.update("CP1", {"reported": {"connectors": {str(n): n}}}) for n in range(50))
        )
        document = await store.get("CP1")
        assert document is not None
        assert document["version"] == 50
        assert len(document["state"]["reported"]["connectors"]) == 50
        assert await store.get("CP2") is None
    finally:
        database.close()


async def test_shadows_survive_a_restart(tmp_path: Path) -> None:
    first = Database(tmp_path)
    await SqliteShadowStore(first, Clock()).update("CP1", {"reported": {"a": 1}})
    first.close()
    second = Database(tmp_path)
    try:
        document = await SqliteShadowStore(second, Clock()).get("CP1")
        assert document == {"state": {"reported": {"a": 1}}, "version": 1, "timestamp": 1767225600}
    finally:
        second.close()


def test_registry_add_is_all_or_nothing(tmp_path: Path) -> None:
    database = Database(tmp_path)
    try:
        registry = SqliteRegistry(database)
        assert registry.add(["A", "B"], NOW) == ["A", "B"]
        assert registry.add(["B", "C"], NOW) == ["C"]
        with pytest.raises(InvalidIdentity):
            registry.add(["D", "x" * 49], NOW)
        assert "D" not in registry
        assert [cp for cp, _ in registry.list()] == ["A", "B", "C"]
        assert registry.remove(["A", "Z"]) == ["A"]
        assert "A" not in registry and "B" in registry
    finally:
        database.close()


def test_a_second_process_sees_registrations_at_once(tmp_path: Path) -> None:
    reader, writer = Database(tmp_path), Database(tmp_path)
    try:
        assert "LATE" not in SqliteRegistry(reader)
        SqliteRegistry(writer).add(["LATE"], NOW)
        assert "LATE" in SqliteRegistry(reader)
    finally:
        reader.close()
        writer.close()
