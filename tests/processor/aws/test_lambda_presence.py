"""Presence through the message processor Lambda: the IoT rule
``SELECT * AS presence, topic(3) AS chargePointId FROM 'ocpp/presence/+'``
feeds the uplinks' SQS queue, and the Lambda keeps the shadow's connection
record that remote commands route by."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from lambdas.handlers import LambdaApp
from ocppj import encode_segment

from .test_lambda import BOOT, ROUTE, record, replies, reported

T1 = "2026-05-01T10:00:00.000Z"
T2 = "2026-05-01T10:00:01.000Z"
T3 = "2026-05-01T10:00:02.000Z"
OTHER_ROUTE = "gw-91c0.1"


def at(seconds: int) -> str:
    """An RFC 3339 instant ``seconds`` after T1."""
    return f"2026-05-01T10:00:{seconds:02d}.000Z"


def presence_payload(
    connected: bool, at: str, route: str = ROUTE, protocol: str = "ocpp2.0.1"
) -> dict[str, Any]:
    """What a gateway publishes, retained, on ``{prefix}/presence/{cp}``."""
    return {"connected": connected, "route": route, "protocol": protocol, "at": at}


def presence_record(message_id: str, cp: str, payload: Any) -> dict[str, Any]:
    """An SQS record as the presence rule writes it."""
    body = {"presence": payload, "chargePointId": encode_segment(cp)}
    return {"messageId": message_id, "body": orjson.dumps(body).decode()}


def connection(app: LambdaApp, cp: str) -> Any:
    return reported(app, cp).get("connection")


def process(app: LambdaApp, *records: dict[str, Any]) -> dict[str, Any]:
    return app.process_messages({"Records": list(records)})


def test_a_presence_lands_in_the_shadows_connection_record(
    app: LambdaApp, charger: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lambdas.handlers")
    result = process(app, presence_record("p1", charger, presence_payload(True, T1)))
    assert result == {"batchItemFailures": []}
    assert connection(app, charger) == {
        "connected": True,
        "route": ROUTE,
        "protocol": "ocpp2.0.1",
        "since": T1,
    }
    [line] = [r for r in caplog.records if r.getMessage() == "presence recorded"]
    assert (line.chargePointId, line.connected, line.route) == (charger, True, ROUTE)  # type: ignore[attr-defined]


def test_an_older_presence_is_ignored(
    app: LambdaApp, charger: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lambdas.handlers")
    process(app, presence_record("p1", charger, presence_payload(True, T2)))
    result = process(app, presence_record("p2", charger, presence_payload(False, T1)))
    assert result == {"batchItemFailures": []}
    assert connection(app, charger)["connected"] is True
    assert connection(app, charger)["since"] == T2
    assert any(r.getMessage().startswith("presence ignored") for r in caplog.records)


def test_a_disconnect_from_another_route_does_not_override(app: LambdaApp, charger: str) -> None:
    # The charger moved to another gateway; the old one noticed the dead
    # connection only afterwards.
    process(app, presence_record("p1", charger, presence_payload(True, T1, OTHER_ROUTE)))
    result = process(app, presence_record("p2", charger, presence_payload(False, T2)))
    assert result == {"batchItemFailures": []}
    assert connection(app, charger) == {
        "connected": True,
        "route": OTHER_ROUTE,
        "protocol": "ocpp2.0.1",
        "since": T1,
    }
    # A disconnect from the route that holds it does apply.
    process(app, presence_record("p3", charger, presence_payload(False, T3, OTHER_ROUTE)))
    assert connection(app, charger)["connected"] is False


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "not a JSON object"),
        ("connected", "not a JSON object"),
        ({"route": ROUTE, "protocol": "ocpp1.6", "at": T1}, "connected:"),
        (presence_payload(True, T1, route=""), "route:"),
        (presence_payload(True, T1, route="gw/1"), "route 'gw/1' contains '/'"),
        (presence_payload(True, T1, protocol="mqtt"), "protocol: 'mqtt'"),
        (presence_payload(True, "yesterday"), "at: 'yesterday'"),
        (presence_payload(True, "2026-05-01T10:00:00"), "has no time zone"),
    ],
)
def test_a_malformed_presence_is_dropped_and_does_not_fail_the_batch(
    app: LambdaApp,
    charger: str,
    caplog: pytest.LogCaptureFixture,
    payload: Any,
    reason: str,
) -> None:
    result = process(
        app,
        presence_record("bad", charger, payload),
        record("ok", charger, [2, "h1", "Heartbeat", {}]),
    )
    assert result == {"batchItemFailures": []}
    assert asyncio.run(app.services.shadows.get(charger)) is None  # nothing recorded
    [line] = [r for r in caplog.records if r.getMessage() == "record dropped: malformed presence"]
    assert line.messageId == "bad"  # type: ignore[attr-defined]
    assert line.chargePointId == charger  # type: ignore[attr-defined]
    assert reason in line.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        {"presence": presence_payload(True, T1)},
        {"presence": presence_payload(True, T1), "chargePointId": 7},
        {"presence": presence_payload(True, T1), "chargePointId": ""},
        {"presence": presence_payload(True, T1), "chargePointId": "CP%2f1"},  # not canonical
    ],
)
def test_a_presence_without_a_usable_charge_point_is_dropped(
    app: LambdaApp, caplog: pytest.LogCaptureFixture, body: dict[str, Any]
) -> None:
    result = process(app, {"messageId": "bad", "body": orjson.dumps(body).decode()})
    assert result == {"batchItemFailures": []}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "record dropped: malformed presence"
    ]


def test_a_mixed_batch_answers_uplinks_and_records_presence(
    app: LambdaApp, charger: str, unique: str
) -> None:
    result = process(
        app,
        presence_record("p1", charger, presence_payload(True, T1)),
        record("r1", charger, [2, "b1", "BootNotification", BOOT]),
        record("r2", charger, [2, "h1", "Heartbeat", {}]),
    )
    assert result == {"batchItemFailures": []}
    assert {answer[1] for answer in replies(unique, charger)} == {"b1", "h1"}
    state = reported(app, charger)
    assert state["connection"]["route"] == ROUTE
    assert state["chargingStation"] == BOOT["chargingStation"]


def test_presence_of_one_charger_in_one_batch_is_recorded_in_order(
    app: LambdaApp, charger: str
) -> None:
    # Reconnected on another route: the old route's disconnect (earlier) and
    # the new connect arrive together. Whatever order they run in, the
    # connect must win; decided on the same old record, the disconnect
    # could overwrite it. Several rounds, since such a race is won by chance.
    routes = (ROUTE, OTHER_ROUTE)
    process(app, presence_record("p0", charger, presence_payload(True, at(0), routes[0])))
    for n in range(1, 7):
        old, new = routes[(n - 1) % 2], routes[n % 2]
        result = process(
            app,
            presence_record(f"c{n}", charger, presence_payload(True, at(2 * n), new)),
            presence_record(f"d{n}", charger, presence_payload(False, at(2 * n - 1), old)),
        )
        assert result == {"batchItemFailures": []}
        assert connection(app, charger) == {
            "connected": True,
            "route": new,
            "protocol": "ocpp2.0.1",
            "since": at(2 * n),
        }


def test_a_shadow_that_cannot_be_written_is_redelivered(
    app: LambdaApp, charger: str, unique: str
) -> None:
    # moto keeps no shadow for a thing it does not know: an AWS error.
    no_thing = f"{unique}-nothing"
    result = process(
        app,
        presence_record("fails", no_thing, presence_payload(True, T1)),
        presence_record("ok", charger, presence_payload(True, T1)),
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "fails"}]}
    assert connection(app, charger)["connected"] is True


def test_remote_start_after_a_presence_finds_the_route(
    app: LambdaApp, charger: str, unique: str
) -> None:
    seed_input = {"chargePointId": charger, "idTag": "user-123", "connectorId": 1}
    assert app.remote_start(seed_input)["statusCode"] == 409  # no presence yet: offline

    process(app, presence_record("p1", charger, presence_payload(True, T1)))
    sent = app.remote_start(seed_input)
    assert sent["statusCode"] == 202
    call = replies(unique, charger)[-1]  # on {prefix}/out/{ROUTE}/{cp}
    assert call[:3] == [2, sent["messageId"], "RequestStartTransaction"]

    process(app, presence_record("p2", charger, presence_payload(False, T2)))
    assert app.remote_start(seed_input)["statusCode"] == 409
