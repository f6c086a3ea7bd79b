"""TLS material given as PEM text in the environment, as ECS injects secrets.

The gateway's TLS listener (security profiles 2 and 3) reads its chain, key
and client CA from files (``OCPP_TLS_CERTIFICATES``, ``OCPP_TLS_CLIENT_CA``),
because OpenSSL loads a certificate chain only from a file. On ECS Fargate
the material lives in Secrets Manager and arrives as environment variables,
so the deployable writes it once, at start-up, to a private folder (0700,
files 0600) and points the file variables there. The text never reaches the
settings object or a log line.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .settings import SettingsError

__all__ = ["PEM_VARIABLES", "with_pem_files"]

#: PEM variable -> the file it is written to.
PEM_VARIABLES = {
    "OCPP_TLS_CERTIFICATE_CHAIN_PEM": "chain.pem",
    "OCPP_TLS_PRIVATE_KEY_PEM": "key.pem",
    "OCPP_TLS_CLIENT_CA_PEM": "client-ca.pem",
}
_CHAIN, _KEY, _CA = PEM_VARIABLES


def with_pem_files(environ: Mapping[str, str], folder: Path | None = None) -> dict[str, str]:
    """``environ``, with PEM variables turned into files the TLS settings name.

    Unchanged without PEM variables. ``folder`` (tests) replaces the private
    temporary folder, which is otherwise removed when the process exits.
    """
    given = {name: environ.get(name, "").strip() for name in PEM_VARIABLES}
    if not any(given.values()):
        return dict(environ)
    if environ.get("OCPP_TLS_CERTIFICATES", "").strip():
        raise SettingsError(
            f"{_CHAIN}: give the server's TLS material as files (OCPP_TLS_CERTIFICATES) "
            "or as PEM text, not both"
        )
    if given[_CA] and environ.get("OCPP_TLS_CLIENT_CA", "").strip():
        raise SettingsError(f"{_CA}: OCPP_TLS_CLIENT_CA names a file already; give one of them")
    for name in (_CHAIN, _KEY):
        if not given[name]:
            other = _KEY if name == _CHAIN else _CHAIN
            raise SettingsError(f"{name}: required with {other}")
    for name, text in given.items():
        # Never echo the value: it may be a private key.
        if text and "-----BEGIN " not in text:
            raise SettingsError(f"{name}: is not PEM text (no -----BEGIN line)")
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="ocppgw-tls-"))  # mode 0700
        atexit.register(shutil.rmtree, folder, True)
    paths = {name: folder / file for name, file in PEM_VARIABLES.items() if given[name]}
    for name, path in paths.items():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(given[name] + "\n")
    result = dict(environ)
    result["OCPP_TLS_CERTIFICATES"] = f"{paths[_CHAIN]}:{paths[_KEY]}"
    if _CA in paths:
        result["OCPP_TLS_CLIENT_CA"] = str(paths[_CA])
    return result
