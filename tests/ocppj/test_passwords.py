from __future__ import annotations

import base64

import pytest

from ocppj import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_BYTES,
    check_password_length,
    generate_password,
    hash_password,
    is_password_hash,
    parse_basic_auth,
    verify_password,
)
from ocppj.passwords import PASSWORD_ALPHABET

#: The 1.6 whitepaper's raw 20-byte AuthorizationKey: not UTF-8, holds a colon.
RAW_KEY = bytes.fromhex("ff3a00c0") + b":" + bytes(range(0x80, 0x8F))


def basic(raw: bytes, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(raw).decode()}"


# -- hashing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "password", [b"0123456789abcdef", RAW_KEY, b"x" * 40, b"pass:word:with:colons!"]
)
def test_a_hash_verifies_its_password_and_nothing_else(password: bytes) -> None:
    stored = hash_password(password)
    assert verify_password(password, stored)
    assert not verify_password(password[:-1], stored)
    assert not verify_password(password + b"\x00", stored)
    assert not verify_password(b"", stored)


def test_hashes_are_salted_and_have_the_documented_form() -> None:
    first, second = hash_password(RAW_KEY), hash_password(RAW_KEY)
    assert first != second
    scheme, salt, digest = first.split("$")
    assert scheme == "sha256"
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert RAW_KEY.hex() not in first
    assert is_password_hash(first)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "0123456789abcdef0123",  # a plain password stored by mistake
        "sha256$$",
        "sha256$AAAA$AAAA",  # wrong salt and digest sizes
        "md5$" + base64.b64encode(bytes(16)).decode() + "$" + base64.b64encode(bytes(32)).decode(),
        "sha256$not base64!$" + base64.b64encode(bytes(32)).decode(),
        "sha256$"
        + base64.b64encode(bytes(16)).decode()
        + "$"
        + base64.b64encode(bytes(32)).decode()
        + "$extra",
        "sha256$é$é",
    ],
)
def test_a_malformed_stored_value_never_matches_and_never_raises(stored: str) -> None:
    assert not verify_password(b"0123456789abcdef", stored)
    assert not is_password_hash(stored)


@pytest.mark.parametrize("stored", [None, 42, b"sha256$a$b"])
def test_a_stored_value_of_the_wrong_type_never_matches(stored: object) -> None:
    assert not verify_password(b"0123456789abcdef", stored)  # type: ignore[arg-type]


def test_a_password_of_the_wrong_type_never_matches() -> None:
    stored = hash_password(b"0123456789abcdef")
    assert not verify_password("0123456789abcdef", stored)  # type: ignore[arg-type]
    assert verify_password(bytearray(b"0123456789abcdef"), stored)  # type: ignore[arg-type]


# -- generating and checking -------------------------------------------------


def test_generated_passwords_are_strong_printable_and_within_the_ocpp_length() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) == 32
        assert set(password) <= set(PASSWORD_ALPHABET)
        check_password_length(password.encode())
    assert not set("0O1lI") & set(PASSWORD_ALPHABET)
    # Every character of the alphabet turns up: the choice is not biased to a part of it.
    assert set("".join(passwords)) == set(PASSWORD_ALPHABET)


@pytest.mark.parametrize("length", [MIN_PASSWORD_BYTES, 20, MAX_PASSWORD_BYTES])
def test_passwords_of_16_to_40_bytes_pass(length: int) -> None:
    password = b"\xff" * length
    assert check_password_length(password) is password


@pytest.mark.parametrize("length", [0, 15, 41, 100])
def test_passwords_outside_16_to_40_bytes_are_refused(length: int) -> None:
    with pytest.raises(ValueError, match=rf"16 to 40 bytes .*, not {length}$"):
        check_password_length(b"a" * length)


def test_length_counts_bytes_not_characters() -> None:
    with pytest.raises(ValueError, match="not 42"):
        check_password_length(("é" * 21).encode())  # 21 characters, 42 bytes


# -- Basic auth --------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic(b"CP001:0123456789abcdef"), ("CP001", b"0123456789abcdef")),
        (basic(b"CP001:" + RAW_KEY), ("CP001", RAW_KEY)),  # non-UTF-8, colon inside
        (basic(b"CP001:a:b:c"), ("CP001", b"a:b:c")),  # split at the first colon
        (basic(b"CP001:"), ("CP001", b"")),  # empty password: parsed, then fails to verify
        (basic("RDAM 123#é:pw".encode()), ("RDAM 123#é", b"pw")),
        (basic(b"CP001:pw", "basic"), ("CP001", b"pw")),  # the scheme is case-insensitive
        (basic(b"CP001:pw", "BASIC"), ("CP001", b"pw")),
        ("  Basic   " + base64.b64encode(b"CP001:pw").decode() + "  ", ("CP001", b"pw")),
        ("Basic " + base64.b64encode(b"CP001:pw1").decode().rstrip("="), ("CP001", b"pw1")),
    ],
)
def test_basic_credentials_are_read(header: str, expected: tuple[str, bytes]) -> None:
    assert parse_basic_auth(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic",
        "Basic ",
        basic(b"CP001:pw", "Bearer"),
        basic(b"CP001:pw", "Digest"),
        "Basicx " + base64.b64encode(b"CP001:pw").decode(),
        "Basic !!!not-base64!!!",
        "Basic Q1AwMDE6cHc=x",  # garbage after the padding
        "Basic Q1AwMDE6c",  # a length no base64 text has
        "Basic Q1Aw MDE6cHc=",  # a space inside the token
        "Basic Q1AwMDE6cHc=\u00e9",  # non-ASCII
        basic(b"CP001"),  # no colon
        basic(b":password"),  # empty username
        basic(b"\xff\xfe:password"),  # username not UTF-8
        basic(b"bad/id:password"),  # not an identity
        basic(b"x" * 49 + b":password"),  # too long for an identity
        "Basic " + "A" * 1000,  # over-long: refused before decoding
    ],
)
def test_malformed_basic_credentials_give_none(header: str) -> None:
    assert parse_basic_auth(header) is None


def test_a_parsed_password_verifies_against_its_hash() -> None:
    stored = hash_password(RAW_KEY)
    parsed = parse_basic_auth(basic(b"CP001:" + RAW_KEY))
    assert parsed is not None
    assert verify_password(parsed[1], stored)
