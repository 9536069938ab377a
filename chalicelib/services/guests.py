"""Guest accounts: creation by the venue, and login with throttling of repeated failures."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import PutError, UpdateError

from chalicelib import auth
from chalicelib.config import config
from chalicelib.errors import Conflict, InvalidCredentials, TooManyAttempts
from chalicelib.ids import new_id
from chalicelib.observability import log_event
from chalicelib.services.access import guest_token
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import GuestRecord, LoginAttempts, VenueRecord


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
    try:
        write.commit()
    except AtomicWriteFailed as failure:
        if "guest" in failure.failed:
            raise Conflict("a guest with this email exists at this venue", {"field": "email"}) from None
        raise
    log_event("guest_created", venue_id=venue.venue_id, guest_id=guest.guest_id,
              invitation_id=invitation.notification_id if invitation else None)
    return guest


def login(venue_id: str, email: str, password: str, now: datetime) -> Login:
    """A token for the guest; an unknown venue, unknown email and wrong password all get the
    same answer in about the same time, and repeated failures for one email are throttled."""
    attempts_key = f"{venue_id}#{email}"
    # Count the attempt before checking the password: requests sent in parallel each see the
    # count including the others, so they cannot all slip under the limit together.
    count_attempt(attempts_key, now)
    try:
        guest: GuestRecord | None = GuestRecord.get(venue_id, email)
    except GuestRecord.DoesNotExist:
        guest = None
    if not auth.verify_password(guest.password_hash if guest else None, password) or guest is None:
        log_event("login_failed", venue_id=venue_id)
        raise InvalidCredentials("the email or password is not right")
    _forget_attempt(attempts_key, now)  # a success is not a failure
    token, expires_at = guest_token(venue_id, guest.guest_id, now, int(guest.credential_generation or 0))
    log_event("login_succeeded", venue_id=venue_id, guest_id=guest.guest_id)
    return Login(token=token, expires_at=expires_at, guest=guest)


def count_attempt(key: str, now: datetime) -> None:
    """One atomic ADD per attempt; past the limit, 429 before any password is hashed. The
    lockout window starts with the first attempt and the record expires with it (DynamoDB TTL),
    so counts are shared by every Lambda instance."""
    attempts = LoginAttempts(key)
    try:
        attempts.update(actions=[LoginAttempts.failures.add(1)], condition=LoginAttempts.expires_at > now)
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        # No window open (or only an expired one TTL has not removed yet): start a new one,
        # unless a parallel attempt just did, in which case count this one in it.
        attempts = LoginAttempts(key, failures=1, expires_at=now + timedelta(seconds=config().login_lockout_seconds))
        try:
            attempts.save(condition=LoginAttempts.key.does_not_exist() | (LoginAttempts.expires_at <= now))
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            attempts = LoginAttempts(key)
            attempts.update(actions=[LoginAttempts.failures.add(1)])
    if attempts.failures > config().login_max_failures:
        retry_after = max(1, int(attempts.expires_at.timestamp() - now.timestamp()))
        raise TooManyAttempts("too many failed logins for this email; try again later", retry_after)


def _forget_attempt(key: str, now: datetime) -> None:
    try:
        LoginAttempts(key).update(actions=[LoginAttempts.failures.add(-1)],
                                  condition=(LoginAttempts.expires_at > now) & (LoginAttempts.failures > 0))
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
