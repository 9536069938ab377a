"""Credentials: argon2id password hashes, venue API keys (kept only as digests), and signed guest
tokens (compact JWS, HS256 only). No storage here: callers look records up."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.config import config
from chalicelib.errors import Busy, Unauthorized

_TOKEN_HEADER = {"alg": "HS256", "typ": "JWT"}
# A request waits this long for a free hashing slot before it is told to come back.
HASH_SLOT_WAIT_SECONDS = 0.5
_hash_slots: threading.BoundedSemaphore | None = None
_hash_slots_lock = threading.Lock()


@contextmanager
def _hash_slot() -> Iterator[None]:
    """Caps concurrent argon2id runs per process: each holds 64 MiB, so a burst of logins with
    new emails would otherwise grow memory with the burst. Beyond the cap, a quick 429."""
    global _hash_slots
    with _hash_slots_lock:
        if _hash_slots is None:
            _hash_slots = threading.BoundedSemaphore(config().password_hash_concurrency)
    if not _hash_slots.acquire(timeout=HASH_SLOT_WAIT_SECONDS):
        raise Busy("too many logins at once; try again in a moment")
    try:
        yield
    finally:
        _hash_slots.release()


def _hasher() -> Any:
    from argon2 import PasswordHasher  # argon2 loads only where passwords are handled

    return PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    with _hash_slot():
        return str(_hasher().hash(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if `password` matches. With no hash (unknown email) a dummy hash is checked, so
    the answer takes as long either way and timing does not tell which emails exist."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    known = password_hash is not None
    with _hash_slot():
        try:
            return bool(hasher.verify(password_hash or _dummy_hash(hasher), password)) and known
        except (VerificationError, InvalidHashError):
            return False


def _dummy_hash(hasher: Any) -> str:
    """An encoded argon2id hash at `hasher`'s parameters with a random salt and digest: verifying
    it runs argon2 exactly as a stored hash does (and fails), without first paying for a hash, so
    even a process's first unknown email costs one argon2 run, not two."""
    def b64(size: int) -> str:  # argon2's encoding: standard base64, unpadded
        return base64.b64encode(secrets.token_bytes(size)).rstrip(b"=").decode()

    return (f"$argon2id$v=19$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
            f"${b64(hasher.salt_len)}${b64(hasher.hash_len)}")


@dataclass(frozen=True)
class NewApiKey:
    key_id: str
    api_key: str  # shown once, never stored
    key_hash: str


def api_key_digest(api_key: str) -> str:
    # Keys are 256-bit random, so a fast digest is safe here (no dictionary to attack).
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key(key_id: str) -> NewApiKey:
    api_key = f"rbk_{secrets.token_urlsafe(32)}"
    return NewApiKey(key_id=key_id, api_key=api_key, key_hash=api_key_digest(api_key))


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class GuestClaims:
    venue_id: str
    guest_id: str
    expires_at: datetime
    generation: int = 0  # the guest's credential generation when the token was issued


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _unb64(text: str) -> bytes:
    """Canonical unpadded base64url only: Python's decoder skips unknown characters, accepts
    padding and ignores the unused low bits of the last character, so several texts would decode
    to the same bytes. Only the one text we would have written is accepted."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def issue_token(secret: str, venue_id: str, guest_id: str, now: datetime, ttl_seconds: int,
                generation: int = 0) -> tuple[str, datetime]:
    expires = int(now.timestamp()) + ttl_seconds
    header = _b64(json.dumps(_TOKEN_HEADER, separators=(",", ":")).encode())
    payload = _b64(json.dumps({"sub": guest_id, "venue": venue_id, "iat": int(now.timestamp()),
                               "exp": expires, "gen": generation}, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}", datetime.fromtimestamp(expires, UTC)


def read_token(secret: str, token: str, now: datetime) -> GuestClaims:
    """The claims of a token we signed that has not expired; anything else is 401."""
    invalid = Unauthorized("the token is invalid or has expired; log in again")
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 2048 or not token.isascii():
        raise invalid
    header_b64, payload_b64, signature_b64 = parts
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    # Compared as text with the one encoding we issue, so no other spelling of it verifies.
    if not hmac.compare_digest(signature_b64.encode(), _b64(expected).encode()):
        raise invalid
    try:
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(payload_b64))
    except (ValueError, TypeError):
        raise invalid from None
    if header != _TOKEN_HEADER or not isinstance(claims, dict):
        raise invalid
    expires, guest_id, venue_id = claims.get("exp"), claims.get("sub"), claims.get("venue")
    if not isinstance(expires, int) or not isinstance(guest_id, str) or not isinstance(venue_id, str):
        raise invalid
    generation = claims.get("gen", 0)
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise invalid
    if now.timestamp() >= expires:
        raise invalid
    return GuestClaims(venue_id=venue_id, guest_id=guest_id,
                       expires_at=datetime.fromtimestamp(expires, UTC), generation=generation)


def bearer(authorization: str | None) -> str:
    """The credential of an `Authorization: Bearer ...` header, or 401."""
    if not authorization:
        raise Unauthorized("send Authorization: Bearer <token or api key>")
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send Authorization: Bearer <token or api key>")
    return credential.strip()
