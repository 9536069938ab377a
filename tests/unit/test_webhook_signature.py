"""Stripe webhook signatures: only a fresh event signed with our secret is believed."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from chalicelib.payments import InvalidWebhook, verify_webhook

SECRET = "whsec_test_secret"
NOW = 1_780_000_000.0
EVENT = json.dumps({"id": "evt_1", "type": "refund.updated", "data": {"object": {"id": "re_1"}}}).encode()


def sign(payload: bytes, timestamp: float = NOW, secret: str = SECRET) -> str:
    signed = f"{int(timestamp)}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def test_a_signed_event_is_believed() -> None:
    header = f"t={int(NOW)},v1={sign(EVENT)}"

    assert verify_webhook(EVENT, header, SECRET, now=NOW)["id"] == "evt_1"


def test_any_of_several_signatures_may_match_while_a_secret_is_rolled() -> None:
    header = f"t={int(NOW)},v1={sign(EVENT, secret='whsec_old')},v1={sign(EVENT)},v0=legacy"

    assert verify_webhook(EVENT, header, SECRET, now=NOW)["type"] == "refund.updated"


def test_a_tampered_payload_is_rejected() -> None:
    header = f"t={int(NOW)},v1={sign(EVENT)}"

    with pytest.raises(InvalidWebhook):
        verify_webhook(EVENT.replace(b"re_1", b"re_2"), header, SECRET, now=NOW)


def test_an_event_signed_with_another_secret_is_rejected() -> None:
    with pytest.raises(InvalidWebhook):
        verify_webhook(EVENT, f"t={int(NOW)},v1={sign(EVENT, secret='whsec_other')}", SECRET, now=NOW)


@pytest.mark.parametrize("header", [None, ""])
def test_an_event_without_a_signature_header_is_rejected(header: str | None) -> None:
    with pytest.raises(InvalidWebhook):
        verify_webhook(EVENT, header, SECRET, now=NOW)


def test_an_event_without_a_v1_signature_is_rejected() -> None:
    with pytest.raises(InvalidWebhook):
        verify_webhook(EVENT, f"t={int(NOW)},v0={sign(EVENT)}", SECRET, now=NOW)


def test_an_event_without_a_timestamp_is_rejected() -> None:
    with pytest.raises(InvalidWebhook):
        verify_webhook(EVENT, f"v1={sign(EVENT)}", SECRET, now=NOW)


def test_a_replayed_old_event_is_rejected() -> None:
    signed_at = NOW - 301
    with pytest.raises(InvalidWebhook):
        verify_webhook(EVENT, f"t={int(signed_at)},v1={sign(EVENT, signed_at)}", SECRET, now=NOW)


def test_an_event_exactly_at_the_tolerance_is_believed() -> None:
    signed_at = NOW - 300

    assert verify_webhook(EVENT, f"t={int(signed_at)},v1={sign(EVENT, signed_at)}", SECRET, now=NOW)


def test_an_event_from_the_future_beyond_the_tolerance_is_rejected() -> None:
    signed_at = NOW + 301
    with pytest.raises(InvalidWebhook):
        verify_webhook(EVENT, f"t={int(signed_at)},v1={sign(EVENT, signed_at)}", SECRET, now=NOW)


def test_a_signed_payload_that_is_not_json_is_rejected() -> None:
    payload = b"not json"
    with pytest.raises(InvalidWebhook):
        verify_webhook(payload, f"t={int(NOW)},v1={sign(payload)}", SECRET, now=NOW)


def test_an_event_signed_by_either_of_our_endpoints_is_believed() -> None:
    """The platform account's endpoint and the Connect endpoint each sign with their own secret."""
    connect = "whsec_connect_endpoint"
    header = f"t={int(NOW)},v1={sign(EVENT, secret=connect)}"

    assert verify_webhook(EVENT, header, [SECRET, connect], now=NOW)["id"] == "evt_1"
    with pytest.raises(InvalidWebhook):
        verify_webhook(EVENT, header, [SECRET], now=NOW)
