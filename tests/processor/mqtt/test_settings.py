"""The worker's settings from the environment, and its component config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqttio import BrokerAddress
from ocppgw import SettingsError
from ocppgw.mqtt_worker_config import WorkerConfig
from ocppgw.worker import WORKER_ENVIRONMENT, WorkerSettings
from ocppj import shared_subscription


def test_defaults() -> None:
    settings = WorkerSettings.from_env({})
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert settings.mqtt.group == "ocpp-workers"
    assert settings.topic_prefix == "ocpp"
    assert settings.data_dir == Path(".ocppgw")
    assert (settings.management_host, settings.management_port) == ("127.0.0.1", 8081)
    assert settings.processor.heartbeat_interval == 300
    assert settings.processor.call_timeout == 30
    assert settings.id_tokens_file is None
    assert settings.log_level == "INFO"
    assert settings.management_url == "http://127.0.0.1:8081"
    assert set(WORKER_ENVIRONMENT) >= {"MQTT_URL", "OCPP_WORKER_GROUP", "OCPP_TOPIC_PREFIX"}


def test_every_variable_is_read() -> None:
    settings = WorkerSettings.from_env(
        {
            "MQTT_URL": "mqtts://worker:s%40cret@broker.example:8884",
            "OCPP_TOPIC_PREFIX": "fleet",
            "OCPP_WORKER_GROUP": "blue",
            "OCPP_DATA_DIR": "/var/lib/ocpp",
            "OCPP_MANAGEMENT_HOST": "0.0.0.0",
            "OCPP_MANAGEMENT_PORT": "9000",
            "OCPP_HEARTBEAT_INTERVAL": "60",
            "OCPP_CALL_TIMEOUT": "12.5",
            "OCPP_ID_TOKENS": "/etc/tokens.json",
            "OCPP_LOG_LEVEL": "debug",
        }
    )
    assert settings.mqtt.broker == BrokerAddress("broker.example", 8884, True, "worker", "s@cret")
    assert settings.mqtt.group == "blue"
    assert settings.topic_prefix == "fleet"
    assert settings.data_dir == Path("/var/lib/ocpp")
    assert settings.management_url == "http://127.0.0.1:9000"
    assert settings.processor.heartbeat_interval == 60
    assert settings.processor.call_timeout == 12.5
    assert settings.id_tokens_file == Path("/etc/tokens.json")
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MQTT_URL", "http://broker:1883"),
        ("MQTT_URL", "mqtt://"),
        ("MQTT_URL", "mqtt://broker:99999"),
        ("MQTT_URL", "mqtt://broker:1883/path"),
        ("OCPP_WORKER_GROUP", "a/b"),
        ("OCPP_WORKER_GROUP", "#"),
        ("OCPP_TOPIC_PREFIX", "a/b"),
        ("OCPP_TOPIC_PREFIX", "$SYS"),
        ("OCPP_MANAGEMENT_PORT", "70000"),
        ("OCPP_MANAGEMENT_PORT", "eighty"),
        ("OCPP_HEARTBEAT_INTERVAL", "0"),
        ("OCPP_CALL_TIMEOUT", "soon"),
        ("OCPP_LOG_LEVEL", "LOUD"),
    ],
)
def test_errors_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        WorkerSettings.from_env({variable: value})


def test_a_password_never_appears_in_errors_or_reprs() -> None:
    with pytest.raises(SettingsError) as refused:
        WorkerSettings.from_env({"MQTT_URL": "http://user:hunter2@broker"})
    assert "hunter2" not in str(refused.value)
    address = BrokerAddress.parse("mqtt://user:hunter2@broker")
    assert "hunter2" not in repr(address)
    assert str(address) == "mqtt://broker:1883"
    settings = WorkerSettings.from_env({"MQTT_URL": "mqtt://user:hunter2@broker"})
    assert "hunter2" not in repr(settings)


def test_config_checks_its_numbers() -> None:
    with pytest.raises(ValueError, match=r"^consumers: "):
        WorkerConfig(consumers=0)
    with pytest.raises(ValueError, match=r"^backoff_max: "):
        WorkerConfig(backoff_initial=5, backoff_max=1)
    with pytest.raises(ValueError, match=r"^receive_maximum: "):
        WorkerConfig(receive_maximum=70_000)


def test_shared_subscriptions_name_their_group() -> None:
    assert shared_subscription("g1", "ocpp/in/+/+/+") == "$share/g1/ocpp/in/+/+/+"
    with pytest.raises(ValueError):
        shared_subscription("", "ocpp/in/+/+/+")
