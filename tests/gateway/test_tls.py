"""The listener's TLS context, with real handshakes over loopback.

A plain TLS echo server (``asyncio.start_server`` with ``server_context``)
stands in for the WebSocket server: it answers one line with what it saw of
the client (``peer_identity`` of its certificate) and records every client
whose handshake it completed. Clients are ``ssl`` contexts restricted the
way old or small chargers are (one key type, one TLS version).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.tls import TLS12_CIPHERS, peer_identity, server_context

from .certs import Certificates, client_context, make_certificates


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@dataclass
class EchoServer:
    port: int
    #: (CN, O) of every client whose handshake completed on the server side.
    peers: list[tuple[str | None, str | None]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve(context: ssl.SSLContext) -> AsyncIterator[EchoServer]:
    echo = EchoServer(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        common_name, organization = peer_identity(writer.get_extra_info("ssl_object"))
        echo.peers.append((common_name, organization))
        try:
            await reader.readline()
            writer.write(orjson.dumps({"cn": common_name, "o": organization}) + b"\n")
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    echo.port = server.sockets[0].getsockname()[1]
    try:
        yield echo
    finally:
        server.close()
        await server.wait_closed()


@dataclass(frozen=True)
class Exchange:
    reply: dict[str, Any]
    version: str | None
    cipher: str
    compression: str | None
    server_key: object


async def exchange(port: int, context: ssl.SSLContext) -> Exchange:
    """Handshake, send a line, read the server's answer line."""
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
        try:
            writer.write(b"hello\n")
            line = await reader.readline()
            if not line:
                raise ConnectionResetError("the server closed without answering")
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True)
            return Exchange(
                reply=orjson.loads(line),
                version=ssl_object.version(),
                cipher=ssl_object.cipher()[0],
                compression=ssl_object.compression(),
                server_key=x509.load_der_x509_certificate(der).public_key(),
            )
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


#: What a refused client sees over a socket: an alert or a reset during the
#: handshake (TLS 1.2), or, in TLS 1.3 where the client finishes first, on its
#: first read. uvloop's server side closes without always flushing its alert,
#: so the reason itself is checked by ``server_refusal`` below.
REFUSED = (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)


def server_refusal(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLError:
    """Run a handshake in memory and return the error the *server* side raised.

    No sockets: the two ``SSLObject``s exchange bytes through memory BIOs, so
    the server's own reason (``UNSUPPORTED_PROTOCOL``, ``NO_SHARED_CIPHER``,
    ``PEER_DID_NOT_RETURN_A_CERTIFICATE``...) is visible. Fails the test if
    the server completes its handshake.
    """
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, to_server, server_hostname="localhost")
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    client_done = False
    for _ in range(10):
        if not client_done:
            with contextlib.suppress(ssl.SSLWantReadError):
                client_side.do_handshake()
                client_done = True
        try:
            server_side.do_handshake()
        except ssl.SSLWantReadError:
            continue
        except ssl.SSLError as exc:
            return exc
        pytest.fail("the server completed the handshake")
    pytest.fail("the handshake did not finish")


def tls12_client(certs: Certificates, ciphers: str) -> ssl.SSLContext:
    context = client_context(certs.ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    return context


# -- profile 2: server certificates ------------------------------------------


@pytest.mark.parametrize(
    ("cipher", "key_type"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256", rsa.RSAPublicKey),
        ("ECDHE-RSA-AES256-GCM-SHA384", rsa.RSAPublicKey),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", ec.EllipticCurvePublicKey),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", ec.EllipticCurvePublicKey),
    ],
)
async def test_rsa_only_and_ecdsa_only_clients_both_get_a_certificate_they_can_use(
    certs: Certificates, cipher: str, key_type: type
) -> None:
    context = server_context(certs.server, client_ca=None, require_client_cert=False)
    async with serve(context) as server:
        result = await exchange(server.port, tls12_client(certs, cipher))
    assert (result.version, result.cipher) == ("TLSv1.2", cipher)
    assert isinstance(result.server_key, key_type)
    assert result.compression is None
    assert result.reply == {"cn": None, "o": None}


@pytest.mark.parametrize("first", ["rsa", "ecdsa"])
async def test_the_order_of_the_pairs_does_not_matter(certs: Certificates, first: str) -> None:
    pairs = certs.server if first == "rsa" else certs.server[::-1]
    context = server_context(pairs, client_ca=None, require_client_cert=False)
    async with serve(context) as server:
        for cipher in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"):
            assert (await exchange(server.port, tls12_client(certs, cipher))).cipher == cipher


async def test_a_default_client_gets_tls_1_3(certs: Certificates) -> None:
    context = server_context(certs.server, client_ca=None, require_client_cert=False)
    async with serve(context) as server:
        result = await exchange(server.port, client_context(certs.ca))
    assert result.version == "TLSv1.3"
    assert result.compression is None


async def test_one_certificate_serves_only_its_own_key_type(certs: Certificates) -> None:
    context = server_context([certs.ecdsa], client_ca=None, require_client_cert=False)
    async with serve(context) as server:
        await exchange(server.port, tls12_client(certs, "ECDHE-ECDSA-AES128-GCM-SHA256"))
        with pytest.raises(REFUSED):
            await exchange(server.port, tls12_client(certs, "ECDHE-RSA-AES128-GCM-SHA256"))
        assert len(server.peers) == 1
    refusal = server_refusal(context, tls12_client(certs, "ECDHE-RSA-AES128-GCM-SHA256"))
    assert refusal.reason == "NO_SHARED_CIPHER"


@pytest.mark.parametrize(
    "cipher",
    [
        "ECDHE-RSA-AES128-SHA256",  # CBC, not AEAD
        "AES128-GCM-SHA256",  # RSA key exchange: no forward secrecy
        "ECDHE-RSA-CHACHA20-POLY1305",  # not one of OCPP's suites
    ],
)
async def test_tls12_suites_other_than_ecdhe_aes_gcm_are_refused(
    certs: Certificates, cipher: str
) -> None:
    context = server_context(certs.server, client_ca=None, require_client_cert=False)
    async with serve(context) as server:
        with pytest.raises(REFUSED):
            await exchange(server.port, tls12_client(certs, cipher))
        assert server.peers == []
    assert server_refusal(context, tls12_client(certs, cipher)).reason == "NO_SHARED_CIPHER"


def tls11_client(certs: Certificates) -> ssl.SSLContext:
    """A client that speaks TLS 1.1 at most (OpenSSL 3 needs security level 0 for it)."""
    context = client_context(certs.ca)
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):
        context.minimum_version = ssl.TLSVersion.TLSv1_1
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
    return context


async def test_tls_1_1_is_refused(certs: Certificates) -> None:
    # Control: the client really can speak TLS 1.1, to a server that allows it.
    permissive = server_context(certs.server, client_ca=None, require_client_cert=False)
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):
        permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    permissive.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
    async with serve(permissive) as server:
        assert (await exchange(server.port, tls11_client(certs))).version == "TLSv1.1"

    context = server_context(certs.server, client_ca=None, require_client_cert=False)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    async with serve(context) as server:
        with pytest.raises(REFUSED):
            await exchange(server.port, tls11_client(certs))
        assert server.peers == []
    assert server_refusal(context, tls11_client(certs)).reason == "UNSUPPORTED_PROTOCOL"


def test_compression_and_renegotiation_are_off(certs: Certificates) -> None:
    # Checked on the context: OpenSSL 3 builds rarely include compression at
    # all, so a handshake alone could not show the option at work (the
    # handshake tests check that none was negotiated).
    context = server_context(certs.server, client_ca=None, require_client_cert=False)
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE


# -- profile 3: client certificates ------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_profile_3_reads_the_charger_identity_from_its_certificate(
    certs: Certificates, version: ssl.TLSVersion
) -> None:
    context = server_context(certs.server, client_ca=certs.ca, require_client_cert=True)
    client = client_context(certs.ca, certs.client)
    client.maximum_version = version
    async with serve(context) as server:
        result = await exchange(server.port, client)
    assert result.reply == {"cn": "CP001", "o": "ACME Operator"}
    assert server.peers == [("CP001", "ACME Operator")]


async def test_profile_3_accepts_rsa_client_keys_and_any_printable_identity(
    certs: Certificates,
) -> None:
    context = server_context(certs.server, client_ca=certs.ca, require_client_cert=True)
    client = client_context(certs.ca, certs.issue_client("RDAM 123+#", "Ópérateur", rsa=True))
    async with serve(context) as server:
        result = await exchange(server.port, client)
    assert result.reply == {"cn": "RDAM 123+#", "o": "Ópérateur"}


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("which", ["none", "foreign"])
async def test_profile_3_refuses_clients_without_a_trusted_certificate(
    certs: Certificates, version: ssl.TLSVersion, which: str
) -> None:
    context = server_context(certs.server, client_ca=certs.ca, require_client_cert=True)
    client = client_context(certs.ca, None if which == "none" else certs.foreign_client)
    client.maximum_version = version
    async with serve(context) as server:
        with pytest.raises(REFUSED):
            await exchange(server.port, client)
        # A trusted charger still gets in afterwards.
        good = client_context(certs.ca, certs.client)
        assert (await exchange(server.port, good)).reply["cn"] == "CP001"
        assert server.peers == [("CP001", "ACME Operator")]
    expected = {
        "none": "PEER_DID_NOT_RETURN_A_CERTIFICATE",
        "foreign": "CERTIFICATE_VERIFY_FAILED",
    }[which]
    assert server_refusal(context, client).reason == expected


async def test_profile_2_asks_for_no_client_certificate(certs: Certificates) -> None:
    context = server_context(certs.server, client_ca=None, require_client_cert=False)
    assert context.verify_mode == ssl.CERT_NONE
    async with serve(context) as server:
        # A charger configured with a certificate does not send it unasked.
        result = await exchange(server.port, client_context(certs.ca, certs.client))
    assert result.reply == {"cn": None, "o": None}


# -- arguments ----------------------------------------------------------------


def test_inconsistent_arguments_are_refused(certs: Certificates) -> None:
    with pytest.raises(ValueError, match="at least one"):
        server_context([], client_ca=None, require_client_cert=False)
    with pytest.raises(ValueError, match="client_ca: requiring"):
        server_context(certs.server, client_ca=None, require_client_cert=True)
    with pytest.raises(ValueError, match="client_ca: only used"):
        server_context(certs.server, client_ca=certs.ca, require_client_cert=False)


def test_bad_files_raise_os_or_ssl_errors(certs: Certificates, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        server_context(
            [(tmp_path / "nope.pem", certs.rsa[1])], client_ca=None, require_client_cert=False
        )
    with pytest.raises(ssl.SSLError):  # the ECDSA key does not match the RSA certificate
        server_context([(certs.rsa[0], certs.ecdsa[1])], client_ca=None, require_client_cert=False)
    with pytest.raises(FileNotFoundError):
        server_context(certs.server, client_ca=tmp_path / "nope.pem", require_client_cert=True)


def test_the_tls12_suites_are_the_ocpp_ones() -> None:
    assert set(TLS12_CIPHERS.split(":")) == {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
    }


# -- peer_identity -----------------------------------------------------------


def _peercert(*subject: tuple[str, str]) -> dict[str, Any]:
    """A ``getpeercert()`` dict: one relative distinguished name per attribute."""
    return {"subject": tuple(((name, value),) for name, value in subject), "version": 3}


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        (
            _peercert(("countryName", "NL"), ("organizationName", "ACME"), ("commonName", "CP1")),
            ("CP1", "ACME"),
        ),
        (_peercert(("commonName", "CP1")), ("CP1", None)),
        (_peercert(("commonName", "CP1"), ("commonName", "CP1")), ("CP1", None)),
        (_peercert(("commonName", "CP1"), ("commonName", "CP2")), (None, None)),
        (
            {"subject": ((("commonName", "CP1"), ("organizationName", "ACME")),)},
            ("CP1", "ACME"),
        ),  # a multi-valued RDN
        ({}, (None, None)),  # what getpeercert() gives for an unverified certificate
        (None, (None, None)),  # no certificate at all
        ({"subject": "not a subject"}, (None, None)),
    ],
)
def test_peer_identity_reads_cn_and_o(
    peer: dict[str, Any] | None, expected: tuple[str | None, str | None]
) -> None:
    assert peer_identity(peer) == expected


def test_peer_identity_takes_an_ssl_object() -> None:
    class Fake:
        def getpeercert(self) -> dict[str, Any]:
            return _peercert(("commonName", "CP9"), ("organizationName", "Op"))

    assert peer_identity(Fake()) == ("CP9", "Op")
