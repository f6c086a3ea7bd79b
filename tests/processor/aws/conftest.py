"""AWS stand-ins for the AWS adapters' tests: moto in server mode on loopback.

One ``ThreadedMotoServer`` serves the whole session on a free 127.0.0.1
port; real boto3 clients talk HTTP to it with dummy credentials given to the
client constructors (the process environment is left alone). The server
keeps its state for the session, so every test uses names of its own (tables,
charge points, topic prefixes) rather than resetting a shared server.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from lambdas.handlers import LambdaApp, LambdaSettings
from processor import ProcessorConfig
from processor.adapters.dynamodb_tables import create_tables
from processor.adapters.thing_names import thing_name

from ...moto_support import REGION, aws_client, moto_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def make_client(service: str, endpoint: str, **config: Any) -> Any:
    """A real boto3 client for ``service`` at ``endpoint``, with dummy keys."""
    # Room for 50 concurrent calls without urllib3 discarding connections.
    return aws_client(service, endpoint, max_pool_connections=64, **config)


@pytest.fixture(scope="session")
def dynamodb(moto_endpoint: str) -> Any:
    return make_client("dynamodb", moto_endpoint)


@pytest.fixture(scope="session")
def iot_data(moto_endpoint: str) -> Any:
    return make_client("iot-data", moto_endpoint)


@pytest.fixture(scope="session")
def iot(moto_endpoint: str) -> Any:
    """The IoT control plane: moto wants a thing in the registry before its shadow."""
    return make_client("iot", moto_endpoint)


@pytest.fixture(scope="session")
def sqs(moto_endpoint: str) -> Any:
    return make_client("sqs", moto_endpoint)


@pytest.fixture
def unique() -> str:
    """A short name no other test of the session uses."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def tables(dynamodb: Any, unique: str) -> tuple[str, str]:
    """(charge point table, transaction table), fresh for the test."""
    names = (f"ChargePointTable-{unique}", f"TransactionTable-{unique}")
    create_tables(dynamodb, *names)
    return names


@pytest.fixture
def dead_endpoint() -> str:
    """A loopback address where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- the Lambda app (test_lambda*.py) -----------------------------------------------


@pytest.fixture
def lambda_settings(moto_endpoint: str, dynamodb: Any, unique: str) -> LambdaSettings:
    """The Lambda's settings against moto, with fresh tables; the prefix is ``unique``."""
    tables = (f"cp-{unique}", f"tx-{unique}", f"calls-{unique}")
    create_tables(dynamodb, *tables)
    return LambdaSettings(
        region=REGION,
        charge_point_table=tables[0],
        transaction_table=tables[1],
        pending_call_table=tables[2],
        iot_endpoint=moto_endpoint,
        processor=ProcessorConfig(heartbeat_interval=60),
        topic_prefix=unique,
        endpoint_url=moto_endpoint,
    )


def lambda_app(settings: LambdaSettings) -> LambdaApp:
    """A Lambda container's app with dummy keys (``close()`` it)."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return LambdaApp(settings, session)


@pytest.fixture
def app(lambda_settings: LambdaSettings) -> Iterator[LambdaApp]:
    application = lambda_app(lambda_settings)
    yield application
    application.close()


@dataclass(frozen=True, slots=True)
class Queue:
    """An SQS queue in moto: where a test's records come from."""

    url: str
    arn: str
    client: Any

    def received(self) -> list[dict[str, Any]]:
        """The messages waiting in it (taken off it)."""
        found = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
        return found.get("Messages", [])  # type: ignore[no-any-return]


@pytest.fixture
def queue(sqs: Any, unique: str) -> Queue:
    url = sqs.create_queue(QueueName=f"incoming-{unique}")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return Queue(url, attributes["Attributes"]["QueueArn"], sqs)


@pytest.fixture
def charger(app: LambdaApp, iot: Any, unique: str) -> str:
    """A registered charge point with a thing (moto wants one for a shadow)."""
    identity = f"{unique} CP+1"  # a space and a '+': percent-encoded in topics
    iot.create_thing(thingName=thing_name(identity))
    asyncio.run(app.registry.add([identity], datetime(2026, 1, 1, tzinfo=UTC)))
    return identity
