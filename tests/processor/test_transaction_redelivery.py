"""A transaction event whose history write succeeded and whose shadow write
failed is redelivered (SQS, MQTT QoS 1): the redelivery must make the shadow
change, over every transaction history adapter, and making it twice (a crash
between the shadow write and the history's mark) must leave the shadow as
making it once does."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from processor.adapters import Database, SqliteTransactions
from processor.adapters._sqlite import DATABASE_FILE
from processor.adapters.dynamodb_tables import create_tables
from processor.adapters.dynamodb_transactions import DynamoDbTransactions
from processor.adapters.memory import MemoryShadowStore, MemoryTransactions
from processor.ports import TransactionEvent, Transactions

from ..moto_support import aws_client, moto_server
from .conftest import Harness
from .test_handlers_transactions import START, STARTED, STOP, T1, T2, V16, V201, tx_event

UPDATED = tx_event(
    "Updated",
    1,
    timestamp=T1,
    trigger="ChargingStateChanged",
    info={"chargingState": "SuspendedEV"},
    id_token="TAG1",
)
ENDED = tx_event("Ended", 2, timestamp=T2, info={"stoppedReason": "Remote"})

#: (subprotocol, action, payload) of each conversation, in order.
CONVERSATIONS = {
    "2.0.1": [(V201, "TransactionEvent", e) for e in (STARTED, UPDATED, ENDED)],
    "1.6": [(V16, "StartTransaction", START), (V16, "StopTransaction", STOP)],
}


class FailingShadows:
    """The shadow store, whose next update fails once ``fail_next`` is set
    (as a throttled or unreachable IoT Core would)."""

    def __init__(self, store: MemoryShadowStore) -> None:
        self._store = store
        self.fail_next = False

    async def get(self, thing: str) -> dict[str, Any] | None:
        return await self._store.get(thing)

    async def update(self, thing: str, state: dict[str, Any]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("shadow service unavailable")
        await self._store.update(thing, state)


class ForgetfulHistory:
    """A history whose next ``mark_applied`` fails once ``fail_next`` is set:
    the process died after the shadow write and before the mark."""

    def __init__(self, history: Transactions) -> None:
        self._history = history
        self.fail_next = False

    async def append(self, event: TransactionEvent) -> bool:
        return await self._history.append(event)

    async def mark_applied(self, event: TransactionEvent) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("history unavailable")
        await self._history.mark_applied(event)

    async def is_applied(self, event: TransactionEvent) -> bool:
        return await self._history.is_applied(event)

    async def events(self, charge_point_id: str, transaction_id: str) -> list[TransactionEvent]:
        return await self._history.events(charge_point_id, transaction_id)

    async def allocate_id(self, charge_point_id: str, start_key: str) -> tuple[int, bool]:
        return await self._history.allocate_id(charge_point_id, start_key)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with moto_server() as endpoint:
        yield aws_client("dynamodb", endpoint)


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Transactions]:
    if request.param == "memory":
        yield MemoryTransactions()
    elif request.param == "sqlite":
        database = Database(tmp_path)
        yield SqliteTransactions(database)
        database.close()
    else:
        client = request.getfixturevalue("dynamodb")
        unique = uuid.uuid4().hex[:12]
        create_tables(client, f"ChargePoints-{unique}", f"Transactions-{unique}")
        yield DynamoDbTransactions(client, f"Transactions-{unique}")


async def _as_never_failing(conversation: str) -> dict[str, Any]:
    reference = Harness()
    for protocol, action, payload in CONVERSATIONS[conversation]:
        await reference.call(protocol, action, payload)
    return await reference.reported()


@pytest.mark.parametrize("conversation", CONVERSATIONS)
async def test_a_redelivery_makes_the_shadow_change_a_failed_write_lost(
    conversation: str, history: Transactions
) -> None:
    shadows: list[FailingShadows] = []
    harness = Harness(
        transactions=history,
        wrap_shadows=lambda store: shadows.append(FailingShadows(store)) or shadows[-1],
    )
    for protocol, action, payload in CONVERSATIONS[conversation]:
        shadows[0].fail_next = True
        failed = await harness.send(protocol, [2, "first", action, payload])
        assert failed[0] == 4, failed  # an InternalError: the queue delivers it again
        assert await harness.call(protocol, action, payload) is not None
    assert await harness.reported() == await _as_never_failing(conversation)


@pytest.mark.parametrize("conversation", CONVERSATIONS)
async def test_a_change_made_twice_leaves_the_shadow_as_made_once(
    conversation: str, history: Transactions
) -> None:
    forgetful = ForgetfulHistory(history)
    harness = Harness(transactions=forgetful)
    for protocol, action, payload in CONVERSATIONS[conversation]:
        forgetful.fail_next = True
        failed = await harness.send(protocol, [2, "first", action, payload])
        assert failed[0] == 4, failed
        await harness.call(protocol, action, payload)
    assert await harness.reported() == await _as_never_failing(conversation)


@pytest.mark.parametrize("conversation", CONVERSATIONS)
async def test_a_redelivery_of_an_applied_event_still_changes_nothing(
    conversation: str, history: Transactions
) -> None:
    harness = Harness(transactions=history)
    for protocol, action, payload in CONVERSATIONS[conversation]:
        await harness.call(protocol, action, payload)
        version = await harness.version()
        await harness.call(protocol, action, payload)
        assert await harness.version() == version


async def test_an_unknown_key_in_the_active_transaction_does_not_block_its_end(
    harness: Harness,
) -> None:
    await harness.call(V16, "StartTransaction", START)
    await harness.shadows.update(
        "CP001", {"reported": {"activeTransaction": {"vendorExtension": "x"}}}
    )
    await harness.call(V16, "StopTransaction", STOP)
    completed = (await harness.reported())["lastCompletedTransaction"]
    assert completed["status"] == "Ended"
    assert "vendorExtension" not in completed


# -- the adapters' marks ---------------------------------------------------------


def _event(key: str) -> TransactionEvent:
    return TransactionEvent("CP1", "T1", key, "Updated", T1, {"seqNo": 1})


async def test_an_event_counts_as_applied_once_marked(history: Transactions) -> None:
    assert await history.append(_event("seq:1"))
    assert not await history.is_applied(_event("seq:1"))
    assert not await history.append(_event("seq:1"))
    await history.mark_applied(_event("seq:1"))
    assert await history.is_applied(_event("seq:1"))
    assert not await history.is_applied(_event("seq:2"))


async def test_events_of_a_state_file_older_than_the_mark_count_as_applied(
    tmp_path: Path,
) -> None:
    """An older version never marked its events, and its shadow writes were
    not retried: its events must not change the shadow again now."""
    old = sqlite3.connect(tmp_path / DATABASE_FILE)
    old.execute(
        "CREATE TABLE transaction_events (sequence INTEGER PRIMARY KEY AUTOINCREMENT,"
        " charge_point_id TEXT NOT NULL, transaction_id TEXT NOT NULL,"
        " event_key TEXT NOT NULL, event_type TEXT NOT NULL, timestamp TEXT NOT NULL,"
        " data TEXT NOT NULL, UNIQUE (charge_point_id, transaction_id, event_key))"
    )
    old.execute(
        "INSERT INTO transaction_events VALUES (NULL, 'CP1', 'T1', 'seq:1', 'Updated', ?, '{}')",
        (T1,),
    )
    old.commit()
    old.close()
    database = Database(tmp_path)
    try:
        history = SqliteTransactions(database)
        assert await history.is_applied(_event("seq:1"))
        assert await history.append(_event("seq:2"))
        assert not await history.is_applied(_event("seq:2"))
    finally:
        database.close()


async def test_dynamodb_events_older_than_the_mark_count_as_applied(dynamodb: Any) -> None:
    unique = uuid.uuid4().hex[:12]
    create_tables(dynamodb, f"ChargePoints-{unique}", f"Transactions-{unique}")
    dynamodb.put_item(
        TableName=f"Transactions-{unique}",
        Item={
            "transactionKey": {"S": "tx:CP1:T1"},
            "eventKey": {"S": "seq:1"},
            "chargePointId": {"S": "CP1"},
            "transactionId": {"S": "T1"},
            "eventType": {"S": "Updated"},
            "timestamp": {"S": T1},
            "data": {"S": "{}"},
            "recordedAt": {"N": "1"},
        },
    )
    assert await DynamoDbTransactions(dynamodb, f"Transactions-{unique}").is_applied(
        _event("seq:1")
    )
