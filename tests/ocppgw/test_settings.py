from __future__ import annotations

from pathlib import Path

import pytest

from ocppgw import DevSettings, SettingsError


def test_defaults_follow_the_seed() -> None:
    settings = DevSettings.from_env({})
    assert settings.gateway.port == 8080
    assert settings.gateway.host == "127.0.0.1"
    assert settings.gateway.protocols == ("ocpp1.6", "ocpp2.0", "ocpp2.0.1")
    assert settings.gateway.default_protocol is None
    assert settings.gateway.max_message_size == 128 * 1024
    assert settings.processor.heartbeat_interval == 300
    assert settings.data_dir == Path(".ocppgw")
    assert settings.log_level == "INFO"
    assert settings.processor.call_timeout == 30
    assert (settings.management_host, settings.management_port) == ("127.0.0.1", 8081)
    assert settings.management_url == "http://127.0.0.1:8081"
    assert settings.id_tokens_file is None


def test_environment_overrides_every_default() -> None:
    settings = DevSettings.from_env(
        {
            "OCPP_GATEWAY_HOST": "0.0.0.0",
            "OCPP_GATEWAY_PORT": "9000",
            "OCPP_PROTOCOLS": " ocpp2.0.1 , ocpp1.6,",
            "OCPP_DEFAULT_PROTOCOL": "ocpp1.6",
            "OCPP_MAX_MESSAGE_SIZE": "65536",
            "OCPP_HEARTBEAT_INTERVAL": "60",
            "OCPP_DATA_DIR": "/var/lib/ocppgw",
            "OCPP_LOG_LEVEL": "debug",
            "OCPP_CALL_TIMEOUT": "2.5",
            "OCPP_MANAGEMENT_HOST": "0.0.0.0",
            "OCPP_MANAGEMENT_PORT": "9001",
            "OCPP_ID_TOKENS": "/etc/ocppgw/tokens.json",
        }
    )
    assert settings.gateway.host == "0.0.0.0"
    assert settings.gateway.port == 9000
    assert settings.gateway.protocols == ("ocpp2.0.1", "ocpp1.6")
    assert settings.gateway.default_protocol == "ocpp1.6"
    assert settings.gateway.max_message_size == 65536
    assert settings.processor.heartbeat_interval == 60
    assert settings.data_dir == Path("/var/lib/ocppgw")
    assert settings.log_level == "DEBUG"
    assert settings.processor.call_timeout == 2.5
    assert settings.management_port == 9001
    # Listening on every interface, the CLI still talks to loopback.
    assert settings.management_url == "http://127.0.0.1:9001"
    assert settings.id_tokens_file == Path("/etc/ocppgw/tokens.json")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OCPP_GATEWAY_PORT": "http"}, "OCPP_GATEWAY_PORT: 'http' is not a whole number"),
        ({"OCPP_GATEWAY_PORT": "70000"}, "OCPP_GATEWAY_PORT: 70000 is not a TCP port number"),
        ({"OCPP_PROTOCOLS": "ocpp1.6,ocpp3"}, "OCPP_PROTOCOLS: unknown subprotocol ocpp3"),
        ({"OCPP_PROTOCOLS": " , "}, "OCPP_PROTOCOLS: at least one subprotocol"),
        (
            {"OCPP_PROTOCOLS": "ocpp2.0.1", "OCPP_DEFAULT_PROTOCOL": "ocpp1.6"},
            "OCPP_DEFAULT_PROTOCOL: ocpp1.6 is not one of the enabled protocols",
        ),
        ({"OCPP_HEARTBEAT_INTERVAL": "0"}, "OCPP_HEARTBEAT_INTERVAL: must be a positive"),
        ({"OCPP_MAX_MESSAGE_SIZE": "10"}, "OCPP_MAX_MESSAGE_SIZE: must be at least 1024"),
        ({"OCPP_LOG_LEVEL": "loud"}, "OCPP_LOG_LEVEL: 'LOUD' is not one of"),
        ({"OCPP_CALL_TIMEOUT": "soon"}, "OCPP_CALL_TIMEOUT: 'soon' is not a number"),
        ({"OCPP_CALL_TIMEOUT": "0"}, "OCPP_CALL_TIMEOUT: must be a positive"),
        ({"OCPP_MANAGEMENT_PORT": "-1"}, "OCPP_MANAGEMENT_PORT: -1 is not a TCP port"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        DevSettings.from_env(environ)
    assert str(raised.value).startswith(message)


def test_settings_are_frozen() -> None:
    settings = DevSettings.from_env({})
    with pytest.raises(AttributeError):
        settings.log_level = "DEBUG"  # type: ignore[misc]
