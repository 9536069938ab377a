"""Who is calling: the platform key, a venue key, or a guest token, and what each may touch."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib import auth
from chalicelib.config import config, secret
from chalicelib.errors import Forbidden, NotFound, Unauthorized
from chalicelib.storage.models import ApiKeyRecord, VenueRecord


@dataclass(frozen=True)
class Admin:
    venue_id: str | None  # None: the platform key, which may do everything
    key_id: str

    @property
    def is_platform(self) -> bool:
        return self.venue_id is None

    @property
    def actor(self) -> str:
        return f"admin:{self.key_id}"


def authenticate_admin(authorization: str | None) -> Admin:
    credential = auth.bearer(authorization)
    if auth.same_secret(credential, secret("ADMIN_API_KEY")):
        return Admin(venue_id=None, key_id="platform")
    if not credential.startswith("rbk_") or len(credential) > 128:
        raise Unauthorized("the API key is not valid")
    try:
        record = ApiKeyRecord.get(auth.api_key_digest(credential))
    except ApiKeyRecord.DoesNotExist:
        raise Unauthorized("the API key is not valid") from None
    return Admin(venue_id=record.venue_id, key_id=record.key_id)


def require_platform(admin: Admin) -> None:
    if not admin.is_platform:
        raise Forbidden("only the platform key may do this")


def admin_venue(authorization: str | None, venue_id: str) -> tuple[Admin, VenueRecord]:
    """The calling admin and the venue it may manage; a venue key on another venue is 403."""
    admin = authenticate_admin(authorization)
    if not admin.is_platform and admin.venue_id != venue_id:
        raise Forbidden("this API key may manage only its own venue")
    return admin, load_venue(venue_id)


def load_venue(venue_id: str) -> VenueRecord:
    try:
        return VenueRecord.get(venue_id)
    except VenueRecord.DoesNotExist:
        raise NotFound("no such venue") from None


def authenticate_guest(authorization: str | None, now: datetime) -> auth.GuestClaims:
    return auth.read_token(secret("TOKEN_SECRET"), auth.bearer(authorization), now)


def guest_token(venue_id: str, guest_id: str, now: datetime, generation: int = 0) -> tuple[str, datetime]:
    return auth.issue_token(secret("TOKEN_SECRET"), venue_id, guest_id, now, config().token_ttl_seconds,
                            generation)


def require_current_token(claims: auth.GuestClaims, venue: VenueRecord) -> None:
    """401 for a token issued before the guest's last password reset. The venue record, which
    guest requests read anyway, lists the generation each recently reset guest must carry, so
    this costs no read of its own (see docs/operations.md, "Password resets and tokens")."""
    entry = (venue.token_generations or {}).get(claims.guest_id)
    if entry and claims.generation < int(entry.get("generation", 0)):
        raise Unauthorized("the token is invalid or has expired; log in again")


def webhook_secrets() -> list[str]:
    """The signing secrets of our Stripe webhook endpoints, comma-separated in one secret: the
    platform account's endpoint and the Connect endpoint (events of connected accounts) each have one."""
    return [part.strip() for part in secret("STRIPE_WEBHOOK_SECRET").split(",") if part.strip()]
