"""TLS material as PEM text in the environment (ECS secrets) for the gateway's listener."""

from __future__ import annotations

import asyncio
import ssl
import stat
from pathlib import Path

import pytest

from ocppgw.gateway_service import GatewaySettings, _tls
from ocppgw.settings import SettingsError
from ocppgw.tls_material import with_pem_files

from ..gateway.certs import client_context, make_certificates


def pem_environ(tmp_path: Path) -> tuple[dict[str, str], object]:
    certificates = make_certificates(tmp_path / "certs")
    chain, key = certificates.rsa
    environ = {
        "OCPP_SECURITY_PROFILE": "3",
        "OCPP_TLS_CERTIFICATE_CHAIN_PEM": chain.read_text(),
        "OCPP_TLS_PRIVATE_KEY_PEM": key.read_text(),
        "OCPP_TLS_CLIENT_CA_PEM": certificates.ca.read_text(),
    }
    return environ, certificates


def test_pem_text_becomes_private_files_the_tls_settings_name(tmp_path: Path) -> None:
    environ, _ = pem_environ(tmp_path)
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    result = with_pem_files(environ, folder)
    chain, key = result["OCPP_TLS_CERTIFICATES"].split(":")
    assert Path(chain).read_text().strip() == environ["OCPP_TLS_CERTIFICATE_CHAIN_PEM"].strip()
    assert Path(key).read_text().strip() == environ["OCPP_TLS_PRIVATE_KEY_PEM"].strip()
    assert Path(result["OCPP_TLS_CLIENT_CA"]).read_text().strip() == (
        environ["OCPP_TLS_CLIENT_CA_PEM"].strip()
    )
    for path in (chain, key, result["OCPP_TLS_CLIENT_CA"]):
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600


def test_without_pem_text_the_environment_is_unchanged() -> None:
    environ = {"OCPP_TLS_CERTIFICATES": "/etc/a.pem:/etc/b.pem"}
    assert with_pem_files(environ) == environ


def test_the_default_folder_is_private(tmp_path: Path) -> None:
    environ, _ = pem_environ(tmp_path)
    chain = Path(with_pem_files(environ)["OCPP_TLS_CERTIFICATES"].split(":")[0])
    assert stat.S_IMODE(chain.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"OCPP_TLS_PRIVATE_KEY_PEM": ""}, "OCPP_TLS_PRIVATE_KEY_PEM: required with"),
        ({"OCPP_TLS_CERTIFICATE_CHAIN_PEM": ""}, "OCPP_TLS_CERTIFICATE_CHAIN_PEM: required with"),
        ({"OCPP_TLS_CERTIFICATES": "a:b"}, "OCPP_TLS_CERTIFICATE_CHAIN_PEM: give the server's"),
        ({"OCPP_TLS_CLIENT_CA": "/ca.pem"}, "OCPP_TLS_CLIENT_CA_PEM: OCPP_TLS_CLIENT_CA names"),
        (
            {"OCPP_TLS_PRIVATE_KEY_PEM": "hunter2-secret"},
            "OCPP_TLS_PRIVATE_KEY_PEM: is not PEM text",
        ),
    ],
)
def test_bad_material_names_the_variable_and_never_echoes_it(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    environ, _ = pem_environ(tmp_path)
    environ.update(change)
    with pytest.raises(SettingsError) as caught:
        with_pem_files(environ, tmp_path)
    assert str(caught.value).startswith(message)
    assert "hunter2" not in str(caught.value)
    assert "PRIVATE KEY-----" not in str(caught.value)


async def test_gateway_settings_from_pem_serve_mutual_tls(tmp_path: Path) -> None:
    """A real TLS handshake against the context the gateway builds from PEM variables."""
    environ, certificates = pem_environ(tmp_path)
    settings = GatewaySettings.from_env(environ)
    assert settings.gateway.security_profile == 3
    context = _tls(settings.gateway)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        trusted = client_context(certificates.ca, certificates.client)  # type: ignore[attr-defined]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=trusted, server_hostname="localhost"
        )
        assert await reader.read() == b"ok"
        writer.close()
        anonymous = client_context(certificates.ca)  # type: ignore[attr-defined]
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=anonymous, server_hostname="localhost"
            )
            # With TLS 1.3 the client learns of the refusal only after its handshake.
            answer: bytes | None = await reader.read()
            writer.close()
        except (ssl.SSLError, ConnectionError):
            answer = None
        assert answer != b"ok"  # the server never accepted a charger without a certificate
    finally:
        server.close()
        await server.wait_closed()
