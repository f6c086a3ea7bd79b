"""The project's config keys, read from ``pulumi.Config`` as text for ``StackSettings``."""

from __future__ import annotations

import pulumi

__all__ = ["CONFIG_KEYS", "config_values"]

#: Every key ``StackSettings.from_values`` reads; others are ignored.
CONFIG_KEYS = (
    "securityProfile",
    "tlsCertificateArn",
    "tlsCertificateChainSecret",
    "tlsPrivateKeySecret",
    "tlsClientCaSecret",
    "plainListener",
    "imageTag",
    "gatewayArchitecture",
    "natGateways",
    "minTasks",
    "maxTasks",
    "cpuTarget",
    "scaleCooldown",
    "logRetentionDays",
    "topicPrefix",
    "heartbeatInterval",
    "logLevel",
    "alarmEmail",
    "protectData",
    "lambdaPackage",
)


def config_values(config: pulumi.Config) -> dict[str, str]:
    """The keys that are set, as text (``pulumi config set`` stores text)."""
    values = {}
    for key in CONFIG_KEYS:
        value = config.get(key)
        if value is not None:
            values[key] = value
    return values
