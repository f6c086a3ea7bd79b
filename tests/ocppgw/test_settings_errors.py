"""Every variable of every deployable: an invalid value is refused with an
error that starts with that variable's name (the one the user set, not the
config field it feeds).

The deployables' own tables drive the test, so a variable added to one of
them fails here until it has an invalid value below or an exemption with a
reason.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest
import trustme

from lambdas.handlers import LAMBDA_ENVIRONMENT, LambdaApp, LambdaSettings
from ocppgw.embedded import run_embedded
from ocppgw.gateway_service import GATEWAY_ENVIRONMENT, GatewaySettings
from ocppgw.settings import (
    ENVIRONMENT,
    REGISTRY_ENVIRONMENT,
    DevSettings,
    DynamoDbRegistrySettings,
    SettingsError,
)
from ocppgw.worker import WORKER_ENVIRONMENT, WorkerSettings, run_worker

_CA = trustme.CA()
_ISSUED = _CA.issue_cert("iot.example.com")
#: Valid IoT Core secrets, so that one of them at a time can be made invalid.
IOT_SECRETS = {
    "IOT_ENDPOINT": "iot.example.com",
    "IOT_AMAZON_ROOT_CA": _CA.cert_pem.bytes().decode(),
    "IOT_GATEWAY_CERTIFICATE": _ISSUED.cert_chain_pems[0].bytes().decode(),
    "IOT_GATEWAY_PRIVATE_KEY": _ISSUED.private_key_pem.bytes().decode(),
}
PEM_CHAIN = {"OCPP_TLS_CERTIFICATE_CHAIN_PEM": "-----BEGIN CERTIFICATE-----\nx\n"}
PEM_KEY = {"OCPP_TLS_PRIVATE_KEY_PEM": "-----BEGIN PRIVATE KEY-----\nx\n"}

Invalid = tuple[str, Mapping[str, str]]

#: variable -> (an invalid value, other variables it is invalid with).
INVALID: dict[str, Invalid] = {
    "OCPP_GATEWAY_PORT": ("70000", {}),
    "OCPP_PROTOCOLS": ("ocpp9", {}),
    "OCPP_DEFAULT_PROTOCOL": ("ocpp9", {}),
    "OCPP_MAX_MESSAGE_SIZE": ("10", {}),
    "OCPP_SECURITY_PROFILE": ("4", {}),
    "OCPP_TLS_CERTIFICATES": ("no-colon.pem", {}),
    "OCPP_TLS_CLIENT_CA": ("ca.pem", {}),  # profile 3 only
    "OCPP_REGISTRY_TTL": ("-1", {}),
    "OCPP_REGISTRY_NEGATIVE_TTL": ("-1", {}),
    "OCPP_PING_INTERVAL": ("0", {}),
    "OCPP_PONG_TIMEOUT": ("0", {}),
    "OCPP_RATE_LIMIT": ("0", {}),
    "OCPP_RATE_BURST": ("0", {}),
    "OCPP_FLOOD_STRIKES": ("0", {}),
    "OCPP_COMMAND_QUEUE_TTL": ("0", {}),
    "OCPP_MAX_QUEUED_COMMANDS": ("-1", {}),
    "OCPP_SWEEP_PERIOD": ("0", {}),
    "OCPP_HEARTBEAT_INTERVAL": ("0", {}),
    "OCPP_CALL_TIMEOUT": ("0", {}),
    "OCPP_SHADOW_TRANSACTION_READINGS": ("sometimes", {}),
    "OCPP_ID_TOKENS": ("/nonexistent/id-tokens.json", {}),
    "OCPP_MANAGEMENT_PORT": ("70000", {}),
    "OCPP_LOG_LEVEL": ("LOUD", {}),
    "MQTT_URL": ("http://broker.example", {}),
    "IOT_ENDPOINT": ("iot.example.com", {}),  # without the secrets
    "IOT_PORT": ("70000", IOT_SECRETS),
    "IOT_AMAZON_ROOT_CA": ("garbage", IOT_SECRETS),
    "IOT_GATEWAY_CERTIFICATE": ("garbage", IOT_SECRETS),
    "IOT_GATEWAY_PRIVATE_KEY": ("garbage", IOT_SECRETS),
    "OCPP_TLS_CERTIFICATE_CHAIN_PEM": ("garbage", PEM_KEY),
    "OCPP_TLS_PRIVATE_KEY_PEM": ("garbage", PEM_CHAIN),
    "OCPP_TLS_CLIENT_CA_PEM": ("garbage", {**PEM_CHAIN, **PEM_KEY}),
    "OCPP_TOPIC_PREFIX": ("a/b", {}),
    "OCPP_GATEWAY_ID": ("gw.1", {}),
    "OCPP_GATEWAY_WORKERS": ("0", {}),
    "OCPP_MQTT_MIN_CONNECTIONS": ("0", {}),
    "OCPP_MQTT_MAX_CONNECTIONS": ("0", {}),
    "OCPP_MQTT_PUBLISH_RATE": ("0", {}),
    "OCPP_MQTT_MAX_INFLIGHT": ("0", {}),
    "OCPP_MQTT_BUFFER": ("0", {}),
    "OCPP_MQTT_BATCH_BYTES": ("200000", {}),
    "OCPP_MQTT_BATCH_WINDOW": ("2", {}),
    "OCPP_METRICS_NAMESPACE": ("AWS/Reserved", {}),
    "OCPP_METRICS_INTERVAL": ("0", {}),
    "OCPP_WORKER_GROUP": ("a/b", {}),
    "OCPP_WORKER_SESSION_EXPIRY": ("-1", {}),
    "OCPP_WORKER_BATCH_WINDOW": ("0", {}),
    "AWS_ENDPOINT_URL": ("not a url", {}),
}
#: Where a deployable refuses another value than the one above.
INVALID_IN: dict[str, dict[str, Invalid]] = {
    "registry": {"AWS_REGION": ("", {})},
    "lambda": {
        name: ("", {})
        for name in (
            "AWS_REGION",
            "DYNAMODB_CHARGE_POINT_TABLE",
            "DYNAMODB_TRANSACTION_TABLE",
            "DYNAMODB_PENDING_CALL_TABLE",
            "IOT_ENDPOINT",
        )
    },
}

_ADDRESS = "any host name or address: one that cannot be bound fails at start, from the OS"
_FOLDER = "any folder name"
#: Variables with no invalid value, per deployable, and why.
EXEMPT: dict[str, dict[str, str]] = {
    "dev": {
        "OCPP_GATEWAY_HOST": _ADDRESS,
        "OCPP_MANAGEMENT_HOST": _ADDRESS,
        "OCPP_TLS_ORGANIZATION": "free text: the operator's name in charger certificates",
        "OCPP_DATA_DIR": _FOLDER,
    },
    "gateway": {
        "OCPP_GATEWAY_HOST": _ADDRESS,
        "OCPP_MANAGEMENT_HOST": _ADDRESS,
        "OCPP_TLS_ORGANIZATION": "free text: the operator's name in charger certificates",
        "OCPP_DATA_DIR": _FOLDER,
        "OCPP_ID_TOKENS": "inherited from the embedded table; the gateway never loads it",
        "DYNAMODB_CHARGE_POINT_TABLE": "a table name; DynamoDB answers for it",
        "AWS_REGION": "a region name; boto3 answers for it",
    },
    "worker": {
        "OCPP_MANAGEMENT_HOST": _ADDRESS,
        "OCPP_DATA_DIR": _FOLDER,
        "OCPP_WORKER_ID": "any MQTT client id; empty gives a random one",
    },
    "registry": {"DYNAMODB_CHARGE_POINT_TABLE": "a table name; empty means SQLite"},
    "lambda": {},
}


async def _dev(environ: Mapping[str, str]) -> None:
    async with run_embedded(DevSettings.from_env(environ)):
        pass


async def _gateway(environ: Mapping[str, str]) -> None:
    # As the CLI does: every command reads the embedded settings first.
    DevSettings.from_env(environ)
    GatewaySettings.from_env(environ)


async def _worker(environ: Mapping[str, str]) -> None:
    async with run_worker(WorkerSettings.from_env(environ)):
        pass


async def _registry(environ: Mapping[str, str]) -> None:
    DynamoDbRegistrySettings.from_env(environ)


async def _lambda(environ: Mapping[str, str]) -> None:
    LambdaApp(LambdaSettings.from_env(environ)).close()


LAMBDA_BASE = {
    "AWS_REGION": "eu-west-1",
    "DYNAMODB_CHARGE_POINT_TABLE": "ChargePointTable",
    "DYNAMODB_TRANSACTION_TABLE": "TransactionTable",
    "DYNAMODB_PENDING_CALL_TABLE": "PendingCallTable",
    "IOT_ENDPOINT": "iot.example.com",
}
#: name -> (its variables table, a valid environment, start-up up to serving).
DEPLOYABLES: dict[
    str, tuple[Mapping[str, str], dict[str, str], Callable[[Mapping[str, str]], Awaitable[None]]]
] = {
    "dev": (ENVIRONMENT, {"OCPP_GATEWAY_PORT": "0", "OCPP_MANAGEMENT_PORT": "0"}, _dev),
    "gateway": (GATEWAY_ENVIRONMENT, {}, _gateway),
    "worker": (WORKER_ENVIRONMENT, {"OCPP_MANAGEMENT_PORT": "0"}, _worker),
    "registry": (
        REGISTRY_ENVIRONMENT,
        {"DYNAMODB_CHARGE_POINT_TABLE": "ChargePointTable", "AWS_REGION": "eu-west-1"},
        _registry,
    ),
    "lambda": (LAMBDA_ENVIRONMENT, LAMBDA_BASE, _lambda),
}

CASES = [
    (deployable, variable)
    for deployable, (table, _, _) in DEPLOYABLES.items()
    for variable in table
    if variable not in EXEMPT[deployable]
]


@pytest.mark.parametrize("deployable", DEPLOYABLES)
def test_every_variable_has_an_invalid_value_or_a_reason(deployable: str) -> None:
    table = DEPLOYABLES[deployable][0]
    covered = set(INVALID) | set(INVALID_IN.get(deployable, {})) | set(EXEMPT[deployable])
    assert set(table) <= covered, f"give these an invalid value: {set(table) - covered}"
    assert set(EXEMPT[deployable]) <= set(table)


@pytest.mark.parametrize(("deployable", "variable"), CASES)
async def test_an_invalid_value_is_refused_naming_its_variable(
    deployable: str, variable: str, tmp_path: Path
) -> None:
    _, base, start = DEPLOYABLES[deployable]
    value, context = INVALID_IN.get(deployable, {}).get(variable) or INVALID[variable]
    environ = {"OCPP_DATA_DIR": str(tmp_path), **base, **context, variable: value}
    with pytest.raises(SettingsError) as refused:
        await start(environ)
    assert str(refused.value).startswith(f"{variable}: "), str(refused.value)


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("dev", "OCPP_FLOOD_STRIKES", "0"),
        ("dev", "OCPP_SWEEP_PERIOD", "0"),
        ("worker", "OCPP_WORKER_SESSION_EXPIRY", "-1"),
        ("gateway", "OCPP_MQTT_BUFFER", "0"),
    ],
)
def test_the_cli_exits_naming_the_variable(
    command: str, variable: str, value: str, tmp_path: Path
) -> None:
    environ = {"PATH": "/usr/bin:/bin", "OCPP_DATA_DIR": str(tmp_path), variable: value}
    finished = subprocess.run(
        [sys.executable, "-m", "ocppgw", command],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2, finished.stderr
    assert f"ocppgw: error: {variable}: " in finished.stderr, finished.stderr
