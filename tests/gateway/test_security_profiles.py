"""Security profiles 1-3 end to end: real WebSocket clients, real TLS, the
embedded system with hashed passwords in its registry."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from ocppgw import EmbeddedSystem, run_embedded
from ocppj import hash_password

from ..conftest import _EPOCH, dev_settings
from .certs import Certificates, client_context, make_certificates

PASSWORD = b"correct-horse-battery-staple-01"
RAW_KEY = bytes(range(200, 220))  # a 20-byte AuthorizationKey, not UTF-8


def basic(username: str, password: bytes) -> dict[str, str]:
    token = base64.b64encode(username.encode() + b":" + password).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "certs")


@pytest.fixture
async def profile(
    request: pytest.FixtureRequest, tmp_path: Path, certificates: Certificates
) -> AsyncIterator[EmbeddedSystem]:
    number: int = request.param
    environ = {"OCPP_SECURITY_PROFILE": str(number)}
    if number >= 2:
        environ["OCPP_TLS_CERTIFICATES"] = ",".join(
            f"{cert}:{key}" for cert, key in certificates.server
        )
    if number == 3:
        environ["OCPP_TLS_CLIENT_CA"] = str(certificates.ca)
        environ["OCPP_TLS_ORGANIZATION"] = certificates.operator
    async with run_embedded(dev_settings(tmp_path / "state", **environ)) as system:
        system.registry.add(
            ["CP001", "RAW", "NOPASS"],
            _EPOCH,
            passwords={"CP001": hash_password(PASSWORD), "RAW": hash_password(RAW_KEY)},
        )
        yield system


async def heartbeat(url: str, **options: Any) -> list[Any]:
    async with websockets.connect(url, subprotocols=["ocpp1.6"], **options) as ws:  # type: ignore[list-item]
        await ws.send(orjson.dumps([2, "1", "Heartbeat", {}]).decode())
        answer: list[Any] = orjson.loads(await ws.recv())
        return answer


async def refused(url: str, **options: Any) -> tuple[int, str, dict[str, str]]:
    with pytest.raises(InvalidStatus) as caught:
        await heartbeat(url, **options)
    response = caught.value.response
    headers = {name.lower(): value for name, value in response.headers.raw_items()}
    return response.status_code, orjson.loads(response.body)["error"], headers


# -- profile 1 ---------------------------------------------------------------------


@pytest.mark.parametrize("profile", [1], indirect=True)
async def test_profile_1_admits_the_right_password(profile: EmbeddedSystem) -> None:
    url = f"ws://127.0.0.1:{profile.port}/CP001"
    assert (await heartbeat(url, additional_headers=basic("CP001", PASSWORD)))[0] == 3


@pytest.mark.parametrize("profile", [1], indirect=True)
async def test_profile_1_takes_a_password_that_is_not_utf8(profile: EmbeddedSystem) -> None:
    url = f"ws://127.0.0.1:{profile.port}/RAW"
    assert (await heartbeat(url, additional_headers=basic("RAW", RAW_KEY)))[0] == 3


@pytest.mark.parametrize("profile", [1], indirect=True)
@pytest.mark.parametrize(
    ("path", "headers", "reason"),
    [
        ("/CP001", {}, "missing or malformed Basic credentials"),
        ("/CP001", {"Authorization": "Bearer abc"}, "missing or malformed Basic credentials"),
        ("/CP001", basic("CP001", b"wrong-password-123456"), "wrong password"),
        ("/CP001", basic("RAW", PASSWORD), "the username is not the charge point's identity"),
        ("/NOPASS", basic("NOPASS", PASSWORD), "no password is set for this charge point"),
    ],
)
async def test_profile_1_refuses_with_401_before_the_upgrade(
    profile: EmbeddedSystem, path: str, headers: dict[str, str], reason: str
) -> None:
    status, error, response_headers = await refused(
        f"ws://127.0.0.1:{profile.port}{path}", additional_headers=headers
    )
    assert (status, error) == (401, reason)
    assert response_headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("profile", [1], indirect=True)
async def test_an_unknown_identity_is_404_even_with_credentials(profile: EmbeddedSystem) -> None:
    status, error, _ = await refused(
        f"ws://127.0.0.1:{profile.port}/NOBODY", additional_headers=basic("NOBODY", PASSWORD)
    )
    assert (status, error) == (404, "unknown charge point")


# -- profile 2 ---------------------------------------------------------------------


@pytest.mark.parametrize("profile", [2], indirect=True)
@pytest.mark.parametrize("key_type", ["RSA", "ECDSA"])
async def test_profile_2_serves_rsa_and_ecdsa_clients(
    profile: EmbeddedSystem, certificates: Certificates, key_type: str
) -> None:
    context = client_context(certificates.ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(f"ECDHE-{key_type}-AES128-GCM-SHA256")
    url = f"wss://localhost:{profile.port}/CP001"
    answer = await heartbeat(url, ssl=context, additional_headers=basic("CP001", PASSWORD))
    assert answer[0] == 3


@pytest.mark.parametrize("profile", [2], indirect=True)
async def test_profile_2_still_needs_the_password(
    profile: EmbeddedSystem, certificates: Certificates
) -> None:
    status, error, _ = await refused(
        f"wss://localhost:{profile.port}/CP001", ssl=client_context(certificates.ca)
    )
    assert (status, error) == (401, "missing or malformed Basic credentials")


@pytest.mark.parametrize("profile", [2], indirect=True)
async def test_profile_2_refuses_plain_websockets(profile: EmbeddedSystem) -> None:
    with pytest.raises((OSError, websockets.exceptions.InvalidMessage, EOFError)):
        await heartbeat(
            f"ws://127.0.0.1:{profile.port}/CP001",
            additional_headers=basic("CP001", PASSWORD),
            open_timeout=5,
        )


# -- profile 3 ---------------------------------------------------------------------


@pytest.mark.parametrize("profile", [3], indirect=True)
async def test_profile_3_admits_the_chargers_own_certificate(
    profile: EmbeddedSystem, certificates: Certificates
) -> None:
    context = client_context(certificates.ca, certificates.client)
    assert (await heartbeat(f"wss://localhost:{profile.port}/CP001", ssl=context))[0] == 3


@pytest.mark.parametrize("profile", [3], indirect=True)
async def test_profile_3_refuses_another_chargers_certificate(
    profile: EmbeddedSystem, certificates: Certificates
) -> None:
    other = certificates.issue_client("RAW")
    context = client_context(certificates.ca, other)
    status, error, _ = await refused(f"wss://localhost:{profile.port}/CP001", ssl=context)
    assert (status, error) == (401, "the client certificate is not this charge point's")
    # The same certificate is fine for its own identity.
    assert (await heartbeat(f"wss://localhost:{profile.port}/RAW", ssl=context))[0] == 3


@pytest.mark.parametrize("profile", [3], indirect=True)
async def test_profile_3_checks_the_operator(
    profile: EmbeddedSystem, certificates: Certificates
) -> None:
    stranger = certificates.issue_client("CP001", operator="Another Operator")
    context = client_context(certificates.ca, stranger)
    status, error, _ = await refused(f"wss://localhost:{profile.port}/CP001", ssl=context)
    assert (status, error) == (401, "the client certificate is not the operator's")


@pytest.mark.parametrize("profile", [3], indirect=True)
@pytest.mark.parametrize("which", ["none", "foreign"])
async def test_profile_3_refuses_no_or_an_untrusted_certificate(
    profile: EmbeddedSystem, certificates: Certificates, which: str
) -> None:
    certificate = None if which == "none" else certificates.foreign_client
    context = client_context(certificates.ca, certificate)
    with pytest.raises((OSError, ssl.SSLError, EOFError, websockets.exceptions.InvalidMessage)):
        await heartbeat(f"wss://localhost:{profile.port}/CP001", ssl=context, open_timeout=5)


# -- metrics of refusals -------------------------------------------------------------


@pytest.mark.parametrize("profile", [1], indirect=True)
async def test_refusals_are_counted_by_reason(profile: EmbeddedSystem) -> None:
    url = f"ws://127.0.0.1:{profile.port}/CP001"
    await refused(url, additional_headers=basic("CP001", b"wrong-password-123456"))
    await refused(url, additional_headers=basic("CP001", b"wrong-password-123456"))
    await heartbeat(url, additional_headers=basic("CP001", PASSWORD))
    metrics = profile.gateway.render_metrics().decode()
    assert 'ocppgw_handshake_rejections_total{reason="wrong password"} 2' in metrics
    assert "ocppgw_handshakes_total 1" in metrics
    assert 'ocppgw_connections{protocol="ocpp1.6"}' in metrics
