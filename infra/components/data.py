"""The DynamoDB tables: the registry, the transaction history, the pending calls.

Key schemas come from ``processor.adapters.dynamodb_tables``, the same specs
the adapters' tests create in moto, so the code and the deployed tables
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from processor.adapters.dynamodb_tables import (
    charge_point_table_spec,
    pending_call_table_spec,
    transaction_table_spec,
)

__all__ = ["Data", "DataArgs", "table_args"]


@dataclass(frozen=True, slots=True)
class DataArgs:
    #: Keep the tables through ``pulumi destroy`` and refuse to delete them.
    protect: bool = False


def table_args(spec: dict[str, Any]) -> dict[str, Any]:
    """``aws.dynamodb.Table`` arguments for a ``CreateTable`` spec (the name left to Pulumi)."""
    keys = {key["KeyType"]: key["AttributeName"] for key in spec["KeySchema"]}
    return {
        "attributes": [
            aws.dynamodb.TableAttributeArgs(name=a["AttributeName"], type=a["AttributeType"])
            for a in spec["AttributeDefinitions"]
        ],
        "hash_key": keys["HASH"],
        "range_key": keys.get("RANGE"),
        "billing_mode": spec["BillingMode"],
    }


class Data(pulumi.ComponentResource):
    """On-demand tables with point-in-time recovery (the pending calls expire by TTL)."""

    charge_point_table: aws.dynamodb.Table
    transaction_table: aws.dynamodb.Table
    pending_call_table: aws.dynamodb.Table

    def __init__(
        self, name: str, args: DataArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ocpp:infra:Data", name, None, opts)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        recovery = aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True)
        # The table names are the CreateTable specs' placeholders: Pulumi names them.
        self.charge_point_table = aws.dynamodb.Table(
            "ChargePointTable",
            point_in_time_recovery=recovery,
            deletion_protection_enabled=args.protect,
            **table_args(charge_point_table_spec("-")),
            opts=kept,
        )
        self.transaction_table = aws.dynamodb.Table(
            "TransactionTable",
            point_in_time_recovery=recovery,
            deletion_protection_enabled=args.protect,
            **table_args(transaction_table_spec("-")),
            opts=kept,
        )
        # Calls wait at most OCPP_CALL_TIMEOUT: nothing here is worth recovering.
        self.pending_call_table = aws.dynamodb.Table(
            "PendingCallTable",
            ttl=aws.dynamodb.TableTtlArgs(attribute_name="expiresAt", enabled=True),
            **table_args(pending_call_table_spec("-")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "chargePointTable": self.charge_point_table.name,
                "transactionTable": self.transaction_table.name,
                "pendingCallTable": self.pending_call_table.name,
            }
        )
