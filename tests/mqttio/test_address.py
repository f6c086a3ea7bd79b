"""The one parser of broker URLs (no broker needed)."""

from __future__ import annotations

import pytest

from mqttio import BrokerAddress


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1", BrokerAddress("127.0.0.1", 1883, False)),
        ("tcp://broker:1884", BrokerAddress("broker", 1884, False)),
        ("mqtts://broker", BrokerAddress("broker", 8883, True)),
        ("ssl://broker:443", BrokerAddress("broker", 443, True)),
        ("MQTTS://broker/", BrokerAddress("broker", 8883, True)),
        ("mqtt://[::1]:1884", BrokerAddress("::1", 1884, False)),
        ("mqtt://user:s%40cret@broker", BrokerAddress("broker", 1883, False, "user", "s@cret")),
        ("mqtt://user@broker", BrokerAddress("broker", 1883, False, "user", None)),
    ],
)
def test_a_url_gives_host_port_tls_and_credentials(url: str, expected: BrokerAddress) -> None:
    assert BrokerAddress.parse(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://broker", "scheme"),
        ("broker:1883", "scheme"),
        ("mqtt://", "no host"),
        ("mqtt://broker:99999", "port"),
        ("mqtt://broker/path", "no path"),
        ("mqtt://broker?x=1", "no path"),
    ],
)
def test_a_bad_url_says_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        BrokerAddress.parse(url)


def test_the_password_never_shows() -> None:
    address = BrokerAddress.parse("mqtts://worker:hunter2@broker:8884")
    assert str(address) == "mqtts://broker:8884"
    assert "hunter2" not in repr(address)
    with pytest.raises(ValueError) as refused:
        BrokerAddress.parse("mqtt://worker:hunter2@broker:port")
    assert "hunter2" not in str(refused.value)


def test_an_ipv6_host_is_shown_in_brackets() -> None:
    assert str(BrokerAddress.parse("mqtt://[::1]:1884")) == "mqtt://[::1]:1884"
