from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ocppj import ChargePointAccess, InvalidIdentity, hash_password, verify_password
from processor.adapters.dynamodb_registry import DynamoDbRegistry

NOW = datetime(2026, 1, 1, 12, 30, 15, 250_000, tzinfo=UTC)
LATER = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def registry(dynamodb: Any, tables: tuple[str, str]) -> DynamoDbRegistry:
    return DynamoDbRegistry(dynamodb, tables[0])


async def test_add_registers_and_reports_only_new_ids(registry: DynamoDbRegistry) -> None:
    assert await registry.add(["CP2", "RDAM 123", "CP2"], NOW) == ["CP2", "RDAM 123"]
    assert await registry.add(["CP1", "CP2"], LATER) == ["CP1"]
    assert await registry.is_registered("RDAM 123")
    assert not await registry.is_registered("CP3")
    assert await registry.registered() == [
        ("CP1", "2026-02-01T00:00:00.000Z"),
        ("CP2", "2026-01-01T12:30:15.250Z"),
        ("RDAM 123", "2026-01-01T12:30:15.250Z"),
    ]


async def test_items_keep_the_seed_layout(
    registry: DynamoDbRegistry, dynamodb: Any, tables: tuple[str, str]
) -> None:
    await registry.add(["CP1"], NOW)
    item = dynamodb.get_item(TableName=tables[0], Key={"chargePointId": {"S": "CP1"}})["Item"]
    assert item == {
        "chargePointId": {"S": "CP1"},
        "timestamp": {"N": str(int(NOW.timestamp() * 1000))},
        "registrationTime": {"S": "2026-01-01T12:30:15.250Z"},
    }


async def test_an_invalid_identity_registers_nothing(registry: DynamoDbRegistry) -> None:
    with pytest.raises(InvalidIdentity, match="':'"):
        await registry.add(["CP1", "bad:id", "CP2"], NOW)
    with pytest.raises(InvalidIdentity, match="empty"):
        await registry.add(["CP1", ""], NOW)
    assert await registry.registered() == []


async def test_remove_reports_only_ids_that_were_registered(registry: DynamoDbRegistry) -> None:
    await registry.add(["CP1", "CP2", "CP3"], NOW)
    assert await registry.remove(["CP2", "nope", "CP2", "CP3"]) == ["CP2", "CP3"]
    assert not await registry.is_registered("CP2")
    assert await registry.remove(["CP2"]) == []
    assert [cp for cp, _ in await registry.registered()] == ["CP1"]


async def test_listing_follows_scan_pages(dynamodb: Any, tables: tuple[str, str]) -> None:
    registry = DynamoDbRegistry(dynamodb, tables[0], page_size=2)
    ids = [f"CP{n:03}" for n in range(7, 0, -1)]
    await registry.add(ids, NOW)
    assert [cp for cp, _ in await registry.registered()] == sorted(ids)


async def test_seed_items_without_registration_time_are_listed(
    registry: DynamoDbRegistry, dynamodb: Any, tables: tuple[str, str]
) -> None:
    dynamodb.put_item(
        TableName=tables[0],
        Item={"chargePointId": {"S": "OLD1"}, "timestamp": {"N": "1767225600000"}},
    )
    assert await registry.registered() == [("OLD1", "2026-01-01T00:00:00.000Z")]
    assert await registry.is_registered("OLD1")


async def test_a_missing_table_is_an_error(dynamodb: Any, unique: str) -> None:
    registry = DynamoDbRegistry(dynamodb, f"missing-{unique}")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        await registry.is_registered("CP1")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        await registry.add(["CP1"], NOW)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        await registry.find("CP1")


# -- passwords (security profiles 1 and 2) -----------------------------------

PASSWORD = b"0123456789abcdef0123"


async def test_find_reads_the_access_record(registry: DynamoDbRegistry) -> None:
    stored = hash_password(PASSWORD)
    assert await registry.add(["CP1", "CP2"], NOW, passwords={"CP1": stored}) == ["CP1", "CP2"]
    assert await registry.find("CP1") == ChargePointAccess("CP1", stored)
    assert await registry.find("CP2") == ChargePointAccess("CP2", None)
    assert await registry.find("CP3") is None
    assert await registry.entries() == [
        ("CP1", "2026-01-01T12:30:15.250Z", True),
        ("CP2", "2026-01-01T12:30:15.250Z", False),
    ]


async def test_the_hash_is_stored_as_password_hash(
    registry: DynamoDbRegistry, dynamodb: Any, tables: tuple[str, str]
) -> None:
    stored = hash_password(PASSWORD)
    await registry.add(["CP1"], NOW, passwords={"CP1": stored})
    item = dynamodb.get_item(TableName=tables[0], Key={"chargePointId": {"S": "CP1"}})["Item"]
    assert item["passwordHash"] == {"S": stored}
    assert PASSWORD.decode() not in str(item)


async def test_adding_again_keeps_the_existing_password(registry: DynamoDbRegistry) -> None:
    first = hash_password(PASSWORD)
    await registry.add(["CP1"], NOW, passwords={"CP1": first})
    assert await registry.add(["CP1"], LATER, passwords={"CP1": hash_password(b"x" * 20)}) == []
    assert await registry.find("CP1") == ChargePointAccess("CP1", first)


async def test_set_password_hash_rotates_and_clears(registry: DynamoDbRegistry) -> None:
    await registry.add(["CP1"], NOW, passwords={"CP1": hash_password(PASSWORD)})
    new_password = b"a brand new key, 32 bytes long!!"
    assert await registry.set_password_hash("CP1", hash_password(new_password))
    access = await registry.find("CP1")
    assert access is not None and access.password_hash is not None
    assert verify_password(new_password, access.password_hash)
    assert not verify_password(PASSWORD, access.password_hash)

    assert await registry.set_password_hash("CP1", None)
    assert await registry.find("CP1") == ChargePointAccess("CP1", None)
    # Clearing twice is harmless.
    assert await registry.set_password_hash("CP1", None)
    # The registration itself is untouched.
    assert await registry.registered() == [("CP1", "2026-01-01T12:30:15.250Z")]


async def test_set_password_hash_never_registers_an_unknown_charge_point(
    registry: DynamoDbRegistry,
) -> None:
    assert not await registry.set_password_hash("NOPE", hash_password(PASSWORD))
    assert not await registry.set_password_hash("NOPE", None)
    assert await registry.find("NOPE") is None
    assert await registry.registered() == []


async def test_passwords_are_checked_before_anything_is_written(
    registry: DynamoDbRegistry,
) -> None:
    with pytest.raises(ValueError, match="not a password hash"):
        await registry.add(["CP1", "CP2"], NOW, passwords={"CP2": PASSWORD.decode()})
    with pytest.raises(ValueError, match="not among the identities"):
        await registry.add(["CP1"], NOW, passwords={"CP9": hash_password(PASSWORD)})
    assert await registry.registered() == []
    await registry.add(["CP1"], NOW)
    with pytest.raises(ValueError, match="not a hash"):
        await registry.set_password_hash("CP1", PASSWORD.decode())
    assert await registry.find("CP1") == ChargePointAccess("CP1", None)


async def test_seed_items_have_no_password(
    registry: DynamoDbRegistry, dynamodb: Any, tables: tuple[str, str]
) -> None:
    dynamodb.put_item(
        TableName=tables[0],
        Item={"chargePointId": {"S": "OLD1"}, "timestamp": {"N": "1767225600000"}},
    )
    assert await registry.find("OLD1") == ChargePointAccess("OLD1", None)
    assert await registry.entries() == [("OLD1", "2026-01-01T00:00:00.000Z", False)]
