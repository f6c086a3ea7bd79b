from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from infra.amazon_root_ca import amazon_root_ca_1


def test_amazon_root_ca_1_comes_from_the_ca_bundle() -> None:
    pem = amazon_root_ca_1()
    certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Amazon Root CA 1"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Amazon"
    assert certificate.subject == certificate.issuer  # a root
    assert pem.count("BEGIN CERTIFICATE") == 1


def test_a_bundle_without_it_is_an_error_naming_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "cacert.pem"
    bundle.write_text(
        '# Label: "Some Other CA"\n-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n'
    )
    with pytest.raises(LookupError, match=r"cacert\.pem"):
        amazon_root_ca_1(bundle)
