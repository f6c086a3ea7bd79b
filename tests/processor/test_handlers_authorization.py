"""Authorize, and the token status StartTransaction / TransactionEvent carry."""

from __future__ import annotations

import pytest

from .conftest import Harness

V16 = "ocpp1.6"
V201 = "ocpp2.0.1"

TOKENS = {"GOOD": "Accepted", "BAD": "Blocked", "OLD": "Expired"}
CASES = [("GOOD", "Accepted"), ("BAD", "Blocked"), ("OLD", "Expired"), ("NOBODY", "Invalid")]


@pytest.fixture
def listed() -> Harness:
    return Harness(id_tokens=TOKENS)


def id_token(token: str) -> dict[str, str]:
    return {"idToken": token, "type": "ISO14443"}


# -- accept-all default ------------------------------------------------------------


@pytest.mark.parametrize("token", ["GOOD", "BAD", "anyone", "x" * 20])
async def test_authorize_v16_accepts_everyone_by_default(harness: Harness, token: str) -> None:
    answer = await harness.send(V16, [2, "a1", "Authorize", {"idTag": token}])
    assert answer == [3, "a1", {"idTagInfo": {"status": "Accepted"}}]


@pytest.mark.parametrize("token", ["GOOD", "BAD", "anyone", "x" * 36])
async def test_authorize_v201_accepts_everyone_by_default(harness: Harness, token: str) -> None:
    answer = await harness.send(V201, [2, "a1", "Authorize", {"idToken": id_token(token)}])
    assert answer == [3, "a1", {"idTokenInfo": {"status": "Accepted"}}]


async def test_authorize_writes_no_shadow(harness: Harness) -> None:
    await harness.call(V16, "Authorize", {"idTag": "GOOD"})
    await harness.call(V201, "Authorize", {"idToken": id_token("GOOD")})
    assert await harness.version() == 0


# -- a token list ------------------------------------------------------------------


@pytest.mark.parametrize(("token", "status"), CASES)
async def test_authorize_v16_answers_from_the_list(
    listed: Harness, token: str, status: str
) -> None:
    answer = await listed.send(V16, [2, "a1", "Authorize", {"idTag": token}])
    assert answer == [3, "a1", {"idTagInfo": {"status": status}}]


@pytest.mark.parametrize(("token", "status"), CASES)
async def test_authorize_v201_answers_from_the_list(
    listed: Harness, token: str, status: str
) -> None:
    answer = await listed.send(V201, [2, "a1", "Authorize", {"idToken": id_token(token)}])
    assert answer == [3, "a1", {"idTokenInfo": {"status": status}}]


@pytest.mark.parametrize("kind", ["Central", "eMAID", "ISO15693", "KeyCode", "Local"])
async def test_authorize_v201_ignores_the_token_type(listed: Harness, kind: str) -> None:
    request = {"idToken": {"idToken": "BAD", "type": kind}}
    assert await listed.call(V201, "Authorize", request) == {"idTokenInfo": {"status": "Blocked"}}


@pytest.mark.parametrize("protocol", [V16, V201])
async def test_tokens_match_the_list_case_insensitively(listed: Harness, protocol: str) -> None:
    if protocol == V16:
        answer = await listed.call(V16, "Authorize", {"idTag": "bad"})
        assert answer == {"idTagInfo": {"status": "Blocked"}}
    else:
        answer = await listed.call(V201, "Authorize", {"idToken": id_token("Good")})
        assert answer == {"idTokenInfo": {"status": "Accepted"}}


@pytest.mark.parametrize(("token", "status"), CASES)
async def test_start_transaction_carries_the_token_status(
    listed: Harness, token: str, status: str
) -> None:
    start = {"connectorId": 1, "idTag": token, "meterStart": 0, "timestamp": "2026-03-01T12:00:00Z"}
    answer = await listed.call(V16, "StartTransaction", start)
    assert answer == {"transactionId": 1, "idTagInfo": {"status": status}}


@pytest.mark.parametrize(("token", "status"), CASES)
async def test_stop_transaction_carries_the_token_status(
    listed: Harness, token: str, status: str
) -> None:
    stop = {
        "transactionId": 5,
        "meterStop": 10,
        "timestamp": "2026-03-01T12:00:00Z",
        "idTag": token,
    }
    assert await listed.call(V16, "StopTransaction", stop) == {"idTagInfo": {"status": status}}


@pytest.mark.parametrize(("token", "status"), CASES)
@pytest.mark.parametrize("event_type", ["Started", "Updated", "Ended"])
async def test_transaction_event_carries_the_token_status(
    listed: Harness, token: str, status: str, event_type: str
) -> None:
    event = {
        "eventType": event_type,
        "timestamp": "2026-03-01T12:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "TX1"},
        "idToken": id_token(token),
    }
    assert await listed.call(V201, "TransactionEvent", event) == {"idTokenInfo": {"status": status}}


async def test_transaction_event_without_token_has_no_token_info(listed: Harness) -> None:
    event = {
        "eventType": "Started",
        "timestamp": "2026-03-01T12:00:00Z",
        "triggerReason": "CablePluggedIn",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "TX1"},
    }
    assert await listed.call(V201, "TransactionEvent", event) == {}


async def test_an_empty_list_refuses_everyone() -> None:
    harness = Harness(id_tokens={})
    assert await harness.call(V16, "Authorize", {"idTag": "GOOD"}) == {
        "idTagInfo": {"status": "Invalid"}
    }


async def test_invalid_authorize_payloads(harness: Harness) -> None:
    answer = await harness.send(V16, [2, "a", "Authorize", {"idTag": "x" * 21}])
    assert answer[:3] == [4, "a", "PropertyConstraintViolation"]
    assert answer[4] == {"path": "idTag", "rule": "MaxLength"}
    answer = await harness.send(V16, [2, "a", "Authorize", {}])
    assert answer[:3] == [4, "a", "OccurenceConstraintViolation"]
    answer = await harness.send(V201, [2, "a", "Authorize", {"idToken": {"idToken": "x"}}])
    assert answer[:3] == [4, "a", "OccurrenceConstraintViolation"]
    assert answer[4] == {"path": "idToken", "rule": "Required"}
    answer = await harness.send(V201, [2, "a", "Authorize", {"idToken": id_token("x" * 37)}])
    assert answer[:3] == [4, "a", "PropertyConstraintViolation"]
    answer = await harness.send(
        V201, [2, "a", "Authorize", {"idToken": {"idToken": "x", "type": "Card"}}]
    )
    assert answer[:3] == [4, "a", "PropertyConstraintViolation"]
    assert answer[4] == {"path": "idToken/type", "rule": "Enum"}
