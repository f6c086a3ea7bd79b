"""Transactions: 2.0.1 TransactionEvent, 1.6 StartTransaction / StopTransaction,
and MeterValues in both versions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from processor.ports import TransactionEvent

from .conftest import NOW_TEXT, Harness

V16 = "ocpp1.6"
V201 = "ocpp2.0.1"

T0 = "2026-03-01T12:00:00Z"
T1 = "2026-03-01T12:10:00Z"
T2 = "2026-03-01T12:20:00Z"
T3 = "2026-03-01T12:30:00Z"

ENERGY = [
    {
        "timestamp": T1,
        "sampledValue": [{"value": 1234.5, "measurand": "Energy.Active.Import.Register"}],
    }
]


def tx_event(
    event_type: str,
    seq_no: int,
    *,
    transaction_id: str = "TX1",
    timestamp: str = T0,
    trigger: str = "Authorized",
    info: dict[str, Any] | None = None,
    evse: dict[str, Any] | None = None,
    id_token: str | None = None,
    meter_value: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger,
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id, **(info or {})},
    }
    if evse is not None:
        event["evse"] = evse
    if id_token is not None:
        event["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    if meter_value is not None:
        event["meterValue"] = meter_value
    return event


STARTED = tx_event(
    "Started",
    0,
    info={"chargingState": "Charging", "remoteStartId": 1001},
    evse={"id": 1, "connectorId": 2},
    id_token="TAG1",
)
ACTIVE_TX1 = {
    "transactionId": "TX1",
    "evseId": 1,
    "connectorId": 2,
    "idToken": "TAG1",
    "startTime": T0,
    "status": "Started",
    "chargingState": "Charging",
    "remoteStartId": 1001,
}


# -- 2.0.1 TransactionEvent: Started -------------------------------------------


async def test_started_sets_the_active_transaction_and_the_last_event(harness: Harness) -> None:
    answer = await harness.send(V201, [2, "t1", "TransactionEvent", STARTED])
    assert answer == [3, "t1", {"idTokenInfo": {"status": "Accepted"}}]
    assert await harness.reported() == {
        "activeTransaction": ACTIVE_TX1,
        "lastTransactionEvent": {
            "eventType": "Started",
            "timestamp": T0,
            "transactionId": "TX1",
            "seqNo": 0,
            "triggerReason": "Authorized",
        },
    }
    assert await harness.version() == 1
    assert await harness.transactions.events("CP001", "TX1") == [
        TransactionEvent("CP001", "TX1", "seq:0", "Started", T0, STARTED)
    ]


async def test_started_without_token_or_evse(harness: Harness) -> None:
    started = tx_event("Started", 0, trigger="CablePluggedIn")
    assert await harness.call(V201, "TransactionEvent", started) == {}
    assert await harness.reported() == {
        "activeTransaction": {"transactionId": "TX1", "startTime": T0, "status": "Started"},
        "lastTransactionEvent": {
            "eventType": "Started",
            "timestamp": T0,
            "transactionId": "TX1",
            "seqNo": 0,
            "triggerReason": "CablePluggedIn",
        },
    }


async def test_the_2_0_subprotocol_is_served_the_same(harness: Harness) -> None:
    assert await harness.call("ocpp2.0", "TransactionEvent", STARTED) == {
        "idTokenInfo": {"status": "Accepted"}
    }
    assert (await harness.reported())["activeTransaction"] == ACTIVE_TX1


async def test_a_new_start_replaces_the_active_transaction_whole(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    second = tx_event("Started", 0, transaction_id="TX2", timestamp=T1, evse={"id": 2})
    assert await harness.call(V201, "TransactionEvent", second) == {}
    assert (await harness.reported())["activeTransaction"] == {
        "transactionId": "TX2",
        "evseId": 2,
        "startTime": T1,
        "status": "Started",
    }


# -- Updated ---------------------------------------------------------------------


async def test_updated_changes_the_charging_state_and_the_last_event(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    updated = tx_event(
        "Updated",
        1,
        timestamp=T1,
        trigger="ChargingStateChanged",
        info={"chargingState": "SuspendedEV"},
    )
    assert await harness.call(V201, "TransactionEvent", updated) == {}
    assert await harness.reported() == {
        "activeTransaction": {**ACTIVE_TX1, "chargingState": "SuspendedEV"},
        "lastTransactionEvent": {
            "eventType": "Updated",
            "timestamp": T1,
            "transactionId": "TX1",
            "seqNo": 1,
            "triggerReason": "ChargingStateChanged",
        },
    }


@pytest.mark.parametrize("trigger", ["MeterValuePeriodic", "MeterValueClock"])
async def test_a_periodic_reading_goes_to_the_history_only(harness: Harness, trigger: str) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    before = await harness.reported(), await harness.version()
    updated = tx_event(
        "Updated",
        1,
        timestamp=T1,
        trigger=trigger,
        info={"chargingState": "Charging"},
        meter_value=ENERGY,
    )
    assert await harness.call(V201, "TransactionEvent", updated) == {}
    assert await harness.call(V201, "TransactionEvent", copy.deepcopy(updated)) == {}
    assert (await harness.reported(), await harness.version()) == before
    events = await harness.transactions.events("CP001", "TX1")
    assert [(e.event_key, e.data) for e in events] == [("seq:0", STARTED), ("seq:1", updated)]


async def test_a_periodic_reading_with_a_token_is_applied(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    updated = tx_event("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic", id_token="TAG9")
    answer = await harness.call(V201, "TransactionEvent", updated)
    assert answer["idTokenInfo"]["status"] == "Accepted"
    reported = await harness.reported()
    assert reported["activeTransaction"] == {**ACTIVE_TX1, "idToken": "TAG9"}
    assert reported["lastTransactionEvent"]["seqNo"] == 1


async def test_every_reading_in_the_shadow_when_asked() -> None:
    harness = Harness(shadow_transaction_readings=True)
    await harness.call(V201, "TransactionEvent", STARTED)
    updated = tx_event("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic")
    await harness.call(V201, "TransactionEvent", updated)
    reported = await harness.reported()
    assert reported["activeTransaction"] == ACTIVE_TX1
    assert reported["lastTransactionEvent"]["triggerReason"] == "MeterValuePeriodic"


async def test_updated_of_another_transaction_leaves_the_active_one(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    updated = tx_event(
        "Updated",
        5,
        transaction_id="OTHER",
        timestamp=T1,
        trigger="ChargingStateChanged",
        info={"chargingState": "Idle"},
    )
    await harness.call(V201, "TransactionEvent", updated)
    reported = await harness.reported()
    assert reported["activeTransaction"] == ACTIVE_TX1
    assert reported["lastTransactionEvent"]["transactionId"] == "OTHER"


async def test_updated_with_a_token_answers_its_status(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    updated = tx_event("Updated", 1, timestamp=T1, id_token="TAG1")
    assert await harness.call(V201, "TransactionEvent", updated) == {
        "idTokenInfo": {"status": "Accepted"}
    }


async def test_a_token_authorized_after_the_start_joins_the_active_one(harness: Harness) -> None:
    started = tx_event("Started", 0, trigger="CablePluggedIn", evse={"id": 1, "connectorId": 1})
    await harness.call(V201, "TransactionEvent", started)
    authorized = tx_event("Updated", 1, timestamp=T1, trigger="Authorized", id_token="TAG1")
    await harness.call(V201, "TransactionEvent", authorized)
    assert (await harness.reported())["activeTransaction"] == {
        "transactionId": "TX1",
        "evseId": 1,
        "connectorId": 1,
        "idToken": "TAG1",
        "startTime": T0,
        "status": "Started",
    }


# -- Ended -----------------------------------------------------------------------


async def test_ended_completes_the_active_transaction(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    ended = tx_event(
        "Ended",
        2,
        timestamp=T2,
        trigger="EVDeparted",
        info={"stoppedReason": "EVDisconnected", "chargingState": "Idle"},
    )
    answer = await harness.send(V201, [2, "t3", "TransactionEvent", ended])
    assert answer == [3, "t3", {}]
    assert await harness.reported() == {
        "lastCompletedTransaction": {
            "transactionId": "TX1",
            "evseId": 1,
            "connectorId": 2,
            "idToken": "TAG1",
            "startTime": T0,
            "stopTime": T2,
            "status": "Ended",
            "chargingState": "Idle",
            "stoppedReason": "EVDisconnected",
            "remoteStartId": 1001,
        },
        "lastTransactionEvent": {
            "eventType": "Ended",
            "timestamp": T2,
            "transactionId": "TX1",
            "seqNo": 2,
            "triggerReason": "EVDeparted",
        },
    }
    assert await harness.version() == 2


async def test_ended_with_a_token_answers_its_status(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    ended = tx_event("Ended", 1, timestamp=T2, trigger="StopAuthorized", id_token="TAG1")
    assert await harness.call(V201, "TransactionEvent", ended) == {
        "idTokenInfo": {"status": "Accepted"}
    }
    completed = (await harness.reported())["lastCompletedTransaction"]
    assert completed["idToken"] == "TAG1"
    assert completed["status"] == "Ended"


async def test_ended_of_another_transaction_leaves_the_active_one(harness: Harness) -> None:
    first = tx_event("Started", 0, evse={"id": 1})
    await harness.call(V201, "TransactionEvent", first)
    second = tx_event("Started", 0, transaction_id="TX2", timestamp=T1, evse={"id": 2})
    await harness.call(V201, "TransactionEvent", second)
    ended = tx_event(
        "Ended",
        1,
        timestamp=T2,
        evse={"id": 1},
        info={"stoppedReason": "Local"},
    )
    await harness.call(V201, "TransactionEvent", ended)
    reported = await harness.reported()
    assert reported["activeTransaction"] == {
        "transactionId": "TX2",
        "evseId": 2,
        "startTime": T1,
        "status": "Started",
    }
    assert reported["lastCompletedTransaction"] == {
        "transactionId": "TX1",
        "evseId": 1,
        "stopTime": T2,
        "status": "Ended",
        "stoppedReason": "Local",
    }


async def test_a_completed_transaction_replaces_the_previous_one_whole(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    await harness.call(V201, "TransactionEvent", tx_event("Ended", 1, timestamp=T1))
    second = tx_event("Started", 0, transaction_id="TX2", timestamp=T2)
    await harness.call(V201, "TransactionEvent", second)
    await harness.call(
        V201, "TransactionEvent", tx_event("Ended", 1, transaction_id="TX2", timestamp=T3)
    )
    reported = await harness.reported()
    assert "activeTransaction" not in reported
    assert reported["lastCompletedTransaction"] == {
        "transactionId": "TX2",
        "startTime": T2,
        "stopTime": T3,
        "status": "Ended",
    }


# -- redelivery ------------------------------------------------------------------


async def test_every_event_is_idempotent(harness: Harness) -> None:
    updated = tx_event(
        "Updated",
        1,
        timestamp=T1,
        trigger="ChargingStateChanged",
        info={"chargingState": "SuspendedEVSE"},
        id_token="TAG1",
    )
    ended = tx_event("Ended", 2, timestamp=T2, info={"stoppedReason": "Remote"})
    recorded = []
    for event in (STARTED, updated, ended):
        first = await harness.send(V201, [2, "a", "TransactionEvent", event])
        version = await harness.version()
        shadow = copy.deepcopy(await harness.shadows.get("CP001"))
        recorded.append(event)
        again = await harness.send(V201, [2, "b", "TransactionEvent", copy.deepcopy(event)])
        assert again[:2] == [3, "b"]
        assert again[2] == first[2]
        assert await harness.version() == version
        assert await harness.shadows.get("CP001") == shadow
        assert [e.data for e in await harness.transactions.events("CP001", "TX1")] == recorded
    assert [e.event_key for e in await harness.transactions.events("CP001", "TX1")] == [
        "seq:0",
        "seq:1",
        "seq:2",
    ]


async def test_a_started_redelivered_after_the_end_does_not_revive_it(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    await harness.call(V201, "TransactionEvent", tx_event("Ended", 1, timestamp=T1))
    shadow = copy.deepcopy(await harness.shadows.get("CP001"))
    assert await harness.call(V201, "TransactionEvent", STARTED) == {
        "idTokenInfo": {"status": "Accepted"}
    }
    assert await harness.shadows.get("CP001") == shadow
    assert "activeTransaction" not in await harness.reported()


async def test_meter_values_of_an_event_are_kept_in_the_history(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    updated = tx_event("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic", meter_value=ENERGY)
    await harness.call(V201, "TransactionEvent", updated)
    events = await harness.transactions.events("CP001", "TX1")
    assert events == [
        TransactionEvent("CP001", "TX1", "seq:0", "Started", T0, STARTED),
        TransactionEvent("CP001", "TX1", "seq:1", "Updated", T1, updated),
    ]
    assert events[1].data["meterValue"] == ENERGY


async def test_histories_are_kept_per_charge_point(harness: Harness) -> None:
    await harness.send(V201, [2, "a", "TransactionEvent", STARTED], "CP001")
    await harness.send(V201, [2, "a", "TransactionEvent", STARTED], "CP002")
    assert len(await harness.transactions.events("CP001", "TX1")) == 1
    assert len(await harness.transactions.events("CP002", "TX1")) == 1
    assert (await harness.reported("CP002"))["activeTransaction"] == ACTIVE_TX1


# -- 1.6 StartTransaction / StopTransaction ------------------------------------

START = {"connectorId": 1, "idTag": "TAG1", "meterStart": 100, "timestamp": T0}
ACTIVE_1 = {
    "transactionId": 1,
    "connectorId": 1,
    "idToken": "TAG1",
    "startTime": T0,
    "status": "Started",
    "meterStart": 100,
}


async def test_start_transaction_opens_a_transaction(harness: Harness) -> None:
    answer = await harness.send(V16, [2, "s1", "StartTransaction", START])
    assert answer == [3, "s1", {"transactionId": 1, "idTagInfo": {"status": "Accepted"}}]
    assert isinstance(answer[2]["transactionId"], int)
    assert await harness.reported() == {
        "activeTransaction": ACTIVE_1,
        "lastTransactionEvent": {"eventType": "Started", "timestamp": T0, "transactionId": 1},
    }
    assert await harness.transactions.events("CP001", "1") == [
        TransactionEvent("CP001", "1", "start", "Started", T0, START)
    ]


async def test_different_starts_get_different_ids(harness: Harness) -> None:
    starts = [
        START,
        {**START, "timestamp": T1},
        {**START, "connectorId": 2},
        {**START, "meterStart": 101},
        {**START, "idTag": "TAG2"},
    ]
    ids = [(await harness.call(V16, "StartTransaction", s))["transactionId"] for s in starts]
    assert len(set(ids)) == len(starts)
    assert all(type(i) is int for i in ids)
    assert (await harness.reported())["activeTransaction"]["transactionId"] == ids[-1]


async def test_a_redelivered_start_gets_the_same_id_and_changes_nothing(harness: Harness) -> None:
    first = await harness.call(V16, "StartTransaction", START)
    shadow = copy.deepcopy(await harness.shadows.get("CP001"))
    again = await harness.send(V16, [2, "s2", "StartTransaction", dict(START)])
    assert again == [3, "s2", first]
    assert first["transactionId"] == 1
    assert await harness.shadows.get("CP001") == shadow
    assert await harness.version() == 1
    assert len(await harness.transactions.events("CP001", "1")) == 1


async def test_a_new_start_replaces_a_201_active_transaction_whole(harness: Harness) -> None:
    await harness.call(V201, "TransactionEvent", STARTED)
    await harness.call(V16, "StartTransaction", START)
    assert (await harness.reported())["activeTransaction"] == ACTIVE_1


STOP = {"transactionId": 1, "meterStop": 500, "timestamp": T2}
COMPLETED_1 = {
    "transactionId": 1,
    "connectorId": 1,
    "idToken": "TAG1",
    "startTime": T0,
    "stopTime": T2,
    "status": "Ended",
    "stoppedReason": "Local",
    "meterStart": 100,
    "meterStop": 500,
}


async def test_stop_transaction_completes_it(harness: Harness) -> None:
    await harness.call(V16, "StartTransaction", START)
    answer = await harness.send(V16, [2, "x", "StopTransaction", STOP])
    assert answer == [3, "x", {}]
    assert await harness.reported() == {
        "lastCompletedTransaction": COMPLETED_1,
        "lastTransactionEvent": {"eventType": "Ended", "timestamp": T2, "transactionId": 1},
    }
    assert await harness.transactions.events("CP001", "1") == [
        TransactionEvent("CP001", "1", "start", "Started", T0, START),
        TransactionEvent("CP001", "1", "stop", "Ended", T2, STOP),
    ]


async def test_stop_with_reason_and_id_tag(harness: Harness) -> None:
    await harness.call(V16, "StartTransaction", START)
    stop = {**STOP, "reason": "Remote", "idTag": "TAG9"}
    assert await harness.call(V16, "StopTransaction", stop) == {"idTagInfo": {"status": "Accepted"}}
    assert (await harness.reported())["lastCompletedTransaction"] == {
        **COMPLETED_1,
        "stoppedReason": "Remote",
    }


async def test_stop_is_idempotent(harness: Harness) -> None:
    await harness.call(V16, "StartTransaction", START)
    stop = {**STOP, "idTag": "TAG1"}
    first = await harness.call(V16, "StopTransaction", stop)
    shadow = copy.deepcopy(await harness.shadows.get("CP001"))
    again = await harness.send(V16, [2, "x2", "StopTransaction", dict(stop)])
    assert again == [3, "x2", first]
    assert first == {"idTagInfo": {"status": "Accepted"}}
    assert await harness.shadows.get("CP001") == shadow
    assert await harness.version() == 2
    assert len(await harness.transactions.events("CP001", "1")) == 2


async def test_stop_of_another_transaction_leaves_the_active_one(harness: Harness) -> None:
    await harness.call(V16, "StartTransaction", START)
    await harness.call(V16, "StopTransaction", {**STOP, "transactionId": 77})
    reported = await harness.reported()
    assert reported["activeTransaction"] == ACTIVE_1
    assert reported["lastCompletedTransaction"] == {
        "transactionId": 77,
        "stopTime": T2,
        "status": "Ended",
        "stoppedReason": "Local",
        "meterStop": 500,
    }


async def test_stop_transaction_data_is_kept_in_the_history(harness: Harness) -> None:
    await harness.call(V16, "StartTransaction", START)
    data = [{"timestamp": T2, "sampledValue": [{"value": "500", "context": "Transaction.End"}]}]
    stop = {**STOP, "transactionData": data}
    await harness.call(V16, "StopTransaction", stop)
    events = await harness.transactions.events("CP001", "1")
    assert events[-1].data["transactionData"] == data


# -- MeterValues -----------------------------------------------------------------

SAMPLE_A = [{"value": "150", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
SAMPLE_B = [{"value": "7000", "measurand": "Power.Active.Import", "unit": "W"}]


def meter_values_of_transaction_1() -> dict[str, Any]:
    """Two 1.6 readings of transaction 1 on connector 1 (a fresh copy each time)."""
    return {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [
            {"timestamp": T1, "sampledValue": SAMPLE_A},
            {"timestamp": T2, "sampledValue": SAMPLE_B},
        ],
    }


async def test_meter_values_v16_join_the_transaction_history_once(harness: Harness) -> None:
    await harness.call(V16, "StartTransaction", START)
    meter = meter_values_of_transaction_1()
    answer = await harness.send(V16, [2, "m", "MeterValues", meter])
    assert answer == [3, "m", {}]
    await harness.call(V16, "MeterValues", copy.deepcopy(meter))
    assert await harness.transactions.events("CP001", "1") == [
        TransactionEvent("CP001", "1", "start", "Started", T0, START),
        TransactionEvent("CP001", "1", f"meter:{T1}", "Updated", T2, meter),
    ]
    reported = await harness.reported()
    assert "meterValues" not in reported  # the history has them
    assert reported["activeTransaction"] == ACTIVE_1


async def test_meter_values_v16_of_a_transaction_in_the_shadow_when_asked() -> None:
    harness = Harness(shadow_transaction_readings=True)
    await harness.call(V16, "StartTransaction", START)
    meter = meter_values_of_transaction_1()
    await harness.call(V16, "MeterValues", meter)
    assert len(await harness.transactions.events("CP001", "1")) == 2
    assert (await harness.reported())["meterValues"] == {
        "1": {"timestamp": T2, "transactionId": 1, "sampledValue": SAMPLE_B}
    }


async def test_meter_values_v16_readings_per_connector(harness: Harness) -> None:
    one = {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [{"timestamp": T1, "sampledValue": SAMPLE_A}],
    }
    two = {"connectorId": 2, "meterValue": [{"timestamp": T1, "sampledValue": SAMPLE_B}]}
    await harness.call(V16, "MeterValues", one)
    await harness.call(V16, "MeterValues", two)
    later = {"connectorId": 1, "meterValue": [{"timestamp": T2, "sampledValue": SAMPLE_B}]}
    await harness.call(V16, "MeterValues", later)
    assert await harness.reported() == {
        "meterValues": {
            "1": {"timestamp": T2, "sampledValue": SAMPLE_B},
            "2": {"timestamp": T1, "sampledValue": SAMPLE_B},
        }
    }
    # Only the reading with a transactionId joined a history.
    assert len(await harness.transactions.events("CP001", "1")) == 1
    assert await harness.transactions.events("CP001", "None") == []


async def test_meter_values_v201_write_the_evse_reading(harness: Harness) -> None:
    sampled = [{"value": 1234.5, "measurand": "Energy.Active.Import.Register"}]
    later = [{"value": 7.5, "measurand": "Power.Active.Import"}]
    meter = {
        "evseId": 2,
        "meterValue": [
            {"timestamp": T1, "sampledValue": sampled},
            {"timestamp": T2, "sampledValue": later},
        ],
    }
    answer = await harness.send(V201, [2, "m", "MeterValues", meter])
    assert answer == [3, "m", {}]
    assert await harness.reported() == {
        "meterValues": {"2": {"timestamp": T2, "sampledValue": later}}
    }
    await harness.call(
        V201,
        "MeterValues",
        {"evseId": 0, "meterValue": [{"timestamp": T3, "sampledValue": sampled}]},
    )
    assert (await harness.reported())["meterValues"] == {
        "0": {"timestamp": T3, "sampledValue": sampled},
        "2": {"timestamp": T2, "sampledValue": later},
    }


# -- invalid payloads ----------------------------------------------------------

INVALID = [
    (V201, "TransactionEvent", {**STARTED, "seqNo": "0"}, "TypeConstraintViolation"),
    (V201, "TransactionEvent", {**STARTED, "eventType": "Paused"}, "PropertyConstraintViolation"),
    (V201, "TransactionEvent", {k: v for k, v in STARTED.items() if k != "transactionInfo"},
     "OccurrenceConstraintViolation"),
    (V16, "StartTransaction", {k: v for k, v in START.items() if k != "idTag"},
     "OccurenceConstraintViolation"),
    (V16, "StartTransaction", {**START, "idTag": "T" * 21}, "PropertyConstraintViolation"),
    (V16, "StopTransaction", {**STOP, "transactionId": "1"}, "TypeConstraintViolation"),
    (V16, "StopTransaction", {**STOP, "extra": True}, "FormationViolation"),
    (V16, "MeterValues", {"connectorId": 1, "meterValue": []}, "OccurenceConstraintViolation"),
    (V201, "MeterValues", {"evseId": 1}, "OccurrenceConstraintViolation"),
    (V16, "TransactionEvent", STARTED, "NotImplemented"),
    (V201, "StartTransaction", START, "NotImplemented"),
]  # fmt: skip


@pytest.mark.parametrize(("protocol", "action", "payload", "code"), INVALID)
async def test_invalid_transaction_messages_change_nothing(
    harness: Harness, protocol: str, action: str, payload: dict[str, Any], code: str
) -> None:
    answer = await harness.send(protocol, [2, "bad", action, payload])
    assert answer[:3] == [4, "bad", code]
    assert await harness.shadows.get("CP001") is None
    assert await harness.transactions.events("CP001", "TX1") == []
    assert await harness.transactions.events("CP001", "1") == []


async def test_no_shadow_write_uses_the_clock_for_transactions(harness: Harness) -> None:
    """Transaction times come from the charger, never from the clock."""
    await harness.call(V16, "StartTransaction", START)
    await harness.call(V16, "StopTransaction", STOP)
    assert NOW_TEXT not in str(await harness.reported())


async def test_a_start_delivered_after_its_end_stays_in_the_history_only(
    harness: Harness,
) -> None:
    ended = tx_event("Ended", 1, timestamp=T1, trigger="EVDeparted")
    await harness.call(V201, "TransactionEvent", ended)
    before = await harness.reported()
    assert (await harness.call(V201, "TransactionEvent", STARTED)) == {
        "idTokenInfo": {"status": "Accepted"}
    }
    assert await harness.reported() == before
    assert "activeTransaction" not in before
    kinds = [event.event_type for event in await harness.transactions.events("CP001", "TX1")]
    assert kinds == ["Ended", "Started"]
