"""CallQueue: one backend CALL in flight per charge point, the rest in line."""

from __future__ import annotations

import sys

import pytest

from gateway.callqueue import CallQueue, CallQueueConfig, QueueFull

CONFIG = CallQueueConfig(call_timeout=30.0, queue_ttl=10.0, max_queued=3)


def frame(message_id: str) -> bytes:
    return f'[2,"{message_id}","Reset",{{"type":"Immediate"}}]'.encode()


def queue_with(*message_ids: str, now: float = 0.0, config: CallQueueConfig = CONFIG) -> CallQueue:
    """A queue whose first id is outstanding and the others wait, all sent at ``now``."""
    queue = CallQueue(config)
    for message_id in message_ids:
        queue.send_or_queue(message_id, frame(message_id), now)
    return queue


def test_first_command_goes_at_once_the_next_wait() -> None:
    queue = CallQueue(CONFIG)

    assert queue.send_or_queue("a", frame("a"), 0.0) == frame("a")
    assert queue.send_or_queue("b", frame("b"), 0.0) is None
    assert queue.send_or_queue("c", frame("c"), 0.5) is None
    assert (queue.outstanding, queue.queued) == ("a", 2)


def test_each_answer_releases_the_next_in_order() -> None:
    queue = queue_with("a", "b", "c", "d")

    assert queue.answered("a", 1.0) == frame("b")
    assert queue.outstanding == "b"
    assert queue.answered("b", 2.0) == frame("c")
    assert queue.answered("c", 3.0) == frame("d")
    assert queue.answered("d", 4.0) is None
    assert queue.is_idle


def test_unknown_answers_are_ignored() -> None:
    queue = queue_with("a", "b")

    assert queue.answered("zzz", 1.0) is None
    # An answer to a command still in line is not an answer to ours.
    assert queue.answered("b", 1.0) is None
    assert (queue.outstanding, queue.queued) == ("a", 1)
    assert queue.answered("a", 1.0) == frame("b")


def test_an_answer_frees_the_charger_for_a_new_command() -> None:
    queue = queue_with("a")
    assert queue.answered("a", 1.0) is None
    assert queue.is_idle

    assert queue.send_or_queue("b", frame("b"), 2.0) == frame("b")


def test_timeout_releases_the_outstanding_call_and_sends_the_next() -> None:
    # b must outlive a's 30 s wait here, so a time-to-live longer than that.
    queue = queue_with("a", "b", now=100.0, config=CallQueueConfig(queue_ttl=60.0))

    assert queue.tick(129.5) == ([], None)
    assert queue.outstanding == "a"
    assert queue.tick(130.0) == ([], frame("b"))
    assert queue.outstanding == "b"


def test_timeout_with_nothing_in_line_leaves_the_queue_idle() -> None:
    queue = queue_with("a", now=0.0)

    assert queue.tick(29.999) == ([], None)
    assert not queue.is_idle
    assert queue.tick(30.0) == ([], None)
    assert queue.is_idle


def test_a_late_answer_to_a_timed_out_call_changes_nothing() -> None:
    queue = queue_with("a", "b", config=CallQueueConfig(queue_ttl=60.0))
    assert queue.tick(30.0) == ([], frame("b"))

    assert queue.answered("a", 31.0) is None
    assert queue.outstanding == "b"


def test_the_next_call_gets_its_own_full_timeout() -> None:
    queue = queue_with("a", "b", config=CallQueueConfig(queue_ttl=60.0))
    assert queue.answered("a", 20.0) == frame("b")

    assert queue.tick(49.5) == ([], None)
    assert queue.outstanding == "b"
    assert queue.tick(50.0) == ([], None)
    assert queue.is_idle


def test_commands_older_than_their_ttl_are_dropped_and_reported() -> None:
    queue = CallQueue(CONFIG)
    queue.send_or_queue("a", frame("a"), 0.0)
    queue.send_or_queue("b", frame("b"), 1.0)
    queue.send_or_queue("c", frame("c"), 2.0)
    queue.send_or_queue("d", frame("d"), 5.0)

    assert queue.tick(10.5) == ([], None)  # b is 9.5 s old: still fine
    assert queue.tick(11.0) == (["b"], None)  # b is 10 s old: dropped
    assert queue.tick(12.0) == (["c"], None)
    assert (queue.outstanding, queue.queued) == ("a", 1)
    assert queue.answered("a", 13.0) == frame("d")


def test_a_stale_command_is_never_sent_after_a_timeout() -> None:
    """The charger ignores ``a``; ``b`` and ``c`` expire in line meanwhile and
    must not be delivered when ``a`` finally times out."""
    queue = queue_with("a", "b", "c", now=0.0)

    dropped, next_frame = queue.tick(30.0)

    assert (dropped, next_frame) == (["b", "c"], None)
    assert queue.is_idle


def test_an_answer_skips_expired_commands_and_tick_reports_them() -> None:
    queue = CallQueue(CONFIG)
    queue.send_or_queue("a", frame("a"), 0.0)
    queue.send_or_queue("b", frame("b"), 0.0)
    queue.send_or_queue("c", frame("c"), 8.0)

    assert queue.answered("a", 12.0) == frame("c")
    assert queue.outstanding == "c"
    assert queue.answered("c", 13.0) is None
    # Nothing in flight or in line, but b's fate is not yet reported.
    assert not queue.is_idle
    assert queue.tick(13.0) == (["b"], None)
    assert queue.is_idle


def test_an_answer_when_everything_in_line_expired_frees_the_charger() -> None:
    queue = queue_with("a", "b", "c", now=0.0)

    assert queue.answered("a", 20.0) is None
    assert queue.outstanding is None
    assert queue.tick(20.0) == (["b", "c"], None)
    assert queue.is_idle


def test_queue_full_refuses_beyond_max_queued() -> None:
    queue = queue_with("a", "b", "c", "d")  # a outstanding, three waiting

    with pytest.raises(QueueFull, match="3 commands already wait for an answer to a"):
        queue.send_or_queue("e", frame("e"), 0.0)
    assert queue.queued == 3
    # Room again once one has gone.
    queue.answered("a", 1.0)
    assert queue.send_or_queue("e", frame("e"), 1.0) is None


def test_max_queued_zero_allows_only_the_outstanding_call() -> None:
    queue = queue_with("a", config=CallQueueConfig(max_queued=0))

    with pytest.raises(QueueFull):
        queue.send_or_queue("b", frame("b"), 0.0)


def test_is_idle_follows_the_conversation() -> None:
    queue = CallQueue(CONFIG)
    assert queue.is_idle
    queue.send_or_queue("a", frame("a"), 0.0)
    assert not queue.is_idle
    queue.send_or_queue("b", frame("b"), 0.0)
    queue.answered("a", 1.0)
    assert not queue.is_idle
    queue.answered("b", 2.0)
    assert queue.is_idle


def test_drain_forgets_everything_and_names_what_was_never_sent() -> None:
    queue = CallQueue(CONFIG)
    queue.send_or_queue("a", frame("a"), 0.0)
    queue.send_or_queue("b", frame("b"), 0.0)
    queue.send_or_queue("c", frame("c"), 9.0)
    queue.answered("a", 10.0)  # b expired, skipped; c outstanding
    queue.send_or_queue("d", frame("d"), 10.0)

    assert queue.drain() == ["b", "d"]
    assert queue.is_idle
    assert queue.tick(100.0) == ([], None)


def test_the_line_is_made_only_when_a_second_command_waits() -> None:
    """The per-connection cost while one command is in flight: 72 bytes for
    the object (5 slots + headers on CPython 3.11) plus a 24-byte deadline
    float; the message id is the caller's string. The line (a list of
    ``(id, frame, expires)`` tuples: 56 bytes + 8 per entry, 64 per tuple) and
    the dropped-id list exist only while needed."""
    queue = queue_with("a")
    assert queue._waiting is None
    assert not hasattr(queue, "__dict__")
    assert sys.getsizeof(queue) <= 80

    queue.send_or_queue("b", frame("b"), 0.0)
    assert queue._waiting is not None
    queue.answered("a", 1.0)
    assert queue._waiting is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"call_timeout": 0}, "call_timeout"),
        ({"call_timeout": float("nan")}, "call_timeout"),
        ({"queue_ttl": -1}, "queue_ttl"),
        ({"queue_ttl": float("inf")}, "queue_ttl"),
        ({"max_queued": -1}, "max_queued"),
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        CallQueueConfig(**kwargs)  # type: ignore[arg-type]
