"""Amazon Root CA 1, the CA of AWS IoT Core's ATS endpoints, as PEM text.

The gateway verifies IoT Core with it (secret ``IOT_AMAZON_ROOT_CA``). It is
taken from certifi's copy of the Mozilla CA bundle rather than downloaded at
deploy time, so ``pulumi up`` needs no network beyond AWS itself.
"""

from __future__ import annotations

from pathlib import Path

import certifi

__all__ = ["AMAZON_ROOT_CA_1", "amazon_root_ca_1"]

AMAZON_ROOT_CA_1 = "Amazon Root CA 1"


def amazon_root_ca_1(bundle: Path | None = None) -> str:
    """The PEM block labelled ``Amazon Root CA 1`` in ``bundle`` (certifi's by default)."""
    text = (bundle or Path(certifi.where())).read_text(encoding="ascii")
    label = f'# Label: "{AMAZON_ROOT_CA_1}"'
    try:
        after = text[text.index(label) :]
        start = after.index("-----BEGIN CERTIFICATE-----")
        end = after.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    except ValueError:
        raise LookupError(f"{AMAZON_ROOT_CA_1!r} is not in the CA bundle {bundle}") from None
    return after[start:end] + "\n"
