"""Batches through the message processor Lambda: the IoT rule
``SELECT *, topic(4) AS route FROM 'ocpp/batch/in/+'`` feeds the same queue
with a gateway connection's queued frames and presence in one record; the
answers of one invocation go back per route, as batches, and a failing item
goes back to the queue on its own rather than redelivering its neighbours."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from lambdas.handlers import LambdaApp, LambdaSettings
from ocppj import PRESENCE, decode_downlink_batch, downlink_batch_topic, downlink_topic
from processor.adapters.iot_publisher import IotDataPublisher
from processor.adapters.routed_outbound import Publisher
from processor.adapters.thing_names import thing_name
from processor.environment import SettingsError

from .conftest import Queue, lambda_app, make_client
from .test_iot_outbound import published
from .test_lambda import BOOT, ROUTE, record, replies
from .test_lambda_presence import T1, connection, presence_payload

OTHER_ROUTE = "gw-91c0.1"
V201 = "ocpp2.0.1"


def item(cp: str, value: Any, kind: str = V201) -> list[str]:
    """One item of an uplink batch: the frame (or presence) as the text the gateway sent."""
    return [cp, kind, value if isinstance(value, str) else orjson.dumps(value).decode()]


def batch_record(
    message_id: str, arn: str, *items: list[str], route: str = ROUTE, **extra: Any
) -> dict[str, Any]:
    """An SQS record as the batch rule writes it: the batch, and its route."""
    body = {"frames": list(items), "route": route, **extra}
    return {"messageId": message_id, "body": orjson.dumps(body).decode(), "eventSourceARN": arn}


def boot(message_id: str) -> list[Any]:
    return [2, message_id, "BootNotification", BOOT]


def heartbeat(message_id: str) -> list[Any]:
    return [2, message_id, "Heartbeat", {}]


def process(app: LambdaApp, *records: dict[str, Any]) -> dict[str, Any]:
    return app.process_messages({"Records": list(records)})


def on_route(prefix: str, route: str = ROUTE) -> list[tuple[str, bytes]]:
    """The publishes that went to ``route``: its batches and its chargers' own topics."""
    batch, alone = downlink_batch_topic(prefix, route), f"{prefix}/out/{route}/"
    return [(t, p) for t, p in published(prefix) if t == batch or t.startswith(alone)]


def batch_answers(payload: bytes) -> list[tuple[str, str]]:
    """(charge point, message id) of each answer in a downlink batch, in order."""
    items, skipped = decode_downlink_batch(payload)
    assert not skipped
    return [(i.charge_point_id, orjson.loads(i.payload)[1]) for i in items]


@pytest.fixture
def second(app: LambdaApp, iot: Any, unique: str) -> str:
    """Another registered charge point with a thing."""
    identity = f"{unique}-CP2"
    iot.create_thing(thingName=thing_name(identity))
    asyncio.run(app.registry.add([identity], datetime(2026, 1, 1, tzinfo=UTC)))
    return identity


@dataclass(frozen=True, slots=True)
class Thingless:
    """A charger moto keeps no shadow for (every shadow write of it fails) until it has a thing."""

    identity: str
    iot: Any

    def create_thing(self) -> None:
        self.iot.create_thing(thingName=thing_name(self.identity))


@pytest.fixture
def thingless(iot: Any, unique: str) -> Thingless:
    return Thingless(f"{unique}-no-thing", iot)


@pytest.fixture
def route_down(iot_data: Any, dead_endpoint: str, unique: str) -> Publisher:
    """IoT Core's data plane, unreachable for ROUTE's topics (a refused connection)."""
    dead = make_client("iot-data", dead_endpoint, retries={"total_max_attempts": 1})
    return _RouteDown(iot_data, dead, ROUTE, unique)


@pytest.fixture
def no_batches(lambda_settings: LambdaSettings) -> Iterator[LambdaApp]:
    application = lambda_app(dataclasses.replace(lambda_settings, batch_bytes=0))
    yield application
    application.close()


def test_a_batch_is_answered_in_one_publish_and_its_presence_recorded(
    app: LambdaApp, charger: str, second: str, unique: str, queue: Queue
) -> None:
    result = process(
        app,
        batch_record(
            "b1",
            queue.arn,
            item(charger, presence_payload(True, T1), PRESENCE),
            item(charger, boot("a-boot")),
            item(second, boot("b-boot")),
            item(charger, heartbeat("a-hb")),
            item(second, heartbeat("b-hb")),
        ),
    )
    assert result == {"batchItemFailures": []}
    [(topic, payload)] = on_route(unique)
    assert topic == downlink_batch_topic(unique, ROUTE)
    answers = batch_answers(payload)
    assert sorted(answers) == sorted(
        [(charger, "a-boot"), (charger, "a-hb"), (second, "b-boot"), (second, "b-hb")]
    )
    # Each charger's answers in the order of its CALLs.
    for cp, first, then in ((charger, "a-boot", "a-hb"), (second, "b-boot", "b-hb")):
        assert [m for c, m in answers if c == cp] == [first, then]
    assert {a[0] for a in replies(unique, charger)} == {3}
    assert connection(app, charger) == {
        "connected": True,
        "route": ROUTE,
        "protocol": V201,
        "since": T1,
    }


def test_answers_of_single_frame_records_travel_together_per_route(
    app: LambdaApp, charger: str, second: str, unique: str
) -> None:
    other = record("o1", second, heartbeat("o-hb"))
    other_body = orjson.loads(other["body"]) | {"route": OTHER_ROUTE}
    other["body"] = orjson.dumps(other_body).decode()
    result = process(
        app,
        record("r1", charger, heartbeat("h1")),
        record("r2", second, heartbeat("h2")),
        other,
    )
    assert result == {"batchItemFailures": []}
    [(topic, payload)] = on_route(unique)
    assert topic == downlink_batch_topic(unique, ROUTE)
    assert sorted(batch_answers(payload)) == [(charger, "h1"), (second, "h2")]
    # Alone on its route: on the charger's own topic.
    [(topic, payload)] = on_route(unique, OTHER_ROUTE)
    assert topic == downlink_topic(unique, OTHER_ROUTE, second)
    assert orjson.loads(payload)[1] == "o-hb"


def test_with_batch_bytes_0_every_answer_goes_alone(
    no_batches: LambdaApp, charger: str, second: str, unique: str, queue: Queue
) -> None:
    result = process(
        no_batches,
        batch_record(
            "b1",
            queue.arn,
            item(charger, boot("a-boot")),
            item(second, heartbeat("b-hb")),
            item(charger, heartbeat("a-hb")),
        ),
    )
    assert result == {"batchItemFailures": []}
    publishes = on_route(unique)
    assert len(publishes) == 3
    assert not [t for t, _ in publishes if t == downlink_batch_topic(unique, ROUTE)]
    assert [
        orjson.loads(p)[1] for t, p in publishes if t == downlink_topic(unique, ROUTE, charger)
    ] == [
        "a-boot",
        "a-hb",
    ]
    assert [
        orjson.loads(p)[1] for t, p in publishes if t == downlink_topic(unique, ROUTE, second)
    ] == ["b-hb"]


def test_a_failing_item_goes_back_to_the_queue_and_its_neighbours_are_answered_once(
    app: LambdaApp,
    charger: str,
    thingless: Thingless,
    unique: str,
    queue: Queue,
) -> None:
    cp = thingless.identity
    failing, follower = item(cp, boot("x-boot")), item(cp, heartbeat("x-hb"))
    result = process(
        app,
        batch_record(
            "b1",
            queue.arn,
            item(charger, boot("a-boot")),
            failing,
            follower,  # the same charger after its failed item: goes with it
            item(charger, heartbeat("a-hb")),
        ),
    )
    assert result == {"batchItemFailures": []}
    [(topic, payload)] = on_route(unique)
    assert topic == downlink_batch_topic(unique, ROUTE)
    assert batch_answers(payload) == [(charger, "a-boot"), (charger, "a-hb")]

    [message] = queue.received()
    body = orjson.loads(message["Body"])
    # The items as the gateway sent them, byte for byte, in their order.
    assert body == {"frames": [failing, follower], "route": ROUTE, "resends": 1}

    # Its next delivery succeeds: the charger is answered in order, the
    # neighbours are not answered again.
    thingless.create_thing()
    again = {
        "messageId": message["MessageId"],
        "body": message["Body"],
        "eventSourceARN": queue.arn,
    }
    assert process(app, again) == {"batchItemFailures": []}
    assert [a[1] for a in replies(unique, cp)] == ["x-boot", "x-hb"]
    assert [a[1] for a in replies(unique, charger)] == ["a-boot", "a-hb"]
    assert queue.received() == []


def test_when_the_failing_item_cannot_be_sent_back_the_record_is_redelivered_unanswered(
    app: LambdaApp,
    charger: str,
    thingless: Thingless,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = f"arn:aws:sqs:eu-west-1:123456789012:missing-{unique}"  # no such queue
    result = process(
        app,
        batch_record(
            "b1",
            missing,
            item(charger, boot("a-boot")),
            item(thingless.identity, boot("x-boot")),
            item(charger, heartbeat("a-hb")),
        ),
        record("r1", charger, heartbeat("single")),
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "b1"}]}
    # The single record's answer went out; none of the batch's did, so its
    # redelivery answers them once.
    assert [a[1] for a in replies(unique, charger)] == ["single"]
    assert "re-send failed; SQS will deliver the record again" in caplog.messages


def test_an_item_sent_back_too_often_fails_its_record(
    app: LambdaApp,
    charger: str,
    thingless: Thingless,
    unique: str,
    queue: Queue,
) -> None:
    result = process(
        app,
        batch_record(
            "b1",
            queue.arn,
            item(thingless.identity, boot("x-boot")),
            item(charger, heartbeat("a-hb")),
            resends=3,
        ),
    )
    # SQS's own redrive takes over: in the end, the dead-letter queue.
    assert result == {"batchItemFailures": [{"itemIdentifier": "b1"}]}
    assert queue.received() == []
    assert replies(unique, charger) == []


class _RouteDown:
    """IoT Core's data plane, unreachable for one route's topics."""

    def __init__(self, live: Any, dead: Any, route: str, prefix: str) -> None:
        self._live, self._dead = IotDataPublisher(live), IotDataPublisher(dead)
        self._down = (downlink_batch_topic(prefix, route), f"{prefix}/out/{route}/")

    async def publish(self, topic: str, payload: bytes) -> None:
        down = topic == self._down[0] or topic.startswith(self._down[1])
        await (self._dead if down else self._live).publish(topic, payload)


def test_a_failed_publish_redelivers_the_records_it_answered(
    app: LambdaApp, charger: str, second: str, route_down: Publisher, unique: str
) -> None:
    # The one seam: the container's publisher, swapped for one that cannot reach ROUTE.
    app._invocation = dataclasses.replace(app._invocation, publisher=route_down)
    arn = f"arn:aws:sqs:eu-west-1:123456789012:incoming-{unique}"  # nothing is sent back
    result = process(
        app,
        record("r1", charger, heartbeat("h1")),
        batch_record("b1", arn, item(charger, heartbeat("h2"))),
        batch_record("ok", arn, item(second, heartbeat("o-hb")), route=OTHER_ROUTE),
    )
    # The two on ROUTE travelled in one publish, which failed; the other route's went out.
    assert result == {"batchItemFailures": [{"itemIdentifier": "r1"}, {"itemIdentifier": "b1"}]}
    assert [a[1] for a in replies(unique, second, OTHER_ROUTE)] == ["o-hb"]
    assert replies(unique, charger) == []


@pytest.mark.parametrize(
    "body",
    [
        {"frames": "not an array", "route": ROUTE},
        {"frames": [], "route": 7},
        {"frames": []},
        {"frames": [], "route": "gw/1"},
        {"frames": [], "route": ROUTE, "resends": "many"},
    ],
)
def test_a_body_that_is_not_a_batch_is_dropped(
    app: LambdaApp, caplog: pytest.LogCaptureFixture, body: dict[str, Any]
) -> None:
    result = process(app, {"messageId": "bad", "body": orjson.dumps(body).decode()})
    assert result == {"batchItemFailures": []}
    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.getMessage() == "record dropped: not the batch rule's shape"
    assert line.messageId == "bad"  # type: ignore[attr-defined]


def test_items_that_can_never_succeed_are_dropped_by_reason_and_the_rest_handled(
    app: LambdaApp,
    charger: str,
    unique: str,
    queue: Queue,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = '[2,"t1","Authorize",{"idToken":{"idToken":"SECRET-TAG","type":"ISO14443"}}]'
    result = process(
        app,
        batch_record(
            "b1",
            queue.arn,
            [charger, V201],  # not three strings
            ["", V201, token],  # no identity
            [charger, "ocpp9", token],  # not a subprotocol
            ["x" * 49, V201, token],  # longer than an identity may be
            [charger, PRESENCE, '{"connected": true, "idToken": "SECRET-TAG"'],  # not JSON
            item(charger, heartbeat("h1")),
        ),
    )
    assert result == {"batchItemFailures": []}
    assert [a[1] for a in replies(unique, charger)] == ["h1"]
    [line] = [r for r in caplog.records if r.getMessage() == "batch items dropped"]
    assert (line.messageId, line.route, line.dropped) == ("b1", ROUTE, 5)  # type: ignore[attr-defined]
    reasons = " | ".join(line.reasons)  # type: ignore[attr-defined]
    for why in ("not an array of 3 strings", "identity is empty", "'ocpp9'", "longer than 48"):
        assert why in reasons, reasons
    # Reasons only: nothing of what the items held (an id token) reaches the logs.
    assert "SECRET-TAG" not in caplog.text


ENVIRONMENT = {
    "AWS_REGION": "eu-west-1",
    "DYNAMODB_CHARGE_POINT_TABLE": "cp",
    "DYNAMODB_TRANSACTION_TABLE": "tx",
    "DYNAMODB_PENDING_CALL_TABLE": "calls",
    "IOT_ENDPOINT": "abc-ats.iot.eu-west-1.amazonaws.com",
}


@pytest.mark.parametrize("value", ["-1", "131073", "4k", "", "1.5"])
def test_batch_bytes_out_of_range_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^OCPP_MQTT_BATCH_BYTES: "):
        LambdaSettings.from_env(ENVIRONMENT | {"OCPP_MQTT_BATCH_BYTES": value})


def test_batch_bytes_defaults_to_5000_and_takes_0_to_128_kib() -> None:
    assert LambdaSettings.from_env(ENVIRONMENT).batch_bytes == 5000
    for value in (0, 131072):
        settings = LambdaSettings.from_env(ENVIRONMENT | {"OCPP_MQTT_BATCH_BYTES": str(value)})
        assert settings.batch_bytes == value
