from __future__ import annotations

import asyncio

import pytest

from gateway.lookup_cache import MISSING, LookupCache


class Registry:
    """A slow registry that counts its reads."""

    def __init__(self, known: set[str], fail: bool = False) -> None:
        self.known = known
        self.fail = fail
        self.reads: list[str] = []

    async def find(self, key: str) -> str | None:
        self.reads.append(key)
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("registry down")
        return f"record of {key}" if key in self.known else None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_storm_costs_one_read_per_identity() -> None:
    registry = Registry({"A", "B"})
    cache: LookupCache[str] = LookupCache(registry.find, ttl=60, negative_ttl=60)
    keys = ["A", "B", "X"] * 100
    answers = await asyncio.gather(*(cache.get(key) for key in keys))
    assert answers[:3] == ["record of A", "record of B", None]
    assert sorted(registry.reads) == ["A", "B", "X"]
    assert cache.reads == 3
    # And none for repeats, known or unknown.
    assert await cache.get("A") == "record of A"
    assert await cache.get("X") is None
    assert len(registry.reads) == 3


async def test_answers_expire_each_with_its_own_lifetime() -> None:
    clock = Clock()
    registry = Registry({"A"})
    cache: LookupCache[str] = LookupCache(registry.find, ttl=60, negative_ttl=5, clock=clock)
    await cache.get("A")
    await cache.get("X")
    assert cache.peek("A") == "record of A"
    assert cache.peek("X") is None
    clock.now += 10
    assert cache.peek("X") is MISSING  # negative answers go first
    assert cache.peek("A") == "record of A"
    clock.now += 60
    assert cache.peek("A") is MISSING
    registry.known.add("X")
    assert await cache.get("X") == "record of X"


async def test_a_zero_lifetime_is_not_cached() -> None:
    registry = Registry(set())
    cache: LookupCache[str] = LookupCache(registry.find, ttl=60, negative_ttl=0)
    assert await cache.get("LATE") is None
    assert cache.peek("LATE") is MISSING
    registry.known.add("LATE")
    assert await cache.get("LATE") == "record of LATE"


async def test_a_failed_read_is_not_cached_and_reaches_every_waiter() -> None:
    registry = Registry({"A"}, fail=True)
    cache: LookupCache[str] = LookupCache(registry.find, ttl=60, negative_ttl=60)
    results = await asyncio.gather(*(cache.get("A") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert registry.reads == ["A"]
    registry.fail = False
    assert await cache.get("A") == "record of A"


async def test_the_cache_is_bounded_and_keeps_the_newest() -> None:
    registry = Registry({str(n) for n in range(10)})
    cache: LookupCache[str] = LookupCache(registry.find, ttl=60, negative_ttl=60, max_entries=3)
    for n in range(5):
        await cache.get(str(n))
    assert len(cache) == 3
    assert cache.peek("0") is MISSING
    assert cache.peek("4") == "record of 4"


async def test_invalidate_forgets_an_answer() -> None:
    registry = Registry({"A"})
    cache: LookupCache[str] = LookupCache(registry.find, ttl=60, negative_ttl=60)
    await cache.get("A")
    cache.invalidate("A")
    assert cache.peek("A") is MISSING


def test_missing_is_not_none() -> None:
    assert MISSING is not None
    with pytest.raises(AttributeError):
        MISSING.anything  # type: ignore[attr-defined]  # noqa: B018
