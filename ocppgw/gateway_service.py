"""``ocppgw gateway``: the production gateway, relaying over MQTT.

Each process runs one event loop with one gateway and one pool of MQTT
connections; ``--workers N`` starts N such processes on one port
(SO_REUSEPORT: the kernel spreads connections over them), for machines with
more than one core. The registry is the SQLite file of the data folder, or
DynamoDB's ``ChargePointTable`` when ``DYNAMODB_CHARGE_POINT_TABLE`` is set.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from gateway import GatewayConfig, GatewayServer
from gateway.mqtt_bus import MqttBus
from gateway.mqtt_settings import MqttSettings, new_gateway_id, ssl_context_from_pem
from gateway.tls import server_context
from ocppj import DEFAULT_PREFIX, ChargePointAccess

from .settings import ENVIRONMENT, Environment, SettingsError, gateway_config

__all__ = ["GATEWAY_ENVIRONMENT", "GatewaySettings", "run_gateway"]

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
    "DYNAMODB_CHARGE_POINT_TABLE": "",
    "AWS_REGION": "",
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewaySettings:
        env = Environment(environ, GATEWAY_ENVIRONMENT)
        workers = env.integer("OCPP_GATEWAY_WORKERS")
        if not 1 <= workers <= 64:
            raise SettingsError(f"OCPP_GATEWAY_WORKERS: {workers} is not between 1 and 64")
        config = gateway_config(env)
        if workers > 1:
            config = replace(config, reuse_port=True)
        url = env.text("MQTT_URL")
        endpoint = env.text("IOT_ENDPOINT")
        secrets = {
            name: environ.get(name, "")
            for name in ("IOT_AMAZON_ROOT_CA", "IOT_GATEWAY_CERTIFICATE", "IOT_GATEWAY_PRIVATE_KEY")
        }
        if not url:
            if endpoint:
                if not all(secrets.values()):
                    raise SettingsError(
                        "IOT_ENDPOINT: AWS IoT Core needs IOT_AMAZON_ROOT_CA, "
                        "IOT_GATEWAY_CERTIFICATE and IOT_GATEWAY_PRIVATE_KEY"
                    )
                url = f"mqtts://{endpoint}:{env.integer('IOT_PORT')}"
            else:
                url = "mqtt://127.0.0.1:1883"
        try:
            mqtt = MqttSettings(
                url=url,
                gateway_id=env.text("OCPP_GATEWAY_ID") or new_gateway_id(),
                prefix=env.text("OCPP_TOPIC_PREFIX"),
                min_connections=env.integer("OCPP_MQTT_MIN_CONNECTIONS"),
                max_connections=env.integer("OCPP_MQTT_MAX_CONNECTIONS"),
                publish_rate=env.integer("OCPP_MQTT_PUBLISH_RATE"),
                max_inflight=env.integer("OCPP_MQTT_MAX_INFLIGHT"),
                buffer_size=env.integer("OCPP_MQTT_BUFFER"),
            )
        except ValueError as exc:
            raise SettingsError(f"MQTT_URL / OCPP_MQTT_*: {exc}") from None
        return cls(
            gateway=config,
            mqtt=mqtt,
            data_dir=Path(env.text("OCPP_DATA_DIR")),
            log_level=env.log_level(),
            workers=workers,
            iot_root_ca=secrets["IOT_AMAZON_ROOT_CA"],
            iot_certificate=secrets["IOT_GATEWAY_CERTIFICATE"],
            iot_private_key=secrets["IOT_GATEWAY_PRIVATE_KEY"],
            charge_point_table=env.text("DYNAMODB_CHARGE_POINT_TABLE"),
            region=env.text("AWS_REGION"),
        )

    def for_worker(self, index: int) -> GatewaySettings:
        """One worker process's settings: its own gateway id, hence its own routes."""
        if self.workers == 1:
            return self
        return replace(self, mqtt=replace(self.mqtt, gateway_id=f"{self.mqtt.gateway_id}-{index}"))


Find = Callable[[str], Awaitable[ChargePointAccess | None]]


@contextlib.asynccontextmanager
async def run_gateway(settings: GatewaySettings) -> AsyncIterator[GatewayServer]:
    """One gateway process: listen, relay over MQTT, shut down in order."""
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
        stack.push_async_callback(gateway.shutdown)
        await bus.start(gateway.deliver, gateway.bus_drained)
        stack.push_async_callback(bus.close, DRAIN_TIMEOUT)
        await gateway.start()
        stack.callback(gateway.stop_accepting)
        log.info(
            "gateway relaying over MQTT",
            extra={"gatewayId": mqtt.gateway_id, "broker": f"{mqtt.host}:{mqtt.port}"},
        )
        yield gateway


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
