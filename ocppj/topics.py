"""The MQTT topic contract between gateways and processors.

One module owns every topic so that the gateway, the processor, the IoT rule
and the infrastructure agree on them (``/work/shared/DESIGN.md``, "Topic
contract"):

| direction | topic |
|---|---|
| charge point -> backend | ``{prefix}/in/{cp}/{protocol}/{route}`` |
| backend -> charge point | ``{prefix}/out/{route}/{cp}`` |
| connect / disconnect | ``{prefix}/presence/{cp}`` |
| many of the above, when they queue | ``{prefix}/batch/in/{route}`` |
| many answers for one route | ``{prefix}/batch/out/{route}`` |

The two batch topics and their payloads are in ``ocppj.batch``.

A charge point identity may hold characters that MQTT gives a meaning
(``/`` separates levels, ``+`` and ``#`` are wildcards), so ``cp`` is
percent-encoded into exactly one level. ``route`` names the gateway connection
that holds the charge point; a pooled connection subscribes to its own
``{prefix}/out/{route}/+`` and ``{prefix}/batch/out/{route}`` only. Topics
stay within AWS IoT Core's limits of 7 slashes and 256 bytes. Nothing here does I/O.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from urllib.parse import quote, unquote

__all__ = [
    "DEFAULT_PREFIX",
    "MAX_TOPIC_BYTES",
    "decode_segment",
    "downlink_reader",
    "downlink_subscription",
    "downlink_topic",
    "encode_segment",
    "parse_downlink",
    "parse_presence",
    "parse_uplink",
    "presence_subscription",
    "presence_topic",
    "shared_subscription",
    "uplink_subscription",
    "uplink_topic",
]

DEFAULT_PREFIX = "ocpp"
#: AWS IoT Core refuses longer topic names (UTF-8 bytes).
MAX_TOPIC_BYTES = 256

# Printable ASCII that means nothing to MQTT stays readable; '%' is the escape
# itself, and space and control characters are encoded so that logs, rule SQL
# and consoles show the level unambiguously. quote() keeps letters, digits and
# "_.-~" by itself and encodes everything else, non-ASCII as UTF-8 bytes.
_SAFE = "".join(c for c in string.punctuation if c not in "/+#%")
_LEVEL_FORBIDDEN = frozenset("/+#")
#: What ``quote`` leaves as it is: an identity made of these alone is its own level.
_PLAIN = frozenset(string.ascii_letters + string.digits + "_.-~" + _SAFE)


def encode_segment(charge_point_id: str) -> str:
    """``charge_point_id`` as one topic level: no ``/``, no wildcards, ASCII only."""
    if not charge_point_id:
        raise ValueError("charge point identity is empty")
    if _PLAIN.issuperset(charge_point_id):
        return charge_point_id  # the common case, without quote()'s cost
    return quote(charge_point_id, safe=_SAFE, encoding="utf-8", errors="strict")


def decode_segment(text: str) -> str:
    """The identity that ``encode_segment`` turned into ``text``.

    Only the canonical encoding is accepted (upper-case hex, nothing encoded
    that needs no encoding), so each identity has exactly one topic and a
    hand-made topic cannot alias another charger's.
    """
    if not text:
        raise ValueError("charge point level is empty")
    if _PLAIN.issuperset(text):
        return text  # nothing encoded, and nothing that needed to be
    try:
        identity = unquote(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"charge point level {text!r} is not percent-encoded UTF-8") from None
    if encode_segment(identity) != text:
        raise ValueError(f"charge point level {text!r} is not canonically percent-encoded")
    return identity


def _check_level(kind: str, value: str) -> str:
    if not value:
        raise ValueError(f"{kind} is empty")
    bad = sorted(_LEVEL_FORBIDDEN.intersection(value))
    if bad:
        raise ValueError(f"{kind} {value!r} contains {', '.join(map(repr, bad))}")
    if not value.isprintable():
        raise ValueError(f"{kind} {value!r} contains control or non-printable characters")
    return value


def _check_prefix(prefix: str) -> str:
    _check_level("prefix", prefix)
    if prefix.startswith("$"):
        raise ValueError(f"prefix {prefix!r} starts with '$' (reserved for the broker)")
    return prefix


def _topic(*levels: str) -> str:
    topic = "/".join(levels)
    size = len(topic.encode("utf-8"))
    if size > MAX_TOPIC_BYTES:
        raise ValueError(f"topic is {size} bytes, more than AWS IoT's {MAX_TOPIC_BYTES}")
    return topic


def uplink_topic(prefix: str, charge_point_id: str, protocol: str, route: str) -> str:
    """Where a gateway publishes a frame a charge point sent."""
    return _topic(
        _check_prefix(prefix),
        "in",
        encode_segment(charge_point_id),
        _check_level("protocol", protocol),
        _check_level("route", route),
    )


def downlink_topic(prefix: str, route: str, charge_point_id: str) -> str:
    """Where the backend publishes a frame for the charge point held by ``route``."""
    return _topic(
        _check_prefix(prefix), "out", _check_level("route", route), encode_segment(charge_point_id)
    )


def presence_topic(prefix: str, charge_point_id: str) -> str:
    """Where a gateway announces that a charge point connected or disconnected."""
    return _topic(_check_prefix(prefix), "presence", encode_segment(charge_point_id))


def downlink_subscription(prefix: str, route: str) -> str:
    """The filter of a pooled gateway connection's per-charger downlinks
    (its batches: ``ocppj.batch.downlink_batch_subscription``)."""
    return _topic(_check_prefix(prefix), "out", _check_level("route", route), "+")


def uplink_subscription(prefix: str) -> str:
    """The filter of every uplink frame (the IoT rule's ``FROM``, or a worker's)."""
    return _topic(_check_prefix(prefix), "in", "+", "+", "+")


def presence_subscription(prefix: str) -> str:
    """The filter of every presence message."""
    return _topic(_check_prefix(prefix), "presence", "+")


def shared_subscription(group: str, topic_filter: str) -> str:
    """``topic_filter`` shared by ``group`` (MQTT 5): the broker gives each
    message to one member, so the processor workers of a group split the load."""
    return f"$share/{_check_level('group', group)}/{topic_filter}"


def _levels(topic: str, prefix: str, kind: str, count: int) -> list[str]:
    _check_prefix(prefix)
    levels = topic.split("/")
    if levels[0] != prefix or len(levels) < 2 or levels[1] != kind:
        raise ValueError(f"topic {topic!r} does not start with {prefix + '/' + kind + '/'!r}")
    if len(levels) != count:
        raise ValueError(f"topic {topic!r} has {len(levels)} levels, not {count}")
    return levels


def parse_uplink(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str, str]:
    """(charge point identity, protocol, route) of an uplink topic."""
    _, _, cp, protocol, route = _levels(topic, prefix, "in", 5)
    return decode_segment(cp), _check_level("protocol", protocol), _check_level("route", route)


def parse_downlink(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """(route, charge point identity) of a downlink topic."""
    _, _, route, cp = _levels(topic, prefix, "out", 4)
    return _check_level("route", route), decode_segment(cp)


def downlink_reader(prefix: str, route: str) -> Callable[[str], str]:
    """The charge point identity of a downlink topic for ``route``, read by the
    connection subscribed to it; ValueError naming the problem for any other
    topic (another route's, another prefix's, a malformed level).

    ``parse_downlink`` checks prefix and route on every call; a connection
    knows both, so the reader compares the topic's head once and decodes the rest.
    """
    head = downlink_subscription(prefix, route)[:-1]  # "{prefix}/out/{route}/"
    start = len(head)

    def read(topic: str) -> str:
        if topic.startswith(head):
            return decode_segment(topic[start:])  # a further "/" is not canonical
        found, charge_point_id = parse_downlink(topic, prefix)
        raise ValueError(f"downlink for route {found!r}, not {route!r} ({charge_point_id!r})")

    return read


def parse_presence(topic: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The charge point identity of a presence topic."""
    _, _, cp = _levels(topic, prefix, "presence", 3)
    return decode_segment(cp)
