"""Backend commands waiting for the charger's answer, in DynamoDB.

The remote-start Lambda records a command here and the message-processor
Lambda, which receives the charger's answer through SQS, takes it back: the
two never share memory. Layout: hash key ``callKey`` = ``call:{cp}:{messageId}``
(``:`` cannot occur in an identity, so the key names one pair), attributes
``action``, ``payload`` (JSON) and ``expiresAt`` (N, epoch seconds), which is
also the table's TTL attribute: DynamoDB deletes what nobody answered.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from typing import Any

import orjson

from ..ports import PendingCall

__all__ = ["DynamoDbPendingCalls"]


class DynamoDbPendingCalls:
    def __init__(self, client: Any, table_name: str, *, executor: Executor | None = None) -> None:
        self._client = client
        self._table = table_name
        self._executor = executor

    async def add(self, call: PendingCall) -> None:
        item = {
            "callKey": {"S": _key(call.charge_point_id, call.message_id)},
            "action": {"S": call.action},
            "payload": {"S": orjson.dumps(call.payload).decode()},
            "expiresAt": {"N": str(int(call.expires_at) + 1)},
            "expiresAtExact": {"N": repr(call.expires_at)},
        }
        await self._run(self._client.put_item, TableName=self._table, Item=item)

    async def take(self, charge_point_id: str, message_id: str, now: float) -> PendingCall | None:
        # DeleteItem returning the old item takes the call exactly once, even
        # when SQS delivers the charger's answer twice.
        answer = await self._run(
            self._client.delete_item,
            TableName=self._table,
            Key={"callKey": {"S": _key(charge_point_id, message_id)}},
            ReturnValues="ALL_OLD",
        )
        item = answer.get("Attributes")
        if not item:
            return None
        expires_at = float(item["expiresAtExact"]["N"])
        if expires_at < now:
            return None
        return PendingCall(
            charge_point_id,
            message_id,
            item["action"]["S"],
            orjson.loads(item["payload"]["S"]),
            expires_at,
        )

    async def _run(self, call: Any, **arguments: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, **arguments))


def _key(charge_point_id: str, message_id: str) -> str:
    return f"call:{charge_point_id}:{message_id}"
