from __future__ import annotations

import asyncio
from typing import Any

from processor.adapters.dynamodb_pending_calls import DynamoDbPendingCalls
from processor.adapters.dynamodb_tables import create_tables
from processor.ports import PendingCall


async def test_a_pending_call_is_taken_once_and_expires(dynamodb: Any, unique: str) -> None:
    names = (f"cp-{unique}", f"tx-{unique}", f"calls-{unique}")
    await asyncio.to_thread(create_tables, dynamodb, *names)
    ttl = dynamodb.describe_time_to_live(TableName=names[2])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiresAt"

    calls = DynamoDbPendingCalls(dynamodb, names[2])
    payload = {"idTag": "user-123", "connectorId": 1, "meter": 1.5}
    await calls.add(PendingCall("CP#1", "m1", "RemoteStartTransaction", payload, 1000.25))
    await calls.add(PendingCall("CP#1", "m2", "RemoteStopTransaction", {"transactionId": 1}, 1000))

    taken = await calls.take("CP#1", "m1", now=1000.0)
    assert taken == PendingCall("CP#1", "m1", "RemoteStartTransaction", payload, 1000.25)
    assert await calls.take("CP#1", "m1", now=1000.0) is None  # an answer delivered twice
    assert await calls.take("CP#1", "m2", now=1000.5) is None  # too late
    assert await calls.take("CP#1", "m2", now=999.0) is None  # and gone
    assert await calls.take("CP#2", "m1", now=0.0) is None  # another charger's id
