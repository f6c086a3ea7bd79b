from __future__ import annotations

import hashlib
import random
import re

import pytest

from ocppj import MAX_IDENTITY, check_identity
from processor.adapters.thing_names import MAX_THING_NAME, thing_name

#: AWS IoT's thing name rule (CreateThing, UpdateThingShadow).
THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
PLUG = "\U0001f50c"  # four UTF-8 bytes: nine characters once escaped


def read_back(name: str) -> str:
    """Decode a plain (not hashed) thing name: proof that the code is prefix-free."""
    out, i = [], 0
    while i < len(name):
        if name[i] != ":":
            out.append(name[i])
            i += 1
            continue
        lead = int(name[i + 1 : i + 3], 16)
        size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        out.append(bytes.fromhex(name[i + 1 : i + 1 + 2 * size]).decode())
        i += 1 + 2 * size
    return "".join(out)


@pytest.mark.parametrize(
    ("identity", "name"),
    [
        ("CP001", "CP001"),
        ("cp_01-A", "cp_01-A"),
        ("RDAM 123", "RDAM:20123"),
        ("a.b", "a:2eb"),
        ("plus+id", "plus:2bid"),
        ("a#b", "a:23b"),
        ("\u00e9t\u00e9", ":c3a9t:c3a9"),
        (PLUG, ":f09f948c"),
        ("100%", "100:25"),
    ],
)
def test_names_keep_safe_characters_and_escape_the_rest(identity: str, name: str) -> None:
    assert thing_name(identity) == name
    assert read_back(name) == identity


def random_identities(count: int) -> list[str]:
    rng = random.Random(20260101)
    alphabet = "aA0_-:. +#%~!\u00e9\u00df\u20ac\u5145" + PLUG
    found = {"".join(rng.choices(alphabet, k=rng.randint(1, 8))) for _ in range(count)}
    return sorted(cp.replace(":", "") or "x" for cp in found)


def test_names_are_valid_and_injective() -> None:
    identities = sorted(set(random_identities(20_000)))
    names = [thing_name(cp) for cp in identities]
    assert len(set(names)) == len(identities)
    for identity, name in zip(identities, names, strict=True):
        check_identity(identity)
        assert THING_NAME.fullmatch(name), name
        assert read_back(name) == identity


def test_escape_and_literal_hex_do_not_collide() -> None:
    # ' ' + '20' and '  ' read alike if the escape length were not fixed.
    assert len({thing_name(" 20"), thing_name("  "), thing_name(" 2"), thing_name("\u0220")}) == 4


def test_long_names_are_hashed() -> None:
    fits = PLUG * 14  # 126 characters
    assert thing_name(fits) == ":f09f948c" * 14
    too_long = PLUG * 15  # 135 characters
    hashed = thing_name(too_long)
    assert hashed == "h:" + hashlib.sha256(too_long.encode()).hexdigest()
    assert THING_NAME.fullmatch(hashed)
    worst = PLUG * MAX_IDENTITY
    assert len(thing_name(worst)) <= MAX_THING_NAME
    assert thing_name(worst) != hashed


def test_the_longest_plain_identity_is_not_hashed() -> None:
    assert thing_name("x" * MAX_IDENTITY) == "x" * MAX_IDENTITY


def test_an_empty_identity_has_no_name() -> None:
    with pytest.raises(ValueError, match="empty"):
        thing_name("")
