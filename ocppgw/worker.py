"""The processor worker deployable: MQTT in and out, SQLite state, the management API.

Gateways publish frames and presence to the broker; any number of workers
started on the same data folder share one shared-subscription group and the
SQLite state file (WAL mode lets several processes read and write it; a write
waits for another's at most the database's busy timeout).

Two things need more than the single-process parts give:

* Presence of one charger may be handled by two workers at the same moment
  (a disconnect on one route, the connect on another). The presence ledger
  writes with the SQLite shadow store's conditional update, which reads,
  decides and writes in one transaction, so the newer presence wins whatever
  the order.
* With a shared subscription, the charger's answer to a command may reach
  another worker than the one whose management API sent the command and waits
  for it. ``SharedAnswerBoard`` therefore also watches the charger's shadow,
  where every worker records a matched answer as ``lastCallResult``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocppj import DEFAULT_BATCH_BYTES, DEFAULT_PREFIX, uplink_subscription
from processor import Processor, ProcessorConfig, Services, build_router
from processor.adapters import (
    Database,
    SqlitePendingCalls,
    SqliteRegistry,
    SqliteShadowStore,
    SqliteTransactions,
)
from processor.adapters.routed_outbound import RoutedOutbound
from processor.clock import SystemClock
from processor.commands import CommandAnswer, Commands
from processor.config import PROCESSOR_ENVIRONMENT, processor_config
from processor.environment import (
    Environment,
    checked,
    integer,
    log_level,
    number,
    optional_path,
    optional_text,
    port,
    text,
)
from processor.ports import ShadowStore
from processor.presence import ShadowPresenceLedger

from .answers import AnswerBoard
from .management import ManagementApi
from .mqtt_worker import MqttWorker
from .mqtt_worker_config import DEFAULT_GROUP, WorkerConfig
from .settings import id_tokens, local_url

__all__ = [
    "WORKER_ENVIRONMENT",
    "SharedAnswerBoard",
    "WorkerSettings",
    "WorkerSystem",
    "run_worker",
]

log = logging.getLogger(__name__)

#: Seconds that admitted messages get to finish at shutdown.
DRAIN_TIMEOUT = 5.0
#: How often a waiting command looks for its answer in the shadow (seconds).
ANSWER_POLL_INTERVAL = 0.1

#: Every variable the worker reads, with its default, for docs and --help.
WORKER_ENVIRONMENT = {
    "MQTT_URL": "mqtt://127.0.0.1:1883",
    "OCPP_TOPIC_PREFIX": DEFAULT_PREFIX,
    "OCPP_WORKER_GROUP": DEFAULT_GROUP,
    "OCPP_WORKER_ID": "",
    "OCPP_WORKER_SESSION_EXPIRY": "0",
    "OCPP_MQTT_BATCH_BYTES": str(DEFAULT_BATCH_BYTES),
    "OCPP_WORKER_BATCH_WINDOW": "0.01",
    "OCPP_DATA_DIR": ".ocppgw",
    "OCPP_MANAGEMENT_HOST": "127.0.0.1",
    "OCPP_MANAGEMENT_PORT": "8081",
    **PROCESSOR_ENVIRONMENT,
    "OCPP_ID_TOKENS": "",
    "OCPP_LOG_LEVEL": "INFO",
}


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything ``ocppgw worker`` needs, read from the environment in one place."""

    mqtt: WorkerConfig
    processor: ProcessorConfig
    data_dir: Path
    topic_prefix: str = DEFAULT_PREFIX
    log_level: str = "INFO"
    management_host: str = "127.0.0.1"
    management_port: int = 8081
    #: JSON file of id token -> status; None accepts every token.
    id_tokens_file: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        env = Environment(environ, WORKER_ENVIRONMENT)
        processor = processor_config(env)
        prefix = env.read(checked("OCPP_TOPIC_PREFIX", uplink_subscription))
        mqtt = env.build(
            WorkerConfig,
            url=text("MQTT_URL"),
            group=text("OCPP_WORKER_GROUP"),
            client_id=optional_text("OCPP_WORKER_ID"),
            session_expiry=integer("OCPP_WORKER_SESSION_EXPIRY"),
            batch_bytes=integer("OCPP_MQTT_BATCH_BYTES"),
            batch_window=number("OCPP_WORKER_BATCH_WINDOW"),
        )
        return cls(
            mqtt,
            processor,
            Path(env.text("OCPP_DATA_DIR")),
            prefix,
            env.read(log_level()),
            management_host=env.text("OCPP_MANAGEMENT_HOST"),
            management_port=env.read(port("OCPP_MANAGEMENT_PORT")),
            id_tokens_file=env.read(optional_path("OCPP_ID_TOKENS")),
        )

    @property
    def management_url(self) -> str:
        """Where the CLI finds this worker's management API."""
        return local_url(self.management_host, self.management_port)


class SharedAnswerBoard(AnswerBoard):
    """An ``AnswerBoard`` that also finds answers another worker matched.

    The processor of this worker resolves answers it matches itself, at once.
    While someone waits for an answer (``expect`` until ``forget``), a task
    also reads the charger's shadow every ``interval`` seconds, for at most
    ``wait`` seconds, and resolves the wait when ``lastCallResult`` carries
    the command's message id. ``lastCallResult`` holds the latest answer
    only: if a second command's answer replaces the first within one
    interval, the first is found only by the worker that matched it (and the
    API answers 504 after the call timeout).
    """

    def __init__(
        self,
        shadows: ShadowStore,
        *,
        wait: float,
        interval: float = ANSWER_POLL_INTERVAL,
        keep: int = 10_000,
    ) -> None:
        super().__init__(keep)
        self._shadows = shadows
        self._wait = wait
        self._interval = interval
        self._polls: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._resolving = False

    def expect(self, charge_point_id: str, message_id: str) -> asyncio.Future[CommandAnswer]:
        future = super().expect(charge_point_id, message_id)
        key = (charge_point_id, message_id)
        # resolve() goes through expect() too; an answer in hand needs no search.
        if not self._resolving and not future.done() and key not in self._polls:
            task = asyncio.get_running_loop().create_task(self._poll(key, future))
            self._polls[key] = task
            task.add_done_callback(lambda done: self._forget_poll(key, done))
        return future

    def forget(self, charge_point_id: str, message_id: str) -> None:
        super().forget(charge_point_id, message_id)
        task = self._polls.pop((charge_point_id, message_id), None)
        if task is not None:
            task.cancel()

    def resolve(self, answer: CommandAnswer) -> None:
        self._resolving = True
        try:
            super().resolve(answer)
        finally:
            self._resolving = False

    async def close(self) -> None:
        """Stop every search (shutdown)."""
        tasks = list(self._polls.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget_poll(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._polls.get(key) is task:
            del self._polls[key]

    async def _poll(self, key: tuple[str, str], future: asyncio.Future[CommandAnswer]) -> None:
        charge_point_id, message_id = key
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while not future.done() and loop.time() < deadline:
            await asyncio.sleep(self._interval)
            try:
                document = await self._shadows.get(charge_point_id)
            except Exception as exc:  # a busy store: try again next interval
                log.warning(
                    "shadow read failed while waiting for an answer",
                    extra={"chargePointId": charge_point_id, "error": repr(exc)},
                )
                continue
            answer = _recorded_answer(document, charge_point_id, message_id)
            if answer is not None and not future.done():
                log.info(
                    "command answer found in the shadow",
                    extra={"chargePointId": charge_point_id, "messageId": message_id},
                )
                future.set_result(answer)


def _recorded_answer(document: Any, charge_point_id: str, message_id: str) -> CommandAnswer | None:
    """The answer to ``message_id`` if the shadow's ``lastCallResult`` is it."""
    record = document
    for key in ("state", "reported", "lastCallResult"):
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    if not isinstance(record, dict) or record.get("messageId") != message_id:
        return None
    payload = record.get("payload")
    error = record.get("error")
    error = error if isinstance(error, dict) else {}
    return CommandAnswer(
        charge_point_id,
        message_id,
        str(record.get("action", "")),
        payload if isinstance(payload, dict) else None,
        error.get("code"),
        error.get("description"),
    )


@dataclass(frozen=True, slots=True)
class WorkerSystem:
    worker: MqttWorker
    registry: SqliteRegistry
    services: Services
    commands: Commands
    management: ManagementApi

    @property
    def shadows(self) -> ShadowStore:
        return self.services.shadows

    @property
    def management_port(self) -> int:
        return self.management.port


@contextlib.asynccontextmanager
async def run_worker(settings: WorkerSettings) -> AsyncIterator[WorkerSystem]:
    """Run a worker until the block exits, then shut it down in order: stop the
    API, drain and disconnect the worker, close the database.

    The block is entered at once; the worker connects and subscribes in the
    background (``system.worker.wait_subscribed``) and keeps retrying while
    the broker is away.
    """
    tokens = id_tokens(settings.id_tokens_file)

    async with contextlib.AsyncExitStack() as stack:
        database = Database(settings.data_dir)
        stack.callback(database.close)
        clock = SystemClock()
        registry = SqliteRegistry(database)
        shadows = SqliteShadowStore(database, clock)
        # The worker publishes for the outbound, and needs the processor,
        # which needs the outbound: the outbound gets its publisher last.
        outbound = RoutedOutbound(shadows, settings.topic_prefix)
        services = Services.build(
            settings.processor,
            shadows=shadows,
            id_tokens=tokens,
            transactions=SqliteTransactions(database),
            pending=SqlitePendingCalls(database),
            outbound=outbound,
            clock=clock,
        )
        answers = SharedAnswerBoard(shadows, wait=settings.processor.call_timeout)
        processor = Processor(build_router(), services, on_answer=answers.resolve)
        worker = MqttWorker(
            processor,
            shadows,
            settings.topic_prefix,
            settings.mqtt,
            presence=ShadowPresenceLedger(shadows),
        )
        outbound.attach(worker)
        worker.start()
        stack.push_async_callback(worker.stop, DRAIN_TIMEOUT)
        stack.push_async_callback(answers.close)
        commands = Commands(services)
        management = ManagementApi(
            commands,
            registry=registry,
            shadows=shadows,
            outbound=outbound,
            answers=answers,
            call_timeout=settings.processor.call_timeout,
        )
        await management.start(settings.management_host, settings.management_port)
        stack.push_async_callback(management.close)
        yield WorkerSystem(worker, registry, services, commands, management)
