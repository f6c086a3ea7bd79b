"""When to ping a charge point, and when to give up on it: one pure decision.

Two things go wrong without keep-alive. An AWS NLB TLS listener drops a
connection idle for 350 s (fixed; any packet in either direction resets it),
and a charger whose power or modem died leaves a socket that looks open for
many minutes: a zombie that still holds its identity, so the backend thinks
it is online. The charger's own ``WebSocketPingInterval`` may be 0 (it never
pings) or anything, so the server pings by itself.

The server keeps two floats per connection: when something last came from
the charger (any frame, pongs included) and when it last sent a ping. The
periodic sweep (``gateway.sweep.Sweeper``) calls ``keepalive_action`` for each
connection about once per sweep period, so pings go out up to one period
late; with the defaults (ping after 60 s of silence, 30 s to answer) and a
sweep period of a few seconds, a connection is never silent for anything near
350 s, and a zombie is closed about 90 s after it went quiet. This replaces
picows' auto-ping, which runs a task per connection.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PONG_TIMEOUT",
    "NLB_IDLE_TIMEOUT",
    "Action",
    "keepalive_action",
]

#: Seconds an AWS NLB TLS listener lets a connection idle before dropping it.
NLB_IDLE_TIMEOUT: Final = 350.0
#: Seconds of silence from a charger before we ping it; well below the NLB's
#: 350 s even when a sweep is late, and short enough to find zombies quickly.
DEFAULT_PING_INTERVAL: Final = 60.0
#: Seconds a charger has to answer our ping (or send anything) before we close.
DEFAULT_PONG_TIMEOUT: Final = 30.0


class Action(enum.Enum):
    NONE = "none"
    #: Send a WebSocket ping and remember when (the next call's ``ping_sent``).
    PING = "ping"
    #: No answer to our ping: close the connection (1001 going away is fitting,
    #: or abort the transport: a zombie will not read a close frame).
    CLOSE = "close"


def keepalive_action(
    last_received: float, ping_sent: float | None, now: float, interval: float, timeout: float
) -> Action:
    """What to do about one connection at ``now``.

    ``last_received``: when the last frame (data, ping or pong) came from the
    charger. ``ping_sent``: when we last pinged it, None if never. A ping
    counts as answered once anything arrives at or after the moment it was
    sent (equal times are the same loop iteration, whose clock uvloop caches:
    the frame was read after the ping went out), so the server never needs
    to clear ``ping_sent``.

    * an unanswered ping ``timeout`` seconds old: ``CLOSE``; younger: ``NONE``
      (a ping is outstanding, do not send another);
    * otherwise, ``interval`` seconds of silence: ``PING``; less: ``NONE``.

    So a charger always gets the whole ``timeout`` to answer, even when the
    sweep pinged late, and a silent one is closed ``interval + timeout``
    seconds after it went quiet (plus the sweep's lateness).
    """
    if ping_sent is not None and last_received < ping_sent:
        return Action.CLOSE if now - ping_sent >= timeout else Action.NONE
    return Action.PING if now - last_received >= interval else Action.NONE
