"""TokenBucket and FloodPolicy, driven by explicit clock values.

Times and rates are powers of two where arithmetic meets a boundary, so the
floats are exact and a boundary test means what it says.
"""

from __future__ import annotations

import sys

import pytest

from gateway.ratelimit import (
    ALLOW,
    DISCONNECT,
    FloodPolicy,
    FloodState,
    Slow,
    TokenBucket,
    Verdict,
)

# -- TokenBucket ---------------------------------------------------------------


def test_bucket_starts_full_and_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=2, burst=5, now=100.0)

    assert [bucket.take(100.0) for _ in range(6)] == [True] * 5 + [False]


def test_bucket_after_the_burst_allows_the_steady_rate() -> None:
    bucket = TokenBucket(rate=4, burst=3, now=0.0)
    for _ in range(3):
        assert bucket.take(0.0)

    # One token per 0.25 s: at each step one take succeeds, a second does not.
    for step in range(1, 41):
        now = step * 0.25
        assert bucket.take(now), now
        assert not bucket.take(now), now


def test_bucket_refill_is_capped_at_burst() -> None:
    bucket = TokenBucket(rate=10, burst=4, now=0.0)
    for _ in range(4):
        bucket.take(0.0)

    later = 3600.0
    assert [bucket.take(later) for _ in range(5)] == [True] * 4 + [False]


def test_bucket_wait_time_says_when_take_succeeds() -> None:
    bucket = TokenBucket(rate=4, burst=1, now=10.0)
    assert bucket.wait_time(10.0) == 0.0
    assert bucket.take(10.0)

    assert bucket.wait_time(10.0) == 0.25
    assert bucket.wait_time(10.125) == 0.125
    assert bucket.wait_time(10.25) == 0.0
    # wait_time does not change the bucket: it only looks.
    assert not bucket.take(10.125)
    assert bucket.take(10.25)


def test_bucket_ignores_a_clock_that_goes_back() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=50.0)
    assert bucket.take(50.0)

    assert not bucket.take(40.0)
    assert bucket.stamp == 50.0
    assert bucket.wait_time(40.0) == 1.0
    assert bucket.take(51.0)


@pytest.mark.parametrize(
    ("rate", "burst", "field"), [(0, 1, "rate"), (-1, 1, "rate"), (1, 0.5, "burst")]
)
def test_bucket_rejects_nonsense(rate: float, burst: float, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        TokenBucket(rate, burst, now=0.0)


# -- FloodPolicy -----------------------------------------------------------------


def _flood(policy: FloodPolicy, state: FloodState, now: float, count: int) -> list[Verdict]:
    """``count`` messages arriving at the same instant (a peer that pipelines)."""
    return [policy.judge(state, now) for _ in range(count)]


def test_flood_burst_is_allowed_then_the_next_message_is_slowed() -> None:
    policy = FloodPolicy(rate=4, burst=3, strikes=5, strike_window=60)
    state = policy.new_state(0.0)

    verdicts = _flood(policy, state, 0.0, 4)

    assert verdicts[:3] == [ALLOW, ALLOW, ALLOW]
    # Charged for the message in hand: one token of debt, repaid in 1/rate s.
    assert verdicts[3] == Slow(0.25)


def test_flood_a_charger_that_waits_out_each_pause_is_slowed_to_the_rate_never_disconnected() -> (
    None
):
    """A compliant charger replaying an offline backlog: it sends the next
    message as soon as we read again. Every message is over budget, none
    is a strike, and the pace is exactly ``rate``."""
    policy = FloodPolicy(rate=8, burst=4, strikes=2, strike_window=3600)
    state = policy.new_state(0.0)
    now = 0.0
    verdicts: list[Verdict] = []
    while now < 100.0:
        verdict = policy.judge(state, now)
        verdicts.append(verdict)
        assert verdict is not DISCONNECT, now
        if isinstance(verdict, Slow):
            now += verdict.delay
    assert state.strikes == 0
    # The burst, then one message per 1/8 s for 100 s.
    assert len(verdicts) == 4 + 100 * 8
    assert all(isinstance(v, Slow) for v in verdicts[4:])


def test_flood_a_charger_read_a_moment_early_does_not_strike() -> None:
    """The server resumes reading with a timer that may fire a millisecond
    early (uvloop's clock ticks in milliseconds)."""
    policy = FloodPolicy(rate=4, burst=1, strikes=1, strike_window=60)
    state = policy.new_state(0.0)
    assert policy.judge(state, 0.0) is ALLOW
    verdict = policy.judge(state, 0.0)
    assert verdict == Slow(0.25)

    assert isinstance(policy.judge(state, 0.25 - 0.001), Slow)
    assert state.strikes == 0


def test_flood_messages_during_a_pause_are_strikes_and_the_last_one_disconnects() -> None:
    policy = FloodPolicy(rate=4, burst=2, strikes=3, strike_window=60)
    state = policy.new_state(0.0)

    verdicts = _flood(policy, state, 0.0, 6)

    # burst, over budget (pause asked), strike 1, strike 2, strike 3: gone.
    assert verdicts[:2] == [ALLOW, ALLOW]
    assert verdicts[2] == Slow(0.25)
    assert verdicts[3] == Slow(0.5)  # each strike is charged: the pause grows
    assert verdicts[4] == Slow(0.75)
    assert verdicts[5] is DISCONNECT
    assert state.strikes == 3


def test_flood_strikes_of_one_disconnects_at_the_first_message_during_a_pause() -> None:
    policy = FloodPolicy(rate=1, burst=1, strikes=1, strike_window=10)
    state = policy.new_state(0.0)

    assert _flood(policy, state, 0.0, 3) == [ALLOW, Slow(1.0), DISCONNECT]


def test_flood_strikes_expire_with_their_window() -> None:
    """Two strikes, a quiet spell longer than the window, two more: the count
    restarted, so no disconnect; without the quiet spell the third strike
    would have disconnected."""
    policy = FloodPolicy(rate=1, burst=1, strikes=3, strike_window=10)

    hasty = policy.new_state(0.0)
    assert _flood(policy, hasty, 0.0, 4)[-1] == Slow(3.0)  # strikes 1 and 2
    assert policy.judge(hasty, 0.0) is DISCONNECT

    patient = policy.new_state(0.0)
    _flood(policy, patient, 0.0, 4)  # strikes 1 and 2 at t=0
    assert patient.strikes == 2
    # 10 s later the window of those strikes has closed (and the debt is repaid).
    later = _flood(policy, patient, 10.0, 4)
    assert later == [ALLOW, Slow(1.0), Slow(2.0), Slow(3.0)]
    assert patient.strikes == 2
    assert patient.window_start == 10.0


def test_flood_strikes_within_the_window_add_up() -> None:
    policy = FloodPolicy(rate=1, burst=1, strikes=3, strike_window=10)
    state = policy.new_state(0.0)
    _flood(policy, state, 0.0, 3)  # strike 1 at t=0, debt of 2 tokens

    # t=1.25: 0.75 of debt left, so still paused: strike 2.
    assert policy.judge(state, 1.25) == Slow(1.75)
    assert state.strikes == 2
    # t=1.5: strike 3 within 10 s of the first: disconnect.
    assert policy.judge(state, 1.5) is DISCONNECT


def test_flood_strike_window_counts_from_its_first_strike() -> None:
    policy = FloodPolicy(rate=1, burst=1, strikes=3, strike_window=2)
    state = policy.new_state(0.0)
    _flood(policy, state, 0.0, 3)  # strike 1 at t=0
    assert policy.judge(state, 1.25) == Slow(1.75)  # strike 2
    assert state.strikes == 2

    # t=2: 2 s after the first strike (0.75 after the second), a new window.
    assert policy.judge(state, 2.0) == Slow(2.0)
    assert (state.strikes, state.window_start) == (1, 2.0)


def test_flood_half_a_token_of_debt_is_not_yet_a_strike() -> None:
    policy = FloodPolicy(rate=1, burst=1, strikes=1, strike_window=10)
    state = policy.new_state(0.0)
    _flood(policy, state, 0.0, 2)  # one token of debt, pause of 1 s

    assert policy.judge(state, 0.5) == Slow(1.5)  # debt exactly 0.5: tolerated
    assert policy.judge(state, 0.5) is DISCONNECT  # debt 1.5: a strike


def test_flood_verdicts_for_a_new_and_a_settled_state_are_the_same() -> None:
    policy = FloodPolicy(rate=2, burst=4, strikes=3, strike_window=5)
    state = policy.new_state(0.0)
    _flood(policy, state, 0.0, 6)  # drained, in debt, one strike
    assert not policy.is_settled(state, 0.0)
    # The bucket is full again after 4 s, but the strike window runs to 5 s.
    assert not policy.is_settled(state, 4.5)
    assert policy.is_settled(state, 5.0)

    fresh = policy.new_state(5.0)
    assert _flood(policy, state, 5.0, 8) == _flood(policy, fresh, 5.0, 8)
    assert (state.tokens, state.strikes) == (fresh.tokens, fresh.strikes)


def test_flood_a_state_is_not_settled_until_its_bucket_is_full() -> None:
    policy = FloodPolicy(rate=4, burst=2, strikes=3, strike_window=5)
    state = policy.new_state(0.0)
    assert policy.is_settled(state, 0.0)
    policy.judge(state, 0.0)

    assert not policy.is_settled(state, 0.125)
    assert policy.is_settled(state, 0.25)


def test_flood_new_state_shares_the_policy_float() -> None:
    """A state made for a new or settled connection holds no float of its own."""
    policy = FloodPolicy(rate=2.0, burst=8.0)

    assert policy.new_state(0.0).tokens is policy.burst


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0},
        {"rate": float("inf")},
        {"burst": 0.5},
        {"strikes": 0},
        {"strike_window": 0},
    ],
)
def test_flood_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=f"^{next(iter(kwargs))}:"):
        FloodPolicy(**kwargs)  # type: ignore[arg-type]


def test_per_connection_objects_are_small() -> None:
    """What each connection pays, measured on CPython 3.11 (64-bit):

    * ``FloodState``: 64 bytes (16 header + 16 GC link + 4 slots); the floats
      it points to: ``tokens`` 24 bytes once a message was judged (a new
      state shares the policy's ``burst``), ``stamp`` the caller's ``now`` object (24 bytes,
      shared when the server keeps the same object, e.g. as last_received);
      ``strikes`` a cached small int; ``window_start`` a shared constant until
      a strike. So 88 to 112 bytes while a charger talks, 0 once settled and
      dropped (``is_settled``).
    * ``TokenBucket``: 64 bytes plus its floats.
    * ``Slow``: 40 bytes, only for a message over budget, gone once read.

    The bounds below leave room for a 3.12 object header but fail if a
    ``__dict__`` or a container creeps in.
    """
    policy = FloodPolicy()
    state = policy.new_state(1.0)
    policy.judge(state, 1.0)

    assert not hasattr(state, "__dict__")
    assert not hasattr(TokenBucket(1, 1, now=0.0), "__dict__")
    assert sys.getsizeof(state) <= 64
    assert sys.getsizeof(TokenBucket(1, 1, now=0.0)) <= 64
    assert sys.getsizeof(Slow(0.5)) <= 48
