"""Settings of the embedded default, read from the environment in one place.

Names follow the seed where it has them (``OCPP_PROTOCOLS``,
``OCPP_GATEWAY_PORT``); the others share the ``OCPP_`` prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway import GatewayConfig
from processor import ProcessorConfig
from processor.adapters.static_id_tokens import StaticIdTokens, load_id_tokens

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
    "OCPP_HEARTBEAT_INTERVAL": "300",
    "OCPP_CALL_TIMEOUT": "30",
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

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value that cannot work; the message names the setting."""


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
        env = Environment(environ)
        gateway = gateway_config(env)
        processor = env.build(
            ProcessorConfig,
            heartbeat_interval=env.integer("OCPP_HEARTBEAT_INTERVAL"),
            call_timeout=env.number("OCPP_CALL_TIMEOUT"),
        )
        return cls(
            gateway,
            processor,
            Path(env.text("OCPP_DATA_DIR")),
            env.log_level(),
            management_host=env.text("OCPP_MANAGEMENT_HOST"),
            management_port=env.port("OCPP_MANAGEMENT_PORT"),
            id_tokens_file=env.path("OCPP_ID_TOKENS"),
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
        return cls(table, region, env.text("AWS_ENDPOINT_URL") or None)


def local_url(host: str, port: int) -> str:
    """The URL this machine's CLI uses for a server listening on ``host``."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def gateway_config(env: Environment) -> GatewayConfig:
    """The gateway's part of any deployable's settings."""
    return env.build(
        GatewayConfig,
        host=env.text("OCPP_GATEWAY_HOST"),
        port=env.integer("OCPP_GATEWAY_PORT"),
        protocols=tuple(p.strip() for p in env.text("OCPP_PROTOCOLS").split(",") if p.strip()),
        default_protocol=env.text("OCPP_DEFAULT_PROTOCOL") or None,
        max_message_size=env.integer("OCPP_MAX_MESSAGE_SIZE"),
        security_profile=env.integer("OCPP_SECURITY_PROFILE"),
        tls_certificates=env.certificates("OCPP_TLS_CERTIFICATES"),
        tls_client_ca=env.path("OCPP_TLS_CLIENT_CA"),
        tls_organization=env.text("OCPP_TLS_ORGANIZATION") or None,
        registry_ttl=env.number("OCPP_REGISTRY_TTL"),
        registry_negative_ttl=env.number("OCPP_REGISTRY_NEGATIVE_TTL"),
        ping_interval=env.number("OCPP_PING_INTERVAL"),
        pong_timeout=env.number("OCPP_PONG_TIMEOUT"),
        rate_limit=env.number("OCPP_RATE_LIMIT"),
        rate_burst=env.number("OCPP_RATE_BURST"),
        flood_strikes=env.integer("OCPP_FLOOD_STRIKES"),
        call_timeout=env.number("OCPP_CALL_TIMEOUT"),
        queue_ttl=env.number("OCPP_COMMAND_QUEUE_TTL"),
        max_queued=env.integer("OCPP_MAX_QUEUED_COMMANDS"),
        sweep_period=env.number("OCPP_SWEEP_PERIOD"),
    )


# Config classes say "field: problem"; users know the variable, not the field.
_VARIABLE_OF_FIELD = {
    "host": "OCPP_GATEWAY_HOST",
    "port": "OCPP_GATEWAY_PORT",
    "protocols": "OCPP_PROTOCOLS",
    "default_protocol": "OCPP_DEFAULT_PROTOCOL",
    "max_message_size": "OCPP_MAX_MESSAGE_SIZE",
    "heartbeat_interval": "OCPP_HEARTBEAT_INTERVAL",
    "call_timeout": "OCPP_CALL_TIMEOUT",
    "security_profile": "OCPP_SECURITY_PROFILE",
    "tls_certificates": "OCPP_TLS_CERTIFICATES",
    "tls_client_ca": "OCPP_TLS_CLIENT_CA",
    "registry_ttl": "OCPP_REGISTRY_TTL",
    "ping_interval": "OCPP_PING_INTERVAL",
    "pong_timeout": "OCPP_PONG_TIMEOUT",
    "rate_limit": "OCPP_RATE_LIMIT",
    "queue_ttl": "OCPP_COMMAND_QUEUE_TTL",
}


class Environment:
    """Typed reads of environment variables; every error names the variable."""

    def __init__(
        self, environ: Mapping[str, str], defaults: Mapping[str, str] = ENVIRONMENT
    ) -> None:
        self._environ = environ
        self._defaults = defaults

    def text(self, name: str) -> str:
        return self._environ.get(name, self._defaults.get(name, "")).strip()

    def integer(self, name: str) -> int:
        value = self.text(name)
        try:
            return int(value)
        except ValueError:
            raise SettingsError(f"{name}: {value!r} is not a whole number") from None

    def log_level(self) -> str:
        level = self.text("OCPP_LOG_LEVEL").upper()
        if level not in _LOG_LEVELS:
            raise SettingsError(f"OCPP_LOG_LEVEL: {level!r} is not one of {', '.join(_LOG_LEVELS)}")
        return level

    def port(self, name: str) -> int:
        port = self.integer(name)
        if not 0 <= port <= 65535:
            raise SettingsError(f"{name}: {port} is not a TCP port number")
        return port

    def path(self, name: str) -> Path | None:
        value = self.text(name)
        return Path(value) if value else None

    def certificates(self, name: str) -> tuple[tuple[Path, Path], ...]:
        """``cert.pem:key.pem[,cert2.pem:key2.pem]``: an RSA and an ECDSA pair, say."""
        pairs = []
        for item in filter(None, (part.strip() for part in self.text(name).split(","))):
            certificate, colon, key = item.partition(":")
            if not colon or not certificate or not key:
                raise SettingsError(f"{name}: {item!r} is not CERTIFICATE:PRIVATE_KEY")
            pairs.append((Path(certificate), Path(key)))
        return tuple(pairs)

    def number(self, name: str) -> float:
        value = self.text(name)
        try:
            return float(value)
        except ValueError:
            raise SettingsError(f"{name}: {value!r} is not a number") from None

    def build(self, config_type: Callable[..., T], **fields: Any) -> T:
        try:
            return config_type(**fields)
        except ValueError as exc:
            field, _, problem = str(exc).partition(": ")
            raise SettingsError(f"{_VARIABLE_OF_FIELD.get(field, field)}: {problem}") from None


def id_tokens(path: Path | None) -> StaticIdTokens:
    """The id-token statuses of ``OCPP_ID_TOKENS`` (None: every token accepted)."""
    if path is None:
        return StaticIdTokens(None)
    try:
        return StaticIdTokens(load_id_tokens(path))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"OCPP_ID_TOKENS: {exc}") from None
