"""The charge point registry in DynamoDB: the seed's ``ChargePointTable``.

Layout (kept from the seed, so existing tables keep working): hash key
``chargePointId`` (S); each item is
``{"chargePointId": S, "timestamp": N (ms since the epoch), "registrationTime": S (RFC 3339, Z)}``
plus, for chargers with a password (security profiles 1 and 2),
``"passwordHash": S`` as ``ocppj.hash_password`` makes it (never the password).

Reads are strongly consistent: a charger registered a moment ago must be able
to connect at once, and a registry read costs a fraction of a cent per
million. Writes are conditional, so adding twice or removing twice is
harmless and the answer says what actually changed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from ocppj import ChargePointAccess, check_identity, is_password_hash

from ..clock import rfc3339
from ._registry import check_password_hashes

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

    async def find(self, charge_point_id: str) -> ChargePointAccess | None:
        """The gateway's look-up (``gateway.directory.Directory``): one consistent GetItem."""
        response = await self._run(
            functools.partial(
                self._client.get_item,
                TableName=self._table,
                Key=_key(charge_point_id),
                ProjectionExpression="chargePointId, passwordHash",
                ConsistentRead=True,
            )
        )
        item = response.get("Item")
        if item is None:
            return None
        return ChargePointAccess(charge_point_id, item.get("passwordHash", {}).get("S"))

    async def set_password_hash(self, charge_point_id: str, password_hash: str | None) -> bool:
        """Replace (or, with None, clear) a charge point's password hash.

        One conditional UpdateItem: False if the charge point is not
        registered, and an unregistered identity is never created by it.
        """
        if password_hash is not None and not is_password_hash(password_hash):
            raise ValueError("password_hash: not a hash made by ocppj.hash_password")
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(charge_point_id),
            "ConditionExpression": "attribute_exists(chargePointId)",
        }
        if password_hash is None:
            arguments["UpdateExpression"] = "REMOVE passwordHash"
        else:
            arguments["UpdateExpression"] = "SET passwordHash = :hash"
            arguments["ExpressionAttributeValues"] = {":hash": {"S": password_hash}}
        changed = await self._run(
            lambda: _conditional(lambda: self._client.update_item(**arguments))
        )
        if changed:
            log.info("charge point password changed", extra={"chargePointId": charge_point_id})
        return changed

    async def registered(self) -> list[tuple[str, str]]:
        """(identity, registration time) of every charge point, sorted by identity."""
        return [(cp, at) for cp, at, _ in await self.entries()]

    async def entries(self) -> list[tuple[str, str, bool]]:
        """(identity, registration time, has a password) of every charge point, sorted."""
        return await self._run(self._scan)

    async def add(
        self,
        charge_point_ids: Iterable[str],
        now: datetime,
        passwords: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Register identities; return those that were new.

        ``passwords`` maps identities to password *hashes*
        (``ocppj.hash_password``); a hash is stored only with a new
        registration, an identity already registered keeps its password.
        Every identity and hash is validated before anything is written, so
        an invalid one registers nothing. The writes themselves are one conditional put
        each (DynamoDB has no cheap many-item transaction that skips the items
        already present); if one fails mid-way, the earlier ones stay, and
        running the same command again finishes the job.
        """
        ids = [check_identity(cp) for cp in charge_point_ids]
        hashes = check_password_hashes(passwords or {}, ids)
        registered_at = rfc3339(now)
        millis = (now - _EPOCH) // timedelta(milliseconds=1)
        added = await self._run(
            lambda: [cp for cp in ids if self._put(cp, millis, registered_at, hashes.get(cp))]
        )
        log.info("charge points registered", extra={"chargePointIds": added})
        return added

    async def remove(self, charge_point_ids: Iterable[str]) -> list[str]:
        """Unregister identities; return those that were registered."""
        ids = list(charge_point_ids)
        removed = await self._run(lambda: [cp for cp in ids if self._delete(cp)])
        log.info("charge points unregistered", extra={"chargePointIds": removed})
        return removed

    def _put(
        self, charge_point_id: str, millis: int, registered_at: str, password_hash: str | None
    ) -> bool:
        item = {
            **_key(charge_point_id),
            "timestamp": {"N": str(millis)},
            "registrationTime": {"S": registered_at},
        }
        if password_hash is not None:
            item["passwordHash"] = {"S": password_hash}
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

    def _scan(self) -> list[tuple[str, str, bool]]:
        found: list[tuple[str, str, bool]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "chargePointId, registrationTime, #ts, passwordHash",
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


def _entry(item: dict[str, Any]) -> tuple[str, str, bool]:
    """(identity, registration time, has a password); items without a registration
    time get it from ``timestamp``."""
    has_password = "passwordHash" in item
    if "registrationTime" in item:
        return item["chargePointId"]["S"], item["registrationTime"]["S"], has_password
    millis = int(item.get("timestamp", {}).get("N", "0"))
    registered_at = rfc3339(_EPOCH + timedelta(milliseconds=millis))
    return item["chargePointId"]["S"], registered_at, has_password


def _conditional(write: Callable[[], object]) -> bool:
    """Run a conditional write: True if it happened, False if its condition failed."""
    try:
        write()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
