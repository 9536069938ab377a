"""Emails to guests, exactly once: the outbox and its sender.

A service that changes something a guest should hear about builds a notice here (`session_changed`,
`sessions_cancelled`, `refund_settled`, `slot_closed`, `account_link`) and puts it into the same
atomic write as the change (`queue`): a change that does not commit queues nothing. The
notifications table's stream hands every new notice to `deliver`, which claims it (queued ->
sending, conditional), sends it through SES and marks it sent (conditional on its own claim), so
a duplicate delivery, a retry or a crash after SES answered sends nothing more. `resend_stale`
picks up what the stream could not deliver.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.update import Action

from chalicelib.config import config
from chalicelib.emails import wording
from chalicelib.errors import InvalidRequest
from chalicelib.ids import new_id
from chalicelib.observability import log_error, log_event
from chalicelib.parts import MailSender
from chalicelib.storage.atomic import AtomicWrite
from chalicelib.storage.conditional import update_if
from chalicelib.storage.models import GuestRecord, NotificationRecord, SlotRecord, VenueRecord
from chalicelib.storage.reads import Key, read_many
from chalicelib.storage.shards import shard_of
from chalicelib.times import format_utc

UNSENT_SHARDS = 4
# How long the sweeper keeps trying a notice SES will not take (busy, throttled, down) before it is
# given up as failed: an email about a change is no use days later.
GIVE_UP_AFTER = timedelta(hours=24)
# A claim older than this belongs to an attempt that has ended (the sender's timeout is far
# shorter): nobody will finish it, and nobody can know whether SES sent it.
CLAIM_EXPIRES = timedelta(minutes=10)
# Guests are never deleted, so a guest the `guest-id` index does not show is almost always one
# created a moment ago whose entry has not reached that index yet (global indexes are eventually
# consistent: usually well under a second, longer when DynamoDB is busy). A notice that young is
# tried again, writing nothing; only one older than this is given up as `guest_unknown`. Ten
# minutes covers the stream's retries and at least one sweep (`NOTIFICATION_RESEND_AFTER_SECONDS`).
GUEST_INDEX_GRACE = timedelta(minutes=10)


class RetryLater(Exception):
    """SES was busy or unavailable, or the guest's index entry has not arrived yet, and nothing
    was sent: the stream (or the sweeper) delivers the notice again."""


# --- Building notices (in the request that makes the change) ---------------------------------

def _venue_facts(venue: VenueRecord) -> dict[str, Any]:
    return {"venue_id": venue.venue_id, "venue_name": venue.name, "timezone": venue.timezone,
            "currency": venue.currency}


def _notice(venue: VenueRecord, guest_id: str, kind: str, facts: dict[str, Any], now: datetime) -> NotificationRecord:
    facts = {**_venue_facts(venue), **facts}
    notification_id = new_id()
    return NotificationRecord(
        venue_id=venue.venue_id, notification_id=notification_id, kind=kind, guest_id=guest_id,
        guest_key=f"{venue.venue_id}#{guest_id}", subject=wording.subject(kind, facts), facts=facts,
        status="queued", created_at=now, attempts=0, unsent_shard=shard_of(notification_id, UNSENT_SHARDS))


def notifies_guests(venue: VenueRecord) -> bool:
    """The venue's `notify_guests` setting (on for venues saved before it existed)."""
    return venue.settings().notify_guests


def _change_notice(venue: VenueRecord, guest_id: str, kind: str, facts: dict[str, Any],
                   now: datetime) -> NotificationRecord | None:
    return _notice(venue, guest_id, kind, facts, now) if notifies_guests(venue) else None


def session_view(product_name: str, participant_name: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"product_name": product_name, "participant_name": participant_name, "start": format_utc(start),
            "end": format_utc(end)}


def session_changed(venue: VenueRecord, guest_id: str, transaction_id: str, session_id: str,
                    before: dict[str, Any], after: dict[str, Any], now: datetime, by_staff: bool = False,
                    reason: str | None = None) -> NotificationRecord | None:
    """A move or rename. `before`/`after` are `session_view(...)`s of the session."""
    return _change_notice(venue, guest_id, "session_changed", {
        "transaction_id": transaction_id, "session_id": session_id, "before": before, "after": after,
        "by_staff": by_staff, "reason": reason}, now)


def sessions_cancelled(venue: VenueRecord, guest_id: str, transaction_id: str, sessions: list[dict[str, Any]],
                       refund_amount: int, now: datetime, by_staff: bool = False,
                       reason: str | None = None) -> NotificationRecord | None:
    """One cancellation request. `sessions`: `session_view(...)` plus `amount`, `refunded`, and
    `refund_amount` and `fee_amount` (what comes back, what the venue keeps)."""
    return _change_notice(venue, guest_id, "sessions_cancelled", {
        "transaction_id": transaction_id, "sessions": sessions, "refund_amount": refund_amount,
        "by_staff": by_staff, "reason": reason}, now)


def refund_settled(venue: VenueRecord, guest_id: str, transaction_id: str, refund_id: str, amount: int,
                   refunded: bool, now: datetime) -> NotificationRecord | None:
    return _change_notice(venue, guest_id, "refund_refunded" if refunded else "refund_failed", {
        "transaction_id": transaction_id, "refund_id": refund_id, "amount": amount}, now)


def slot_closed(venue: VenueRecord, guest_id: str, transaction_id: str, slot: SlotRecord,
                participant_names: list[str], refund_amount: int, reason: str,
                now: datetime) -> NotificationRecord | None:
    """The one email of one transaction whose sessions in `slot` the venue cancelled by closing it.
    Queue it (`queue(write, ...)`) in the write that cancels those sessions."""
    return _change_notice(venue, guest_id, "slot_closed", {
        "transaction_id": transaction_id, "product_name": slot.product_name, "start": format_utc(slot.start),
        "end": format_utc(slot.end), "participants": participant_names, "refund_amount": refund_amount,
        "reason": reason}, now)


def account_link(venue: VenueRecord, guest: GuestRecord, kind: str, expires_at: datetime,
                 now: datetime) -> NotificationRecord:
    """A password_reset or guest_invited email. It holds no secret: the sender derives the link's
    token from the notification id (see `chalicelib.services.account_access`)."""
    return _notice(venue, guest.guest_id, kind, {"email": guest.email, "guest_name": guest.name,
                                                 "expires_at": format_utc(expires_at)}, now)


def queue(write: AtomicWrite, notice: NotificationRecord | None) -> None:
    """Put `notice` into `write`: it exists if and only if the change commits."""
    if notice is not None:
        write.put(f"notification:{notice.notification_id}", notice,
                  condition=NotificationRecord.notification_id.does_not_exist())


# --- Sending (the stream's handler and the sweeper) ------------------------------------------

@dataclass(frozen=True)
class StreamNotice:
    venue_id: str
    notification_id: str

    @classmethod
    def parse(cls, record: dict[str, Any]) -> StreamNotice | None:
        """The notice a stream record announces; None for what is not a new notice (our own
        status updates come through the stream too)."""
        if record.get("eventName") != "INSERT":
            return None
        keys = record["dynamodb"]["Keys"]
        return cls(venue_id=keys["venue_id"]["S"], notification_id=keys["notification_id"]["S"])


def deliver_from_stream(record: dict[str, Any], now: datetime, mail: MailSender) -> str:
    """Send the notice a stream record announces. The record carries the notice as its change
    wrote it (NEW_IMAGE), so it is not read again: it is sent from that copy when its claim
    (conditional on `queued`) proves nobody has taken it. Whatever else (a replayed record of a
    notice sent since, one being sent, no guest, a render failure) is decided by `deliver` on the
    stored notice, exactly as without the copy."""
    notice = StreamNotice.parse(record)
    if notice is None:
        return "not_a_new_notice"
    image = record["dynamodb"].get("NewImage")
    if image:
        written = NotificationRecord.from_raw_data(image)
        ready = _prepare(written)
        if isinstance(ready, _Ready) and _claim(written, now):
            return _send_claimed(written, ready, now, _ids(written), mail)
    return deliver(notice.venue_id, notice.notification_id, now, mail)


def load(venue_id: str, notification_id: str) -> NotificationRecord | None:
    try:
        return NotificationRecord.get(venue_id, notification_id, consistent_read=True)
    except NotificationRecord.DoesNotExist:
        return None


def deliver(venue_id: str, notification_id: str, now: datetime, mail: MailSender) -> str:
    """Send one notice if nobody has; returns what happened. Raises RetryLater when SES asks
    to come back, or the guest is not in its index yet, so the notice is delivered again."""
    notice = load(venue_id, notification_id)
    if notice is None:
        log_error("notification_unknown", venue_id=venue_id, notification_id=notification_id)
        return "unknown"
    ids = _ids(notice)
    if notice.status in ("sent", "failed"):
        log_event("notification_already_settled", status=notice.status, **ids)
        return "already_settled"
    if notice.status == "sending":
        if notice.claimed_at is not None and now - notice.claimed_at > CLAIM_EXPIRES:
            _settle_failed(notice, "delivery_unknown", now, ids)
            return "failed"
        log_event("notification_in_progress", **ids)
        return "in_progress"
    return _send(notice, now, ids, mail)


def _ids(notice: NotificationRecord) -> dict[str, Any]:
    """What every log line about a notice names."""
    return {"venue_id": notice.venue_id, "notification_id": notice.notification_id, "kind": notice.kind,
            "guest_id": notice.guest_id, "transaction_id": notice.facts.get("transaction_id")}


def _claim(notice: NotificationRecord, now: datetime) -> bool:
    return update_if(notice, [NotificationRecord.status.set("sending"), NotificationRecord.claimed_at.set(now),
                              NotificationRecord.attempts.add(1)],
                     condition=NotificationRecord.status == "queued")


@dataclass(frozen=True)
class _Ready:
    """A notice's email, built: to whom, and the message SES is given."""
    to: str
    message: Any


def _prepare(notice: NotificationRecord) -> _Ready | Exception | None:
    """Everything that cannot send twice, done before any claim: the address and the rendering.
    None: no address for the guest (yet); an exception: what the rendering raised. Writes nothing."""
    from chalicelib.emails import rendering, ses  # jinja2 and the MIME message: only the sender pays for them

    recipient = _recipient(notice)
    if recipient is None:
        return None
    try:
        email = rendering.render(notice.kind, notice.facts, _links(notice))
        return _Ready(recipient, ses.message(sender_name=notice.facts["venue_name"], to=recipient,
                                             subject=notice.subject, text=email.text, html=email.html))
    except Exception as error:  # what cannot be rendered (or put in headers) now never will
        return error


def _send(notice: NotificationRecord, now: datetime, ids: dict[str, Any], mail: MailSender) -> str:
    """The stored notice, queued: prepared, claimed, sent through SES and marked sent."""
    ready = _prepare(notice)
    if ready is None:
        if now - notice.created_at < GUEST_INDEX_GRACE:  # nothing claimed, nothing written
            log_event("notification_guest_not_indexed", **ids)
            raise RetryLater("guest_not_indexed")
        _settle_failed(notice, "guest_unknown", now, ids)
        return "failed"
    if isinstance(ready, Exception):  # say so, once
        log_error("notification_render_failed", error=repr(ready), **ids)
        _settle_failed(notice, "render_failed", now, ids)
        return "failed"
    if not _claim(notice, now):
        log_event("notification_claimed_elsewhere", **ids)
        return "in_progress"
    return _send_claimed(notice, ready, now, ids, mail)


def _send_claimed(notice: NotificationRecord, ready: _Ready, now: datetime, ids: dict[str, Any],
                  mail: MailSender) -> str:
    """SES and the `sent` mark, for a notice this attempt has claimed."""
    from chalicelib.emails import ses

    try:
        message_id = mail.send(ready.message, to=ready.to)
    except ses.Busy as busy:
        _release(notice, now)
        log_event("notification_retry", code=busy.code, attempts=int(notice.attempts or 0) + 1, **ids)
        raise RetryLater(busy.code) from None
    except ses.Refused as refused:
        _settle_failed(notice, refused.code, now, ids, to=ready.to)
        return "failed"
    # Anything else (a timeout, a dropped connection, a crash) leaves the claim: SES may have
    # sent it, so it is never sent again; the sweeper reports it once the claim has expired.
    _settle_sent(notice, ready.to, message_id, now, ids)
    return "sent"


# A guest's address is half of its key (venue, email) and guests are never deleted: the address
# found for a guest never changes, so a warm sender keeps it instead of querying for every email
# (a cancellation sends two). Bounded: emptied when full.
_ADDRESSES: dict[tuple[str, str], str] = {}
ADDRESSES_KEPT = 10_000


def _recipient(notice: NotificationRecord) -> str | None:
    if "email" in notice.facts:  # account emails name the address the guest gave
        return str(notice.facts["email"])
    key = (notice.venue_id, notice.guest_id)
    found = _ADDRESSES.get(key)
    if found is None:
        for guest in GuestRecord.by_id.query(notice.guest_id, limit=1):
            if guest.venue_id == notice.venue_id:
                found = str(guest.email)
        if found is None:
            return None
        if len(_ADDRESSES) >= ADDRESSES_KEPT:
            _ADDRESSES.clear()
        _ADDRESSES[key] = found
    return found


def _links(notice: NotificationRecord) -> dict[str, str]:
    base, venue_id = config().portal_url, notice.venue_id
    links = {"portal": f"{base}/?venue={venue_id}"}
    if notice.kind in ("password_reset", "guest_invited"):
        from chalicelib.services.account_access import link_token

        welcome = "&welcome=1" if notice.kind == "guest_invited" else ""
        links["account"] = f"{base}/reset.html?venue={venue_id}&token={link_token(notice)}{welcome}"
    return links


def _settle_sent(notice: NotificationRecord, to: str, message_id: str, now: datetime, ids: dict[str, Any]) -> None:
    notice.update(actions=[NotificationRecord.status.set("sent"), NotificationRecord.sent_at.set(now),
                           NotificationRecord.to.set(to), NotificationRecord.ses_message_id.set(message_id),
                           NotificationRecord.unsent_shard.remove()],
                  condition=(NotificationRecord.status == "sending")
                  & (NotificationRecord.claimed_at == notice.claimed_at))
    log_event("notification_sent", ses_message_id=message_id, **ids)


def _release(notice: NotificationRecord, now: datetime) -> None:
    """SES refused for now and sent nothing: back to queued for the next delivery."""
    # Not written when the claim is no longer ours: its holder, or the sweeper, decides.
    update_if(notice, [NotificationRecord.status.set("queued")],
              condition=(NotificationRecord.status == "sending") & (NotificationRecord.claimed_at == notice.claimed_at))


def _settle_failed(notice: NotificationRecord, code: str, now: datetime, ids: dict[str, Any],
                   to: str | None = None) -> None:
    actions: list[Action] = [NotificationRecord.status.set("failed"), NotificationRecord.failure_code.set(code),
                             NotificationRecord.unsent_shard.remove()]
    if to:
        actions.append(NotificationRecord.to.set(to))
    if not update_if(notice, actions, condition=NotificationRecord.status.is_in("queued", "sending")):
        return
    # One line per failed email: infra counts these as the NotificationsFailed metric and alarms.
    log_error("notification_failed", failure_code=code, **ids)


def resend_stale(now: datetime, mail: MailSender) -> dict[str, int]:
    """Deliver again every notice still unsent some minutes after it was queued: the stream's
    retries ran out, or its sender was down. A notice that keeps failing is given up as failed."""
    cutoff = now - timedelta(seconds=config().notification_resend_after_seconds)
    outcomes: dict[str, int] = {}
    for shard in range(UNSENT_SHARDS):
        for stale in NotificationRecord.unsent.query(shard, NotificationRecord.created_at < cutoff):
            notice = load(stale.venue_id, stale.notification_id)
            if notice is None or notice.status not in ("queued", "sending"):
                continue
            if notice.status == "queued" and now - notice.created_at > GIVE_UP_AFTER:
                _settle_failed(notice, "retries_exhausted", now, {"venue_id": notice.venue_id,
                                                                  "notification_id": notice.notification_id})
                outcome = "failed"
            else:
                try:
                    outcome = deliver(notice.venue_id, notice.notification_id, now, mail)
                except RetryLater:
                    outcome = "retry"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    log_event("notifications_swept", **outcomes)
    return outcomes


# --- The venue admin's list ------------------------------------------------------------------

def venue_notifications(venue_id: str, guest_id: str | None, limit: int,
                        cursor: str | None) -> tuple[list[NotificationRecord], str | None]:
    """Newest first, a page at a time; `cursor` is the last page's `next_cursor`."""
    start = _decode_cursor(cursor, venue_id, guest_id) if cursor else None
    if guest_id:
        page = NotificationRecord.by_guest.query(f"{venue_id}#{guest_id}", scan_index_forward=False, limit=limit,
                                                 last_evaluated_key=start)
        # The guest's index holds keys only (a notice's sending writes nothing to it): the notices
        # themselves are read by key, one BatchGetItem for the page, strongly, so that an entry
        # the index shows is never missing from the page.
        keys = [Key(NotificationRecord, entry.venue_id, entry.notification_id) for entry in page]
        found = [n for n in read_many(keys) if isinstance(n, NotificationRecord)]
        listed = len(keys)
    else:
        page = NotificationRecord.query(venue_id, scan_index_forward=False, limit=limit, last_evaluated_key=start)
        found = list(page)
        listed = len(found)
    return found, _encode_cursor(page.last_evaluated_key, venue_id, guest_id) if listed == limit else None


def _encode_cursor(key: dict[str, Any] | None, venue_id: str, guest_id: str | None) -> str | None:
    if not key:
        return None
    payload = {"after": key["notification_id"]["S"], "guest": guest_id or ""}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, venue_id: str, guest_id: str | None) -> dict[str, Any]:
    invalid = InvalidRequest("the cursor is not one this list gave", {"fields": {"cursor": "invalid"}})
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after, guest = payload["after"], payload["guest"]
    except (ValueError, TypeError, KeyError):
        raise invalid from None
    if not isinstance(after, str) or guest != (guest_id or "") or not 1 <= len(after) <= 64:
        raise invalid
    key = {"venue_id": {"S": venue_id}, "notification_id": {"S": after}}
    if guest_id:
        key["guest_key"] = {"S": f"{venue_id}#{guest_id}"}
    return key

