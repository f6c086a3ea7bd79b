"""AWS Lambda entry points: the processor on SQS, and remote start / stop.

* ``message_processor_handler``: SQS batches that three IoT rules write
  into one queue (``infra/components/processing.py``):

  - uplinks, ``SELECT * AS message, topic(3) AS chargePointId, topic(4) AS
    protocol, topic(5) AS route FROM 'ocpp/in/+/+/+'``: one frame a record;
  - presence, ``SELECT * AS presence, topic(3) AS chargePointId FROM
    'ocpp/presence/+'``: a gateway's connect or disconnect, recorded in the
    shadow's ``state.reported.connection`` (``processor.presence``) unless
    the record already says something newer. That record is where the
    remote commands find a charger's route;
  - batches, ``SELECT *, topic(4) AS route FROM 'ocpp/batch/in/+'``: a
    gateway connection's queued frames and presence in one record,
    ``{"frames": [[cp, kind, text], ...], "route": ...}`` (``ocppj.batch``).

  Every frame goes through the same ``Processor`` as everywhere else, each
  charger's items one after another in the order they came (across the
  records of the invocation), different chargers side by side. Answers are
  gathered per route over the whole invocation and published once it is
  handled, as batches on ``{prefix}/batch/out/{route}`` of at most
  ``OCPP_MQTT_BATCH_BYTES`` (an answer alone, or every answer with 0, on
  ``{prefix}/out/{route}/{cp}``). Presence writes name the shadow version
  their decision was made on (``IotShadowStore.update_if``), so two
  containers judging one charger at the same instant cannot leave a stale
  record.

  Failures (``lambdas._invocation``): a record that fails for a passing
  reason (an AWS call) is reported in ``batchItemFailures`` so that only it
  is redelivered, and its answers are withheld so that the redelivery
  answers once. A batch record is not failed for one item: that item (with
  its charger's later items in the record) goes back to the queue as a
  batch record of its own, and only if that send fails is the record
  redelivered (as it is once an item has gone back three times, so that the
  dead-letter queue still sees an item that never succeeds). A publish that
  fails redelivers the records it answered.
  Whatever can never succeed (a body of no rule's shape, a malformed
  presence, a batch item of an unknown kind or identity) is logged, by
  reason only, and dropped (``lambdas._records``), since redelivering it
  would fail forever.
* ``remote_start_handler`` / ``remote_stop_handler``: the seed's input
  formats. They cannot wait for the charger's answer (it arrives through SQS,
  at the message processor), so they answer ``202`` with the message id; the
  answer lands in the shadow as ``lastCallResult``.

Settings are read from the environment once per container, on first use.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from ocppj import DEFAULT_BATCH_BYTES, DEFAULT_PREFIX, MAX_BATCH_BYTES, uplink_subscription
from processor import build_router
from processor.adapters.dynamodb_pending_calls import DynamoDbPendingCalls
from processor.adapters.dynamodb_registry import DynamoDbRegistry
from processor.adapters.dynamodb_transactions import DynamoDbTransactions
from processor.adapters.iot_publisher import IotDataPublisher
from processor.adapters.iot_shadow import IotShadowStore
from processor.adapters.routed_outbound import RoutedOutbound
from processor.adapters.static_id_tokens import StaticIdTokens, load_id_tokens
from processor.commands import Commands, InvalidCommand, RemoteStart, RemoteStop, SentCommand
from processor.config import PROCESSOR_ENVIRONMENT, ProcessorConfig, processor_config
from processor.context import Services
from processor.core import Processor
from processor.environment import (
    Environment,
    Read,
    SettingsError,
    checked,
    integer,
    log_level,
    optional_path,
    required,
    url,
)
from processor.ports import ChargePointOffline
from processor.presence import ShadowPresenceLedger

from ._invocation import SqsInvocation
from ._records import read_record
from ._requeue import SqsRequeue

__all__ = [
    "LAMBDA_ENVIRONMENT",
    "LambdaApp",
    "LambdaSettings",
    "message_processor_handler",
    "remote_start_handler",
    "remote_stop_handler",
]

log = logging.getLogger(__name__)

#: Every variable the handlers read, with its default (empty: must be set).
LAMBDA_ENVIRONMENT = {
    "AWS_REGION": "",
    "DYNAMODB_CHARGE_POINT_TABLE": "",
    "DYNAMODB_TRANSACTION_TABLE": "",
    "DYNAMODB_PENDING_CALL_TABLE": "",
    "IOT_ENDPOINT": "",
    **PROCESSOR_ENVIRONMENT,
    "OCPP_TOPIC_PREFIX": DEFAULT_PREFIX,
    "OCPP_ID_TOKENS": "",
    "AWS_ENDPOINT_URL": "",
    "OCPP_LOG_LEVEL": "INFO",
    "OCPP_MQTT_BATCH_BYTES": str(DEFAULT_BATCH_BYTES),
}


@dataclass(frozen=True, slots=True)
class LambdaSettings:
    region: str
    charge_point_table: str
    transaction_table: str
    pending_call_table: str
    #: The account's IoT data endpoint (``xxxx-ats.iot.REGION.amazonaws.com``) or a URL.
    iot_endpoint: str
    processor: ProcessorConfig
    topic_prefix: str = DEFAULT_PREFIX
    id_tokens_file: Path | None = None
    #: A local AWS stand-in for DynamoDB and SQS (tests, local runs); None in AWS.
    endpoint_url: str | None = None
    log_level: str = "INFO"
    #: Largest batch of answers to one route (bytes); 0: each answer on its own topic.
    batch_bytes: int = DEFAULT_BATCH_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LambdaSettings:
        env = Environment(environ, LAMBDA_ENVIRONMENT)
        return cls(
            region=env.read(required("AWS_REGION")),
            charge_point_table=env.read(required("DYNAMODB_CHARGE_POINT_TABLE")),
            transaction_table=env.read(required("DYNAMODB_TRANSACTION_TABLE")),
            pending_call_table=env.read(required("DYNAMODB_PENDING_CALL_TABLE")),
            iot_endpoint=env.read(required("IOT_ENDPOINT")),
            processor=processor_config(env),
            topic_prefix=env.read(checked("OCPP_TOPIC_PREFIX", uplink_subscription)),
            id_tokens_file=env.read(optional_path("OCPP_ID_TOKENS")),
            endpoint_url=env.read(url("AWS_ENDPOINT_URL")),
            log_level=env.read(log_level()),
            batch_bytes=env.read(Read("OCPP_MQTT_BATCH_BYTES", _batch_bytes)),
        )

    @property
    def iot_endpoint_url(self) -> str:
        if "://" in self.iot_endpoint:
            return self.iot_endpoint
        return f"https://{self.iot_endpoint}"


class LambdaApp:
    """One container's processor: clients, adapters and an event loop, built once."""

    def __init__(self, settings: LambdaSettings, session: Any = None) -> None:
        session = session or boto3.session.Session()
        dynamodb = session.client(
            "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url
        )
        iot_data = session.client(
            "iot-data", region_name=settings.region, endpoint_url=settings.iot_endpoint_url
        )
        sqs = session.client("sqs", region_name=settings.region, endpoint_url=settings.endpoint_url)
        self._prefix = settings.topic_prefix
        shadows = IotShadowStore(iot_data)
        publisher = IotDataPublisher(iot_data)
        self._outbound = RoutedOutbound(shadows, settings.topic_prefix, publisher)
        try:
            statuses = (
                None if settings.id_tokens_file is None else load_id_tokens(settings.id_tokens_file)
            )
        except (OSError, ValueError) as exc:
            raise SettingsError(f"OCPP_ID_TOKENS: {exc}") from None
        self.services = Services.build(
            settings.processor,
            shadows=shadows,
            id_tokens=StaticIdTokens(statuses),
            transactions=DynamoDbTransactions(dynamodb, settings.transaction_table),
            pending=DynamoDbPendingCalls(dynamodb, settings.pending_call_table),
            outbound=self._outbound,
        )
        self.registry = DynamoDbRegistry(dynamodb, settings.charge_point_table)
        self._invocation = SqsInvocation(
            # A store that fails sends the frame back to SQS rather than an
            # InternalError to the charger: the retry can still succeed.
            processor=Processor(build_router(), self.services, raise_failures=True),
            presence=ShadowPresenceLedger(shadows),
            publisher=publisher,
            requeue=SqsRequeue(sqs),
            prefix=settings.topic_prefix,
            batch_bytes=settings.batch_bytes,
        )
        self._commands = Commands(self.services)
        # One loop for the container's life: warm invocations reuse it.
        self._loop = asyncio.new_event_loop()

    def close(self) -> None:
        """Release the event loop (tests; a Lambda container simply ends)."""
        self._loop.close()

    # -- SQS ------------------------------------------------------------------

    def process_messages(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return self._loop.run_until_complete(self._process_messages(event))

    async def _process_messages(self, event: Mapping[str, Any]) -> dict[str, Any]:
        records = [
            record
            for index, raw in enumerate(event.get("Records", []))
            if (record := read_record(index, raw, self._prefix)) is not None
        ]
        again = await self._invocation.process(records)
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in again]}

    # -- remote commands --------------------------------------------------------

    def remote_start(self, event: Any) -> dict[str, Any]:
        return self._loop.run_until_complete(self._command(event, RemoteStart.from_input))

    def remote_stop(self, event: Any) -> dict[str, Any]:
        return self._loop.run_until_complete(self._command(event, RemoteStop.from_input))

    async def _command(self, event: Any, parse: Any) -> dict[str, Any]:
        try:
            command = parse(event)
        except InvalidCommand as exc:
            return {"statusCode": 400, "error": str(exc), "field": exc.field}
        if not await self.registry.is_registered(command.charge_point_id):
            error = f"chargePointId: {command.charge_point_id} is not registered"
            return {"statusCode": 404, "error": error, "field": "chargePointId"}
        try:
            if isinstance(command, RemoteStart):
                sent: SentCommand = await self._commands.remote_start(command)
            else:
                sent = await self._commands.remote_stop(command)
        except InvalidCommand as exc:
            return {"statusCode": 400, "error": str(exc), "field": exc.field}
        except ChargePointOffline as exc:
            return {"statusCode": 409, "outcome": "offline", "error": str(exc)}
        return {
            "statusCode": 202,
            "outcome": "sent",
            "chargePointId": sent.charge_point_id,
            "messageId": sent.message_id,
            "action": sent.action,
            "request": sent.payload,
        }


def _batch_bytes(value: str) -> int:
    size = integer("OCPP_MQTT_BATCH_BYTES").parse(value)
    if not 0 <= size <= MAX_BATCH_BYTES:
        raise ValueError(f"must be a whole number from 0 to {MAX_BATCH_BYTES:,}")
    return size


_app: LambdaApp | None = None


def _application() -> LambdaApp:
    global _app  # noqa: PLW0603 - one app per Lambda container, built on first use
    if _app is None:
        settings = LambdaSettings.from_env(os.environ)
        logging.getLogger().setLevel(settings.log_level)
        _app = LambdaApp(settings)
    return _app


def message_processor_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return _application().process_messages(event)


def remote_start_handler(event: Any, context: Any) -> dict[str, Any]:
    return _application().remote_start(event)


def remote_stop_handler(event: Any, context: Any) -> dict[str, Any]:
    return _application().remote_stop(event)
