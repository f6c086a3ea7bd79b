"""Stack configuration: defaults, and a clear error naming the key for every bad value."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
import yaml

from infra.settings import ConfigError, StackSettings
from infra.stack_config import CONFIG_KEYS, config_values

from .stack import run_stack

ACM = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tls-"


def test_defaults_are_the_seeds() -> None:
    settings = StackSettings.from_values({})
    assert (settings.min_tasks, settings.max_tasks, settings.cpu_target) == (1, 20, 60.0)
    assert settings.scale_cooldown == 30
    assert settings.log_retention_days == 1
    assert settings.nat_gateways == 1
    assert settings.topic_prefix == "ocpp"
    assert settings.security_profile == 0 and settings.plain_listener
    assert settings.image_tag == "latest"


def test_values_are_read_and_trimmed() -> None:
    settings = StackSettings.from_values(
        {"minTasks": " 2 ", "maxTasks": "8", "imageTag": "v7", "logLevel": "debug"}
    )
    assert (settings.min_tasks, settings.max_tasks, settings.image_tag) == (2, 8, "v7")
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"natGateways": "3"}, "natGateways: 3 is not between 1 and 2"),
        ({"minTasks": "two"}, "minTasks: 'two' is not a whole number"),
        ({"minTasks": "5", "maxTasks": "4"}, "maxTasks: 4 is below minTasks 5"),
        ({"logRetentionDays": "2"}, "logRetentionDays: 2 is not a CloudWatch retention"),
        ({"securityProfile": "4"}, "securityProfile: 4 is not between 0 and 3"),
        (
            {"securityProfile": "2"},
            "securityProfile: 2 ends TLS at the NLB and needs tlsCertificateArn",
        ),
        ({"securityProfile": "3"}, "securityProfile: 3 needs the gateway's TLS secrets"),
        (
            {"tlsCertificateArn": "arn:aws:iam::1:x"},
            "tlsCertificateArn: 'arn:aws:iam::1:x' is not an ACM",
        ),
        (
            {
                "securityProfile": "3",
                "tlsCertificateArn": ACM,
                "tlsCertificateChainSecret": SECRET + "a",
                "tlsPrivateKeySecret": SECRET + "b",
                "tlsClientCaSecret": SECRET + "c",
            },
            "tlsCertificateArn: profile 3 passes TLS through",
        ),
        (
            {"securityProfile": "3", "tlsCertificateChainSecret": SECRET + "a"},
            "tlsPrivateKeySecret: required",
        ),
        (
            {
                "tlsCertificateChainSecret": "secret",
                "tlsPrivateKeySecret": SECRET,
                "tlsClientCaSecret": SECRET,
            },
            "tlsCertificateChainSecret: 'secret' is not a Secrets Manager secret ARN",
        ),
        ({"topicPrefix": "a/b"}, "topicPrefix: 'a/b' must be"),
        ({"gatewayArchitecture": "mips"}, "gatewayArchitecture: 'MIPS' is not X86_64 or ARM64"),
        ({"plainListener": "maybe"}, "plainListener: 'maybe' is not true or false"),
        ({"alarmEmail": "ops"}, "alarmEmail: 'ops' is not an e-mail address"),
    ],
)
def test_bad_values_name_their_key(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StackSettings.from_values(values)
    assert str(caught.value).startswith(message)


def test_profile_2_closes_the_plain_listener_by_default() -> None:
    settings = StackSettings.from_values({"securityProfile": "2", "tlsCertificateArn": ACM})
    assert not settings.plain_listener
    assert settings.gateway_security_profile == 1


def test_profile_3_keeps_its_secrets() -> None:
    settings = StackSettings.from_values(
        {
            "securityProfile": "3",
            "tlsCertificateChainSecret": SECRET + "a",
            "tlsPrivateKeySecret": SECRET + "b",
            "tlsClientCaSecret": SECRET + "c",
        }
    )
    assert settings.mutual_tls is not None
    assert settings.mutual_tls.client_ca_secret == SECRET + "c"
    assert settings.gateway_security_profile == 3 and not settings.plain_listener


def test_config_values_reads_the_projects_keys_from_pulumi_config() -> None:
    pulumi.runtime.set_all_config(
        {"ocpp-gateway:imageTag": "v9", "ocpp-gateway:natGateways": "2", "other:imageTag": "x"}
    )
    try:
        pulumi.runtime.settings._set_project("ocpp-gateway")
        values = config_values(pulumi.Config("ocpp-gateway"))
    finally:
        pulumi.runtime.set_all_config({})
    assert values == {"imageTag": "v9", "natGateways": "2"}
    assert set(values) <= set(CONFIG_KEYS)


def test_the_example_stack_config_deploys() -> None:
    """``infra/Pulumi.example.yaml`` is what a newcomer copies: it must stay valid."""
    example = Path(__file__).resolve().parents[2] / "infra" / "Pulumi.example.yaml"
    config = yaml.safe_load(example.read_text())["config"]
    assert config["aws:region"]
    ours = {
        key.removeprefix("ocpp-gateway:"): str(value)
        for key, value in config.items()
        if key.startswith("ocpp-gateway:")
    }
    assert set(ours) <= set(CONFIG_KEYS)
    settings = StackSettings.from_values(ours)
    assert settings.image_tag == ours["imageTag"]
    assert run_stack(ours).outputs["chargePointUrl"].startswith("ws://")
