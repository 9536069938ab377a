"""Guests getting into their account without a venue admin's help: password reset links and
invitations for guests created without a password.

A link's token is `<notification id>.<HMAC of venue and notification id>`: the sender derives it
from the notification it sends, so no clear token is ever stored (the guest record keeps its
SHA-256 digest, the notification keeps nothing secret). The guest record holds one digest at a
time, so only the newest link works; using it removes the digest (single use) and bumps the
guest's credential generation, which every older guest token is checked against.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib import auth
from chalicelib.config import config, secret
from chalicelib.errors import InvalidResetToken
from chalicelib.ids import new_id
from chalicelib.observability import log_event
from chalicelib.services import notifications
from chalicelib.services.access import guest_token
from chalicelib.services.guests import Login, count_reset_request
from chalicelib.storage import venue_cache
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import GuestRecord, NotificationRecord, VenueRecord

RESET_LIFETIME = timedelta(minutes=30)
INVITATION_LIFETIME = timedelta(days=7)
_ATTEMPTS = 3


def link_token(notice: NotificationRecord) -> str:
    """The token of the link in a password_reset or guest_invited notice (derived, never stored)."""
    mac = hmac.new(secret("TOKEN_SECRET").encode(), f"account-link:{notice.venue_id}:{notice.notification_id}".encode(),
                   hashlib.sha256).digest()
    return f"{notice.notification_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _link_write(venue: VenueRecord, guest: GuestRecord, kind: str, lifetime: timedelta, now: datetime,
                write: AtomicWrite) -> NotificationRecord:
    """Queue the email and make its link the guest's only working one, in `write`."""
    notice = notifications.account_link(venue, guest, kind, now + lifetime, now)
    write.update("guest", guest, actions=[
        GuestRecord.reset_digest.set(_digest(link_token(notice))), GuestRecord.reset_expires_at.set(now + lifetime),
        GuestRecord.reset_notification_id.set(notice.notification_id)], condition=GuestRecord.guest_id == guest.guest_id)
    notifications.queue(write, notice)
    return notice


def request_reset(venue_id: str, email: str, now: datetime, client_address: str | None = None) -> None:
    """Email a reset link if the guest exists; the answer is the same either way. Throttled like
    login, before anything is looked up.

    An unknown email makes the same write as a known one, for a stand-in guest: the write's
    condition (the guest's id) cannot hold for an item that does not exist, so it changes
    nothing, queues no email, and the answer takes as long as for a real account."""
    count_reset_request(venue_id, email, client_address, now)
    try:
        venue = VenueRecord.get(venue_id)
    except VenueRecord.DoesNotExist:
        venue = VenueRecord(venue_id, name="", timezone="UTC", currency="usd")
    try:
        guest = GuestRecord.get(venue_id, email, consistent_read=True)
        known = True
    except GuestRecord.DoesNotExist:
        guest = GuestRecord(venue_id, email, guest_id=new_id(), name="", created_at=now)
        known = False
    write = AtomicWrite()
    notice = _link_write(venue, guest, "password_reset", RESET_LIFETIME, now, write)
    try:
        write.commit()
    except AtomicWriteFailed:  # an unknown email, or the guest vanished meanwhile
        known = False
    if not known:
        log_event("password_reset_unknown", venue_id=venue_id)
        return
    log_event("password_reset_requested", venue_id=venue_id, guest_id=guest.guest_id,
              notification_id=notice.notification_id)


def invite(venue: VenueRecord, guest: GuestRecord, now: datetime, write: AtomicWrite) -> NotificationRecord:
    """The invitation of a guest created without a password, in the write that creates it."""
    notice = notifications.account_link(venue, guest, "guest_invited", now + INVITATION_LIFETIME, now)
    guest.reset_digest = _digest(link_token(notice))
    guest.reset_expires_at = now + INVITATION_LIFETIME
    guest.reset_notification_id = notice.notification_id
    notifications.queue(write, notice)
    return notice


@dataclass(frozen=True)
class _Ticket:
    venue: VenueRecord
    guest: GuestRecord


def _ticket(venue_id: str, token: str, now: datetime) -> _Ticket:
    invalid = InvalidResetToken("this link is unknown, used or expired; ask for a new one")
    notification_id, dot, mac = token.partition(".")
    if not dot or not mac or len(token) > 200 or not notification_id.isalnum():
        raise invalid
    notice = notifications.load(venue_id, notification_id)  # another venue's link is not found here
    if notice is None or notice.kind not in ("password_reset", "guest_invited"):
        raise invalid
    if not hmac.compare_digest(link_token(notice), token):
        raise invalid
    try:
        guest = GuestRecord.get(venue_id, notice.facts["email"], consistent_read=True)
        venue = VenueRecord.get(venue_id, consistent_read=True)
    except (GuestRecord.DoesNotExist, VenueRecord.DoesNotExist):
        raise invalid from None
    if (guest.guest_id != notice.guest_id or guest.reset_digest is None
            or not hmac.compare_digest(guest.reset_digest, _digest(token))
            or guest.reset_expires_at is None or guest.reset_expires_at <= now):
        raise invalid
    return _Ticket(venue=venue, guest=guest)


def confirm(venue_id: str, token: str, password: str, now: datetime) -> Login:
    """Set the password with a link's token, log the guest in, and refuse every token issued
    before. The guest's digest is the condition: a second use, or a newer link, fails it."""
    for _ in range(_ATTEMPTS):
        ticket = _ticket(venue_id, token, now)
        guest, venue = ticket.guest, ticket.venue
        generation = int(guest.credential_generation or 0) + 1
        write = AtomicWrite()
        write.update("guest", guest, actions=[
            GuestRecord.password_hash.set(auth.hash_password(password)),
            GuestRecord.credential_generation.set(generation), GuestRecord.reset_digest.remove(),
            GuestRecord.reset_expires_at.remove(), GuestRecord.reset_notification_id.remove()],
            condition=GuestRecord.reset_digest == guest.reset_digest)
        write.update("venue", venue, actions=[VenueRecord.token_generations.set(
            _generations_after(venue, guest.guest_id, generation, now))],
            condition=_generations_unchanged(venue))
        try:
            write.commit()
        except AtomicWriteFailed as failure:
            if "guest" in failure.failed:
                raise InvalidResetToken("this link is unknown, used or expired; ask for a new one") from None
            continue  # another guest's reset at this venue wrote the list meanwhile: read it again
        venue_cache.forget(venue_id)  # this Lambda refuses the older tokens at once; others within seconds
        token_text, expires_at = guest_token(venue_id, guest.guest_id, now, generation)
        log_event("password_reset_confirmed", venue_id=venue_id, guest_id=guest.guest_id,
                  credential_generation=generation)
        return Login(token=token_text, expires_at=expires_at, guest=guest)
    raise InvalidResetToken("the password could not be saved now; try the link again")


def _generations_after(venue: VenueRecord, guest_id: str, generation: int,
                       now: datetime) -> dict[str, dict[str, float]]:
    """The venue's list with this guest's new generation; entries older than a token's lifetime
    are dropped, as every token they refuse has expired anyway (so the list stays small)."""
    horizon = now.timestamp() - config().token_ttl_seconds
    kept = {gid: entry for gid, entry in _generations(venue).items() if float(entry.get("at", 0)) >= horizon}
    kept[guest_id] = {"generation": generation, "at": int(now.timestamp())}
    return kept


def _generations(venue: VenueRecord) -> dict[str, dict[str, float]]:
    return dict(venue.token_generations or {})


def _generations_unchanged(venue: VenueRecord) -> Any:
    if venue.token_generations is None:
        return VenueRecord.token_generations.does_not_exist()
    return VenueRecord.token_generations == venue.token_generations

