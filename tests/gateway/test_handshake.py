from __future__ import annotations

import pytest

from gateway.handshake import choose_subprotocol, offered_subprotocols

ENABLED = ("ocpp1.6", "ocpp2.0", "ocpp2.0.1")


@pytest.mark.parametrize(
    ("headers", "offers"),
    [
        (["ocpp1.6"], ["ocpp1.6"]),
        (["ocpp2.0.1, ocpp1.6"], ["ocpp2.0.1", "ocpp1.6"]),
        ([",ocpp2.0.1"], ["ocpp2.0.1"]),
        (["ocpp2.0.1,,  ocpp1.6 ,"], ["ocpp2.0.1", "ocpp1.6"]),
        (["ocpp2.0.1", "ocpp1.6"], ["ocpp2.0.1", "ocpp1.6"]),
        ([], []),
        ([" , "], []),
    ],
)
def test_offers_are_read_from_every_header_in_order(headers: list[str], offers: list[str]) -> None:
    assert offered_subprotocols(headers) == offers


def test_the_first_enabled_offer_wins_in_the_clients_order() -> None:
    assert choose_subprotocol(["ocpp2.0.1", "ocpp1.6"], ENABLED, None) == "ocpp2.0.1"
    assert choose_subprotocol(["ocpp1.6", "ocpp2.0.1"], ENABLED, None) == "ocpp1.6"


def test_unknown_and_disabled_offers_are_skipped() -> None:
    assert choose_subprotocol(["ocpp2.1", "ocpp1.6"], ENABLED, None) == "ocpp1.6"
    assert choose_subprotocol(["ocpp2.0.1"], ("ocpp1.6",), None) is None
    assert choose_subprotocol(["OCPP1.6"], ENABLED, None) is None


def test_no_offer_gets_the_default_or_nothing() -> None:
    assert choose_subprotocol([], ENABLED, None) is None
    assert choose_subprotocol([], ENABLED, "ocpp1.6") == "ocpp1.6"
    # The default never overrides an explicit offer.
    assert choose_subprotocol(["ocpp2.1"], ENABLED, "ocpp1.6") is None
