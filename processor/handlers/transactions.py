"""Transactions: 2.0.1 TransactionEvent, 1.6 StartTransaction / StopTransaction.

Every event goes to the transaction history first, then changes the shadow,
then is marked applied in the history. A redelivered message (SQS delivers at
least once) gets the same answer; it changes the shadow only if the first
delivery's shadow write never completed (the history has the event but not
the mark), and then makes the change the first delivery should have made.
Each change is idempotent: made twice (a crash before the mark), it leaves
the shadow as made once.

A reading is not a change of state: a 2.0.1 ``Updated`` event sent for its
meter values alone (``triggerReason`` ``MeterValuePeriodic`` or
``MeterValueClock``, no id token, no remote-start id) goes to the history
only, unless ``ProcessorConfig.shadow_transaction_readings`` asks for every
event in the shadow. A charging state it repeats is not read: a charger
reports a change of it with ``ChargingStateChanged`` (E02 of the 2.0.1
specification), which is applied.

The shadow keeps the seed's three keys: ``activeTransaction`` (the last one
started and not yet ended), ``lastCompletedTransaction`` and
``lastTransactionEvent``. Each transaction object is written whole: keys it
lacks are written as null, so nothing is left over from an earlier one.
"""

from __future__ import annotations

from typing import Any

from ocppj import OcppVersion

from ..context import Context
from ..ports import TransactionEvent
from ..router import HandlerSet
from .authorization import token_info

__all__ = ["handlers"]

handlers = HandlerSet()

_FIELDS = (
    "transactionId",
    "evseId",
    "connectorId",
    "idToken",
    "startTime",
    "stopTime",
    "status",
    "chargingState",
    "stoppedReason",
    "remoteStartId",
    "meterStart",
    "meterStop",
)


def _transaction(**fields: Any) -> dict[str, Any]:
    """A whole transaction object: every known key, null where absent."""
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise TypeError(f"not transaction fields: {', '.join(sorted(unknown))}")
    return {name: fields.get(name) for name in _FIELDS}


# -- 2.0.1 ---------------------------------------------------------------------


@handlers.on("TransactionEvent", versions=[OcppVersion.V201])
async def transaction_event(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    info = request["transactionInfo"]
    transaction_id = info["transactionId"]
    kind = request["eventType"]
    response: dict[str, Any] = {}
    token = request.get("idToken", {}).get("idToken")
    if token is not None:
        response["idTokenInfo"] = await token_info(ctx, token)

    event = TransactionEvent(
        ctx.charge_point_id,
        transaction_id,
        event_key=f"seq:{request['seqNo']}",
        event_type=kind,
        timestamp=request["timestamp"],
        data=request,
    )
    if _reading_only(ctx, request, token):
        await ctx.transactions.append(event)
    elif await _to_apply(ctx, event):
        await _apply_event(ctx, request, token)
        await ctx.transactions.mark_applied(event)
    return response


#: Triggers of an ``Updated`` event that only carries meter values.
_READING_TRIGGERS = frozenset({"MeterValuePeriodic", "MeterValueClock"})


def _reading_only(ctx: Context, request: dict[str, Any], token: str | None) -> bool:
    """Whether the event is a reading the shadow does not keep."""
    return (
        not ctx.config.shadow_transaction_readings
        and request["eventType"] == "Updated"
        and request["triggerReason"] in _READING_TRIGGERS
        and token is None
        and request["transactionInfo"].get("remoteStartId") is None
    )


async def _apply_event(ctx: Context, request: dict[str, Any], token: str | None) -> None:
    info = request["transactionInfo"]
    transaction_id = info["transactionId"]
    kind = request["eventType"]
    last_event = {
        "eventType": kind,
        "timestamp": request["timestamp"],
        "transactionId": transaction_id,
        "seqNo": request["seqNo"],
        "triggerReason": request["triggerReason"],
    }
    evse = request.get("evse", {})
    if kind == "Started":
        if await _has_ended(ctx, transaction_id):
            # A queue that reorders delivered the start after the end: the
            # history has it now, the shadow must not bring it back to life.
            return
        active = _transaction(
            transactionId=transaction_id,
            evseId=evse.get("id"),
            connectorId=evse.get("connectorId"),
            idToken=token,
            startTime=request["timestamp"],
            status="Started",
            chargingState=info.get("chargingState"),
            remoteStartId=info.get("remoteStartId"),
        )
        await ctx.report({"activeTransaction": active, "lastTransactionEvent": last_event})
    elif kind == "Updated":
        update: dict[str, Any] = {"lastTransactionEvent": last_event}
        # A transaction may start before it is authorized (cable first): the
        # token, and a remote start's id, can arrive on any Updated event.
        changes = {
            key: value
            for key, value in (
                ("chargingState", info.get("chargingState")),
                ("idToken", token),
                ("remoteStartId", info.get("remoteStartId")),
            )
            if value is not None
        }
        if changes and await _active_id(ctx) == transaction_id:
            update["activeTransaction"] = changes
        await ctx.report(update)
    else:
        ended = {
            "transactionId": transaction_id,
            "evseId": evse.get("id"),
            "connectorId": evse.get("connectorId"),
            "idToken": token,
            "stopTime": request["timestamp"],
            "stoppedReason": info.get("stoppedReason"),
            "chargingState": info.get("chargingState"),
        }
        await _complete(ctx, transaction_id, ended, last_event)


# -- 1.6 -----------------------------------------------------------------------


@handlers.on("StartTransaction", versions=[OcppVersion.V16])
async def start_transaction(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    id_tag = request["idTag"]
    # What identifies one start of one charger: a redelivered message has the
    # same, a new transaction on the same connector has a new timestamp.
    start_key = "|".join(
        str(request[k]) for k in ("connectorId", "timestamp", "meterStart", "idTag")
    )
    transaction_id, _ = await ctx.transactions.allocate_id(ctx.charge_point_id, start_key)
    response = {"transactionId": transaction_id, "idTagInfo": await token_info(ctx, id_tag)}
    event = TransactionEvent(
        ctx.charge_point_id, str(transaction_id), "start", "Started", request["timestamp"], request
    )
    # Decided by the history, not by allocate_id: a start whose id was
    # allocated but whose event was never recorded (a crash between the two)
    # is completed by the redelivery.
    if await _to_apply(ctx, event):
        active = _transaction(
            transactionId=transaction_id,
            connectorId=request["connectorId"],
            idToken=id_tag,
            startTime=request["timestamp"],
            status="Started",
            meterStart=request["meterStart"],
        )
        last_event = {
            "eventType": "Started",
            "timestamp": request["timestamp"],
            "transactionId": transaction_id,
        }
        await ctx.report({"activeTransaction": active, "lastTransactionEvent": last_event})
        await ctx.transactions.mark_applied(event)
    return response


@handlers.on("StopTransaction", versions=[OcppVersion.V16])
async def stop_transaction(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    transaction_id = request["transactionId"]
    response: dict[str, Any] = {}
    if "idTag" in request:
        response["idTagInfo"] = await token_info(ctx, request["idTag"])
    event = TransactionEvent(
        ctx.charge_point_id, str(transaction_id), "stop", "Ended", request["timestamp"], request
    )
    if await _to_apply(ctx, event):
        ended = {
            "transactionId": transaction_id,
            "stopTime": request["timestamp"],
            "stoppedReason": request.get("reason", "Local"),
            "meterStop": request["meterStop"],
        }
        last_event = {
            "eventType": "Ended",
            "timestamp": request["timestamp"],
            "transactionId": transaction_id,
        }
        await _complete(ctx, transaction_id, ended, last_event)
        await ctx.transactions.mark_applied(event)
    return response


# -- shared --------------------------------------------------------------------


async def _to_apply(ctx: Context, event: TransactionEvent) -> bool:
    """Record ``event``; True if it has still to change the shadow: it is new,
    or its first delivery recorded it and failed before marking it applied."""
    if await ctx.transactions.append(event):
        return True
    return not await ctx.transactions.is_applied(event)


async def _reported(ctx: Context) -> dict[str, Any]:
    shadow = await ctx.shadows.get(ctx.charge_point_id) or {}
    reported: dict[str, Any] = shadow.get("state", {}).get("reported", {})
    return reported


async def _active(ctx: Context) -> dict[str, Any]:
    active: dict[str, Any] = (await _reported(ctx)).get("activeTransaction") or {}
    return active


async def _has_ended(ctx: Context, transaction_id: str) -> bool:
    events = await ctx.transactions.events(ctx.charge_point_id, transaction_id)
    return any(event.event_type == "Ended" for event in events)


async def _active_id(ctx: Context) -> Any:
    return (await _active(ctx)).get("transactionId")


async def _complete(
    ctx: Context, transaction_id: Any, ended: dict[str, Any], last_event: dict[str, Any]
) -> None:
    """Move the transaction to ``lastCompletedTransaction``; clear it from
    ``activeTransaction`` only if it is the one there (another EVSE's
    transaction may have started since)."""
    reported = await _reported(ctx)
    active = reported.get("activeTransaction") or {}
    is_active = active.get("transactionId") == transaction_id
    completed_before = reported.get("lastCompletedTransaction") or {}
    # Made a second time (a redelivery after a crash before the mark), what
    # the first time took from the active transaction is in the completed one.
    if is_active:
        earlier = active
    elif completed_before.get("transactionId") == transaction_id:
        earlier = completed_before
    else:
        earlier = {}
    # A key this version does not know (an older or hand-edited shadow) is
    # not carried over; it must not keep the transaction from ending.
    known = {k: v for k, v in earlier.items() if k in _FIELDS and v is not None}
    completed = _transaction(**{**known, **{k: v for k, v in ended.items() if v is not None}})
    completed["status"] = "Ended"
    update: dict[str, Any] = {
        "lastCompletedTransaction": completed,
        "lastTransactionEvent": last_event,
    }
    if is_active:
        update["activeTransaction"] = None
    await ctx.report(update)
