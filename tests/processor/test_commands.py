"""Remote start / stop: input checks, the frames sent, and the charger's answers."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import orjson
import pytest

from processor.adapters.memory import MemoryOutbound
from processor.commands import (
    CommandAnswer,
    Commands,
    InvalidCommand,
    RemoteStart,
    RemoteStop,
    SentCommand,
)
from processor.ports import ChargePointOffline

from .conftest import NOW, NOW_TEXT, Harness

V16 = "ocpp1.6"
V201 = "ocpp2.0.1"

SEED_START = {
    "chargePointId": "CP001",
    "idTag": "user-123",
    "connectorId": 1,
    "transactionData": {},
}
SEED_STOP = {"chargePointId": "CP001", "transactionId": 123456789}


def connect(harness: Harness, protocol: str, charge_point_id: str = "CP001") -> Commands:
    harness.outbound.connections = {charge_point_id: protocol}
    return Commands(harness.services)


def frames(harness: Harness) -> list[tuple[str, Any]]:
    return [(cp, orjson.loads(frame)) for cp, frame in harness.outbound.sent]


# -- frames sent -----------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["ocpp2.0.1", "ocpp2.0"])
async def test_remote_start_v201_sends_request_start_transaction(
    harness: Harness, protocol: str
) -> None:
    commands = connect(harness, protocol)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 2))
    payload = {
        "idToken": {"idToken": "user-123", "type": "ISO14443"},
        "remoteStartId": 1001,
        "evseId": 2,
    }
    assert frames(harness) == [("CP001", [2, "msg-1", "RequestStartTransaction", payload])]
    assert sent == SentCommand(
        "CP001", "msg-1", "RequestStartTransaction", payload, NOW.timestamp() + 30
    )


async def test_remote_start_v201_without_evse_and_fresh_ids(harness: Harness) -> None:
    commands = connect(harness, V201)
    await commands.remote_start(RemoteStart("CP001", "A"))
    await commands.remote_start(RemoteStart("CP001", "B", 1))
    assert frames(harness) == [
        (
            "CP001",
            [
                2,
                "msg-1",
                "RequestStartTransaction",
                {"idToken": {"idToken": "A", "type": "ISO14443"}, "remoteStartId": 1001},
            ],
        ),
        (
            "CP001",
            [
                2,
                "msg-2",
                "RequestStartTransaction",
                {
                    "idToken": {"idToken": "B", "type": "ISO14443"},
                    "remoteStartId": 1002,
                    "evseId": 1,
                },
            ],
        ),
    ]


async def test_remote_start_v16_sends_remote_start_transaction(harness: Harness) -> None:
    commands = connect(harness, V16)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    payload = {"idTag": "user-123", "connectorId": 1}
    assert frames(harness) == [("CP001", [2, "msg-1", "RemoteStartTransaction", payload])]
    assert sent == SentCommand(
        "CP001", "msg-1", "RemoteStartTransaction", payload, NOW.timestamp() + 30
    )


async def test_remote_start_v16_without_connector(harness: Harness) -> None:
    commands = connect(harness, V16)
    await commands.remote_start(RemoteStart("CP001", "user-123"))
    assert frames(harness) == [
        ("CP001", [2, "msg-1", "RemoteStartTransaction", {"idTag": "user-123"}])
    ]


async def test_remote_start_v16_passes_a_charging_profile_on(harness: Harness) -> None:
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        },
    }
    commands = connect(harness, V16)
    await commands.remote_start(RemoteStart("CP001", "T", 1, {"chargingProfile": profile}))
    assert frames(harness) == [
        (
            "CP001",
            [
                2,
                "msg-1",
                "RemoteStartTransaction",
                {"idTag": "T", "connectorId": 1, "chargingProfile": profile},
            ],
        ),
    ]


async def test_remote_start_v201_passes_a_charging_profile_on(harness: Harness) -> None:
    profile = {
        "id": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}],
            }
        ],
    }
    commands = connect(harness, V201)
    await commands.remote_start(RemoteStart("CP001", "T", 1, {"chargingProfile": profile}))
    assert frames(harness)[0][1][3] == {
        "idToken": {"idToken": "T", "type": "ISO14443"},
        "remoteStartId": 1001,
        "evseId": 1,
        "chargingProfile": profile,
    }


PROFILE = "transactionData.chargingProfile"


@pytest.mark.parametrize(
    ("protocol", "command", "field"),
    [
        (V16, RemoteStart("CP001", "x" * 21, 1), "idTag"),
        (V201, RemoteStart("CP001", "x" * 37, 1), "idTag"),
        (V16, RemoteStart("CP001", "T", 1, {"chargingProfile": {"chargingProfileId": 1}}), PROFILE),
        (V201, RemoteStart("CP001", "T", 1, {"chargingProfile": {"id": 1}}), PROFILE),
    ],
)
async def test_a_start_that_breaks_the_schema_is_not_sent(
    harness: Harness, protocol: str, command: RemoteStart, field: str
) -> None:
    commands = connect(harness, protocol)
    with pytest.raises(InvalidCommand) as caught:
        await commands.remote_start(command)
    # The error names the caller's field, not the payload's.
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: gives an invalid ")
    assert harness.outbound.sent == []
    # Nothing pending: the first message id was never used.
    sent = await commands.remote_start(RemoteStart("CP001", "T"))
    assert sent.message_id == "msg-1"


async def test_remote_stop_v201_sends_a_string_id(harness: Harness) -> None:
    commands = connect(harness, V201)
    sent = await commands.remote_stop(RemoteStop("CP001", 123456789))
    await commands.remote_stop(RemoteStop("CP001", "TX-abc"))
    assert frames(harness) == [
        ("CP001", [2, "msg-1", "RequestStopTransaction", {"transactionId": "123456789"}]),
        ("CP001", [2, "msg-2", "RequestStopTransaction", {"transactionId": "TX-abc"}]),
    ]
    assert sent == SentCommand(
        "CP001",
        "msg-1",
        "RequestStopTransaction",
        {"transactionId": "123456789"},
        NOW.timestamp() + 30,
    )


async def test_remote_stop_v201_with_a_too_long_id_is_not_sent(harness: Harness) -> None:
    commands = connect(harness, V201)
    with pytest.raises(InvalidCommand) as caught:
        await commands.remote_stop(RemoteStop("CP001", "x" * 37))
    assert caught.value.field == "transactionId"
    assert harness.outbound.sent == []


async def test_remote_stop_v16_sends_an_integer_id(harness: Harness) -> None:
    commands = connect(harness, V16)
    await commands.remote_stop(RemoteStop("CP001", 123456789))
    await commands.remote_stop(RemoteStop("CP001", "42"))
    assert frames(harness) == [
        ("CP001", [2, "msg-1", "RemoteStopTransaction", {"transactionId": 123456789}]),
        ("CP001", [2, "msg-2", "RemoteStopTransaction", {"transactionId": 42}]),
    ]


@pytest.mark.parametrize("transaction_id", ["TX-abc", "1.5", "0x10"])
async def test_remote_stop_v16_refuses_a_non_integer_id(
    harness: Harness, transaction_id: str
) -> None:
    commands = connect(harness, V16)
    with pytest.raises(InvalidCommand) as caught:
        await commands.remote_stop(RemoteStop("CP001", transaction_id))
    assert caught.value.field == "transactionId"
    assert str(caught.value) == "transactionId: OCPP 1.6 transaction ids are integers"
    assert harness.outbound.sent == []
    # No pending call was left behind.
    assert await harness.send(V16, [3, "msg-1", {"status": "Accepted"}]) is None
    assert harness.answers == []


# -- offline -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [RemoteStart("CP001", "user-123", 1), RemoteStop("CP001", 123456789)]
)
async def test_an_offline_charger_gets_nothing(
    harness: Harness, command: RemoteStart | RemoteStop
) -> None:
    commands = connect(harness, V201, "CP999")
    with pytest.raises(ChargePointOffline):
        if isinstance(command, RemoteStart):
            await commands.remote_start(command)
        else:
            await commands.remote_stop(command)
    assert harness.outbound.sent == []
    assert await harness.send(V201, [3, "msg-1", {"status": "Accepted"}]) is None
    assert harness.answers == []
    assert await harness.shadows.get("CP001") is None


class VanishingOutbound(MemoryOutbound):
    """Says the charger is connected, then finds it gone when sending."""

    async def subprotocol(self, charge_point_id: str) -> str | None:
        return V201


async def test_a_charger_gone_while_sending_leaves_no_pending_call(harness: Harness) -> None:
    outbound = VanishingOutbound()
    commands = Commands(dataclasses.replace(harness.services, outbound=outbound))
    with pytest.raises(ChargePointOffline):
        await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    assert outbound.sent == []
    # The call was registered as msg-1 and must have been withdrawn.
    assert await harness.send(V201, [3, "msg-1", {"status": "Accepted"}]) is None
    assert harness.answers == []
    assert await harness.shadows.get("CP001") is None


# -- input formats -----------------------------------------------------------------


def test_remote_start_from_the_seed_input() -> None:
    assert RemoteStart.from_input(SEED_START) == RemoteStart("CP001", "user-123", 1, {})


def test_remote_start_with_only_the_required_fields() -> None:
    command = RemoteStart.from_input({"chargePointId": "CP001", "idTag": "user-123"})
    assert command == RemoteStart("CP001", "user-123", None, None)


def test_remote_stop_from_the_seed_input() -> None:
    assert RemoteStop.from_input(SEED_STOP) == RemoteStop("CP001", 123456789)


def test_remote_stop_with_a_string_id() -> None:
    command = RemoteStop.from_input({"chargePointId": "CP001", "transactionId": "TX-1"})
    assert command == RemoteStop("CP001", "TX-1")


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in SEED_START.items() if k != key}


BAD_STARTS = [
    (without("idTag"), "idTag"),
    ({**SEED_START, "idTag": ""}, "idTag"),
    ({**SEED_START, "idTag": None}, "idTag"),
    ({**SEED_START, "idTag": 123}, "idTag"),
    ({**SEED_START, "connectorId": "1"}, "connectorId"),
    ({**SEED_START, "connectorId": 1.0}, "connectorId"),
    ({**SEED_START, "connectorId": -1}, "connectorId"),
    ({**SEED_START, "connectorId": True}, "connectorId"),
    ({**SEED_START, "connectorId": False}, "connectorId"),
    ({**SEED_START, "transactionData": []}, "transactionData"),
    ({**SEED_START, "transactionData": "profile"}, "transactionData"),
    ({**SEED_START, "transactionData": {"meterStart": 1}}, "transactionData.meterStart"),
    ({**SEED_START, "transactionData": {"chargingProfile": {}, "x": 1}}, "transactionData.x"),
    (without("chargePointId"), "chargePointId"),
    ({**SEED_START, "chargePointId": 1}, "chargePointId"),
    ({**SEED_START, "chargePointId": ""}, "chargePointId"),
    ({**SEED_START, "chargePointId": "CP:001"}, "chargePointId"),
    ({**SEED_START, "chargePointId": "CP/001"}, "chargePointId"),
    ({**SEED_START, "chargePointId": "C" * 49}, "chargePointId"),
    ({**SEED_START, "chargePointId": "CP\n001"}, "chargePointId"),
    ([SEED_START], "body"),
    ("CP001", "body"),
    (None, "body"),
]


@pytest.mark.parametrize(("data", "field"), BAD_STARTS)
def test_remote_start_input_errors_name_the_field(data: Any, field: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        RemoteStart.from_input(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_remote_start_refuses_connector_zero() -> None:
    with pytest.raises(InvalidCommand) as caught:
        RemoteStart.from_input({**SEED_START, "connectorId": 0})
    assert caught.value.field == "connectorId"


BAD_STOPS = [
    ({"chargePointId": "CP001"}, "transactionId"),
    ({**SEED_STOP, "transactionId": ""}, "transactionId"),
    ({**SEED_STOP, "transactionId": None}, "transactionId"),
    ({**SEED_STOP, "transactionId": True}, "transactionId"),
    ({**SEED_STOP, "transactionId": 1.5}, "transactionId"),
    ({**SEED_STOP, "transactionId": [1]}, "transactionId"),
    ({"transactionId": 1}, "chargePointId"),
    ({**SEED_STOP, "chargePointId": "a:b"}, "chargePointId"),
    ({**SEED_STOP, "chargePointId": None}, "chargePointId"),
    ([SEED_STOP], "body"),
    (123456789, "body"),
]


@pytest.mark.parametrize(("data", "field"), BAD_STOPS)
def test_remote_stop_input_errors_name_the_field(data: Any, field: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        RemoteStop.from_input(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


# -- the charger's answers ---------------------------------------------------------


async def test_an_accepted_start_is_recorded(harness: Harness) -> None:
    commands = connect(harness, V201)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    assert await harness.send(V201, [3, sent.message_id, {"status": "Accepted"}]) is None
    assert harness.answers == [
        CommandAnswer("CP001", "msg-1", "RequestStartTransaction", {"status": "Accepted"})
    ]
    assert harness.answers[0].outcome == "Accepted"
    assert await harness.reported() == {
        "lastCallResult": {
            "messageId": "msg-1",
            "action": "RequestStartTransaction",
            "receivedAt": NOW_TEXT,
            "payload": {"status": "Accepted"},
        }
    }
    assert await harness.version() == 1


async def test_a_rejected_v16_stop_is_recorded(harness: Harness) -> None:
    commands = connect(harness, V16)
    sent = await commands.remote_stop(RemoteStop("CP001", 7))
    await harness.send(V16, [3, sent.message_id, {"status": "Rejected"}])
    assert [(a.action, a.outcome) for a in harness.answers] == [
        ("RemoteStopTransaction", "Rejected")
    ]
    assert (await harness.reported())["lastCallResult"] == {
        "messageId": "msg-1",
        "action": "RemoteStopTransaction",
        "receivedAt": NOW_TEXT,
        "payload": {"status": "Rejected"},
    }


async def test_a_call_error_answer_is_an_error_outcome(harness: Harness) -> None:
    commands = connect(harness, V201)
    sent = await commands.remote_stop(RemoteStop("CP001", "TX1"))
    error = [4, sent.message_id, "NotSupported", "not here", {"x": 1}]
    assert await harness.send(V201, error) is None
    assert harness.answers == [
        CommandAnswer("CP001", "msg-1", "RequestStopTransaction", None, "NotSupported", "not here")
    ]
    assert harness.answers[0].outcome == "error"
    assert await harness.reported() == {
        "lastCallResult": {
            "messageId": "msg-1",
            "action": "RequestStopTransaction",
            "receivedAt": NOW_TEXT,
            "error": {"code": "NotSupported", "description": "not here"},
        }
    }


async def test_a_second_answer_replaces_the_last_call_result_whole(harness: Harness) -> None:
    commands = connect(harness, V201)
    first = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    answer = {
        "status": "Accepted",
        "transactionId": "TX-9",
        "statusInfo": {"reasonCode": "Busy", "additionalInfo": "already charging"},
    }
    await harness.send(V201, [3, first.message_id, answer])
    assert (await harness.reported())["lastCallResult"]["payload"] == answer

    harness.clock.moment = NOW + timedelta(seconds=5)
    second = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    await harness.send(V201, [3, second.message_id, {"status": "Rejected"}])
    assert await harness.reported() == {
        "lastCallResult": {
            "messageId": "msg-2",
            "action": "RequestStartTransaction",
            "receivedAt": "2026-03-01T12:30:05.000Z",
            "payload": {"status": "Rejected"},
        }
    }


async def test_answers_alternating_payload_and_error_leave_nothing_stale(
    harness: Harness,
) -> None:
    commands = connect(harness, V201)
    one = await commands.remote_stop(RemoteStop("CP001", "TX1"))
    two = await commands.remote_stop(RemoteStop("CP001", "TX1"))
    three = await commands.remote_stop(RemoteStop("CP001", "TX1"))
    await harness.send(V201, [3, one.message_id, {"status": "Accepted"}])
    await harness.send(V201, [4, two.message_id, "InternalError", "boom", {}])
    assert (await harness.reported())["lastCallResult"] == {
        "messageId": "msg-2",
        "action": "RequestStopTransaction",
        "receivedAt": NOW_TEXT,
        "error": {"code": "InternalError", "description": "boom"},
    }
    await harness.send(V201, [3, three.message_id, {"status": "Rejected"}])
    assert (await harness.reported())["lastCallResult"] == {
        "messageId": "msg-3",
        "action": "RequestStopTransaction",
        "receivedAt": NOW_TEXT,
        "payload": {"status": "Rejected"},
    }
    assert [a.outcome for a in harness.answers] == ["Accepted", "error", "Rejected"]


async def test_the_last_call_result_leaves_other_shadow_keys_alone(harness: Harness) -> None:
    await harness.call(V201, "Heartbeat", {})
    boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
    await harness.call(V201, "BootNotification", boot)
    commands = connect(harness, V201)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    await harness.send(V201, [3, sent.message_id, {"status": "Accepted"}])
    reported = await harness.reported()
    assert reported["chargingStation"] == {"model": "M", "vendorName": "V"}
    assert set(reported) == {"chargingStation", "ocppVersion", "lastBoot", "lastCallResult"}


async def test_an_answer_within_the_time_to_live_counts(harness: Harness) -> None:
    commands = connect(harness, V201)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    harness.clock.moment = NOW + timedelta(seconds=29)
    await harness.send(V201, [3, sent.message_id, {"status": "Accepted"}])
    assert len(harness.answers) == 1
    assert (await harness.reported())["lastCallResult"]["receivedAt"] == "2026-03-01T12:30:29.000Z"


@pytest.mark.parametrize("late", [timedelta(seconds=31), timedelta(seconds=30, milliseconds=1)])
async def test_an_answer_after_the_time_to_live_is_ignored(
    harness: Harness, late: timedelta
) -> None:
    commands = connect(harness, V201)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    harness.clock.moment = NOW + late
    assert await harness.send(V201, [3, sent.message_id, {"status": "Accepted"}]) is None
    assert harness.answers == []
    assert await harness.shadows.get("CP001") is None
    # Going back in time does not revive it either: the expired call is gone.
    harness.clock.moment = NOW
    await harness.send(V201, [3, sent.message_id, {"status": "Accepted"}])
    assert harness.answers == []


async def test_an_expired_error_answer_is_ignored(harness: Harness) -> None:
    commands = connect(harness, V16)
    sent = await commands.remote_stop(RemoteStop("CP001", 1))
    harness.clock.moment = NOW + timedelta(seconds=45)
    await harness.send(V16, [4, sent.message_id, "GenericError", "late", {}])
    assert harness.answers == []
    assert await harness.version() == 0


async def test_the_same_answer_twice_is_recorded_once(harness: Harness) -> None:
    commands = connect(harness, V201)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    answer = [3, sent.message_id, {"status": "Accepted"}]
    await harness.send(V201, answer)
    await harness.send(V201, answer)
    assert len(harness.answers) == 1
    assert await harness.version() == 1


async def test_an_answer_from_another_charger_does_not_count(harness: Harness) -> None:
    commands = connect(harness, V201)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    await harness.send(V201, [3, sent.message_id, {"status": "Accepted"}], "CP002")
    assert harness.answers == []
    assert await harness.shadows.get("CP002") is None
    await harness.send(V201, [3, sent.message_id, {"status": "Rejected"}], "CP001")
    assert [(a.charge_point_id, a.outcome) for a in harness.answers] == [("CP001", "Rejected")]


async def test_an_answer_that_breaks_its_schema_is_recorded_as_it_is(harness: Harness) -> None:
    commands = connect(harness, V201)
    sent = await commands.remote_start(RemoteStart("CP001", "user-123", 1))
    await harness.send(V201, [3, sent.message_id, {"status": "Maybe", "extra": 1}])
    assert harness.answers[0].outcome == "Maybe"
    assert (await harness.reported())["lastCallResult"]["payload"] == {
        "status": "Maybe",
        "extra": 1,
    }


@pytest.mark.parametrize("text", [" 42", "4_2", "42 ", "٤٢", "-1"])
async def test_a_16_stop_takes_only_plain_digits(harness: Harness, text: str) -> None:
    commands = connect(harness, V16)
    with pytest.raises(InvalidCommand) as caught:
        await commands.remote_stop(RemoteStop("CP001", text))
    assert caught.value.field == "transactionId"
    assert harness.outbound.sent == []
