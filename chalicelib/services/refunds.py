"""Refunds after a cancellation: paid through Stripe exactly once, whatever is retried.

A refund is created `pending` with the cancellation. The worker asks Stripe for it under an
idempotency key that is the same on every retry of one key generation; every state change is
conditional on the state it leaves, so duplicates, races and crashes pay once. States:
pending -> refunded | failed; failed -> pending (admin retry, next key generation);
refunded -> failed (Stripe reports a late failure).

Every Stripe call about a refund is made on the Stripe account its purchase was paid on.
Stripe's webhook events are applied once each (by event id), only to the Stripe refund we
recorded (or, before we recorded one, to a refund made under our current key generation), and only
when they come from the purchase's account.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pynamodb.expressions.update import Action

from chalicelib import queues
from chalicelib.config import config
from chalicelib.errors import InvalidRequest, NotFound, RefundNotRetryable, ServiceUnavailable
from chalicelib.ids import new_id
from chalicelib.observability import log_error, log_event
from chalicelib.services import notifications
from chalicelib.services.stripe_key import refresh_stripe_key, stripe_gateway
from chalicelib.storage import pages, summaries, venue_cache
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import (
    BookingItem,
    HistoryEvent,
    IdempotencyRecord,
    Locator,
    NotificationRecord,
    PendingRefunds,
    RefundRecord,
    TransactionRecord,
    VenueRecord,
)
from chalicelib.storage.reads import MAX_KEYS, Key, read_together
from chalicelib.storage.shards import REFUND_SHARDS, refund_shard

if TYPE_CHECKING:
    from chalicelib.payments import StripeGateway, StripeRefund

PAID_AT_STRIPE = ("succeeded", "pending", "requires_action")
GAVE_UP = "retries_exhausted"  # our own verdict, not Stripe's
REFUND_EVENTS = frozenset({"refund.updated", "refund.failed", "refund.created", "charge.refund.updated"})
# Stripe retries a webhook for three days and keeps events for thirty: an event applied is
# remembered as long as it could come again.
STRIPE_EVENT_MEMORY = timedelta(days=30)
# Stripe keeps an idempotency key for 24 hours, then the same key creates a new refund: a refund
# whose key generation is older than this is looked up at Stripe before it is created again.
KEY_LOOKUP_AFTER = timedelta(hours=12)
# What the worker must have left to take a message: Stripe's timeout plus our reads and writes.
DYNAMODB_MARGIN_MS = 2_000


def time_needed_ms() -> int:
    return int(config().stripe_timeout_seconds * 1000) + DYNAMODB_MARGIN_MS


@dataclass(frozen=True)
class RefundMessage:
    transaction_id: str
    refund_id: str

    @classmethod
    def parse(cls, body: str) -> RefundMessage:
        data = json.loads(body)
        return cls(transaction_id=str(data["transaction_id"]), refund_id=str(data["refund_id"]))


def idempotency_key(refund: RefundRecord) -> str:
    """Identical on every retry of one generation; a new generation only by an admin's retry."""
    return f"rebook-refund-{refund.refund_id}-g{int(refund.key_generation)}"


def load(transaction_id: str, refund_id: str, consistent: bool = True) -> RefundRecord | None:
    try:
        item = BookingItem.get(transaction_id, f"refund#{refund_id}", consistent_read=consistent)
    except BookingItem.DoesNotExist:
        return None
    return item if isinstance(item, RefundRecord) else None


def pay(message: RefundMessage, now: datetime) -> str:
    """Carry out one refund message. Returns what happened; raises RetryablePaymentError to have
    the message delivered again later."""
    from chalicelib.payments import FinalPaymentError

    refund = load(message.transaction_id, message.refund_id)
    ids: dict[str, Any] = {"refund_id": message.refund_id, "transaction_id": message.transaction_id}
    if refund is None:
        log_error("refund_unknown", **ids)
        return "unknown"
    ids["venue_id"] = refund.venue_id
    ids["stripe_account"] = refund.stripe_account
    if refund.status != "pending":
        log_event("refund_already_settled", status=refund.status, **ids)
        return "already_settled"
    try:
        paid = _pay_at_stripe(refund, now)
    except FinalPaymentError as error:
        if error.operational:
            # Our key was refused (revoked, rotated, lacking permission): no guest's fault. The
            # refund stays pending, an alarm pages, and the reconciler sends it again later.
            log_error("stripe_key_rejected", code=error.code, http_status=error.http_status, **ids)
            return "key_rejected"
        settle_failed(refund, error.code or "stripe_error", error.message, now, from_status="pending")
        return "failed"
    if paid.status == "failed":
        if not settle_failed(refund, paid.failure_reason or "refund_failed", "Stripe reported the refund failed",
                             now, from_status="pending", stripe_refund_id=paid.id):
            _check_lost_write(refund)
        return "failed"
    if not settle_refunded(refund, paid.id, now):
        _record_late_success(refund, paid.id, now)
    return "refunded"


def _pay_at_stripe(refund: RefundRecord, now: datetime) -> StripeRefund:
    """Stripe's refund for ours: the one it already holds when our key may have expired there,
    else one created under our idempotency key (once more with a fresh key if ours was refused)."""
    from chalicelib.payments import FinalPaymentError

    gateway = stripe_gateway()
    if now - refund.updated_at > KEY_LOOKUP_AFTER:  # updated_at: when this key generation began
        found = gateway.find_refund(payment_intent_id=refund.payment_intent_id, refund_id=refund.refund_id,
                                    stripe_account=refund.stripe_account)
        if found is not None and found.status in PAID_AT_STRIPE:
            log_event("refund_found_at_stripe", refund_id=refund.refund_id, transaction_id=refund.transaction_id,
                      venue_id=refund.venue_id, stripe_refund_id=found.id)
            return found
    def create(gateway: StripeGateway) -> StripeRefund:
        return gateway.create_refund(
            payment_intent_id=refund.payment_intent_id, amount=int(refund.amount),
            idempotency_key=idempotency_key(refund),
            metadata={"refund_id": refund.refund_id, "transaction_id": refund.transaction_id,
                      "venue_id": refund.venue_id, "key_generation": str(int(refund.key_generation))},
            stripe_account=refund.stripe_account)

    try:
        return create(gateway)
    except FinalPaymentError as error:
        if not error.operational or not refresh_stripe_key():
            raise
    return create(stripe_gateway())


class SettlementNotWritten(Exception):
    """Stripe answered but our write of it did not happen and the refund is still pending:
    the message must come back (Stripe replays the same answer under the same key)."""


def _check_lost_write(refund: RefundRecord) -> RefundRecord | None:
    """The refund as it is now, after our conditional write did not happen; raises if it is
    still pending (the write lost to a concurrent transaction, not to another settlement)."""
    current = load(refund.transaction_id, refund.refund_id)
    if current is None or int(current.key_generation) != int(refund.key_generation):
        return None
    if current.status == "pending":
        raise SettlementNotWritten(f"refund {refund.refund_id}: the settlement was not written; retry")
    return current


def _record_late_success(refund: RefundRecord, stripe_refund_id: str, now: datetime) -> None:
    current = _check_lost_write(refund)
    # The dead-letter handler gave up while this attempt was at Stripe: Stripe's answer is the truth.
    if current is not None and current.status == "failed" and current.failure_code == GAVE_UP:
        _transition(current, "failed", "refunded", now, stripe_refund_id=stripe_refund_id)


def settle_refunded(refund: RefundRecord, stripe_refund_id: str, now: datetime) -> bool:
    """pending -> refunded. False if another worker got there first."""
    return _transition(refund, "pending", "refunded", now, stripe_refund_id=stripe_refund_id)


def settle_failed(refund: RefundRecord, code: str, message: str, now: datetime, from_status: str,
                  stripe_refund_id: str | None = None) -> bool:
    return _transition(refund, from_status, "failed", now, failure_code=code, failure_message=message[:500],
                       stripe_refund_id=stripe_refund_id)


def _transition(refund: RefundRecord, from_status: str, to_status: str, now: datetime,
                stripe_refund_id: str | None = None, failure_code: str | None = None,
                failure_message: str | None = None, actor: str = "system",
                stripe_event_id: str | None = None) -> bool:
    actions: list[Action] = [RefundRecord.status.set(to_status), RefundRecord.updated_at.set(now),
               RefundRecord.venue_status.set(f"{refund.venue_id}#{to_status}")]
    if to_status == "pending":
        actions.append(RefundRecord.pending_shard.set(refund_shard(refund.refund_id)))
        actions += [RefundRecord.failure_code.remove(), RefundRecord.failure_message.remove()]
        if not stripe_refund_id:
            # A new key generation makes a new Stripe refund: events about the old one no longer match.
            actions.append(RefundRecord.stripe_refund_id.remove())
    else:
        actions.append(RefundRecord.pending_shard.remove())
    if stripe_refund_id:
        actions.append(RefundRecord.stripe_refund_id.set(stripe_refund_id))
    if failure_code is not None:
        actions += [RefundRecord.failure_code.set(failure_code),
                    RefundRecord.failure_message.set(failure_message or "")]
    if to_status == "pending":
        actions.append(RefundRecord.key_generation.add(1))
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
    if stripe_event_id is not None:
        # Remembered in the same write as its effect, so a re-delivered event can never apply twice.
        write.put("stripe_event", IdempotencyRecord(
            key=_event_key(stripe_event_id), request_hash=refund.refund_id,
            expires_at=now + STRIPE_EVENT_MEMORY), condition=IdempotencyRecord.unused(now))
    if to_status in ("refunded", "failed"):
        notifications.queue(write, _notice(refund, to_status == "refunded", now))
    try:
        write.commit()
    except AtomicWriteFailed:
        log_event("refund_transition_skipped", refund_id=refund.refund_id, transaction_id=refund.transaction_id,
                  venue_id=refund.venue_id, from_status=from_status, to_status=to_status)
        return False
    event = {"refunded": "refund_succeeded", "failed": "refund_failed", "pending": "refund_retried"}[to_status]
    log_event(event, refund_id=refund.refund_id, transaction_id=refund.transaction_id, venue_id=refund.venue_id,
              amount=int(refund.amount), currency=refund.currency, stripe_refund_id=stripe_refund_id,
              stripe_account=refund.stripe_account, failure_code=failure_code,
              key_generation=int(refund.key_generation))
    return True


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


def give_up(message: RefundMessage, now: datetime, sent_at: datetime | None = None) -> None:
    """A message the queue could not deliver successfully: the refund shows `failed` for the
    venue's admin to retry, unless it was settled meanwhile, or put back to pending (an admin's
    retry) after this message was sent: a leftover of an earlier attempt must not fail the retry."""
    refund = load(message.transaction_id, message.refund_id)
    if refund is None or refund.status != "pending":
        return
    if sent_at is not None and int(refund.key_generation) > 1 and sent_at < refund.updated_at:
        log_event("refund_dead_letter_stale", refund_id=refund.refund_id, transaction_id=refund.transaction_id,
                  venue_id=refund.venue_id, key_generation=int(refund.key_generation))
        return
    settle_failed(refund, GAVE_UP, "Stripe could not be reached after several attempts", now, from_status="pending")


def sent_time(attributes: dict[str, Any]) -> datetime | None:
    """When SQS first received a message, from its record's attributes (kept through the DLQ)."""

    try:
        return datetime.fromtimestamp(int(attributes["SentTimestamp"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError):
        return None


def resend_stale(now: datetime) -> int:
    """Send again every refund still pending some minutes after creation (a lost SQS send, a
    crashed worker). Duplicates are harmless: the worker pays each refund once."""
    cutoff = now - timedelta(seconds=config().refund_reconcile_after_seconds)
    resent = 0
    for shard in range(REFUND_SHARDS):
        for stale in BookingItem.pending_refunds.query(shard, PendingRefunds.created_at < cutoff):
            queues.send_refund(stale.transaction_id, stale.item.split("#", 1)[1])
            resent += 1
    log_event("refunds_reconciled", resent=resent)
    return resent


def venue_refunds(venue_id: str, status: str | None, limit: int,
                  cursor: str | None) -> tuple[list[RefundRecord], str | None]:
    """The venue's refunds, newest first, a page at a time: of one status, or all of them."""
    if status is None:
        def every(start: dict[str, Any] | None, count: int) -> Iterable[RefundRecord]:
            return [r for r in RefundRecord.refunds_by_venue.query(venue_id, scan_index_forward=False, limit=count,
                                                                   page_size=count, last_evaluated_key=start)
                    if isinstance(r, RefundRecord)]  # the index holds refunds only; this tells mypy

        return pages.page(every, limit, cursor, f"refunds:{venue_id}", _ALL_REFUNDS_KEY)

    def of_status(start: dict[str, Any] | None, count: int) -> Iterable[RefundRecord]:
        return [r for r in RefundRecord.refunds_by_venue_status.query(
            f"{venue_id}#{status}", scan_index_forward=False, limit=count, page_size=count, last_evaluated_key=start)
            if isinstance(r, RefundRecord)]

    return pages.page(of_status, limit, cursor, f"refunds:{venue_id}:{status}", _STATUS_REFUNDS_KEY)


_ALL_REFUNDS_KEY = ("transaction_id", "item", "refund_venue_id", "created_at")
_STATUS_REFUNDS_KEY = ("transaction_id", "item", "venue_status", "created_at")


def purchases_of(found: list[RefundRecord]) -> dict[str, TransactionRecord]:
    """The purchase (header item, with its session summary) behind each refund, read together:
    one BatchGetItem per hundred purchases."""
    transaction_ids = sorted({r.transaction_id for r in found})
    purchases: dict[str, TransactionRecord] = {}
    for start in range(0, len(transaction_ids), MAX_KEYS):
        chunk = transaction_ids[start:start + MAX_KEYS]
        for header in read_together([Key(BookingItem, tid, "transaction") for tid in chunk], consistent=False):
            if isinstance(header, TransactionRecord):
                purchases[header.transaction_id] = header
    return purchases


def find(venue_id: str, refund_id: str) -> RefundRecord:
    """The venue's refund `refund_id`, decided on reads by key for every refund made with a
    locator; older refunds are found through the refund-id index, long caught up with them."""
    locator = Locator.find(f"refund#{refund_id}")
    if locator is not None:
        refund = load(str(locator.transaction_id), refund_id) if locator.venue_id == venue_id else None
        if refund is None:
            raise NotFound("no such refund")
        return refund
    for key in BookingItem.refunds_by_id.query(refund_id, limit=1):
        refund = load(key.transaction_id, refund_id)
        if refund is not None and refund.venue_id == venue_id:
            return refund
    raise NotFound("no such refund")


def retry(refund: RefundRecord, actor: str, now: datetime) -> RefundRecord:
    """An admin's retry of a failed refund: if Stripe already holds a refund for it (paid by an
    earlier attempt), record that; otherwise try again under the next key generation."""
    from chalicelib.payments import PaymentError

    if refund.status != "failed":
        raise RefundNotRetryable("only a failed refund can be retried", {"status": refund.status})
    try:
        existing = stripe_gateway().find_refund(payment_intent_id=refund.payment_intent_id,
                                                refund_id=refund.refund_id, stripe_account=refund.stripe_account)
    except PaymentError as error:
        raise ServiceUnavailable("Stripe could not be asked about this refund; try again") from error
    if existing is not None and existing.status in PAID_AT_STRIPE:
        if not _transition(refund, "failed", "refunded", now, stripe_refund_id=existing.id, actor=actor):
            raise RefundNotRetryable("the refund changed meanwhile; reload it")
    else:
        if not _transition(refund, "failed", "pending", now, actor=actor):
            raise RefundNotRetryable("the refund changed meanwhile; reload it")
        try:
            queues.send_refund(refund.transaction_id, refund.refund_id)
        except Exception as error:  # the reconciler re-sends it
            log_error("refund_send_failed", refund_id=refund.refund_id, transaction_id=refund.transaction_id,
                      error=repr(error))
    return load(refund.transaction_id, refund.refund_id) or refund


@dataclass(frozen=True)
class StripeEvent:
    """The parts of a verified Stripe event we act on. `account` is the connected account it
    happened on (Connect events carry it); None for the platform's own account."""

    event_id: str
    type: str
    account: str | None
    refund: dict[str, Any]  # data.object, a refund when `type` is one of REFUND_EVENTS
    metadata: dict[str, Any]

    @classmethod
    def parse(cls, event: dict[str, Any]) -> StripeEvent:
        """The event, or InvalidRequest naming what is malformed: Stripe never sends such an event,
        so its sender gets a 400 and nothing changes."""
        problems: dict[str, str] = {}
        for name in ("id", "type"):
            if not isinstance(event.get(name), str) or not event[name]:
                problems[name] = "must be a non-empty string"
        account = event.get("account")
        if account is not None and not isinstance(account, str):
            problems["account"] = "must be a string or null"
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            problems["data"] = "must be an object holding an object"
            obj = {}
        metadata = obj.get("metadata")
        if "type" not in problems and event["type"] in REFUND_EVENTS and "data" not in problems:
            if not isinstance(obj.get("id"), str):
                problems["data.object.id"] = "must be a string"
            if metadata is not None and not isinstance(metadata, dict):
                problems["data.object.metadata"] = "must be an object"
            if obj.get("status") is not None and not isinstance(obj.get("status"), str):
                problems["data.object.status"] = "must be a string"
        if problems:
            raise InvalidRequest("the Stripe event is malformed", {"fields": problems})
        return cls(event_id=event["id"], type=event["type"], account=account or None, refund=obj,
                   metadata=metadata if isinstance(metadata, dict) else {})


def apply_stripe_event(raw_event: dict[str, Any], now: datetime) -> str:
    """A verified Stripe webhook: a refund Stripe accepted can still fail later, and Stripe may
    tell us of a success before our own worker recorded it. Returns what happened."""
    event = StripeEvent.parse(raw_event)
    if event.type not in REFUND_EVENTS:
        return "ignored"
    refund_id, transaction_id = event.metadata.get("refund_id"), event.metadata.get("transaction_id")
    if not isinstance(refund_id, str) or not isinstance(transaction_id, str):
        return "ignored"
    ids = {"stripe_event_id": event.event_id, "refund_id": refund_id, "transaction_id": transaction_id,
           "stripe_account": event.account, "stripe_refund_id": event.refund["id"]}
    for _ in range(3):
        if _already_applied(event.event_id, now):
            log_event("stripe_event_duplicate", **ids)
            return "duplicate"
        refund = load(transaction_id, refund_id)
        if refund is None:
            return "ignored"
        if refund.stripe_account != event.account:
            # Only the account the purchase was paid on speaks for its refunds; an account we do
            # not know (or another venue's) is acknowledged and ignored.
            log_event("stripe_event_other_account", venue_id=refund.venue_id,
                      purchase_stripe_account=refund.stripe_account, **ids)
            return "ignored"
        if not _about_current_attempt(refund, event):
            log_event("stripe_event_stale", venue_id=refund.venue_id, status=refund.status,
                      recorded_stripe_refund_id=refund.stripe_refund_id, **ids)
            return "ignored"
        outcome = _apply_stripe_status(refund, event, now)
        if outcome is not None:
            return outcome
        # Our write lost a race (the worker settled it meanwhile, or the same event was applied
        # by a concurrent delivery): decide again on what is there now.
    raise ServiceUnavailable("the refund kept changing; Stripe will send the event again")


def _event_key(stripe_event_id: str) -> str:
    return f"stripe_event#{stripe_event_id}"


def _already_applied(stripe_event_id: str, now: datetime) -> bool:
    try:
        record = IdempotencyRecord.get(_event_key(stripe_event_id), consistent_read=True)
    except IdempotencyRecord.DoesNotExist:
        return False
    return not record.expired(now)


def _about_current_attempt(refund: RefundRecord, event: StripeEvent) -> bool:
    """Whether the event is about the Stripe refund of our refund's current attempt, not one an
    earlier attempt made (an admin's retry makes a new Stripe refund; Stripe may deliver the old
    one's events late or again)."""
    if refund.stripe_refund_id:
        return bool(event.refund["id"] == refund.stripe_refund_id)
    generation = event.metadata.get("key_generation")
    if generation is None:  # a refund made before Stripe refunds carried their generation
        return int(refund.key_generation) == 1
    return bool(generation == str(int(refund.key_generation)))


def _apply_stripe_status(refund: RefundRecord, event: StripeEvent, now: datetime) -> str | None:
    """What Stripe's refund object says, applied to our record; None if the record changed under us.
    A failure is final at Stripe, so no later-arriving older event turns it back into a success."""
    data = event.refund
    status = data.get("status")
    if status == "failed" and refund.status in ("pending", "refunded"):
        written = _transition(refund, refund.status, "failed", now,
                              failure_code=str(data.get("failure_reason") or "refund_failed"),
                              failure_message="Stripe reported that the refund failed",
                              stripe_refund_id=data["id"], stripe_event_id=event.event_id)
        return "failed" if written else None
    if status in ("succeeded", "pending") and refund.status == "pending":
        written = _transition(refund, "pending", "refunded", now, stripe_refund_id=data["id"],
                              stripe_event_id=event.event_id)
        return "refunded" if written else None
    return "unchanged"
