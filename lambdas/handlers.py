"""AWS Lambda entry points: the processor on SQS, and remote start / stop.

* ``message_processor_handler``: SQS batches from the IoT rule
  ``SELECT * AS message, topic(3) AS chargePointId, topic(4) AS protocol,
  topic(5) AS route FROM 'ocpp/in/+/+/+'``. Each record's frame goes through
  the same ``Processor`` as everywhere else; the answer is published to the
  route the CALL came from. A record that fails for a passing reason (an AWS
  call) is reported in ``batchItemFailures`` so that only it is redelivered;
  a record that can never succeed (not the rule's shape) is logged and
  dropped, since redelivering it would fail forever.

  The same queue takes presence from a second rule, ``SELECT * AS presence,
  topic(3) AS chargePointId FROM 'ocpp/presence/+'``: a body with a
  ``presence`` key is a gateway's connect or disconnect, recorded in the
  shadow's ``state.reported.connection`` (``processor.presence``) unless the
  record already says something newer. That record is where the remote
  commands find a charger's route. A malformed presence is logged and
  dropped; a failed shadow read or write is redelivered. The presence
  records of one charger in a batch are handled one after another, and each
  write names the shadow version its decision was made on
  (``IotShadowStore.update_if``), so two containers judging one charger at the
  same instant cannot leave a stale record.
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
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson

from ocppj import DEFAULT_PREFIX, decode_segment, uplink_subscription
from processor import build_router
from processor.adapters.dynamodb_pending_calls import DynamoDbPendingCalls
from processor.adapters.dynamodb_registry import DynamoDbRegistry
from processor.adapters.dynamodb_transactions import DynamoDbTransactions
from processor.adapters.iot_publisher import IotDataPublisher
from processor.adapters.iot_shadow import IotShadowStore
from processor.adapters.routed_outbound import RoutedOutbound
from processor.adapters.static_id_tokens import StaticIdTokens, load_id_tokens
from processor.commands import Commands, InvalidCommand, RemoteStart, RemoteStop, SentCommand
from processor.config import ProcessorConfig
from processor.context import Services
from processor.core import Processor
from processor.environment import (
    Environment,
    SettingsError,
    checked,
    integer,
    log_level,
    number,
    optional_path,
    required,
    url,
)
from processor.ports import ChargePointOffline
from processor.presence import ShadowPresenceLedger, routable_presence

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
    "OCPP_HEARTBEAT_INTERVAL": "300",
    "OCPP_CALL_TIMEOUT": "30",
    "OCPP_TOPIC_PREFIX": DEFAULT_PREFIX,
    "OCPP_ID_TOKENS": "",
    "AWS_ENDPOINT_URL": "",
    "OCPP_LOG_LEVEL": "INFO",
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
    #: A local AWS stand-in for DynamoDB (tests, local runs); None in AWS.
    endpoint_url: str | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LambdaSettings:
        env = Environment(environ, LAMBDA_ENVIRONMENT)
        return cls(
            region=env.read(required("AWS_REGION")),
            charge_point_table=env.read(required("DYNAMODB_CHARGE_POINT_TABLE")),
            transaction_table=env.read(required("DYNAMODB_TRANSACTION_TABLE")),
            pending_call_table=env.read(required("DYNAMODB_PENDING_CALL_TABLE")),
            iot_endpoint=env.read(required("IOT_ENDPOINT")),
            processor=env.build(
                ProcessorConfig,
                heartbeat_interval=integer("OCPP_HEARTBEAT_INTERVAL"),
                call_timeout=number("OCPP_CALL_TIMEOUT"),
            ),
            topic_prefix=env.read(checked("OCPP_TOPIC_PREFIX", uplink_subscription)),
            id_tokens_file=env.read(optional_path("OCPP_ID_TOKENS")),
            endpoint_url=env.read(url("AWS_ENDPOINT_URL")),
            log_level=env.read(log_level()),
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
        self._prefix = settings.topic_prefix
        shadows = IotShadowStore(iot_data)
        self._outbound = RoutedOutbound(shadows, settings.topic_prefix, IotDataPublisher(iot_data))
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
        self._presence = ShadowPresenceLedger(shadows)
        # A store that fails sends the record back to SQS rather than an
        # InternalError to the charger: the retry can still succeed.
        self._processor = Processor(build_router(), self.services, raise_failures=True)
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
        records = event.get("Records", [])
        # Per charger, for this batch only: one invocation runs at a time.
        presence_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        outcomes = await asyncio.gather(
            *(self._record(record, presence_locks) for record in records)
        )
        failures = [
            {"itemIdentifier": record.get("messageId", "")}
            for record, ok in zip(records, outcomes, strict=True)
            if not ok
        ]
        return {"batchItemFailures": failures}

    async def _record(
        self, record: Mapping[str, Any], presence_locks: Mapping[str, asyncio.Lock]
    ) -> bool:
        """Process one SQS record; False asks SQS to deliver it again."""
        try:
            body = orjson.loads(record["body"])
        except (KeyError, TypeError, ValueError) as exc:
            return _dropped(record, "not the IoT rule's shape", exc)
        if isinstance(body, dict) and "presence" in body:
            return await self._presence_record(record, body, presence_locks)
        try:
            charge_point_id, protocol, route, frame = _frame_of(body)
        except (KeyError, TypeError, ValueError) as exc:
            return _dropped(record, "not the IoT rule's shape", exc)
        try:
            answer = await self._processor.handle(charge_point_id, protocol, frame)
            if answer is not None:
                await self._outbound.reply(route, charge_point_id, answer)
        except Exception:
            log.exception(
                "record failed; SQS will deliver it again",
                extra={"messageId": record.get("messageId"), "chargePointId": charge_point_id},
            )
            return False
        return True

    async def _presence_record(
        self,
        record: Mapping[str, Any],
        body: Mapping[str, Any],
        presence_locks: Mapping[str, asyncio.Lock],
    ) -> bool:
        """Record a gateway's presence message in the charger's shadow."""
        charge_point_id = None
        try:
            charge_point_id = decode_segment(body["chargePointId"])
            # The rule re-serialises the payload; parse it as the worker does.
            presence = routable_presence(
                orjson.dumps(body["presence"]), self._prefix, charge_point_id
            )
        except (KeyError, TypeError, ValueError) as exc:
            return _dropped(record, "malformed presence", exc, chargePointId=charge_point_id)
        facts = {
            "messageId": record.get("messageId"),
            "chargePointId": charge_point_id,
            "connected": presence.connected,
            "route": presence.route,
            "at": presence.at,
        }
        try:
            async with presence_locks[charge_point_id]:
                recorded = await self._presence.record(charge_point_id, presence)
        except Exception:
            log.exception("presence failed; SQS will deliver it again", extra=facts)
            return False
        if recorded:
            log.info("presence recorded", extra=facts)
        else:
            log.info("presence ignored: the record is newer or the same", extra=facts)
        return True

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


def _dropped(record: Mapping[str, Any], why: str, exc: Exception, **facts: Any) -> bool:
    """Log a record that can never succeed; True: SQS need not deliver it again."""
    log.error(
        "record dropped: %s",
        why,
        extra={"messageId": record.get("messageId"), **facts, "reason": str(exc)},
    )
    return True


def _frame_of(body: Any) -> tuple[str, str, str, bytes]:
    """(charge point, protocol, route, frame) from an SQS body of the uplink rule."""
    charge_point_id = decode_segment(body["chargePointId"])
    protocol, route = body["protocol"], body["route"]
    if not isinstance(protocol, str) or not isinstance(route, str):
        raise TypeError("protocol and route must be strings")
    # The rule re-serialises the frame; the processor parses it as JSON again.
    return charge_point_id, protocol, route, orjson.dumps(body["message"])


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
