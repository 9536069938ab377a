"""Guest tokens: only the exact text we issued verifies; no other spelling of its signature does."""
from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from chalicelib import auth
from chalicelib.errors import Unauthorized

SECRET = "unit-test-secret"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def token() -> tuple[str, str, str]:
    issued, _ = auth.issue_token(SECRET, "venue1", "guest1", NOW, 3600)
    header, payload, signature = issued.split(".")
    return header, payload, signature


def same_bytes_other_last_char(signature: str) -> str:
    """The signature with the unused low bits of its last character changed: Python's decoder
    reads it as the same 32 bytes."""
    value = ALPHABET.index(signature[-1])
    for other in ALPHABET:
        if other != signature[-1] and ALPHABET.index(other) >> 2 == value >> 2:
            changed = signature[:-1] + other
            assert base64.urlsafe_b64decode(changed + "=") == base64.urlsafe_b64decode(signature + "=")
            return changed
    raise AssertionError("no other character carries the same bits")


def test_the_token_as_issued_verifies() -> None:
    header, payload, signature = token()
    claims = auth.read_token(SECRET, f"{header}.{payload}.{signature}", NOW)
    assert (claims.venue_id, claims.guest_id) == ("venue1", "guest1")


@pytest.mark.parametrize("respell", [
    same_bytes_other_last_char,
    lambda s: s + "=",
    lambda s: s + "==",
    lambda s: s + "~",
    lambda s: s + "\n",
    lambda s: s[:10] + " " + s[10:],
    lambda s: s[:10] + "!" + s[10:],
    lambda s: s.translate(str.maketrans("-_", "+/")),  # this signature has both
    lambda s: s + "AA",
], ids=["unused bits changed", "padding", "double padding", "tilde appended", "newline appended",
        "space inside", "bang inside", "standard alphabet", "two characters appended"])
def test_another_spelling_of_the_signature_is_refused(respell) -> None:
    header, payload, signature = token()
    forged = respell(signature)
    assert forged != signature
    with pytest.raises(Unauthorized):
        auth.read_token(SECRET, f"{header}.{payload}.{forged}", NOW)


def test_padding_or_stray_characters_in_the_payload_are_refused() -> None:
    header, payload, signature = token()
    for forged in (f"{header}.{payload}=.{signature}", f"{header}=.{payload}.{signature}",
                   f"{header}.{payload}\u00e9.{signature}"):
        with pytest.raises(Unauthorized):
            auth.read_token(SECRET, forged, NOW)
