from __future__ import annotations

import pytest

from ocppj import InvalidIdentity, check_identity, identity_from_path


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        (b"/CP001", "CP001"),
        (b"/ocpp/v1/CP001", "CP001"),
        (b"/RDAM%20123", "RDAM 123"),
        (b"/a+b", "a+b"),
        (b"/a%2Bb", "a+b"),
        (b"/CP001?token=x", "CP001"),
        (b"/%C3%A9t%C3%A9", "\u00e9t\u00e9"),
        ("/" + "x" * 48, "x" * 48),
    ],
)
def test_identity_is_the_decoded_last_segment(path: bytes | str, identity: str) -> None:
    assert identity_from_path(path) == identity


@pytest.mark.parametrize(
    "path",
    [b"/", b"", b"/ocpp/", b"/" + b"x" * 49, b"/a%3Ab", b"/a:b", b"/%FF", b"/a%2Fb", b"/a%0Ab"],
)
def test_invalid_identities_are_refused(path: bytes) -> None:
    with pytest.raises(InvalidIdentity):
        identity_from_path(path)


def test_length_counts_decoded_characters() -> None:
    # 48 characters, 144 bytes once percent-encoded.
    assert identity_from_path("/" + "%41" * 48) == "A" * 48


def test_check_identity_explains_the_problem() -> None:
    with pytest.raises(InvalidIdentity, match="longer than 48"):
        check_identity("x" * 49)
    with pytest.raises(InvalidIdentity, match="empty"):
        check_identity("")
