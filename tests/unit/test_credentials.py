"""Credentials: argon2id passwords, API keys kept only as digests, signed guest tokens."""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import auth
from chalicelib.errors import Unauthorized

NOW = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "a-test-secret"


def test_passwords_are_hashed_with_argon2id_and_verified() -> None:
    hashed = auth.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert auth.verify_password(hashed, "correct horse battery")
    assert not auth.verify_password(hashed, "wrong horse battery")


def test_an_unknown_account_never_verifies() -> None:
    assert not auth.verify_password(None, "anything")


def test_an_api_key_is_stored_only_as_its_digest() -> None:
    key = auth.new_api_key("key-1")
    assert key.api_key.startswith("rbk_") and len(key.api_key) > 40
    assert key.key_hash == auth.api_key_digest(key.api_key) and key.api_key not in key.key_hash
    assert auth.new_api_key("key-2").api_key != key.api_key


def test_a_token_carries_its_venue_and_guest_until_it_expires() -> None:
    token, expires = auth.issue_token(SECRET, "venue-1", "guest-1", NOW, 3600)
    claims = auth.read_token(SECRET, token, NOW + timedelta(minutes=59))
    assert (claims.venue_id, claims.guest_id, claims.expires_at) == ("venue-1", "guest-1", expires)
    with pytest.raises(Unauthorized):
        auth.read_token(SECRET, token, NOW + timedelta(hours=1))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tampered_foreign_and_unsigned_tokens_are_refused() -> None:
    token, _ = auth.issue_token(SECRET, "venue-1", "guest-1", NOW, 3600)
    header, payload, signature = token.split(".")
    forged_payload = _b64({"sub": "guest-2", "venue": "venue-1", "iat": 0, "exp": 2_000_000_000})
    candidates = [
        f"{header}.{forged_payload}.{signature}",
        auth.issue_token("another-secret", "venue-1", "guest-1", NOW, 3600)[0],
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}",
        "not-a-token", "", "a.b.c",
    ]
    for candidate in candidates:
        with pytest.raises(Unauthorized):
            auth.read_token(SECRET, candidate, NOW)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer   "])
def test_the_authorization_header_must_be_a_bearer_credential(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        auth.bearer(header)
