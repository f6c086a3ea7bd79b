"""The deployed functions, run: the built package, the stack's environment and
handlers, events shaped by the stack's own IoT rules, against moto.

Everything a deployment decides about the functions meets here: the package
holds what the handlers import (run with ``python -S``: nothing from this
environment), the handler names and environment variables are the ones the
program declares, and the SQS bodies are what its rule SQL makes of the
gateway's topics and payloads.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from moto.backends import get_backend

from ocppj.batch import decode_downlink_batch, downlink_batch_topic, uplink_batch_topic
from ocppj.topics import downlink_topic, presence_topic, uplink_topic
from processor.adapters.dynamodb_registry import DynamoDbRegistry
from processor.adapters.dynamodb_tables import create_tables
from processor.adapters.thing_names import thing_name

from ..moto_support import ACCOUNT, REGION, aws_client, moto_server
from .stack import Stack, run_stack

PREFIX = "e2e"
CP = "CP 001"  # a space: percent-encoded in topics, escaped in the thing name
ROUTE = "gw-0a1b2c3d.0"

# Runs in the package alone: calls one handler per line of stdin, prints its result.
RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import lambdas.handlers as handlers
for line in sys.stdin:
    name, event = json.loads(line)
    print(json.dumps(getattr(handlers, name)(event, None)), flush=True)
"""


def rule_body(sql: str, topic: str, payload: Any) -> dict[str, Any]:
    """What an IoT rule of the forms ``*``, ``* AS name`` and ``topic(n) AS name`` sends to SQS."""
    select = re.fullmatch(r"SELECT (.+) FROM '(.+)'", sql)
    assert select is not None, sql
    filter_levels, levels = select.group(2).split("/"), topic.split("/")
    assert len(filter_levels) == len(levels)
    assert all(f in ("+", level) for f, level in zip(filter_levels, levels, strict=True))
    body: dict[str, Any] = {}
    for term in select.group(1).split(", "):
        if term == "*":  # the payload's own keys, at the top level
            body.update(payload)
            continue
        source, name = term.split(" AS ")
        level = re.fullmatch(r"topic\((\d)\)", source)
        body[name] = payload if source == "*" else levels[int(level.group(1)) - 1]  # type: ignore[union-attr]
    return body


QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:incoming"


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{i}", "body": json.dumps(body), "eventSourceARN": QUEUE_ARN}
            for i, body in enumerate(bodies)
        ]
    }


@pytest.fixture(scope="module")
def stack() -> Stack:
    return run_stack({"topicPrefix": PREFIX})


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def published(topic: str) -> list[Any]:
    messages = get_backend("iot-data")[ACCOUNT][REGION].published_payloads
    return [orjson.loads(payload) for t, payload in messages if t == topic]


def test_the_built_functions_answer_a_charger_and_reach_it_by_its_presence(
    stack: Stack, moto: str, local_lambda_package: Path
) -> None:
    functions = {f.name: f.inputs for f in stack.of_type("aws:lambda/function:Function")}
    rules = {r.name: r.inputs["sql"] for r in stack.of_type("aws:iot/topicRule:TopicRule")}
    environment = dict(functions["processing-processor"]["environment"]["variables"])
    # The names the program declares, created for real in moto.
    dynamodb = aws_client("dynamodb", moto)
    create_tables(
        dynamodb,
        environment["DYNAMODB_CHARGE_POINT_TABLE"],
        environment["DYNAMODB_TRANSACTION_TABLE"],
        environment["DYNAMODB_PENDING_CALL_TABLE"],
    )
    registry = DynamoDbRegistry(dynamodb, environment["DYNAMODB_CHARGE_POINT_TABLE"])
    asyncio.run(registry.add([CP], datetime.now(UTC)))
    aws_client("iot", moto).create_thing(thingName=thing_name(CP))
    # What Lambda adds, and moto in place of AWS.
    environment |= {
        "AWS_REGION": REGION,
        "IOT_ENDPOINT": moto,
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }

    presence = {
        "connected": True,
        "route": ROUTE,
        "protocol": "ocpp2.0.1",
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    boot = [
        2,
        "b1",
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
    ]
    # What a gateway connection publishes when frames queue (ocppj.batch).
    batch = {
        "frames": [
            [CP, "ocpp2.0.1", json.dumps([2, "h1", "Heartbeat", {}])],
            [CP, "ocpp2.0.1", json.dumps([2, "h2", "Heartbeat", {}])],
        ]
    }
    processor = functions["processing-processor"]["handler"].rsplit(".", 1)[1]
    remote_start = functions["processing-remote-start"]["handler"].rsplit(".", 1)[1]
    calls = [
        (
            processor,
            sqs_event(
                rule_body(rules["processing-presence"], presence_topic(PREFIX, CP), presence),
                rule_body(
                    rules["processing-uplinks"], uplink_topic(PREFIX, CP, "ocpp2.0.1", ROUTE), boot
                ),
            ),
        ),
        (remote_start, {"chargePointId": CP, "idTag": "user-123", "connectorId": 1}),
        (
            processor,
            sqs_event(
                rule_body(rules["processing-batches"], uplink_batch_topic(PREFIX, ROUTE), batch)
            ),
        ),
    ]
    result = subprocess.run(
        [sys.executable, "-S", "-c", RUNNER, str(local_lambda_package)],
        input="".join(json.dumps(call) + "\n" for call in calls),
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, started, batched = (json.loads(line) for line in result.stdout.splitlines())
    assert first == batched == {"batchItemFailures": []}
    assert started["statusCode"] == 202, started
    assert started["action"] == "RequestStartTransaction"

    # Both reached the charger on the route its presence named.
    sent = published(downlink_topic(PREFIX, ROUTE, CP))
    answers = {frame[1]: frame for frame in sent}
    assert answers["b1"][0] == 3 and answers["b1"][2]["status"] == "Accepted"
    assert answers[started["messageId"]][:3] == [2, started["messageId"], "RequestStartTransaction"]
    # And the shadow holds what both records said.
    shadow = aws_client("iot-data", moto).get_thing_shadow(thingName=thing_name(CP))
    reported = json.loads(shadow["payload"].read())["state"]["reported"]
    assert reported["connection"]["route"] == ROUTE
    assert reported["connection"]["connected"] is True
    assert reported["chargingStation"] == {"model": "M", "vendorName": "V"}
    # The batch's two answers went back together, on the route's batch topic.
    [answers] = published(downlink_batch_topic(PREFIX, ROUTE))
    items, _ = decode_downlink_batch(json.dumps(answers))
    assert [(i.charge_point_id, json.loads(i.payload)[1]) for i in items] == [
        (CP, "h1"),
        (CP, "h2"),
    ]
