"""Transaction history and 1.6 transaction ids in one DynamoDB table.

Layout (hash key ``transactionKey`` S, range key ``eventKey`` S), three kinds
of item:

| item | transactionKey | eventKey | other attributes |
|---|---|---|---|
| event | ``tx:{cp}:{transactionId}`` | the event's key | see below |
| 1.6 start | ``start:{cp}`` | the start key | ``transactionId`` (N) |
| id counter | ``counter`` | ``counter`` | ``lastId`` (N) |

An event item also holds ``chargePointId``, ``transactionId``, ``eventType``,
``timestamp`` (all S), ``data`` (S, JSON), ``recordedAt`` (N, ns) and
``applied`` (BOOL: the event has changed the shadow; written False, set True
by ``mark_applied``, one more write per transaction event; an item without it
predates it and counts as applied).

* Keys are joined with ``:`` because it is the one character an identity
  cannot hold (``#`` and ``+`` it can), so ``tx:{cp}:{id}`` names one
  (charger, transaction) pair only; the three prefixes keep the kinds apart.
* ``data`` is a JSON string: as typed attributes every number would become
  ``{"N": "..."}`` by hand (boto3's serializer refuses floats, and meter
  values are full of them) and would come back as Decimal; JSON keeps the
  event exactly as the charger sent it, in one attribute.
* Order: a Query returns items by range key, which is the charger's event key,
  not the order of recording. Each event stores ``recordedAt`` (the
  processor's clock, ns) and ``events`` sorts by it, then by key. Processors
  on different hosts may disagree by clock skew (milliseconds with NTP); an
  events list needs no more than that, and it avoids a second write per
  event for a sequence counter.
* ``allocate_id`` takes the next value of one atomic counter (UpdateItem
  ADD), then records ``start_key -> id`` with a conditional put. A start key
  seen before returns its id with False. Two concurrent deliveries of one
  start may both take a counter value; the loser returns the winner's id, so
  ids stay unique though not gap-free. One counter item caps allocation near
  1,000 per second (a DynamoDB partition's write rate): far above the rate at
  which a million chargers start sessions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import orjson
from botocore.exceptions import ClientError

from ocppj import check_identity

from ..ports import TransactionEvent

__all__ = ["MAX_TRANSACTION_ID", "DynamoDbTransactions"]

log = logging.getLogger(__name__)

#: OCPP 1.6 transactionId is an int32.
MAX_TRANSACTION_ID = 2**31 - 1

T = TypeVar("T")
_COUNTER = {"transactionKey": {"S": "counter"}, "eventKey": {"S": "counter"}}
_NOT_THERE = "attribute_not_exists(transactionKey)"


class DynamoDbTransactions:
    """A ``Transactions`` store over a low-level boto3 ``dynamodb`` client."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        executor: Executor | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        page_size: int | None = None,
    ) -> None:
        """``clock_ns`` stamps ``recordedAt``; ``page_size`` caps the items per Query page."""
        self._client = client
        self._table = table_name
        self._executor = executor
        self._clock_ns = clock_ns
        self._page_size = page_size

    async def append(self, event: TransactionEvent) -> bool:
        item = {
            "transactionKey": {"S": _tx_key(event.charge_point_id, event.transaction_id)},
            "eventKey": {"S": event.event_key},
            "chargePointId": {"S": event.charge_point_id},
            "transactionId": {"S": event.transaction_id},
            "eventType": {"S": event.event_type},
            "timestamp": {"S": event.timestamp},
            "data": {"S": orjson.dumps(event.data).decode()},
            "recordedAt": {"N": str(self._clock_ns())},
            "applied": {"BOOL": False},
        }
        recorded = await self._run(lambda: self._put_new(item))
        if not recorded:
            log.info(
                "transaction event already recorded",
                extra={
                    "chargePointId": event.charge_point_id,
                    "transactionId": event.transaction_id,
                    "eventKey": event.event_key,
                },
            )
        return recorded

    async def mark_applied(self, event: TransactionEvent) -> None:
        await self._run(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=_event_key(event),
                UpdateExpression="SET applied = :yes",
                # Never creates a stub item: the event is recorded first.
                ConditionExpression="attribute_exists(transactionKey)",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        )

    async def is_applied(self, event: TransactionEvent) -> bool:
        response = await self._run(
            lambda: self._client.get_item(
                TableName=self._table,
                Key=_event_key(event),
                ConsistentRead=True,
                ProjectionExpression="applied, transactionKey",
            )
        )
        item = response.get("Item")
        return item is not None and item.get("applied", {"BOOL": True}).get("BOOL") is True

    async def events(self, charge_point_id: str, transaction_id: str) -> list[TransactionEvent]:
        key = _tx_key(charge_point_id, transaction_id)
        items = await self._run(lambda: self._query(key))
        items.sort(key=lambda item: (int(item["recordedAt"]["N"]), item["eventKey"]["S"]))
        return [
            TransactionEvent(
                charge_point_id=charge_point_id,
                transaction_id=transaction_id,
                event_key=item["eventKey"]["S"],
                event_type=item["eventType"]["S"],
                timestamp=item["timestamp"]["S"],
                data=orjson.loads(item["data"]["S"]),
            )
            for item in items
        ]

    async def allocate_id(self, charge_point_id: str, start_key: str) -> tuple[int, bool]:
        start = {
            "transactionKey": {"S": "start:" + check_identity(charge_point_id)},
            "eventKey": {"S": start_key},
        }
        return await self._run(lambda: self._allocate(start))

    def _allocate(self, start: dict[str, Any]) -> tuple[int, bool]:
        known = self._started(start)
        if known is not None:
            return known, False
        response = self._client.update_item(
            TableName=self._table,
            Key=_COUNTER,
            UpdateExpression="ADD lastId :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        new_id = int(response["Attributes"]["lastId"]["N"])
        if new_id > MAX_TRANSACTION_ID:
            raise OverflowError("1.6 transaction ids are exhausted (int32)")
        if self._put_new({**start, "transactionId": {"N": str(new_id)}}):
            return new_id, True
        # A concurrent delivery of the same start won the conditional put.
        winner = self._started(start)
        if winner is None:
            raise RuntimeError("a transaction start mapping vanished after its put failed")
        return winner, False

    def _started(self, start: dict[str, Any]) -> int | None:
        response = self._client.get_item(TableName=self._table, Key=start, ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else int(item["transactionId"]["N"])

    def _put_new(self, item: dict[str, Any]) -> bool:
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression=_NOT_THERE)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _query(self, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "transactionKey = :key",
            "ExpressionAttributeValues": {":key": {"S": key}},
            "ConsistentRead": True,
        }
        if self._page_size is not None:
            arguments["Limit"] = self._page_size
        while True:
            page = self._client.query(**arguments)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)


def _event_key(event: TransactionEvent) -> dict[str, Any]:
    return {
        "transactionKey": {"S": _tx_key(event.charge_point_id, event.transaction_id)},
        "eventKey": {"S": event.event_key},
    }


def _tx_key(charge_point_id: str, transaction_id: str) -> str:
    return f"tx:{check_identity(charge_point_id)}:{transaction_id}"
