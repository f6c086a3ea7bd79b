"""MeterValues: readings of a 1.6 transaction join its history; the last
reading taken outside a transaction (1.6 without ``transactionId``, every
2.0.1 MeterValues) goes to the shadow, per connector (1.6) or EVSE (2.0.1).

A transaction's readings reach the shadow too only if
``ProcessorConfig.shadow_transaction_readings`` is on: the shadow keeps state,
and a shadow update per reading is the largest line of the AWS bill.
"""

from __future__ import annotations

from typing import Any

from ocppj import OcppVersion

from ..context import Context
from ..ports import TransactionEvent
from ..router import HandlerSet

__all__ = ["handlers"]

handlers = HandlerSet()


@handlers.on("MeterValues", versions=[OcppVersion.V16])
async def meter_values_v16(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    last = request["meterValue"][-1]
    transaction_id = request.get("transactionId")
    if transaction_id is not None:
        event = TransactionEvent(
            ctx.charge_point_id,
            str(transaction_id),
            # The first reading's time identifies this message within its
            # transaction: a redelivery is recorded once.
            event_key=f"meter:{request['meterValue'][0]['timestamp']}",
            event_type="Updated",
            timestamp=last["timestamp"],
            data=request,
        )
        await ctx.transactions.append(event)
        if not ctx.config.shadow_transaction_readings:
            return {}
    await ctx.report({"meterValues": {str(request["connectorId"]): _reading(last, transaction_id)}})
    return {}


@handlers.on("MeterValues", versions=[OcppVersion.V201])
async def meter_values_v201(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    last = request["meterValue"][-1]
    await ctx.report({"meterValues": {str(request["evseId"]): _reading(last, None)}})
    return {}


def _reading(meter_value: dict[str, Any], transaction_id: Any) -> dict[str, Any]:
    return {
        "timestamp": meter_value["timestamp"],
        "transactionId": transaction_id,
        # Written whole (an array), so no measurand of an older reading lingers.
        "sampledValue": meter_value["sampledValue"],
    }
