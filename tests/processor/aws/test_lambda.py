"""The Lambda entry points against moto in server mode: SQS batches in, replies
published to the route they came from, remote commands out and their answers
matched, all through real boto3 clients."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from lambdas.handlers import LambdaApp, LambdaSettings
from ocppj import decode_downlink_batch, downlink_batch_topic, downlink_topic, encode_segment

from .test_iot_outbound import presence, published

ROUTE = "gw-7f3a.2"


def record(message_id: str, cp: str, frame: Any, protocol: str = "ocpp2.0.1") -> dict[str, Any]:
    """An SQS record as the IoT rule writes it."""
    body = {
        "message": frame,
        "chargePointId": encode_segment(cp),
        "protocol": protocol,
        "route": ROUTE,
    }
    return {"messageId": message_id, "body": orjson.dumps(body).decode()}


def replies(prefix: str, cp: str, route: str = ROUTE) -> list[list[Any]]:
    """Every frame published to ``cp`` on ``route``: alone on its topic, or in a batch."""
    alone, batch = downlink_topic(prefix, route, cp), downlink_batch_topic(prefix, route)
    frames = []
    for topic, payload in published(prefix):
        if topic == alone:
            frames.append(orjson.loads(payload))
        elif topic == batch:
            items, skipped = decode_downlink_batch(payload)
            assert not skipped
            frames += [orjson.loads(i.payload) for i in items if i.charge_point_id == cp]
    return frames


def reported(app: LambdaApp, cp: str) -> dict[str, Any]:
    document = asyncio.run(app.services.shadows.get(cp))
    assert document is not None
    state: dict[str, Any] = document["state"]["reported"]
    return state


BOOT = {
    "reason": "PowerUp",
    "chargingStation": {"model": "SmartCharger Pro", "vendorName": "ACME Charging"},
}


def test_a_batch_is_answered_on_the_route_it_came_from(
    app: LambdaApp, charger: str, unique: str
) -> None:
    event = {
        "Records": [
            record("r1", charger, [2, "b1", "BootNotification", BOOT]),
            record("r2", charger, [2, "h1", "Heartbeat", {}]),
            record("r3", charger, [2, "x1", "Heartbeat", {"unexpected": 1}]),
            record("r4", charger, {"not": "a frame"}),
        ]
    }
    assert app.process_messages(event) == {"batchItemFailures": []}
    answers = {answer[1]: answer for answer in replies(unique, charger)}
    assert answers["b1"][2]["status"] == "Accepted"
    assert answers["b1"][2]["interval"] == 60
    assert answers["h1"][0] == 3
    assert answers["x1"][:3] == [4, "x1", "FormatViolation"]
    assert answers["-1"][:3] == [4, "-1", "FormatViolation"]
    assert reported(app, charger)["chargingStation"] == BOOT["chargingStation"]


def test_a_record_of_the_wrong_shape_is_dropped_not_retried(app: LambdaApp, charger: str) -> None:
    event = {
        "Records": [
            {"messageId": "bad-json", "body": "{"},
            {
                "messageId": "no-route",
                "body": orjson.dumps({"message": [], "protocol": "x"}).decode(),
            },
        ]
    }
    assert app.process_messages(event) == {"batchItemFailures": []}


def test_only_the_failing_record_is_redelivered(
    app: LambdaApp, charger: str, dynamodb: Any, unique: str
) -> None:
    dynamodb.delete_table(TableName=f"tx-{unique}")  # the history store is gone
    event = {
        "Records": [
            record("ok", charger, [2, "h1", "Heartbeat", {}]),
            record(
                "fails",
                charger,
                [
                    2,
                    "t1",
                    "TransactionEvent",
                    {
                        "eventType": "Started",
                        "timestamp": "2026-01-01T10:00:00Z",
                        "triggerReason": "Authorized",
                        "seqNo": 0,
                        "transactionInfo": {"transactionId": "tx-1"},
                    },
                ],
            ),
        ]
    }
    assert app.process_messages(event) == {"batchItemFailures": [{"itemIdentifier": "fails"}]}
    ids = [answer[1] for answer in replies(unique, charger)]
    assert "h1" in ids


def test_remote_start_is_sent_and_its_answer_recorded(
    app: LambdaApp, charger: str, unique: str
) -> None:
    asyncio.run(app.services.shadows.update(charger, presence(True, ROUTE, "ocpp2.0.1")))
    seed_input = {
        "chargePointId": charger,
        "idTag": "user-123",
        "connectorId": 1,
        "transactionData": {},
    }
    sent = app.remote_start(seed_input)
    assert sent["statusCode"] == 202
    assert sent["action"] == "RequestStartTransaction"
    call = replies(unique, charger)[-1]
    assert call[:3] == [2, sent["messageId"], "RequestStartTransaction"]
    assert call[3]["idToken"] == {"idToken": "user-123", "type": "ISO14443"}
    assert call[3]["evseId"] == 1
    assert isinstance(call[3]["remoteStartId"], int)

    # The charger's answer comes back through the IoT rule and SQS.
    answer = record("a1", charger, [3, sent["messageId"], {"status": "Accepted"}])
    assert app.process_messages({"Records": [answer, answer]}) == {"batchItemFailures": []}
    result = reported(app, charger)["lastCallResult"]
    assert result["messageId"] == sent["messageId"]
    assert result["action"] == "RequestStartTransaction"
    assert result["payload"] == {"status": "Accepted"}


def test_remote_stop_of_a_16_charger(app: LambdaApp, charger: str, unique: str) -> None:
    asyncio.run(app.services.shadows.update(charger, presence(True, ROUTE, "ocpp1.6")))
    sent = app.remote_stop({"chargePointId": charger, "transactionId": 123456789})
    assert (sent["statusCode"], sent["action"]) == (202, "RemoteStopTransaction")
    assert replies(unique, charger)[-1][2:] == [
        "RemoteStopTransaction",
        {"transactionId": 123456789},
    ]


@pytest.mark.parametrize(
    ("event", "status", "field"),
    [
        ({"chargePointId": "x"}, 400, "idTag"),
        ({"idTag": "t"}, 400, "chargePointId"),
        ("not an object", 400, "body"),
        ({"chargePointId": "NOT-REGISTERED", "idTag": "t"}, 404, "chargePointId"),
    ],
)
def test_bad_remote_start_input_names_the_field(
    app: LambdaApp, event: Any, status: int, field: str
) -> None:
    result = app.remote_start(event)
    assert (result["statusCode"], result["field"]) == (status, field)


def test_remote_start_to_an_offline_charger(app: LambdaApp, charger: str) -> None:
    result = app.remote_start({"chargePointId": charger, "idTag": "t"})
    assert result == {
        "statusCode": 409,
        "outcome": "offline",
        "error": f"{charger} is not connected",
    }


def test_settings_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="DYNAMODB_CHARGE_POINT_TABLE: must be set"):
        LambdaSettings.from_env({"AWS_REGION": "eu-west-1"})
    settings = LambdaSettings.from_env(
        {
            "AWS_REGION": "eu-west-1",
            "DYNAMODB_CHARGE_POINT_TABLE": "cp",
            "DYNAMODB_TRANSACTION_TABLE": "tx",
            "DYNAMODB_PENDING_CALL_TABLE": "calls",
            "IOT_ENDPOINT": "abc-ats.iot.eu-west-1.amazonaws.com",
            "OCPP_HEARTBEAT_INTERVAL": "120",
        }
    )
    assert settings.iot_endpoint_url == "https://abc-ats.iot.eu-west-1.amazonaws.com"
    assert settings.processor.heartbeat_interval == 120
    assert settings.topic_prefix == "ocpp"
