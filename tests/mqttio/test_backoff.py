"""The one backoff policy of every MQTT client (no broker needed)."""

from __future__ import annotations

import pytest

from mqttio import Backoff


def test_delays_grow_exponentially_up_to_the_ceiling_with_jitter() -> None:
    lowest = [Backoff(1.0, 30.0, rand=lambda: 0.0).delay(n) for n in range(1, 9)]
    highest = [Backoff(1.0, 30.0, rand=lambda: 1.0).delay(n) for n in range(1, 9)]
    assert highest == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert lowest == [h / 2 for h in highest]
    backoff = Backoff(1.0, 30.0)
    assert backoff.delay(10_000) <= 30.0  # no overflow, still capped
    delays = {backoff.delay(3) for _ in range(50)}
    assert len(delays) > 1 and all(2.0 <= d <= 4.0 for d in delays)


@pytest.mark.parametrize("attempt", [0, -3])
def test_a_nonsense_attempt_number_counts_as_the_first(attempt: int) -> None:
    assert Backoff(1.0, 30.0, rand=lambda: 1.0).delay(attempt) == 1.0


def test_immediate_never_waits() -> None:
    assert [Backoff.immediate().delay(n) for n in (1, 5, 50)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"initial": -1}, "initial"),
        ({"initial": float("nan")}, "initial"),
        ({"maximum": float("inf")}, "maximum"),
        ({"initial": 5, "maximum": 1}, "maximum"),
        ({"stable": True}, "stable"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(values: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        Backoff(**values)
