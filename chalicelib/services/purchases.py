"""Purchases made in the store: recorded with their seats all at once (the payment checked at
Stripe first), and listed for their guest, newest first. One purchase is read back as a receipt
(receipts.py)."""
from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.auth import GuestClaims
from chalicelib.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PaymentNotAccepted,
    ServiceUnavailable,
    SlotClosed,
    SlotFull,
)
from chalicelib.ids import new_id
from chalicelib.observability import log_event
from chalicelib.parts import StripeAccess
from chalicelib.rules import has_started
from chalicelib.services.access import Admin, require_current_token
from chalicelib.services.guests import guest_of_venue
from chalicelib.services.receipts import Receipt
from chalicelib.storage import summaries, venue_cache
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import (
    HistoryEvent,
    IdempotencyRecord,
    SessionRecord,
    SlotRecord,
    TransactionRecord,
    VenueRecord,
)
from chalicelib.storage.windows import projected_window


@dataclass(frozen=True)
class SessionOrder:
    slot_id: str
    participant_name: str
    amount: int


def record_purchase(admin: Admin, venue: VenueRecord, guest_id: str, payment_intent_id: str, currency: str,
                    orders: list[SessionOrder], now: datetime, stripe: StripeAccess) -> Receipt:
    """Take every seat and record the purchase in one atomic write, or change nothing."""
    if currency != venue.currency:
        raise InvalidRequest("the currency is not the venue's", {"fields": {"currency": f"must be {venue.currency}"}})
    named = guest_of_venue(venue.venue_id, guest_id)
    if named is None:
        raise NotFound("no such guest at this venue", {"guest_id": guest_id})
    slots = _open_slots(venue, {order.slot_id for order in orders}, now)
    total = sum(order.amount for order in orders)
    # Checked, recorded and later refunded on the account the venue takes payments into now.
    stripe_account = venue.stripe_account
    _check_payment(stripe, payment_intent_id, currency, total, stripe_account)

    transaction_id = new_id()
    settings = venue.settings()
    sessions = []
    for order in orders:
        slot = slots[order.slot_id]
        session_id = new_id()
        sessions.append(SessionRecord(
            transaction_id=transaction_id, item=f"session#{session_id}", venue_id=venue.venue_id,
            session_id=session_id, slot_id=slot.slot_id, product_id=slot.product_id,
            product_name=slot.product_name, start=slot.start, end=slot.end,
            participant_name=order.participant_name, amount=order.amount, status="booked", refund_status="none",
            session_venue_id=venue.venue_id, **projected_window(settings, session_id, slot.start, now)))

    transaction = TransactionRecord(
        transaction_id=transaction_id, item="transaction", venue_id=venue.venue_id, guest_id=guest_id,
        purchased_at=now, currency=currency, total=total, payment_intent_id=payment_intent_id,
        session_count=len(orders), stripe_account=stripe_account,
        guest_name=named.name, guest_email=named.email,
        summary=summaries.of_sessions(sessions))
    write = AtomicWrite()
    write.put("payment", IdempotencyRecord(key=f"payment_intent#{payment_intent_id}", request_hash=transaction_id,
                                           response={"transaction_id": transaction_id}),
              condition=IdempotencyRecord.key.does_not_exist())
    write.put("transaction", transaction, condition=TransactionRecord.item.does_not_exist())
    for session in sessions:
        write.put(f"session:{session.session_id}", session)
    for slot_id, seats in Counter(order.slot_id for order in orders).items():
        write.update(f"slot:{slot_id}", SlotRecord(venue.venue_id, slot_id),
                     actions=[SlotRecord.remaining.add(-seats), SlotRecord.booked.add(seats)],
                     condition=(SlotRecord.remaining >= seats) & SlotRecord.closure_job_id.does_not_exist())
    write.put("history", HistoryEvent(
        transaction_id=transaction_id, event_id=new_id(), venue_id=venue.venue_id, at=now, actor=admin.actor,
        action="purchased", after={"session_ids": [s.session_id for s in sessions], "total": total}))
    try:
        write.commit()
    except AtomicWriteFailed as failure:
        if "payment" in failure.failed:
            raise Conflict("this payment is already recorded as a purchase",
                           {"payment_intent_id": payment_intent_id}) from None
        refused = sorted(label.split(":", 1)[1] for label in failure.failed if label.startswith("slot:"))
        if not refused:
            raise
        closed = [s.slot_id for s in SlotRecord.batch_get([(venue.venue_id, slot_id) for slot_id in refused],
                                                          consistent_read=True) if s.closure_job_id]
        if closed:  # closed between the read and the write
            raise SlotClosed("a slot is closed and takes no purchases", {"slot_ids": sorted(closed)}) from None
        raise SlotFull("a slot has no seat left for this purchase", {"slot_ids": refused}) from None
    log_event("purchase_recorded", venue_id=venue.venue_id, transaction_id=transaction_id,
              guest_id=guest_id, payment_intent_id=payment_intent_id, stripe_account=stripe_account,
              total=total, sessions=len(sessions))
    return Receipt(venue=venue, transaction=transaction, sessions=sessions, refunds=[])


def _open_slots(venue: VenueRecord, slot_ids: set[str], now: datetime) -> dict[str, SlotRecord]:
    found = {slot.slot_id: slot for slot in SlotRecord.batch_get([(venue.venue_id, slot_id) for slot_id in slot_ids])}
    missing = sorted(slot_ids - found.keys())
    if missing:
        raise NotFound("no such slot at this venue", {"slot_ids": missing})
    started = sorted(slot_id for slot_id, slot in found.items() if has_started(slot.start, now))
    if started:
        raise InvalidRequest("a slot has already started", {"slot_ids": started})
    closed = sorted(slot_id for slot_id, slot in found.items() if slot.closure_job_id)
    if closed:
        raise SlotClosed("a slot is closed and takes no purchases", {"slot_ids": closed})
    return found


def _check_payment(stripe: StripeAccess, payment_intent_id: str, currency: str, total: int,
                   stripe_account: str | None) -> None:
    from chalicelib.payments import PaymentError

    try:
        intent = stripe.gateway().get_payment_intent(payment_intent_id, stripe_account=stripe_account)
    except PaymentError as error:
        raise ServiceUnavailable("the payment could not be checked with Stripe; try again") from error
    if intent is None:
        # Also a payment of another venue's (or the platform's) account: Stripe shows it to no one else.
        raise PaymentNotAccepted("the venue's Stripe account has no such payment intent",
                                 {"payment_intent_id": payment_intent_id})
    if intent.status != "succeeded":
        raise PaymentNotAccepted("the payment has not succeeded", {"payment_status": intent.status})
    if intent.currency != currency:
        raise PaymentNotAccepted("the payment is in another currency", {"payment_currency": intent.currency})
    if intent.amount_received < total:
        raise PaymentNotAccepted("the payment does not cover the sessions",
                                 {"amount_received": intent.amount_received, "total": total})


def list_transactions(claims: GuestClaims, limit: int, cursor: str | None) -> tuple[list[TransactionRecord], str | None]:
    """The guest's purchases, newest first, a page at a time."""
    try:
        require_current_token(claims, venue_cache.venue(claims.venue_id))
    except VenueRecord.DoesNotExist:
        raise NotFound("no such venue") from None
    return guest_transactions(claims.venue_id, claims.guest_id, limit, cursor)


def guest_transactions(venue_id: str, guest_id: str, limit: int,
                       cursor: str | None) -> tuple[list[TransactionRecord], str | None]:
    """One guest's purchases at one venue, newest first, a page at a time (the guest's own list,
    and the one staff open for them)."""
    start_key = _decode_cursor(cursor, guest_id) if cursor else None
    page = TransactionRecord.by_guest.query(guest_id, scan_index_forward=False, limit=limit,
                                            last_evaluated_key=start_key)
    found = [t for t in page if isinstance(t, TransactionRecord) and t.venue_id == venue_id]
    return found, _encode_cursor(page.last_evaluated_key)


_CURSOR_KEYS = {"transaction_id", "item", "guest_id", "purchased_at"}


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, guest_id: str) -> dict[str, Any]:
    bad = InvalidRequest("the cursor is not valid", {"fields": {"cursor": "use next_cursor as given"}})
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise bad from None
    if not isinstance(key, dict) or set(key) != _CURSOR_KEYS:
        raise bad
    if not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()):
        raise bad
    # Exactly what _encode_cursor makes: DynamoDB refuses an empty or ill-typed key string with a
    # ValidationException (a 500 here), which moto lets through.
    if key["guest_id"]["S"] != guest_id or key["item"]["S"] != "transaction" or not _is_id(key["transaction_id"]["S"]):
        raise bad
    try:
        # PynamoDB leaves `deserialize` unannotated; it parses exactly the format it stores.
        TransactionRecord.purchased_at.deserialize(key["purchased_at"]["S"])  # type: ignore[no-untyped-call]
    except ValueError:
        raise bad from None
    return key


def _is_id(value: str) -> bool:
    return 1 <= len(value) <= 64 and all(char.isascii() and (char.isalnum() or char in "-_") for char in value)
