"""``ocppgw gateway``: the production gateway, relaying over MQTT.

Each process runs one event loop with one gateway and one pool of MQTT
connections; ``--workers N`` starts N such processes on one port
(SO_REUSEPORT: the kernel spreads connections over them), for machines with
more than one core. The registry is the SQLite file of the data folder, or
DynamoDB's ``ChargePointTable`` when ``DYNAMODB_CHARGE_POINT_TABLE`` is set.
With ``OCPP_METRICS_NAMESPACE`` set, each process also writes its metrics to
standard output in CloudWatch's embedded metric format (``gateway/emf.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from gateway import GatewayConfig, GatewayServer
from gateway.emf import EmfMetrics, Snapshot, check_namespace
from gateway.mqtt_bus import MqttBus
from gateway.mqtt_settings import MqttSettings, new_gateway_id, ssl_context_from_pem
from gateway.tls import server_context
from ocppj import DEFAULT_BATCH_BYTES, DEFAULT_PREFIX, ChargePointAccess
from processor.environment import (
    Environment,
    Read,
    SettingsError,
    checked,
    given,
    integer,
    log_level,
    number,
    port,
    positive_seconds,
    text,
)

from .settings import ENVIRONMENT, gateway_config
from .tls_material import PEM_VARIABLES, with_pem_files

__all__ = ["GATEWAY_ENVIRONMENT", "GatewaySettings", "MetricsReporter", "run_gateway"]

log = logging.getLogger(__name__)

#: Where the production gateway's defaults differ from the embedded default's.
GATEWAY_ENVIRONMENT = {
    **ENVIRONMENT,
    "OCPP_GATEWAY_HOST": "0.0.0.0",
    "OCPP_REGISTRY_TTL": "300",
    "OCPP_REGISTRY_NEGATIVE_TTL": "30",
    "MQTT_URL": "",
    "IOT_ENDPOINT": "",
    "IOT_PORT": "8883",
    "OCPP_TOPIC_PREFIX": DEFAULT_PREFIX,
    "OCPP_GATEWAY_ID": "",
    "OCPP_GATEWAY_WORKERS": "1",
    "OCPP_MQTT_MIN_CONNECTIONS": "1",
    "OCPP_MQTT_MAX_CONNECTIONS": "16",
    "OCPP_MQTT_PUBLISH_RATE": "100",
    "OCPP_MQTT_MAX_INFLIGHT": "100",
    "OCPP_MQTT_BUFFER": "10000",
    "OCPP_MQTT_BATCH_BYTES": str(DEFAULT_BATCH_BYTES),
    "OCPP_MQTT_BATCH_WINDOW": "0.1",
    "DYNAMODB_CHARGE_POINT_TABLE": "",
    "AWS_REGION": "",
    "OCPP_METRICS_NAMESPACE": "",
    "OCPP_METRICS_INTERVAL": "60",
    # The seed's secrets: PEM text, for TLS to AWS IoT Core.
    "IOT_AMAZON_ROOT_CA": "",
    "IOT_GATEWAY_CERTIFICATE": "",
    "IOT_GATEWAY_PRIVATE_KEY": "",
    # The listener's TLS material as PEM text (``tls_material``).
    **dict.fromkeys(PEM_VARIABLES, ""),
}
#: ``ssl_context_from_pem``'s arguments, read from the seed's secrets.
_IOT_SECRETS = {
    "root_ca": text("IOT_AMAZON_ROOT_CA"),
    "certificate": text("IOT_GATEWAY_CERTIFICATE"),
    "private_key": text("IOT_GATEWAY_PRIVATE_KEY"),
}
#: Seconds that frames in flight get to reach the broker at shutdown.
DRAIN_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    gateway: GatewayConfig
    mqtt: MqttSettings
    data_dir: Path
    log_level: str
    workers: int
    #: The seed's IoT secrets (PEM text), for TLS to AWS IoT Core; empty locally.
    iot_root_ca: str = ""
    iot_certificate: str = ""
    iot_private_key: str = ""
    charge_point_table: str = ""
    region: str = ""
    #: CloudWatch namespace of the EMF metrics on standard output; empty: none.
    metrics_namespace: str = ""
    #: Seconds between two EMF reports.
    metrics_interval: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewaySettings:
        environ = with_pem_files(environ)
        env = Environment(environ, GATEWAY_ENVIRONMENT)
        workers = env.read(Read("OCPP_GATEWAY_WORKERS", _worker_count))
        config = gateway_config(env)
        if workers > 1:
            config = replace(config, reuse_port=True)
        secrets = {name: env.read(read) for name, read in _IOT_SECRETS.items()}
        url = text("MQTT_URL")
        if not env.text("MQTT_URL"):
            endpoint = env.text("IOT_ENDPOINT")
            if endpoint:
                if not all(secrets.values()):
                    raise SettingsError(
                        "IOT_ENDPOINT: AWS IoT Core needs IOT_AMAZON_ROOT_CA, "
                        "IOT_GATEWAY_CERTIFICATE and IOT_GATEWAY_PRIVATE_KEY"
                    )
                iot_port = env.read(port("IOT_PORT"))
                url = given("IOT_ENDPOINT", f"mqtts://{endpoint}:{iot_port}")
            else:
                url = given("MQTT_URL", "mqtt://127.0.0.1:1883")
        # Built here only to check the secrets (and that they meet an mqtts://
        # broker): each process builds its own, since an SSLContext cannot be
        # sent to a spawned worker process.
        context = env.build(ssl_context_from_pem, **_IOT_SECRETS) if any(secrets.values()) else None
        mqtt = env.build(
            MqttSettings,
            url=url,
            gateway_id=Read("OCPP_GATEWAY_ID", lambda value: value or new_gateway_id()),
            prefix=text("OCPP_TOPIC_PREFIX"),
            min_connections=integer("OCPP_MQTT_MIN_CONNECTIONS"),
            max_connections=integer("OCPP_MQTT_MAX_CONNECTIONS"),
            publish_rate=integer("OCPP_MQTT_PUBLISH_RATE"),
            max_inflight=integer("OCPP_MQTT_MAX_INFLIGHT"),
            buffer_size=integer("OCPP_MQTT_BUFFER"),
            batch_bytes=integer("OCPP_MQTT_BATCH_BYTES"),
            batch_window=number("OCPP_MQTT_BATCH_WINDOW"),
            ssl_context=given("IOT_AMAZON_ROOT_CA", context),
        )
        namespace = env.read(checked("OCPP_METRICS_NAMESPACE", _check_namespace))
        return cls(
            gateway=config,
            mqtt=replace(mqtt, ssl_context=None),
            data_dir=Path(env.text("OCPP_DATA_DIR")),
            log_level=env.read(log_level()),
            workers=workers,
            iot_root_ca=secrets["root_ca"],
            iot_certificate=secrets["certificate"],
            iot_private_key=secrets["private_key"],
            charge_point_table=env.text("DYNAMODB_CHARGE_POINT_TABLE"),
            region=env.text("AWS_REGION"),
            metrics_namespace=namespace,
            metrics_interval=env.read(positive_seconds("OCPP_METRICS_INTERVAL")),
        )

    def for_worker(self, index: int) -> GatewaySettings:
        """One worker process's settings: its own gateway id, hence its own routes."""
        if self.workers == 1:
            return self
        return replace(self, mqtt=replace(self.mqtt, gateway_id=f"{self.mqtt.gateway_id}-{index}"))


def _worker_count(value: str) -> int:
    workers = int(value) if value.isdigit() else -1
    if not 1 <= workers <= 64:
        raise ValueError(f"{value!r} is not between 1 and 64")
    return workers


def _check_namespace(namespace: str) -> None:
    if namespace:  # empty: no metrics
        check_namespace(namespace)


Find = Callable[[str], Awaitable[ChargePointAccess | None]]
#: Takes one complete line (newline included) of the metrics output.
WriteLine = Callable[[bytes], object]


def write_stdout(line: bytes) -> None:
    """Write one line to standard output at once.

    One write per line, each far below PIPE_BUF: the worker processes share
    the container's stdout, and their lines must not interleave.
    """
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


@contextlib.asynccontextmanager
async def run_gateway(
    settings: GatewaySettings, *, metrics_out: WriteLine = write_stdout
) -> AsyncIterator[GatewayServer]:
    """One gateway process: listen, relay over MQTT, shut down in order.

    With ``settings.metrics_namespace``, the process reports its own metrics
    to ``metrics_out`` every ``settings.metrics_interval`` seconds.
    """
    async with contextlib.AsyncExitStack() as stack:
        find = await _registry(settings, stack)
        mqtt = settings.mqtt
        if settings.iot_root_ca:
            mqtt = replace(
                mqtt,
                ssl_context=ssl_context_from_pem(
                    settings.iot_root_ca, settings.iot_certificate, settings.iot_private_key
                ),
            )
        bus = MqttBus(mqtt)
        gateway = GatewayServer(settings.gateway, find, bus, ssl_context=_tls(settings.gateway))
        reporter = None
        if settings.metrics_namespace:
            emf = EmfMetrics(settings.metrics_namespace, settings.gateway.protocols)
            reporter = MetricsReporter(gateway, emf, settings.metrics_interval, metrics_out)
            # Unwound after gateway.shutdown: the last report counts the
            # final frames, and reads no connections (they were closed).
            stack.push_async_callback(reporter.close)
        stack.push_async_callback(gateway.shutdown)
        await bus.start(gateway.deliver, gateway.bus_drained)
        stack.push_async_callback(bus.close, DRAIN_TIMEOUT)
        await gateway.start()
        stack.callback(gateway.stop_accepting)
        if reporter is not None:
            reporter.start()
        log.info(
            "gateway relaying over MQTT",
            extra={"gatewayId": mqtt.gateway_id, "broker": str(mqtt.broker)},
        )
        yield gateway


class MetricsReporter:
    """Writes the gateway's EMF lines every ``interval`` seconds from one task,
    and once more at ``close()``. A failed report is logged, never raised: the
    gateway does not depend on its metrics."""

    def __init__(
        self,
        gateway: GatewayServer,
        emf: EmfMetrics,
        interval: float,
        write: WriteLine,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._gateway = gateway
        self._emf = emf
        self._interval = interval
        self._write = write
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="emf-metrics")

    async def close(self) -> None:
        """Stop the task and write the last report (if it ever started)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.report()

    def report(self) -> None:
        try:
            snapshot = Snapshot.of(
                self._gateway.metrics,
                self._gateway.connections_by_protocol(),
                round(self._clock() * 1000),
            )
            # A few hundred bytes a minute, written in place as the logs are:
            # a log driver that blocks stdout blocks stderr's logging alike.
            for line in self._emf.report(snapshot):
                self._write(line + b"\n")
        except Exception:
            log.exception("metrics report failed")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            # Fixed steps rather than sleep(interval), which would drift: a
            # report a minute keeps to its own CloudWatch minute.
            due = max(due + self._interval, loop.time())
            await asyncio.sleep(due - loop.time())
            self.report()


async def _registry(settings: GatewaySettings, stack: contextlib.AsyncExitStack) -> Find:
    if settings.charge_point_table:
        import boto3  # noqa: PLC0415 - only the AWS deployment loads boto3

        from processor.adapters.dynamodb_registry import DynamoDbRegistry  # noqa: PLC0415

        client = boto3.session.Session().client("dynamodb", region_name=settings.region or None)
        return DynamoDbRegistry(client, settings.charge_point_table).find
    from processor.adapters import Database, SqliteRegistry  # noqa: PLC0415

    database = Database(settings.data_dir)
    stack.callback(database.close)
    return SqliteRegistry(database).find


def _tls(config: GatewayConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    try:
        return server_context(
            config.tls_certificates,
            client_ca=config.tls_client_ca,
            require_client_cert=config.security_profile == 3,
        )
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise SettingsError(f"OCPP_TLS_CERTIFICATES / OCPP_TLS_CLIENT_CA: {exc}") from None
