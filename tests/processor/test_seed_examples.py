"""The seed description's examples, driven through the processor.

The seed's shadow document (``chargingStation``, ``activeTransaction``,
``lastTransactionEvent``, ``lastCallResult``) and its remote start / stop
input formats are the contract; this file checks that each lands as shown.
"""

from __future__ import annotations

import orjson

from processor.commands import Commands, RemoteStart, RemoteStop

from .conftest import NOW_TEXT, Harness

V201 = "ocpp2.0.1"

#: ``state.reported.chargingStation`` of the seed's shadow, verbatim.
SEED_CHARGING_STATION = {
    "model": "SmartCharger Pro",
    "vendorName": "ACME Charging",
    "firmwareVersion": "v2.1.0",
    "serialNumber": "SC001234",
    "modem": {"iccid": "891004234814455936F", "imsi": "310410123456789"},
}

SEED_START_INPUT = {
    "chargePointId": "CP001",
    "idTag": "user-123",
    "connectorId": 1,
    "transactionData": {},
}
SEED_STOP_INPUT = {"chargePointId": "CP001", "transactionId": 123456789}


async def test_seed_boot_lands_in_the_shadow_as_in_the_seed(harness: Harness) -> None:
    boot = {"reason": "PowerUp", "chargingStation": SEED_CHARGING_STATION}
    answer = await harness.send(V201, [2, "boot-1", "BootNotification", boot])
    assert answer == [3, "boot-1", {"status": "Accepted", "currentTime": NOW_TEXT, "interval": 42}]
    reported = await harness.reported()
    assert reported["chargingStation"] == SEED_CHARGING_STATION
    assert reported == {
        "chargingStation": SEED_CHARGING_STATION,
        "ocppVersion": "2.0.1",
        "lastBoot": {"at": NOW_TEXT, "reason": "PowerUp"},
    }


async def test_seed_remote_start_input_gives_the_seeds_frame(harness: Harness) -> None:
    harness.outbound.connections = {"CP001": V201}
    command = RemoteStart.from_input(SEED_START_INPUT)
    await Commands(harness.services).remote_start(command)
    [(charge_point_id, frame)] = harness.outbound.sent
    assert charge_point_id == "CP001"
    kind, message_id, action, payload = orjson.loads(frame)
    # The seed's frame, with our own message id and remoteStartId.
    assert (kind, message_id, action) == (2, "msg-1", "RequestStartTransaction")
    assert payload == {
        "idToken": {"idToken": "user-123", "type": "ISO14443"},
        "evseId": 1,
        "remoteStartId": 1001,
    }


async def test_seed_remote_start_input_on_a_v16_charger(harness: Harness) -> None:
    harness.outbound.connections = {"CP001": "ocpp1.6"}
    await Commands(harness.services).remote_start(RemoteStart.from_input(SEED_START_INPUT))
    [(_, frame)] = harness.outbound.sent
    assert orjson.loads(frame) == [
        2,
        "msg-1",
        "RemoteStartTransaction",
        {"idTag": "user-123", "connectorId": 1},
    ]


async def test_seed_remote_stop_input_gives_valid_frames(harness: Harness) -> None:
    command = RemoteStop.from_input(SEED_STOP_INPUT)
    harness.outbound.connections = {"CP001": V201}
    await Commands(harness.services).remote_stop(command)
    harness.outbound.connections = {"CP001": "ocpp1.6"}
    await Commands(harness.services).remote_stop(command)
    assert [orjson.loads(frame) for _, frame in harness.outbound.sent] == [
        [2, "msg-1", "RequestStopTransaction", {"transactionId": "123456789"}],
        [2, "msg-2", "RemoteStopTransaction", {"transactionId": 123456789}],
    ]


async def test_seed_transaction_started_gives_the_seeds_shadow(harness: Harness) -> None:
    event = {
        "eventType": "Started",
        "timestamp": "2023-12-01T14:30:00Z",
        "triggerReason": "RemoteStart",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "123456789"},
        "evse": {"id": 1},
        "idToken": {"idToken": "user-123", "type": "ISO14443"},
    }
    answer = await harness.send(V201, [2, "tx-1", "TransactionEvent", event])
    assert answer == [3, "tx-1", {"idTokenInfo": {"status": "Accepted"}}]
    reported = await harness.reported()
    # The seed's five fields exactly; 2.0.1 transaction ids are strings.
    assert reported["activeTransaction"] == {
        "transactionId": "123456789",
        "evseId": 1,
        "idToken": "user-123",
        "startTime": "2023-12-01T14:30:00Z",
        "status": "Started",
    }
    # The seed's three fields, plus what 2.0.1 adds to tell events apart.
    assert reported["lastTransactionEvent"] == {
        "eventType": "Started",
        "timestamp": "2023-12-01T14:30:00Z",
        "transactionId": "123456789",
        "seqNo": 0,
        "triggerReason": "RemoteStart",
    }


async def test_seed_call_result_shape(harness: Harness) -> None:
    """The seed's ``lastCallResult`` (messageId, receivedAt, payload), plus the action."""
    harness.outbound.connections = {"CP001": V201}
    sent = await Commands(harness.services).remote_start(RemoteStart.from_input(SEED_START_INPUT))
    await harness.send(V201, [3, sent.message_id, {"status": "Accepted"}])
    assert (await harness.reported())["lastCallResult"] == {
        "messageId": sent.message_id,
        "action": "RequestStartTransaction",
        "receivedAt": NOW_TEXT,
        "payload": {"status": "Accepted"},
    }
