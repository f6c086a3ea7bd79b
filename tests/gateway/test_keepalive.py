"""keepalive_action at its boundaries, and the defaults against the NLB's idle timeout."""

from __future__ import annotations

import pytest

from gateway.keepalive import (
    DEFAULT_PING_INTERVAL,
    DEFAULT_PONG_TIMEOUT,
    NLB_IDLE_TIMEOUT,
    Action,
    keepalive_action,
)

INTERVAL = 60.0
TIMEOUT = 30.0


def action(last_received: float, ping_sent: float | None, now: float) -> Action:
    return keepalive_action(last_received, ping_sent, now, INTERVAL, TIMEOUT)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (1000.0, Action.NONE),
        (1059.75, Action.NONE),
        (1060.0, Action.PING),
        (1500.0, Action.PING),  # a sweep that comes very late still pings first
    ],
)
def test_a_quiet_charger_is_pinged_after_the_interval(now: float, expected: Action) -> None:
    assert action(1000.0, None, now) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (1060.0, Action.NONE),  # the ping just went out
        (1089.75, Action.NONE),
        (1090.0, Action.CLOSE),
        (2000.0, Action.CLOSE),
    ],
)
def test_an_unanswered_ping_closes_after_the_timeout(now: float, expected: Action) -> None:
    assert action(1000.0, 1060.0, now) is expected


def test_an_outstanding_ping_is_not_repeated() -> None:
    """Silence for more than the interval since the ping, but the ping is
    still within its timeout: wait, do not ping again."""
    assert keepalive_action(0.0, 100.0, 120.0, interval=10.0, timeout=30.0) is Action.NONE


def test_a_late_ping_still_gets_the_whole_timeout() -> None:
    """The sweep pinged 40 s late (at 100 s of silence): the charger still has
    30 s to answer, although interval + timeout since its last frame has passed."""
    assert action(1000.0, 1100.0, 1129.75) is Action.NONE
    assert action(1000.0, 1100.0, 1130.0) is Action.CLOSE


@pytest.mark.parametrize("answered_at", [1060.0, 1060.25, 1089.75])
def test_anything_received_after_the_ping_answers_it(answered_at: float) -> None:
    """A pong or any data frame; the same instant counts (uvloop caches its
    clock per loop iteration, and the frame was read after the ping went out)."""
    assert action(answered_at, 1060.0, 1090.0) is Action.NONE
    assert action(answered_at, 1060.0, answered_at + 59.75) is Action.NONE
    assert action(answered_at, 1060.0, answered_at + 60.0) is Action.PING


def test_a_chatty_charger_is_never_pinged() -> None:
    """A charger that sends something at least every interval, never pinged."""
    for received in range(0, 3600, 59):
        assert action(float(received), None, received + 58.75) is Action.NONE


def test_defaults_keep_a_connection_well_inside_the_nlb_idle_timeout() -> None:
    """Simulate a charger that answers pings at once and says nothing else,
    visited by a sweep every 5 s: no silence on the wire ever reaches the
    NLB's 350 s; and a charger that dies is closed within interval + timeout
    + one sweep period."""
    period = 5.0
    last_received, ping_sent = 0.0, None
    longest_gap, last_traffic = 0.0, 0.0
    now = 0.0
    while now < 3600.0:
        now += period
        decision = keepalive_action(
            last_received, ping_sent, now, DEFAULT_PING_INTERVAL, DEFAULT_PONG_TIMEOUT
        )
        assert decision is not Action.CLOSE
        if decision is Action.PING:
            longest_gap = max(longest_gap, now - last_traffic)
            ping_sent = last_received = last_traffic = now  # the pong, at once
    assert 0 < longest_gap <= DEFAULT_PING_INTERVAL + period
    assert DEFAULT_PING_INTERVAL + period < NLB_IDLE_TIMEOUT / 2

    died_at, closed_at = last_received, None
    while closed_at is None:
        now += period
        decision = keepalive_action(
            died_at, ping_sent, now, DEFAULT_PING_INTERVAL, DEFAULT_PONG_TIMEOUT
        )
        if decision is Action.PING:
            ping_sent = now
        elif decision is Action.CLOSE:
            closed_at = now
    assert closed_at - died_at <= DEFAULT_PING_INTERVAL + DEFAULT_PONG_TIMEOUT + period
