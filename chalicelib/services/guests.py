"""Guest accounts: creation by the venue, and login with throttling of repeated failures per
email and client address."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import auth
from chalicelib.config import config
from chalicelib.errors import Busy, Conflict, InvalidCredentials, TooManyAttempts
from chalicelib.ids import new_id
from chalicelib.observability import log_event
from chalicelib.services.access import guest_token
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.conditional import save_if, update_if
from chalicelib.storage.models import GuestRecord, Locator, LoginAttempts, VenueRecord


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: datetime
    guest: GuestRecord


def create_guest(venue: VenueRecord, email: str, name: str, now: datetime, password: str | None = None) -> GuestRecord:
    """A guest with a password, or, without one, a guest who is emailed an invitation to set it
    (and cannot log in before): the guest and the invitation are written together."""
    from chalicelib.services import account_access

    guest = GuestRecord(venue_id=venue.venue_id, email=email, guest_id=new_id(), name=name,
                        password_hash=auth.hash_password(password) if password is not None else None,
                        created_at=now, credential_generation=0)
    write = AtomicWrite()
    invitation = account_access.invite(venue, guest, now, write) if password is None else None
    write.put("guest", guest, condition=GuestRecord.email.does_not_exist())
    # So that a purchase for this guest a moment later finds it by key, not through a lagging index.
    write.put("locator", Locator(f"guest#{guest.guest_id}", venue_id=venue.venue_id, email=guest.email),
              condition=Locator.key.does_not_exist())
    try:
        write.commit()
    except AtomicWriteFailed as failure:
        if "guest" in failure.failed:
            raise Conflict("a guest with this email exists at this venue", {"field": "email"}) from None
        raise
    log_event("guest_created", venue_id=venue.venue_id, guest_id=guest.guest_id,
              invitation_id=invitation.notification_id if invitation else None)
    return guest


def guest_of_venue(venue_id: str, guest_id: str) -> GuestRecord | None:
    """The guest, if `guest_id` is a guest of this venue, read by key only for every guest created
    with a locator (an index may still lag its creation); older guests are found through the
    guest-id index, long caught up."""
    locator = Locator.find(f"guest#{guest_id}")
    if locator is not None and locator.venue_id != venue_id:
        return None
    if locator is not None and locator.email:
        keys = [(venue_id, locator.email)]
    else:
        keys = [(guest.venue_id, guest.email) for guest in GuestRecord.by_id.query(guest_id, limit=1)]
    for key in keys:
        try:
            guest = GuestRecord.get(*key, consistent_read=True)
        except GuestRecord.DoesNotExist:
            return None
        return guest if guest.venue_id == venue_id and guest.guest_id == guest_id else None
    return None


def login(venue_id: str, email: str, password: str, now: datetime, client_address: str | None = None) -> Login:
    """A token for the guest; an unknown venue, unknown email and wrong password all get the
    same answer in about the same time.

    Failures are throttled per (email, client address): one address guessing locks out only
    itself, never the guest at their own address. Across all addresses an email has a looser
    ceiling; past it the email is under attack, and an address that has not logged in as this
    guest lately gets one try per window instead of several. That slows a spread-out attack to
    one guess per address per window and never locks out the guest, who gets in with the right
    password at the first try from anywhere."""
    email_key = f"{venue_id}#{email}"
    address_key = f"{email_key}#{_address_digest(client_address)}"
    # Count the attempt before checking the password: requests sent in parallel each see the
    # count including the others, so they cannot all slip under the limit together.
    attempts = _count_attempt(address_key, now)
    if attempts.failures > 1 and _under_attack(email_key, now) and not _known_address(address_key, now):
        log_event("login_throttled", venue_id=venue_id, reason="email_under_attack")
        raise _too_many(attempts, now)
    try:
        guest: GuestRecord | None = GuestRecord.get(venue_id, email)
    except GuestRecord.DoesNotExist:
        guest = None
    try:
        verified = auth.verify_password(guest.password_hash if guest else None, password)
    except Busy:
        _forget_attempt(address_key, now)  # the password was never checked: not a failure
        raise
    if not verified or guest is None:
        _count_window(email_key, now)
        log_event("login_failed", venue_id=venue_id)
        raise InvalidCredentials("the email or password is not right")
    _forget_attempt(address_key, now)  # a success is not a failure
    _remember_address(address_key, now)
    token, expires_at = guest_token(venue_id, guest.guest_id, now, int(guest.credential_generation or 0))
    log_event("login_succeeded", venue_id=venue_id, guest_id=guest.guest_id)
    return Login(token=token, expires_at=expires_at, guest=guest)


def count_reset_request(venue_id: str, email: str, client_address: str | None, now: datetime) -> None:
    """Reset links are throttled like logins, in windows of their own: per (email, client address)
    at the login limit, and per email at the looser per-email ceiling, so nobody floods a
    guest's inbox from many addresses. Counted whether or not the email is known (a 429 tells
    nothing about it)."""
    email_key = f"reset#{venue_id}#{email}"
    _count_attempt(f"{email_key}#{_address_digest(client_address)}", now, what=_RESETS)
    _count_attempt(email_key, now, limit=config().login_email_max_failures, what=_RESETS)


def _address_digest(client_address: str | None) -> str:
    # Keys name the address only by a digest: the throttle needs to tell addresses apart, not
    # to keep where guests log in from.
    return hashlib.sha256((client_address or "unknown").encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class _Throttled:
    """What a throttle counts: its log event and what the 429 tells the guest."""
    event: str
    message: str


_LOGINS = _Throttled("login_throttled", "too many failed logins for this email; try again later")
_RESETS = _Throttled("password_reset_throttled", "too many reset links asked for this email; try again later")


def _count_attempt(key: str, now: datetime, limit: int | None = None, what: _Throttled = _LOGINS) -> LoginAttempts:
    """Counts one attempt under `key`; past `limit` (the per-address limit unless given), 429
    before any password is hashed."""
    attempts = _count_window(key, now)
    if attempts.failures > (config().login_max_failures if limit is None else limit):
        log_event(what.event, reason="too_many_failures")
        raise _too_many(attempts, now, what)
    return attempts


def _too_many(attempts: LoginAttempts, now: datetime, what: _Throttled = _LOGINS) -> TooManyAttempts:
    retry_after = max(1, int(attempts.expires_at.timestamp() - now.timestamp()))
    return TooManyAttempts(what.message, retry_after)


def _count_window(key: str, now: datetime) -> LoginAttempts:
    """One atomic ADD per attempt in the window open under `key`. The window starts with the
    first attempt and the record expires with it (DynamoDB TTL), so counts are shared by every
    Lambda instance."""
    attempts = LoginAttempts(key)
    if update_if(attempts, [LoginAttempts.failures.add(1)], LoginAttempts.expires_at > now):
        return attempts
    # No window open (or only an expired one TTL has not removed yet): start a new one,
    # unless a parallel attempt just did, in which case count this one in it.
    attempts = LoginAttempts(key, failures=1, expires_at=now + timedelta(seconds=config().login_lockout_seconds))
    if not save_if(attempts, LoginAttempts.key.does_not_exist() | (LoginAttempts.expires_at <= now)):
        attempts = LoginAttempts(key)
        attempts.update(actions=[LoginAttempts.failures.add(1)])
    return attempts


def _under_attack(email_key: str, now: datetime) -> bool:
    try:
        failures = LoginAttempts.get(email_key, consistent_read=True)
    except LoginAttempts.DoesNotExist:
        return False
    return failures.expires_at > now and failures.failures >= config().login_email_max_failures


def _known_address(address_key: str, now: datetime) -> bool:
    try:
        known = LoginAttempts.get(f"{address_key}#known", consistent_read=True)
    except LoginAttempts.DoesNotExist:
        return False
    return known.expires_at > now


def _remember_address(address_key: str, now: datetime) -> None:
    LoginAttempts(f"{address_key}#known", failures=0,
                  expires_at=now + timedelta(days=config().login_known_address_days)).save()


def _forget_attempt(key: str, now: datetime) -> None:
    update_if(LoginAttempts(key), [LoginAttempts.failures.add(-1)],
              (LoginAttempts.expires_at > now) & (LoginAttempts.failures > 0))
