from __future__ import annotations

import re
import string
from urllib.parse import quote, unquote

import pytest

import ocppj
from ocppj import (
    DEFAULT_PREFIX,
    MAX_IDENTITY,
    decode_segment,
    downlink_reader,
    downlink_subscription,
    downlink_topic,
    encode_segment,
    parse_downlink,
    parse_presence,
    parse_uplink,
    presence_subscription,
    presence_topic,
    uplink_subscription,
    uplink_topic,
)

IDENTITIES = [
    "CP001",
    "RDAM 123",
    "plus+id",
    "hash#id",
    "slash/id",
    "100%",
    "%2F",
    "\u00e9t\u00e9",
    "\u5145\u7535\u6869",
    "\U0001f50c",
    " lead and trail ",
    "tab\tand\x00nul",
    "+",
    "#",
    "$SYS",
    "a:b.c~d_e-f*g!h'i(j)k",
]

AWS_MAX_SLASHES = 7


@pytest.mark.parametrize("identity", IDENTITIES)
def test_a_segment_is_one_wildcard_free_ascii_level(identity: str) -> None:
    segment = encode_segment(identity)
    assert not set(segment) & set("/+# ")
    assert segment.isascii()
    assert segment.isprintable()
    assert decode_segment(segment) == identity


@pytest.mark.parametrize(
    ("identity", "segment"),
    [
        ("RDAM 123", "RDAM%20123"),
        ("a+b", "a%2Bb"),
        ("a#b", "a%23b"),
        ("a/b", "a%2Fb"),
        ("5%", "5%25"),
        ("\u00e9", "%C3%A9"),
        ("a\x7fb", "a%7Fb"),
        ("CP-01_x.y~z:q", "CP-01_x.y~z:q"),
    ],
)
def test_segments_are_percent_encoded_exactly(identity: str, segment: str) -> None:
    assert encode_segment(identity) == segment


@pytest.mark.parametrize(
    "segment",
    ["", "a+b", "a#b", "a b", "%2", "%zz", "%C3", "%FF", "%41", "a%2bb", "\u00e9", "a%2Fb/c"],
)
def test_only_canonical_segments_decode(segment: str) -> None:
    with pytest.raises(ValueError, match="charge point level"):
        decode_segment(segment)


@pytest.mark.parametrize("character", [chr(n) for n in range(0x80)] + ["\u00e9"])
def test_every_character_encodes_as_quote_does_and_decodes_only_canonically(
    character: str,
) -> None:
    # The plain-identity shortcut must agree with the percent-encoding it skips.
    safe = "".join(c for c in string.punctuation if c not in "/+#%")
    identity = f"A{character}1"
    expected = quote(identity, safe=safe)
    assert encode_segment(identity) == expected
    assert decode_segment(expected) == identity
    if expected != identity:  # the raw form is not canonical, so not accepted
        with pytest.raises(ValueError, match="charge point level"):
            decode_segment(identity)
    assert unquote(expected) == identity


@pytest.mark.parametrize("identity", IDENTITIES)
def test_a_connection_reads_the_identity_of_its_own_downlinks(identity: str) -> None:
    read = downlink_reader("ocpp-staging", "gw-7f3a.2")
    assert read(downlink_topic("ocpp-staging", "gw-7f3a.2", identity)) == identity


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        ("ocpp/out/gw-2/CP001", "for route 'gw-2', not 'gw-1'"),
        ("staging/out/gw-1/CP001", "does not start with 'ocpp/out/'"),
        ("ocpp/in/gw-1/CP001", "does not start with 'ocpp/out/'"),
        ("ocpp/out/gw-1/CP/001", "not canonically"),
        ("ocpp/out/gw-1/", "charge point level is empty"),
        ("ocpp/out/gw-1/+", "not canonically"),
        ("ocpp/out/gw-1/RDAM 123", "not canonically"),
        ("ocpp/out/gw-1", "has 3 levels, not 4"),
    ],
)
def test_a_connection_refuses_every_other_topic(topic: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        downlink_reader(DEFAULT_PREFIX, "gw-1")(topic)


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("prefix", [DEFAULT_PREFIX, "ocpp-staging"])
def test_topics_round_trip(identity: str, prefix: str) -> None:
    route = "gw-7f3a.2"
    uplink = uplink_topic(prefix, identity, "ocpp2.0.1", route)
    assert uplink == f"{prefix}/in/{encode_segment(identity)}/ocpp2.0.1/{route}"
    assert parse_uplink(uplink, prefix) == (identity, "ocpp2.0.1", route)

    downlink = downlink_topic(prefix, route, identity)
    assert downlink == f"{prefix}/out/{route}/{encode_segment(identity)}"
    assert parse_downlink(downlink, prefix) == (route, identity)

    presence = presence_topic(prefix, identity)
    assert presence == f"{prefix}/presence/{encode_segment(identity)}"
    assert parse_presence(presence, prefix) == identity

    for topic in (uplink, downlink, presence):
        assert topic.count("/") <= AWS_MAX_SLASHES
        assert len(topic.encode()) <= ocppj.MAX_TOPIC_BYTES


def test_subscriptions_use_one_single_level_wildcard_per_variable_level() -> None:
    assert downlink_subscription("ocpp", "gw-1.0") == "ocpp/out/gw-1.0/+"
    assert uplink_subscription("ocpp") == "ocpp/in/+/+/+"
    assert presence_subscription("ocpp") == "ocpp/presence/+"
    for topic in (
        downlink_subscription("ocpp", "gw-1.0"),
        uplink_subscription("ocpp"),
        presence_subscription("ocpp"),
    ):
        assert topic.count("/") <= AWS_MAX_SLASHES
        assert "#" not in topic


def test_the_longest_ascii_identity_fits_aws_limits() -> None:
    identity = " " * MAX_IDENTITY  # every character escaped: 144 characters
    topic = uplink_topic("ocpp", identity, "ocpp2.0.1", "gw-0123456789abcdef.99")
    assert topic.count("/") == 4
    assert len(topic) <= ocppj.MAX_TOPIC_BYTES


def test_a_topic_over_aws_size_limit_is_refused() -> None:
    # 48 four-byte characters: 576 characters once encoded.
    with pytest.raises(ValueError, match="more than AWS IoT's 256"):
        uplink_topic("ocpp", "\U0001f50c" * MAX_IDENTITY, "ocpp1.6", "gw-1")


@pytest.mark.parametrize(
    ("prefix", "route", "problem"),
    [
        ("", "gw-1", "prefix is empty"),
        ("a/b", "gw-1", "prefix 'a/b' contains '/'"),
        ("oc+pp", "gw-1", "contains '\\+'"),
        ("ocpp#", "gw-1", "contains '#'"),
        ("$aws", "gw-1", "reserved"),
        ("ocpp", "", "route is empty"),
        ("ocpp", "gw/1", "route 'gw/1' contains '/'"),
        ("ocpp", "+", "route '\\+' contains"),
        ("ocpp", "gw\n1", "non-printable"),
    ],
)
def test_prefix_and_route_must_be_one_plain_level(prefix: str, route: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        downlink_topic(prefix, route, "CP001")
    with pytest.raises(ValueError, match=problem):
        uplink_topic(prefix, "CP001", "ocpp1.6", route)
    with pytest.raises(ValueError, match=problem):
        downlink_subscription(prefix, route)


def test_protocol_must_be_one_level() -> None:
    with pytest.raises(ValueError, match=re.escape("protocol 'ocpp/1.6' contains '/'")):
        uplink_topic("ocpp", "CP001", "ocpp/1.6", "gw-1")


def test_empty_identity_has_no_topic() -> None:
    with pytest.raises(ValueError, match="identity is empty"):
        presence_topic("ocpp", "")


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        ("ocpp/out/gw-1/CP001", "does not start with 'ocpp/in/'"),
        ("other/in/CP001/ocpp1.6/gw-1", "does not start with 'ocpp/in/'"),
        ("ocpp", "does not start with"),
        ("", "does not start with"),
        ("ocpp/in/CP001/ocpp1.6", "has 4 levels, not 5"),
        ("ocpp/in/CP001/ocpp1.6/gw-1/extra", "has 6 levels, not 5"),
        ("ocpp/in/a/b/ocpp1.6/gw-1", "has 6 levels, not 5"),
        ("ocpp/in//ocpp1.6/gw-1", "charge point level is empty"),
        ("ocpp/in/a+b/ocpp1.6/gw-1", "not canonically"),
        ("ocpp/in/%FF/ocpp1.6/gw-1", "not percent-encoded UTF-8"),
        ("ocpp/in/CP001//gw-1", "protocol is empty"),
        ("ocpp/in/CP001/ocpp1.6/", "route is empty"),
        ("ocpp/in/CP001/ocpp1.6/+", "route '\\+' contains"),
        ("ocpp/in/+/+/+", "not canonically"),
    ],
)
def test_malformed_uplinks_are_refused(topic: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_uplink(topic)


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        ("ocpp/in/gw-1/CP001", "does not start with 'ocpp/out/'"),
        ("ocpp/out/gw-1", "has 3 levels, not 4"),
        ("ocpp/out/gw-1/CP/001", "has 5 levels, not 4"),
        ("ocpp/out//CP001", "route is empty"),
        ("ocpp/out/gw-1/", "charge point level is empty"),
        ("ocpp/out/gw-1/+", "not canonically"),
        ("ocpp/out/gw-1/RDAM 123", "not canonically"),
    ],
)
def test_malformed_downlinks_are_refused(topic: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_downlink(topic)


def test_malformed_presence_topics_are_refused() -> None:
    with pytest.raises(ValueError, match="has 4 levels, not 3"):
        parse_presence("ocpp/presence/a/b")
    with pytest.raises(ValueError, match="does not start with 'ocpp/presence/'"):
        parse_presence("ocpp/out/a")


def test_parse_uses_the_given_prefix() -> None:
    topic = uplink_topic("staging", "CP001", "ocpp1.6", "gw-1")
    assert parse_uplink(topic, "staging") == ("CP001", "ocpp1.6", "gw-1")
    with pytest.raises(ValueError, match="does not start with 'ocpp/in/'"):
        parse_uplink(topic)


def test_distinct_identities_get_distinct_topics() -> None:
    topics = {downlink_topic("ocpp", "gw-1", identity) for identity in IDENTITIES}
    assert len(topics) == len(IDENTITIES)
