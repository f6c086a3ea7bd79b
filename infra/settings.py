"""The stack's configuration, read once into one frozen object.

Keys live under the project's namespace (``pulumi config set imageTag v1``);
``aws:region`` is the provider's own. Every key has a default that deploys a
working development stack except where noted; ``StackSettings.from_values``
checks them all and names the key in any error, before a resource exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PROJECT", "ConfigError", "StackSettings"]

PROJECT = "ocpp-gateway"

# The gateway process flushes its bus for at most this long after SIGTERM
# (ocppgw.gateway_service.DRAIN_TIMEOUT) before closing every charger with 1001.
GATEWAY_DRAIN_SECONDS = 10
# Fargate's ceiling for stopTimeout.
_MAX_STOP_TIMEOUT = 120
# What CloudWatch Logs accepts as a retention.
_RETENTION_DAYS = frozenset(
    (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
     2922, 3288, 3653)
)  # fmt: skip
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,32}")
_ACM_ARN = re.compile(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+")
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ConfigError(ValueError):
    """A configuration key has a value the stack cannot deploy."""


@dataclass(frozen=True, slots=True)
class MutualTls:
    """Security profile 3: TLS passes through the NLB and the gateway ends it.

    Each field is the ARN of a Secrets Manager secret holding PEM text,
    injected into the gateway container (``OCPP_TLS_*_PEM``).
    """

    certificate_chain_secret: str
    private_key_secret: str
    client_ca_secret: str


@dataclass(frozen=True, slots=True)
class StackSettings:
    #: OCPP security profile the chargers see: 0 none, 1 Basic auth, 2 TLS
    #: (ended at the NLB with ``tls_certificate_arn``) + Basic auth, 3 mutual TLS
    #: (passed through to the gateway).
    security_profile: int = 0
    tls_certificate_arn: str | None = None
    mutual_tls: MutualTls | None = None
    #: Whether port 80 (plain WebSocket) stays open beside TLS 443.
    plain_listener: bool = True
    image_tag: str = "latest"
    #: X86_64 or ARM64: the platform the gateway image was built for.
    gateway_architecture: str = "X86_64"
    nat_gateways: int = 1
    min_tasks: int = 1
    max_tasks: int = 20
    cpu_target: float = 60.0
    scale_cooldown: int = 30
    log_retention_days: int = 1
    topic_prefix: str = "ocpp"
    heartbeat_interval: int = 300
    log_level: str = "INFO"
    alarm_email: str | None = None
    #: Protect the tables from ``pulumi destroy`` (production stacks).
    protect_data: bool = False
    #: A prebuilt Lambda package (a folder); None builds one from ``processor/``.
    lambda_package: str | None = None

    @property
    def drain_seconds(self) -> int:
        """How long the NLB keeps a stopping task's connections: the gateway's drain."""
        return GATEWAY_DRAIN_SECONDS

    @property
    def stop_timeout(self) -> int:
        """Seconds ECS waits after SIGTERM: the drain plus time to close every charger."""
        return min(GATEWAY_DRAIN_SECONDS + 20, _MAX_STOP_TIMEOUT)

    @property
    def gateway_security_profile(self) -> int:
        """The profile the gateway itself enforces: TLS ended at the NLB leaves Basic auth."""
        return 1 if self.security_profile == 2 else self.security_profile

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> StackSettings:
        """Settings from the project's config keys (``pulumi.Config`` values as text)."""
        reader = _Reader(values)
        profile = reader.integer("securityProfile", 0, 0, 3)
        certificate = reader.text("tlsCertificateArn")
        if certificate is not None and not _ACM_ARN.fullmatch(certificate):
            raise ConfigError(f"tlsCertificateArn: {certificate!r} is not an ACM certificate ARN")
        mutual = _mutual_tls(reader)
        if profile == 2 and certificate is None:
            raise ConfigError("securityProfile: 2 ends TLS at the NLB and needs tlsCertificateArn")
        if profile == 3 and mutual is None:
            raise ConfigError(
                "securityProfile: 3 needs the gateway's TLS secrets "
                "(tlsCertificateChainSecret, tlsPrivateKeySecret, tlsClientCaSecret)"
            )
        if profile == 3 and certificate is not None:
            raise ConfigError(
                "tlsCertificateArn: profile 3 passes TLS through to the gateway; "
                "the NLB cannot end it (the client certificate would be lost)"
            )
        if profile != 3 and mutual is not None:
            raise ConfigError("tlsCertificateChainSecret: only used with securityProfile 3")
        plain = reader.boolean("plainListener", profile < 2)
        if profile == 3 and plain:
            raise ConfigError("plainListener: the gateway speaks only TLS with securityProfile 3")
        min_tasks = reader.integer("minTasks", 1, 1, 1000)
        max_tasks = reader.integer("maxTasks", 20, 1, 1000)
        if max_tasks < min_tasks:
            raise ConfigError(f"maxTasks: {max_tasks} is below minTasks {min_tasks}")
        retention = reader.integer("logRetentionDays", 1, 1, 3653)
        if retention not in _RETENTION_DAYS:
            raise ConfigError(
                f"logRetentionDays: {retention} is not a CloudWatch retention "
                f"({', '.join(map(str, sorted(_RETENTION_DAYS)))})"
            )
        prefix = reader.text("topicPrefix") or "ocpp"
        if not _PREFIX.fullmatch(prefix):
            raise ConfigError(f"topicPrefix: {prefix!r} must be 1 to 32 letters, digits, _ or -")
        architecture = (reader.text("gatewayArchitecture") or "X86_64").upper()
        if architecture not in ("X86_64", "ARM64"):
            raise ConfigError(f"gatewayArchitecture: {architecture!r} is not X86_64 or ARM64")
        log_level = (reader.text("logLevel") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"logLevel: {log_level!r} is not DEBUG, INFO, WARNING or ERROR")
        email = reader.text("alarmEmail")
        if email is not None and not _EMAIL.fullmatch(email):
            raise ConfigError(f"alarmEmail: {email!r} is not an e-mail address")
        return cls(
            security_profile=profile,
            tls_certificate_arn=certificate,
            mutual_tls=mutual,
            plain_listener=plain,
            image_tag=reader.text("imageTag") or "latest",
            gateway_architecture=architecture,
            nat_gateways=reader.integer("natGateways", 1, 1, 2),
            min_tasks=min_tasks,
            max_tasks=max_tasks,
            cpu_target=float(reader.integer("cpuTarget", 60, 10, 90)),
            scale_cooldown=reader.integer("scaleCooldown", 30, 0, 3600),
            log_retention_days=retention,
            topic_prefix=prefix,
            heartbeat_interval=reader.integer("heartbeatInterval", 300, 1, 86400),
            log_level=log_level,
            alarm_email=email,
            protect_data=reader.boolean("protectData", False),
            lambda_package=reader.text("lambdaPackage"),
        )


class _Reader:
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def text(self, key: str) -> str | None:
        value = self._values.get(key)
        return value.strip() or None if value is not None else None

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        text = self.text(key)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{key}: {text!r} is not a whole number") from None
        if not low <= value <= high:
            raise ConfigError(f"{key}: {value} is not between {low} and {high}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        text = self.text(key)
        if text is None:
            return default
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{key}: {text!r} is not true or false")


def _mutual_tls(reader: _Reader) -> MutualTls | None:
    names = ("tlsCertificateChainSecret", "tlsPrivateKeySecret", "tlsClientCaSecret")
    arns = [reader.text(name) for name in names]
    if not any(arns):
        return None
    for name, arn in zip(names, arns, strict=True):
        if arn is None:
            raise ConfigError(f"{name}: required with the other profile 3 secrets")
        if not _SECRET_ARN.fullmatch(arn):
            raise ConfigError(f"{name}: {arn!r} is not a Secrets Manager secret ARN")
    chain, key, ca = (arn for arn in arns if arn is not None)
    return MutualTls(chain, key, ca)
