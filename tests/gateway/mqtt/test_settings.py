"""MqttSettings validation and the TLS context for AWS IoT Core (no broker needed)."""

from __future__ import annotations

import os
import ssl
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from gateway.mqtt_settings import MqttSettings, new_gateway_id, ssl_context_from_pem
from ocppj import DEFAULT_PREFIX


def test_the_defaults_are_aws_iot_cores_quotas() -> None:
    settings = MqttSettings("mqtts://abc-ats.iot.eu-west-1.amazonaws.com", "gw-7f3a")
    broker = settings.broker
    assert (broker.host, broker.port, broker.tls) == (
        "abc-ats.iot.eu-west-1.amazonaws.com",
        8883,
        True,
    )
    assert settings.prefix == DEFAULT_PREFIX
    assert (settings.publish_rate, settings.max_inflight) == (100, 100)
    assert (settings.min_connections, settings.max_connections) == (1, 16)
    assert settings.route(2) == "gw-7f3a.2"


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://127.0.0.1:1883", "127.0.0.1", 1883, False),
        ("mqtt://broker", "broker", 1883, False),
        ("mqtts://broker:443", "broker", 443, True),
        ("mqtt://[::1]:1884", "::1", 1884, False),
    ],
)
def test_the_url_gives_host_port_and_tls(url: str, host: str, port: int, tls: bool) -> None:
    broker = MqttSettings(url, "gw").broker
    assert (broker.host, broker.port, broker.tls) == (host, port, tls)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "http://broker"}, "url"),
        ({"url": "mqtt://"}, "url"),
        ({"url": "mqtt://broker:99999"}, "url"),
        ({"url": "mqtt://broker/path"}, "url"),
        ({"url": "mqtt://broker", "ssl_context": ssl.create_default_context()}, "ssl_context"),
        ({"gateway_id": ""}, "gateway_id"),
        ({"gateway_id": "gw.1"}, "gateway_id"),  # '.' joins id and number in a route
        ({"gateway_id": "gw/1"}, "gateway_id"),
        ({"gateway_id": "g" * 65}, "gateway_id"),
        ({"prefix": "a/b"}, "prefix"),
        ({"prefix": "$aws"}, "prefix"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": "p" * 40, "gateway_id": "g" * 64}, "gateway_id"),  # topics over 256 bytes
        ({"min_connections": 0}, "min_connections"),
        ({"min_connections": 3, "max_connections": 2}, "max_connections"),
        ({"max_connections": 1001}, "max_connections"),
        ({"publish_rate": 0}, "publish_rate"),
        ({"publish_rate": 2.5}, "publish_rate"),
        ({"max_inflight": True}, "max_inflight"),
        ({"max_inflight": 70_000}, "max_inflight"),
        ({"buffer_size": 0}, "buffer_size"),
        ({"keepalive": 0}, "keepalive"),
        ({"keepalive": 70_000}, "keepalive"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"reconnect_initial": -1}, "reconnect_initial"),
        ({"reconnect_initial": 5, "reconnect_max": 1}, "reconnect_max"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {"url": "mqtt://broker", "gateway_id": "gw", **overrides}
    with pytest.raises(ValueError, match=f"^{field}: "):
        MqttSettings(**values)


def test_settings_are_frozen_and_keep_the_tls_context_out_of_their_repr() -> None:
    settings = MqttSettings("mqtts://broker", "gw", ssl_context=ssl.create_default_context())
    assert "ssl_context" not in repr(settings)
    with pytest.raises(AttributeError):
        settings.prefix = "other"  # type: ignore[misc]


def test_credentials_in_the_url_reach_the_broker_and_never_the_repr() -> None:
    # The same URL grammar as the worker's (one parser, ``mqttio.BrokerAddress``).
    settings = MqttSettings("mqtts://gateway:s%40cret@broker:8884", "gw")
    assert (settings.broker.username, settings.broker.password) == ("gateway", "s@cret")
    assert "cret" not in repr(settings)
    assert "cret" not in str(settings.broker)
    assert "cret" not in repr(settings.broker)


def test_a_bad_url_is_refused_without_echoing_its_password() -> None:
    with pytest.raises(ValueError, match=r"^url: ") as refused:
        MqttSettings("http://user:hunter2@broker", "gw")
    assert "hunter2" not in str(refused.value)


def test_a_new_gateway_id_is_valid_and_fresh() -> None:
    ids = {new_gateway_id() for _ in range(20)}
    assert len(ids) == 20
    for gateway_id in ids:
        assert MqttSettings("mqtt://broker", gateway_id).route(0) == f"{gateway_id}.0"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def pems(ca: trustme.CA, name: str = "gateway") -> tuple[str, str, str]:
    issued = ca.issue_cert(name)
    return (
        ca.cert_pem.bytes().decode(),
        issued.cert_chain_pems[0].bytes().decode(),
        issued.private_key_pem.bytes().decode(),
    )


def test_the_context_trusts_the_given_ca_only_and_carries_the_client_certificate(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    modes: list[int] = []
    unlink = os.unlink

    def spy(path: Any, *args: Any, **kwargs: Any) -> None:
        modes.append(stat.S_IMODE(os.stat(path).st_mode))
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", spy)
    context = ssl_context_from_pem(*pems(ca))

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [
        c["subject"] for c in _context_of(ca).get_ca_certs()
    ]
    assert modes == [0o600]  # the key was readable by this user only...
    assert list(tmp_path.iterdir()) == []  # ...and is gone


def _context_of(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    return context


def test_material_that_cannot_be_loaded_is_refused_naming_it(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root, certificate, key = pems(ca)
    _, _, other_key = pems(trustme.CA())
    with pytest.raises(ValueError, match=r"^root_ca: "):
        ssl_context_from_pem("not a certificate", certificate, key)
    with pytest.raises(ValueError, match=r"^root_ca: "):
        ssl_context_from_pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", certificate, key
        )
    with pytest.raises(ValueError, match=r"^certificate: "):
        ssl_context_from_pem(root, certificate, other_key)  # not this certificate's key
    with pytest.raises(ValueError, match=r"^private_key: "):
        ssl_context_from_pem(root, certificate, "")
    assert list(tmp_path.iterdir()) == []  # nothing left behind on failure either


def test_an_encrypted_private_key_is_refused_without_asking_for_a_passphrase(
    ca: trustme.CA,
) -> None:
    root, certificate, key = pems(ca)
    encrypted = (
        serialization.load_pem_private_key(key.encode(), None)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
        .decode()
    )
    with pytest.raises(ValueError, match=r"^private_key: encrypted"):
        ssl_context_from_pem(root, certificate, encrypted)
