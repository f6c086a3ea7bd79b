"""Settings of the embedded default, read from the environment in one place.

Names follow the seed where it has them (``OCPP_PROTOCOLS``,
``OCPP_GATEWAY_PORT``); the others share the ``OCPP_`` prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway import GatewayConfig
from processor.adapters.static_id_tokens import StaticIdTokens, load_id_tokens
from processor.config import PROCESSOR_ENVIRONMENT, ProcessorConfig, processor_config
from processor.environment import (
    Environment,
    SettingsError,
    certificates,
    integer,
    log_level,
    number,
    optional_path,
    optional_text,
    port,
    text,
    url,
    words,
)

__all__ = [
    "ENVIRONMENT",
    "REGISTRY_ENVIRONMENT",
    "DevSettings",
    "DynamoDbRegistrySettings",
    "Environment",
    "SettingsError",
    "gateway_config",
    "local_url",
]

#: Every variable the embedded default reads, with its default, for docs and --help.
ENVIRONMENT = {
    "OCPP_GATEWAY_HOST": "127.0.0.1",
    "OCPP_GATEWAY_PORT": "8080",
    "OCPP_PROTOCOLS": "ocpp1.6,ocpp2.0,ocpp2.0.1",
    "OCPP_DEFAULT_PROTOCOL": "",
    "OCPP_MAX_MESSAGE_SIZE": "131072",
    "OCPP_SECURITY_PROFILE": "0",
    "OCPP_TLS_CERTIFICATES": "",
    "OCPP_TLS_CLIENT_CA": "",
    "OCPP_TLS_ORGANIZATION": "",
    "OCPP_REGISTRY_TTL": "5",
    "OCPP_REGISTRY_NEGATIVE_TTL": "0",
    "OCPP_PING_INTERVAL": "60",
    "OCPP_PONG_TIMEOUT": "30",
    "OCPP_RATE_LIMIT": "10",
    "OCPP_RATE_BURST": "50",
    "OCPP_FLOOD_STRIKES": "20",
    "OCPP_COMMAND_QUEUE_TTL": "10",
    "OCPP_MAX_QUEUED_COMMANDS": "16",
    "OCPP_SWEEP_PERIOD": "5",
    **PROCESSOR_ENVIRONMENT,
    "OCPP_ID_TOKENS": "",
    "OCPP_MANAGEMENT_HOST": "127.0.0.1",
    "OCPP_MANAGEMENT_PORT": "8081",
    "OCPP_DATA_DIR": ".ocppgw",
    "OCPP_LOG_LEVEL": "INFO",
}

#: What ``ocppgw charge-points`` reads to work on the AWS deployment's registry
#: instead of the SQLite folder's (the names the processor Lambda reads).
REGISTRY_ENVIRONMENT = {
    "DYNAMODB_CHARGE_POINT_TABLE": "",
    "AWS_REGION": "",
    "AWS_ENDPOINT_URL": "",
}


@dataclass(frozen=True, slots=True)
class DevSettings:
    """Everything ``ocppgw dev`` needs: gateway and processor in one process."""

    gateway: GatewayConfig
    processor: ProcessorConfig
    data_dir: Path
    log_level: str = "INFO"
    management_host: str = "127.0.0.1"
    management_port: int = 8081
    #: JSON file of id token -> status; None accepts every token.
    id_tokens_file: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DevSettings:
        env = Environment(environ, ENVIRONMENT)
        return cls(
            gateway_config(env),
            processor_config(env),
            Path(env.text("OCPP_DATA_DIR")),
            env.read(log_level()),
            management_host=env.text("OCPP_MANAGEMENT_HOST"),
            management_port=env.read(port("OCPP_MANAGEMENT_PORT")),
            id_tokens_file=env.read(optional_path("OCPP_ID_TOKENS")),
        )

    @property
    def management_url(self) -> str:
        """Where the CLI finds the management API of a running ``ocppgw dev``."""
        return local_url(self.management_host, self.management_port)


@dataclass(frozen=True, slots=True)
class DynamoDbRegistrySettings:
    """The AWS deployment's ``ChargePointTable``, for ``ocppgw charge-points``.

    Credentials are not settings: boto3 finds them as every AWS tool does
    (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a role).
    """

    table: str
    region: str
    #: A local AWS stand-in (moto, DynamoDB Local); None in AWS.
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DynamoDbRegistrySettings | None:
        """The table ``DYNAMODB_CHARGE_POINT_TABLE`` names; None if it is unset (SQLite)."""
        env = Environment(environ, REGISTRY_ENVIRONMENT)
        table = env.text("DYNAMODB_CHARGE_POINT_TABLE")
        if not table:
            return None
        region = env.text("AWS_REGION")
        if not region:
            raise SettingsError(
                f"AWS_REGION: must be set to the region of DYNAMODB_CHARGE_POINT_TABLE ({table!r})"
            )
        return cls(table, region, env.read(url("AWS_ENDPOINT_URL")))


def local_url(host: str, port: int) -> str:
    """The URL this machine's CLI uses for a server listening on ``host``."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def gateway_config(env: Environment) -> GatewayConfig:
    """The gateway's part of any deployable's settings."""
    return env.build(
        GatewayConfig,
        host=text("OCPP_GATEWAY_HOST"),
        port=integer("OCPP_GATEWAY_PORT"),
        protocols=words("OCPP_PROTOCOLS"),
        default_protocol=optional_text("OCPP_DEFAULT_PROTOCOL"),
        max_message_size=integer("OCPP_MAX_MESSAGE_SIZE"),
        security_profile=integer("OCPP_SECURITY_PROFILE"),
        tls_certificates=certificates("OCPP_TLS_CERTIFICATES"),
        tls_client_ca=optional_path("OCPP_TLS_CLIENT_CA"),
        tls_organization=optional_text("OCPP_TLS_ORGANIZATION"),
        registry_ttl=number("OCPP_REGISTRY_TTL"),
        registry_negative_ttl=number("OCPP_REGISTRY_NEGATIVE_TTL"),
        ping_interval=number("OCPP_PING_INTERVAL"),
        pong_timeout=number("OCPP_PONG_TIMEOUT"),
        rate_limit=number("OCPP_RATE_LIMIT"),
        rate_burst=number("OCPP_RATE_BURST"),
        flood_strikes=integer("OCPP_FLOOD_STRIKES"),
        call_timeout=number("OCPP_CALL_TIMEOUT"),
        queue_ttl=number("OCPP_COMMAND_QUEUE_TTL"),
        max_queued=integer("OCPP_MAX_QUEUED_COMMANDS"),
        sweep_period=number("OCPP_SWEEP_PERIOD"),
    )


def id_tokens(path: Path | None) -> StaticIdTokens:
    """The id-token statuses of ``OCPP_ID_TOKENS`` (None: every token accepted)."""
    if path is None:
        return StaticIdTokens(None)
    try:
        return StaticIdTokens(load_id_tokens(path))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"OCPP_ID_TOKENS: {exc}") from None
