"""The charge point registry in DynamoDB: the seed's ``ChargePointTable``.

Layout (kept from the seed, so existing tables keep working): hash key
``chargePointId`` (S); each item is
``{"chargePointId": S, "timestamp": N (ms since the epoch), "registrationTime": S (RFC 3339, Z)}``.

Reads are strongly consistent: a charger registered a moment ago must be able
to connect at once, and a registry read costs a fraction of a cent per
million. Writes are conditional, so adding twice or removing twice is
harmless and the answer says what actually changed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from ocppj import check_identity

from ..clock import rfc3339

__all__ = ["DynamoDbRegistry"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DynamoDbRegistry:
    """A ``Registry`` over a low-level boto3 ``dynamodb`` client."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        executor: Executor | None = None,
        page_size: int | None = None,
    ) -> None:
        """``page_size`` caps the items per Scan page (DynamoDB's 1 MB cap applies anyway)."""
        self._client = client
        self._table = table_name
        self._executor = executor
        self._page_size = page_size

    async def is_registered(self, charge_point_id: str) -> bool:
        response = await self._run(
            functools.partial(
                self._client.get_item,
                TableName=self._table,
                Key=_key(charge_point_id),
                ProjectionExpression="chargePointId",
                ConsistentRead=True,
            )
        )
        return "Item" in response

    async def registered(self) -> list[tuple[str, str]]:
        """(identity, registration time) of every charge point, sorted by identity."""
        return await self._run(self._scan)

    async def add(self, charge_point_ids: Iterable[str], now: datetime) -> list[str]:
        """Register identities; return those that were new.

        Every identity is validated before anything is written, so an invalid
        one registers nothing. The writes themselves are one conditional put
        each (DynamoDB has no cheap many-item transaction that skips the items
        already present); if one fails mid-way, the earlier ones stay, and
        running the same command again finishes the job.
        """
        ids = [check_identity(cp) for cp in charge_point_ids]
        registered_at = rfc3339(now)
        millis = (now - _EPOCH) // timedelta(milliseconds=1)
        added = await self._run(lambda: [cp for cp in ids if self._put(cp, millis, registered_at)])
        log.info("charge points registered", extra={"chargePointIds": added})
        return added

    async def remove(self, charge_point_ids: Iterable[str]) -> list[str]:
        """Unregister identities; return those that were registered."""
        ids = list(charge_point_ids)
        removed = await self._run(lambda: [cp for cp in ids if self._delete(cp)])
        log.info("charge points unregistered", extra={"chargePointIds": removed})
        return removed

    def _put(self, charge_point_id: str, millis: int, registered_at: str) -> bool:
        item = {
            **_key(charge_point_id),
            "timestamp": {"N": str(millis)},
            "registrationTime": {"S": registered_at},
        }
        return _conditional(
            lambda: self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(chargePointId)",
            )
        )

    def _delete(self, charge_point_id: str) -> bool:
        return _conditional(
            lambda: self._client.delete_item(
                TableName=self._table,
                Key=_key(charge_point_id),
                ConditionExpression="attribute_exists(chargePointId)",
            )
        )

    def _scan(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "chargePointId, registrationTime, #ts",
            "ExpressionAttributeNames": {"#ts": "timestamp"},
            "ConsistentRead": True,
        }
        if self._page_size is not None:
            arguments["Limit"] = self._page_size
        while True:
            page = self._client.scan(**arguments)
            found.extend(_entry(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)


def _key(charge_point_id: str) -> dict[str, Any]:
    return {"chargePointId": {"S": charge_point_id}}


def _entry(item: dict[str, Any]) -> tuple[str, str]:
    """(identity, registration time); items without one get it from ``timestamp``."""
    if "registrationTime" in item:
        return item["chargePointId"]["S"], item["registrationTime"]["S"]
    millis = int(item.get("timestamp", {}).get("N", "0"))
    return item["chargePointId"]["S"], rfc3339(_EPOCH + timedelta(milliseconds=millis))


def _conditional(write: Callable[[], object]) -> bool:
    """Run a conditional write: True if it happened, False if its condition failed."""
    try:
        write()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
