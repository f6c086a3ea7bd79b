"""What a Basic-auth check costs the gateway per handshake (security profiles 1 and 2).

Opt-in, like every benchmark here (pyproject's addopts carry
``--benchmark-skip``)::

    .venv/bin/pytest tests/bench/test_bench_passwords.py --benchmark-only

A fast salted hash (HMAC-SHA256) was chosen over bcrypt or scrypt because
the passwords are random keys; these figures show what that buys: a few
microseconds per check, so a fleet reconnecting at once after a restart
costs the gateway nothing noticeable, where a slow KDF tuned to ~100 ms
would take minutes of CPU for 10,000 chargers. Each benchmark also checks
its answer, so a fast wrong one fails; ``-s`` prints microseconds per call
(also in ``--benchmark-json``'s ``extra_info``).
"""

from __future__ import annotations

import base64
from typing import Any

from ocppj import generate_password, hash_password, parse_basic_auth, verify_password

PASSWORD = generate_password().encode()
STORED = hash_password(PASSWORD)
HEADER = "Basic " + base64.b64encode(b"CP001:" + PASSWORD).decode()


def test_verify_password(benchmark: Any) -> None:
    assert benchmark(verify_password, PASSWORD, STORED) is True
    _record(benchmark)


def test_verify_wrong_password(benchmark: Any) -> None:
    wrong = generate_password().encode()
    assert benchmark(verify_password, wrong, STORED) is False
    _record(benchmark)


def test_parse_basic_auth(benchmark: Any) -> None:
    assert benchmark(parse_basic_auth, HEADER) == ("CP001", PASSWORD)
    _record(benchmark)


def test_parse_and_verify(benchmark: Any) -> None:
    """The whole check of an upgrade request's Authorization header."""

    def check() -> bool:
        parsed = parse_basic_auth(HEADER)
        return parsed is not None and verify_password(parsed[1], STORED)

    assert benchmark(check) is True
    _record(benchmark)


def test_hash_password(benchmark: Any) -> None:
    stored = benchmark(hash_password, PASSWORD)
    assert verify_password(PASSWORD, stored)
    _record(benchmark)


def _record(benchmark: Any) -> None:
    """Store (and print) the median call time in microseconds."""
    if benchmark.stats is None:  # --benchmark-disable: run once, untimed
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info["us_per_call"] = round(median * 1e6, 3)
    print(f"\n{benchmark.name}: {median * 1e6:.2f} us per call")
