"""The DynamoDB tables of the AWS deployment, as code.

Tests create them in moto with ``create_tables``, and the Pulumi program is to
declare the same key schemas; the layouts are documented in
``dynamodb_registry`` and ``dynamodb_transactions``. Both tables bill per
request: charger traffic is bursty (reconnect storms, morning peaks) and
provisioned capacity would have to be sized for the burst.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = [
    "charge_point_table_spec",
    "create_tables",
    "pending_call_table_spec",
    "transaction_table_spec",
]

log = logging.getLogger(__name__)


def charge_point_table_spec(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the seed's ``ChargePointTable``."""
    return {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "chargePointId", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "chargePointId", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def transaction_table_spec(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the transaction table."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "transactionKey", "AttributeType": "S"},
            {"AttributeName": "eventKey", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "transactionKey", "KeyType": "HASH"},
            {"AttributeName": "eventKey", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def pending_call_table_spec(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the pending-call table (TTL on ``expiresAt``)."""
    return {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "callKey", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "callKey", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def create_tables(
    client: Any,
    charge_point_table: str,
    transaction_table: str,
    pending_call_table: str | None = None,
) -> None:
    """Create the tables with a low-level ``dynamodb`` client and wait until they are active."""
    specs = [charge_point_table_spec(charge_point_table), transaction_table_spec(transaction_table)]
    if pending_call_table is not None:
        specs.append(pending_call_table_spec(pending_call_table))
    for spec in specs:
        client.create_table(**spec)
        client.get_waiter("table_exists").wait(
            TableName=spec["TableName"], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        log.info("table created", extra={"table": spec["TableName"]})
    if pending_call_table is not None:
        client.update_time_to_live(
            TableName=pending_call_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"},
        )
