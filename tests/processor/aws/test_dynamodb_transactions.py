from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from ocppj import InvalidIdentity
from processor.adapters.dynamodb_transactions import MAX_TRANSACTION_ID, DynamoDbTransactions
from processor.ports import TransactionEvent


def event(key: str, *, cp: str = "CP1", tx: str = "T1", kind: str = "Updated") -> TransactionEvent:
    return TransactionEvent(
        charge_point_id=cp,
        transaction_id=tx,
        event_key=key,
        event_type=kind,
        timestamp="2026-01-01T10:00:00Z",
        data={"meter": [{"value": 1.25, "unit": "kWh"}], "key": key, "idTag": "ABC"},
    )


@pytest.fixture
def store(dynamodb: Any, tables: tuple[str, str]) -> DynamoDbTransactions:
    return DynamoDbTransactions(dynamodb, tables[1])


async def test_append_is_idempotent(store: DynamoDbTransactions) -> None:
    assert await store.append(event("s", kind="Started"))
    assert not await store.append(event("s", kind="Started"))
    changed = TransactionEvent("CP1", "T1", "s", "Ended", "2026-01-01T11:00:00Z", {"x": 1})
    assert not await store.append(changed)
    assert await store.events("CP1", "T1") == [event("s", kind="Started")]


async def test_events_keep_recording_order_not_key_order(
    dynamodb: Any, tables: tuple[str, str]
) -> None:
    ticks = itertools.count(1_000)
    store = DynamoDbTransactions(dynamodb, tables[1], clock_ns=lambda: next(ticks))
    keys = ["z-start", "m-update", "a-end", "b"]
    for key in keys:
        assert await store.append(event(key))
    assert [e.event_key for e in await store.events("CP1", "T1")] == keys


async def test_same_instant_is_ordered_by_key(dynamodb: Any, tables: tuple[str, str]) -> None:
    store = DynamoDbTransactions(dynamodb, tables[1], clock_ns=lambda: 7)
    for key in ["b", "c", "a"]:
        await store.append(event(key))
    assert [e.event_key for e in await store.events("CP1", "T1")] == ["a", "b", "c"]


async def test_events_follow_query_pages(dynamodb: Any, tables: tuple[str, str]) -> None:
    ticks = itertools.count()
    store = DynamoDbTransactions(dynamodb, tables[1], clock_ns=lambda: next(ticks), page_size=2)
    keys = [f"k{n}" for n in range(9, 0, -1)]
    for key in keys:
        await store.append(event(key))
    assert [e.event_key for e in await store.events("CP1", "T1")] == keys


async def test_data_round_trips_exactly(store: DynamoDbTransactions) -> None:
    data = {"f": 0.1, "big": 2**53 + 1, "neg": -3, "s": "\u00e9", "n": None, "l": [True, {}]}
    await store.append(TransactionEvent("CP1", "T1", "k", "Updated", "t", data))
    (stored,) = await store.events("CP1", "T1")
    assert stored.data == data
    assert isinstance(stored.data["f"], float)
    assert isinstance(stored.data["big"], int)


async def test_transactions_and_chargers_are_kept_apart(store: DynamoDbTransactions) -> None:
    # With '#' as separator these two would share a key: identities may hold '#'.
    await store.append(event("k", cp="a#b", tx="c"))
    await store.append(event("k", cp="a", tx="b#c"))
    await store.append(event("k", cp="CP1", tx="T2"))
    assert [e.charge_point_id for e in await store.events("a#b", "c")] == ["a#b"]
    assert [e.transaction_id for e in await store.events("a", "b#c")] == ["b#c"]
    assert await store.events("CP1", "T1") == []
    assert await store.events("CP9", "T2") == []


async def test_invalid_identities_are_refused(store: DynamoDbTransactions) -> None:
    with pytest.raises(InvalidIdentity):
        await store.append(event("k", cp="a:b"))
    with pytest.raises(InvalidIdentity):
        await store.allocate_id("a:b", "s")


async def test_concurrent_allocations_are_unique(store: DynamoDbTransactions) -> None:
    results = await asyncio.gather(*(store.allocate_id("CP1", f"start-{n}") for n in range(50)))
    ids = [new_id for new_id, _ in results]
    assert all(fresh for _, fresh in results)
    assert len(set(ids)) == 50
    assert all(0 < new_id <= MAX_TRANSACTION_ID for new_id in ids)


async def test_a_repeated_start_keeps_its_id(store: DynamoDbTransactions) -> None:
    first = await store.allocate_id("CP1", "start-a")
    other = await store.allocate_id("CP2", "start-a")
    assert first[1]
    assert other[1]
    assert other[0] != first[0]
    assert await store.allocate_id("CP1", "start-a") == (first[0], False)


async def test_concurrent_redeliveries_of_one_start_share_one_id(
    store: DynamoDbTransactions,
) -> None:
    results = await asyncio.gather(*(store.allocate_id("CP1", "start-x") for _ in range(20)))
    assert len({new_id for new_id, _ in results}) == 1
    assert sum(fresh for _, fresh in results) == 1


async def test_ids_stop_at_int32(
    store: DynamoDbTransactions, dynamodb: Any, tables: tuple[str, str]
) -> None:
    counter = {"transactionKey": {"S": "counter"}, "eventKey": {"S": "counter"}}
    dynamodb.put_item(
        TableName=tables[1], Item={**counter, "lastId": {"N": str(MAX_TRANSACTION_ID - 1)}}
    )
    assert await store.allocate_id("CP1", "last") == (MAX_TRANSACTION_ID, True)
    with pytest.raises(OverflowError, match="int32"):
        await store.allocate_id("CP1", "one too many")
    # The refused start holds no id: a retry is refused again, not given a stale one.
    with pytest.raises(OverflowError):
        await store.allocate_id("CP1", "one too many")
