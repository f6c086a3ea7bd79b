from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ocppj import InvalidIdentity
from processor.adapters import Database, SqliteRegistry, SqliteShadowStore
from processor.adapters._sqlite import transaction

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


async def test_a_conditional_update_decides_on_the_document_it_merges_into(
    tmp_path: Path,
) -> None:
    database = Database(tmp_path)
    try:
        store = SqliteShadowStore(database, Clock())
        seen: list[object] = []

        def below(limit: int) -> Callable[[dict[str, Any] | None], bool]:
            def condition(document: dict[str, Any] | None) -> bool:
                seen.append(document)
                count = 0 if document is None else document["state"]["reported"]["count"]
                return bool(count < limit)

            return condition

        assert await store.update_if("CP1", below(1), {"reported": {"count": 1}})
        assert not await store.update_if("CP1", below(1), {"reported": {"count": 2}})
        assert seen[0] is None
        assert seen[1] == await store.get("CP1")
        document = await store.get("CP1")
        assert document is not None
        assert (document["version"], document["state"]["reported"]) == (1, {"count": 1})
        # Shadow rules apply as in update(); a refused update leaves no trace.
        with pytest.raises(ValueError, match="unknown sections"):
            await store.update_if("CP1", below(5), {"delta": {}})
        assert await store.get("CP1") == document
    finally:
        database.close()


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


# -- the writer's group commits ---------------------------------------------------


def _insert(name: str, fail: bool = False) -> Callable[[sqlite3.Connection], str]:
    def work(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO shadows VALUES (?, '{}')", (name,))
        if fail:
            raise ValueError(f"{name} fails after writing")
        return name

    return work


def _stored(path: Path) -> set[str]:
    """What another connection (another process, say) sees committed."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        return {row[0] for row in other.execute("SELECT thing_name FROM shadows")}


async def test_a_failing_work_is_rolled_back_alone(tmp_path: Path) -> None:
    database = Database(tmp_path)
    try:
        names = [f"CP{n}" for n in range(20)]
        works = [_insert(name, fail=name == "CP7") for name in names]
        outcomes = await asyncio.gather(*map(database.run, works), return_exceptions=True)
        assert [type(o).__name__ for o in outcomes].count("ValueError") == 1
        assert isinstance(outcomes[7], ValueError)
        assert _stored(database.path) == set(names) - {"CP7"}
    finally:
        database.close()


async def test_a_result_comes_back_once_it_is_committed(tmp_path: Path) -> None:
    database = Database(tmp_path)
    try:
        names = [f"CP{n}" for n in range(50)]
        for done in asyncio.as_completed([database.run(_insert(name)) for name in names]):
            name = await done
            assert name in _stored(database.path)
    finally:
        database.close()


async def test_a_work_keeps_its_own_transaction_inside_a_group(tmp_path: Path) -> None:
    database = Database(tmp_path)

    def all_or_nothing(db: sqlite3.Connection) -> None:
        with transaction(db):
            db.execute("INSERT INTO shadows VALUES ('half', '{}')")
            raise ValueError("the second half fails")

    try:
        inner = database.run(all_or_nothing)
        outer = database.run(_insert("CP1"))
        with pytest.raises(ValueError, match="second half"):
            await inner
        await outer
        assert _stored(database.path) == {"CP1"}
    finally:
        database.close()
