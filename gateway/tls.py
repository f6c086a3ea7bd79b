"""TLS for OCPP security profiles 2 and 3.

Profile 2 is TLS plus Basic auth; profile 3 is mutual TLS, where the charger's
certificate names it (CN = identity, O = operator; OCPP A00.FR.403-405). The
OCPP specifications ask of the CSMS: TLS 1.2 or newer, no TLS compression
(CRIME), and the ECDHE AES-GCM suites with both ECDSA and RSA keys, which
means serving two certificates. OpenSSL keeps one certificate per key type
in a context and picks, per handshake, the one that fits the suites and
signature algorithms the client offers; so an RSA-only charger and an
ECDSA-only charger both connect to the same listener.

TLS 1.0 and 1.1 (which the 1.6 whitepaper tolerates for old chargers) are
refused: they need SHA-1 signatures that OpenSSL 3 disables by default, and
a charger that old should be upgraded or fronted by something else.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = ["TLS12_CIPHERS", "peer_identity", "server_context"]

#: TLS 1.2 suites, strongest first within each key type: the four the OCPP
#: specifications require (ECDHE key exchange, forward secrecy, AEAD). TLS 1.3
#: keeps OpenSSL's defaults, which are all AEAD with forward secrecy.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    )
)


def server_context(
    certificates: Sequence[tuple[Path, Path]],
    *,
    client_ca: Path | None,
    require_client_cert: bool,
) -> ssl.SSLContext:
    """A server context for a charge point listener.

    ``certificates`` are (certificate chain, private key) PEM files, one pair
    per key type (an RSA and an ECDSA pair; a second pair of the same type
    replaces the first). ``require_client_cert`` is profile 3: every client
    must present a certificate that ``client_ca`` signed, or the handshake
    fails. A client CA without requiring certificates is refused rather than
    half-applied, since a listener serves exactly one profile.

    Raises ``ValueError`` for inconsistent arguments, ``OSError`` for
    unreadable files and ``ssl.SSLError`` for bad PEM or a key that does not
    match its certificate.
    """
    if not certificates:
        raise ValueError("certificates: at least one (certificate, key) pair is needed")
    if require_client_cert and client_ca is None:
        raise ValueError("client_ca: requiring client certificates needs the CA that signs them")
    if client_ca is not None and not require_client_cert:
        raise ValueError("client_ca: only used when client certificates are required (profile 3)")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # OP_NO_COMPRESSION: CRIME, and OCPP forbids it. OP_NO_RENEGOTIATION:
    # client-initiated TLS 1.2 renegotiation costs the server a handshake per
    # request and buys a charger nothing. OP_CIPHER_SERVER_PREFERENCE: our
    # order (AES-256 first), not the client's.
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    )
    context.set_ciphers(TLS12_CIPHERS)
    for certificate, key in certificates:
        context.load_cert_chain(certfile=certificate, keyfile=key)
    if client_ca is not None:  # profile 3: checked above to come with require_client_cert
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


class _HasPeerCert(Protocol):
    def getpeercert(self) -> Mapping[str, Any] | None: ...


def peer_identity(
    peer: _HasPeerCert | Mapping[str, Any] | None,
) -> tuple[str | None, str | None]:
    """(CN, O) of a verified peer certificate: the charger's identity and operator.

    ``peer`` is an ``ssl.SSLObject`` (or ``SSLSocket``), or what its
    ``getpeercert()`` returned, which is also a transport's ``"peercert"``
    extra info. That dict holds a certificate only if it was verified (an
    unverified one gives ``{}``), so None or ``{}`` gives (None, None).

    An attribute given more than once with different values is ambiguous and
    read as absent (None): the identity must not depend on which one a
    reader happens to pick.
    """
    certificate = peer if peer is None or isinstance(peer, Mapping) else peer.getpeercert()
    if not isinstance(certificate, Mapping):
        return None, None
    subject = certificate.get("subject", ())
    return _attribute(subject, "commonName"), _attribute(subject, "organizationName")


def _attribute(subject: Iterable[Iterable[tuple[str, str]]], name: str) -> str | None:
    """The one value of ``name`` in a subject as ``getpeercert()`` writes it:
    a sequence of relative distinguished names, each a sequence of pairs."""
    try:
        values = {value for rdn in subject for key, value in rdn if key == name}
    except (TypeError, ValueError):  # not that shape: nothing can be read from it
        return None
    if len(values) != 1:
        return None
    value = values.pop()
    return value if isinstance(value, str) else None
