"""A refund's record and the states it goes through, each move conditional on the state it
leaves, so duplicates, races and crashes move it once:
pending -> refunded | failed; failed -> pending (admin retry, next key generation);
failed -> refunded (Stripe had paid it after all); refunded -> failed (Stripe reports a late failure).

Every move writes, in one atomic write, the refund, the purchase's session summary, a history
event and (when it settles) the guest's email. The paying worker, the admin's retry and Stripe's
webhook all move refunds through `transition` here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.expressions.update import Action

from chalicelib.ids import new_id
from chalicelib.observability import log_event
from chalicelib.services import notifications
from chalicelib.storage import summaries, venue_cache
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import (
    BookingItem,
    HistoryEvent,
    IdempotencyRecord,
    NotificationRecord,
    RefundRecord,
    TransactionRecord,
    VenueRecord,
)
from chalicelib.storage.reads import Key, read_together
from chalicelib.storage.shards import refund_shard

# What Stripe says of a refund it holds that counts as paid (or on its way): never paid again.
PAID_AT_STRIPE = ("succeeded", "pending", "requires_action")
GAVE_UP = "retries_exhausted"  # our own verdict, not Stripe's


def load(transaction_id: str, refund_id: str, consistent: bool = True) -> RefundRecord | None:
    try:
        item = BookingItem.get(transaction_id, f"refund#{refund_id}", consistent_read=consistent)
    except BookingItem.DoesNotExist:
        return None
    return item if isinstance(item, RefundRecord) else None


def settle_refunded(refund: RefundRecord, stripe_refund_id: str, now: datetime) -> bool:
    """pending -> refunded. False if another worker got there first."""
    return transition(refund, "pending", "refunded", now, stripe_refund_id=stripe_refund_id) is not None


def settle_failed(refund: RefundRecord, code: str, message: str, now: datetime, from_status: str,
                  stripe_refund_id: str | None = None) -> bool:
    return transition(refund, from_status, "failed", now, failure_code=code, failure_message=message[:500],
                      stripe_refund_id=stripe_refund_id) is not None


def transition(refund: RefundRecord, from_status: str, to_status: str, now: datetime,
               stripe_refund_id: str | None = None, failure_code: str | None = None,
               failure_message: str | None = None, actor: str = "system",
               remember: IdempotencyRecord | None = None) -> RefundRecord | None:
    """Move the refund from `from_status` (and its current key generation) to `to_status`, in one
    atomic write; the refund as that write left it, or None if it was no longer there to move.
    `remember` (a Stripe event applied) is put in the same write, on condition it is not there
    yet, so an event can never apply twice."""
    # Each field the write sets (None: removes). The condition pins the status and the key
    # generation, and nothing else of a refund changes without them, so the record as written
    # is this refund with these fields: the caller needs no read after the write.
    changes: dict[str, Any] = {"status": to_status, "updated_at": now,
                               "venue_status": f"{refund.venue_id}#{to_status}",
                               "pending_shard": refund_shard(refund.refund_id) if to_status == "pending" else None}
    if to_status == "pending":
        changes.update(failure_code=None, failure_message=None, key_generation=int(refund.key_generation) + 1)
        if not stripe_refund_id:
            # A new key generation makes a new Stripe refund: events about the old one no longer match.
            changes["stripe_refund_id"] = None
    if stripe_refund_id:
        changes["stripe_refund_id"] = stripe_refund_id
    if failure_code is not None:
        changes.update(failure_code=failure_code, failure_message=failure_message or "")
    actions: list[Action] = [getattr(RefundRecord, name).remove() if value is None
                             else getattr(RefundRecord, name).set(value) for name, value in changes.items()]
    write = AtomicWrite()
    # The sessions are not rewritten: a refunded session shows its refund's status (the receipt
    # reads both in its one Query), so a refund of 30 sessions writes one item, not 31.
    write.update("refund", refund, actions=actions,
                 condition=(RefundRecord.status == from_status)
                 & (RefundRecord.key_generation == int(refund.key_generation)))
    # The sessions' refund state is read from the refund itself; the purchase summary (what
    # the guest's list shows without reading sessions) records it in the same write.
    summaries.update(write, refund.transaction_id,
                     {str(session_id): {"refund_status": to_status} for session_id in refund.session_ids})
    write.put("history", HistoryEvent(
        transaction_id=refund.transaction_id, event_id=new_id(), venue_id=refund.venue_id, at=now, actor=actor,
        action=f"refund_{to_status}", before={"refund_id": refund.refund_id, "status": from_status},
        after={"refund_id": refund.refund_id, "status": to_status, "amount": int(refund.amount),
               **({"stripe_refund_id": stripe_refund_id} if stripe_refund_id else {}),
               **({"failure_code": failure_code} if failure_code else {})}))
    if remember is not None:
        write.put("stripe_event", remember, condition=IdempotencyRecord.unused(now))
    if to_status in ("refunded", "failed"):
        notifications.queue(write, _notice(refund, to_status == "refunded", now))
    try:
        write.commit()
    except AtomicWriteFailed:
        log_event("refund_transition_skipped", refund_id=refund.refund_id, transaction_id=refund.transaction_id,
                  venue_id=refund.venue_id, from_status=from_status, to_status=to_status)
        return None
    written = RefundRecord.from_raw_data(refund.serialize())
    for name, value in changes.items():
        setattr(written, name, value)
    event = {"refunded": "refund_succeeded", "failed": "refund_failed", "pending": "refund_retried"}[to_status]
    log_event(event, refund_id=refund.refund_id, transaction_id=refund.transaction_id, venue_id=refund.venue_id,
              amount=int(refund.amount), currency=refund.currency, stripe_refund_id=stripe_refund_id,
              stripe_account=refund.stripe_account, failure_code=failure_code,
              key_generation=int(written.key_generation))
    return written


def _notice(refund: RefundRecord, refunded: bool, now: datetime) -> NotificationRecord | None:
    """The guest's email about the refund's outcome, committed with the outcome itself. The
    venue (name, zone, notify_guests) comes from this Lambda's recent copy: the worker's message
    stays at its two calls."""
    if refund.guest_id:
        try:
            return notifications.refund_settled(venue_cache.venue(refund.venue_id), refund.guest_id,
                                                refund.transaction_id, refund.refund_id, int(refund.amount),
                                                refunded, now)
        except VenueRecord.DoesNotExist:
            return None
    venue, transaction = read_together([Key(VenueRecord, refund.venue_id),
                                        Key(BookingItem, refund.transaction_id, "transaction")])
    if not isinstance(venue, VenueRecord) or not isinstance(transaction, TransactionRecord):
        return None
    return notifications.refund_settled(venue, transaction.guest_id, refund.transaction_id, refund.refund_id,
                                        int(refund.amount), refunded, now)
