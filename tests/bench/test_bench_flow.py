"""Micro-benchmarks of the gateway's flow-control primitives.

Opt-in, like ``test_bench_core.py``: pyproject's addopts carry
``--benchmark-skip``, so a plain ``pytest`` reports these as skipped. Run them
with ``--benchmark-only``, which overrides ``--benchmark-skip``::

    .venv/bin/pytest tests/bench/test_bench_flow.py --benchmark-only

* ``TokenBucket.take`` and ``FloodPolicy.judge``: rounds of ``TAKES`` (1,000)
  calls with the clock moving 1/1024 s per call, so the bucket refills and
  drains as under a real flood (and, for ``judge``, also within budget); the
  table's figures are per round. Each round counts the messages let through,
  which must be exactly what the rate allows.
* ``Sweeper``: one whole round over ``FLEET`` (50,000) items, the visit being
  the keep-alive decision on each item's two floats. Each item must be
  visited once per round, no more, no less.

Per-call figures are stored in ``extra_info`` (read them with
``--benchmark-json=FILE``, or add ``-s`` to see the line each one prints).
"""

from __future__ import annotations

from typing import Any

from gateway.keepalive import Action, keepalive_action
from gateway.ratelimit import ALLOW, FloodPolicy, TokenBucket
from gateway.sweep import Sweeper

TAKES = 1000
STEP = 1 / 1024
RATE = 128.0  # tokens per second: 1/8 token per step
BURST = 10.0
#: Tokens available over a round: the full bucket plus the refill of 999 steps.
ALLOWED = int(BURST + (TAKES - 1) * STEP * RATE)  # 134
FLEET = 50_000


def _record(benchmark: Any, calls: int, unit: str) -> None:
    if benchmark.stats is None:  # --benchmark-disable: run once, untimed
        return
    per_call = benchmark.stats.stats.median / calls
    benchmark.extra_info[f"ns_per_{unit}"] = round(per_call * 1e9, 1)
    print(f"\n{benchmark.name}: {per_call * 1e9:.1f} ns per {unit}")


def _take_all() -> int:
    bucket = TokenBucket(RATE, BURST, now=0.0)
    take = bucket.take
    return sum(take(n * STEP) for n in range(TAKES))


def test_token_bucket_take_x1000(benchmark: Any) -> None:
    allowed = benchmark(_take_all)
    _record(benchmark, TAKES, "take")

    assert allowed == ALLOWED


def _judge_all(policy: FloodPolicy) -> int:
    state = policy.new_state(0.0)
    judge = policy.judge
    return sum(judge(state, n * STEP) is ALLOW for n in range(TAKES))


def test_flood_policy_judge_within_budget_x1000(benchmark: Any) -> None:
    """The path of every well-behaved charger: each message allowed."""
    policy = FloodPolicy(rate=1024.0, burst=BURST)

    allowed = benchmark(_judge_all, policy)
    _record(benchmark, TAKES, "judge")

    assert allowed == TAKES


def test_flood_policy_judge_over_budget_x1000(benchmark: Any) -> None:
    """A flood at 8 times the rate: the burst, then mostly ``Slow`` verdicts
    (strikes never reach the limit here, so nothing disconnects)."""
    policy = FloodPolicy(rate=RATE, burst=BURST, strikes=TAKES, strike_window=1.0)

    allowed = benchmark(_judge_all, policy)
    _record(benchmark, TAKES, "judge")

    # Messages over budget are charged too (debt), so fewer get through.
    assert 0 < allowed <= ALLOWED


class Peer:
    """What the server keeps for keep-alive on each connection."""

    __slots__ = ("last_received", "ping_sent", "visits")

    def __init__(self, last_received: float) -> None:
        self.last_received = last_received
        self.ping_sent: float | None = None
        self.visits = 0


def _keepalive(peer: Peer, now: float) -> None:
    peer.visits += 1
    if keepalive_action(peer.last_received, peer.ping_sent, now, 60.0, 30.0) is Action.PING:
        peer.ping_sent = now


def test_sweeper_round_over_50k(benchmark: Any) -> None:
    period = 10.0
    sweeper = Sweeper[Peer](_keepalive, period=period, tick=0.1)
    peers = [Peer(last_received=float(n % 120)) for n in range(FLEET)]
    for peer in peers:
        sweeper.add(peer)
    clock = [0.0]
    sweeper.advance(clock[0])

    def one_round() -> int:
        clock[0] += period  # a whole period owed: the whole round in one call
        return sweeper.advance(clock[0])

    visited = benchmark(one_round)
    _record(benchmark, FLEET, "visit")

    assert visited == FLEET
    rounds = peers[0].visits
    assert rounds >= 1
    assert all(peer.visits == rounds for peer in peers)
    # Every peer has been silent for minutes by now: each was pinged.
    assert all(peer.ping_sent is not None for peer in peers)
