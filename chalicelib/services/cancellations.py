"""Cancelling sessions: the quote the confirm dialog shows, and the cancellation itself — every
session, its seat, the refund record and the history in one atomic write, then the refund id to
the refund queue."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib import ids, rules
from chalicelib.auth import GuestClaims
from chalicelib.errors import (
    FeatureDisabled,
    IdempotencyConflict,
    NotFound,
    QuoteChanged,
    SessionNotCancellable,
    SlotClosed,
)
from chalicelib.ids import new_id
from chalicelib.observability import log_error, log_event
from chalicelib.parts import QueueSender
from chalicelib.services import notifications, receipts
from chalicelib.services.receipts import Receipt, guest_receipt
from chalicelib.storage import summaries, venue_cache
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import (
    HistoryEvent,
    IdempotencyRecord,
    NotificationRecord,
    RefundRecord,
    SessionRecord,
    SlotRecord,
    VenueRecord,
)
from chalicelib.storage.shards import refund_shard

IDEMPOTENCY_TTL = timedelta(hours=24)


RefusalRule = Callable[[rules.VenueSettings, rules.SessionState, datetime], "rules.Refusal | None"]


@dataclass(frozen=True)
class SessionToCancel:
    """One session a plan cancels, and its refund: what is given back and what the venue keeps."""

    session_id: str
    slot_id: str
    amount: int
    refund: rules.SessionRefund


@dataclass(frozen=True)
class CancellationPlan:
    """What cancelling would do: which sessions go and, per session, what is refunded and what
    the venue keeps. The quote shows exactly this; the cancellation carries exactly this out.
    Plain data, decided from the receipt as read: `apply_plan` turns it into the records to write."""

    venue_id: str
    transaction_id: str
    currency: str
    sessions: list[SessionToCancel]
    now: datetime

    @property
    def refunds(self) -> dict[str, rules.SessionRefund]:
        """Each session's refund, by session id."""
        return {s.session_id: s.refund for s in self.sessions}

    @property
    def refundable_ids(self) -> frozenset[str]:
        return frozenset(s.session_id for s in self.sessions if s.refund.refundable)

    @property
    def refunded_ids(self) -> list[str]:
        """The sessions the refund pays for: a session whose own refund is 0 gets none."""
        return sorted(s.session_id for s in self.sessions if s.refund.refund_amount > 0)

    @property
    def refund_amount(self) -> int:
        return sum(s.refund.refund_amount for s in self.sessions)

    @property
    def fee_amount(self) -> int:
        return sum(s.refund.fee_amount for s in self.sessions)


@dataclass(frozen=True)
class Cancellation:
    """A plan applied to the records it was decided on: the records as the one atomic write will
    leave them (nothing written yet), for the write and for the answer."""

    receipt: Receipt
    plan: CancellationPlan
    refund: RefundRecord | None
    sessions_before: list[SessionRecord]
    sessions_after: list[SessionRecord]
    actor: str | None = None  # None: the transaction's guest
    reason: str | None = None  # staff's, into the history
    by_staff: bool = False  # staff may cancel a session that has started
    closed_slot: SlotRecord | None = None  # cancelled because staff closed this slot: its own email


def plan_cancellation(receipt: Receipt, session_ids: list[str], now: datetime,
                      refund: rules.RefundMode = rules.RefundMode.POLICY,
                      refusal: RefusalRule = rules.cancel_refusal) -> CancellationPlan:
    """Decide, changing nothing: the one computation behind both the quote and the cancellation,
    so the two agree to the cent. All or nothing: one session that cannot go refuses them all.
    `refund` and `refusal` let a staff cancellation use its own choice and its own rule."""
    by_id = {s.session_id: s for s in receipt.sessions}
    missing = [sid for sid in session_ids if sid not in by_id]
    if missing:
        raise NotFound("no such session in this transaction", {"session_ids": missing})
    settings = receipt.venue.settings()
    refusals = {sid: refusal(settings, _state(by_id[sid]), now) for sid in session_ids}
    if any(reason is rules.Refusal.FEATURE_DISABLED for reason in refusals.values()):
        raise FeatureDisabled("this venue does not let guests cancel sessions online")
    refused = {sid: reason.value for sid, reason in refusals.items() if reason is not None}
    if refused:
        raise SessionNotCancellable("some sessions cannot be cancelled now", {"sessions": refused})
    sessions = [SessionToCancel(session_id=s.session_id, slot_id=s.slot_id, amount=int(s.amount),
                                refund=rules.session_refund(settings, _state(s), int(s.amount), now, refund))
                for s in (by_id[sid] for sid in session_ids)]
    return CancellationPlan(venue_id=receipt.venue.venue_id, transaction_id=receipt.transaction.transaction_id,
                            currency=receipt.transaction.currency, sessions=sessions, now=now)


def quote(claims: GuestClaims, transaction_id: str, session_ids: list[str], now: datetime) -> CancellationPlan:
    return plan_cancellation(guest_receipt(claims, transaction_id), session_ids, now)


def cancel(claims: GuestClaims, transaction_id: str, session_ids: list[str], now: datetime,
           idempotency_key: str | None, render: Callable[[Cancellation], dict[str, Any]],
           expected_refund_amount: int | None = None,
           render_quote: Callable[[CancellationPlan], dict[str, Any]] | None = None, *,
           queues: QueueSender) -> dict[str, Any]:
    """Cancel and answer with `render(...)`. With an Idempotency-Key, a repeat of the same
    request gets the first answer again; the answer is stored in the same atomic write. With
    `expected_refund_amount` (what the guest was quoted), a different amount due now refuses
    the cancellation with the new quote (`render_quote(...)`), changing nothing."""
    request_hash = _request_hash(transaction_id, session_ids, expected_refund_amount)
    record_key = f"cancel#{claims.guest_id}#{idempotency_key}" if idempotency_key else None
    if record_key:
        earlier = _earlier_answer(record_key, request_hash, now)
        if earlier is not None:
            return earlier
    receipt = guest_receipt(claims, transaction_id)

    def decide(receipt: Receipt) -> Cancellation:
        plan = plan_cancellation(receipt, session_ids, now)
        if expected_refund_amount is not None:
            if render_quote is None:
                raise ValueError("an expected_refund_amount needs render_quote, to answer a changed quote")
            check_quote(plan, expected_refund_amount, render_quote)
        return apply_plan(plan, receipt)

    return _carry_out(decide, receipt, render, record_key, request_hash, queues, guest_id=claims.guest_id)


def staff_quote(venue: VenueRecord, transaction_id: str, session_ids: list[str], refund: rules.RefundMode,
                now: datetime) -> CancellationPlan:
    """What a staff cancellation with this refund choice would give back now: the amount the
    admin page shows before staff confirm."""
    return _staff_plan(receipts.receipt(venue.venue_id, transaction_id), session_ids, refund, now)


def _staff_plan(receipt: Receipt, session_ids: list[str], refund: rules.RefundMode, now: datetime) -> CancellationPlan:
    return plan_cancellation(receipt, session_ids, now, refund=refund, refusal=rules.staff_cancel_refusal)


def staff_cancel(actor: str, venue: VenueRecord, transaction_id: str, session_ids: list[str],
                 refund: rules.RefundMode, reason: str, now: datetime, idempotency_key: str | None,
                 render: Callable[[Cancellation], dict[str, Any]], expected_refund_amount: int | None = None,
                 render_quote: Callable[[CancellationPlan], dict[str, Any]] | None = None, *,
                 queues: QueueSender) -> dict[str, Any]:
    """Staff cancel booked sessions of any guest of their venue, started or not, refunding by the
    venue's rule, in full or not at all; the same write, refund queue and worker as a guest's."""
    request_hash = _request_hash(transaction_id, session_ids, expected_refund_amount, refund=refund.value,
                                 reason=reason)
    record_key = f"staff-cancel#{venue.venue_id}#{idempotency_key}" if idempotency_key else None
    if record_key:
        earlier = _earlier_answer(record_key, request_hash, now)
        if earlier is not None:
            return earlier

    def decide(receipt: Receipt) -> Cancellation:
        plan = _staff_plan(receipt, session_ids, refund, now)
        if expected_refund_amount is not None:
            if render_quote is None:
                raise ValueError("an expected_refund_amount needs render_quote, to answer a changed quote")
            check_quote(plan, expected_refund_amount, render_quote)
        return replace(apply_plan(plan, receipt), actor=actor, reason=reason, by_staff=True)

    return _carry_out(decide, receipts.receipt(venue.venue_id, transaction_id), render, record_key, request_hash,
                      queues, actor=actor, refund_mode=refund.value)


def _carry_out(decide: Callable[[Receipt], Cancellation], receipt: Receipt,
               render: Callable[[Cancellation], dict[str, Any]], record_key: str | None, request_hash: str,
               queues: QueueSender, **log_ids: Any) -> dict[str, Any]:
    """Decide on the receipt, then one atomic write (with the answer, under an Idempotency-Key),
    then the refund to its queue."""
    for attempt in (1, 2):
        cancellation = decide(receipt)
        plan = cancellation.plan
        answer = render(cancellation)
        write = cancellation_write(cancellation)
        if record_key:
            write.put("idempotency", IdempotencyRecord(
                key=record_key, request_hash=request_hash, response=answer,
                expires_at=plan.now + IDEMPOTENCY_TTL), condition=IdempotencyRecord.unused(plan.now))
        try:
            write.commit()  # conflicts and throttles are retried inside; a failure here is a real refusal
            break
        except AtomicWriteFailed as failure:
            if record_key and "idempotency" in failure.failed:  # the same request, a moment earlier
                earlier = _earlier_answer(record_key, request_hash, plan.now)
                if earlier is not None:
                    return earlier
            if failure.failed == [venue_cache.SETTINGS_LABEL] and attempt == 1:
                # The plan rested on settings that have changed since (a cached copy): decide again
                # on the current ones, once.
                venue_cache.forget(receipt.venue.venue_id)
                receipt = replace(receipt, venue=venue_cache.fresh(receipt.venue.venue_id))
                continue
            changed = {label.split(":", 1)[1]: "changed" for label in failure.failed if label.startswith("session:")}
            closed = sorted(label.split(":", 1)[1] for label in failure.failed if label.startswith("slot:"))
            if closed and not changed:
                raise SlotClosed("the venue has closed this time slot: it cancels and refunds the sessions in it itself",
                                 {"slot_ids": closed}) from None
            if not changed:
                raise
            raise SessionNotCancellable("some sessions changed meanwhile; reload and try again",
                                        {"sessions": changed}) from None
    transaction_id = plan.transaction_id
    refund = cancellation.refund
    log_event("sessions_cancelled", venue_id=plan.venue_id, transaction_id=transaction_id,
              session_ids=[s.session_id for s in plan.sessions], refund_id=refund.refund_id if refund else None,
              refund_amount=plan.refund_amount, fee_amount=plan.fee_amount, **log_ids)
    if refund is not None:
        try:
            queues.send_refund(transaction_id, refund.refund_id)
        except Exception as error:  # the reconciler re-sends refunds left pending, so nothing is lost
            log_error("refund_send_failed", refund_id=refund.refund_id, transaction_id=transaction_id,
                      error=repr(error))
    return answer


def check_quote(plan: CancellationPlan, expected_refund_amount: int,
                render_quote: Callable[[CancellationPlan], dict[str, Any]]) -> None:
    """Refuse when the guest confirmed another amount than is due now (settings changed, or the
    deadline passed, since the quote)."""
    if expected_refund_amount == plan.refund_amount:
        return
    raise QuoteChanged("the refund due has changed since the quote; confirm the new amount",
                       {"quote": render_quote(plan), "expected_refund_amount": expected_refund_amount})


def apply_plan(plan: CancellationPlan, receipt: Receipt) -> Cancellation:
    """The records as they will be after the cancellation (nothing written yet), from the receipt
    the plan was decided on. Refunds that add up to 0 make no refund record, so nothing is queued
    and Stripe is never called."""
    now = plan.now
    by_id = {s.session_id: s for s in receipt.sessions}
    before = [by_id[s.session_id] for s in plan.sessions]
    refund = None
    if plan.refund_amount > 0:
        refund_id = ids.refund_id(receipt.transaction.transaction_id)
        refund = RefundRecord(
            transaction_id=receipt.transaction.transaction_id, item=f"refund#{refund_id}",
            venue_id=receipt.venue.venue_id, refund_id=refund_id,
            amount=plan.refund_amount,
            currency=receipt.transaction.currency, status="pending",
            session_ids=plan.refunded_ids, payment_intent_id=receipt.transaction.payment_intent_id,
            stripe_account=receipt.transaction.stripe_account, guest_id=receipt.transaction.guest_id,
            created_at=now, updated_at=now, venue_status=f"{receipt.venue.venue_id}#pending",
            refund_venue_id=receipt.venue.venue_id, pending_shard=refund_shard(refund_id), key_generation=1)
    paid = set(plan.refunded_ids)
    after = []
    for session in before:
        refunded = session.session_id in paid
        cancelled = SessionRecord.from_raw_data(session.serialize())
        cancelled.status, cancelled.cancelled_at = "cancelled", now
        cancelled.refund_status = "pending" if refunded else "not_refunded"
        cancelled.refund_id = refund.refund_id if refunded and refund else None
        cancelled.refund_window, cancelled.window_shard = "closed", None
        after.append(cancelled)
    return Cancellation(receipt=receipt, plan=plan, refund=refund, sessions_before=before, sessions_after=after)


def _history(cancellation: Cancellation) -> HistoryEvent:
    """The cancellation's `session_cancelled` events, one per session, in one item: a session's
    own event when it is one, else one item that reads as one event per session (`sessions`)."""
    plan = cancellation.plan
    own = {after.session_id: {"refund_status": after.refund_status,
                              "refund_amount": plan.refunds[after.session_id].refund_amount,
                              "fee_amount": plan.refunds[after.session_id].fee_amount}
           for after in cancellation.sessions_after}
    event = HistoryEvent(transaction_id=plan.transaction_id, event_id=new_id(), venue_id=plan.venue_id, at=plan.now,
                         actor=_actor(cancellation), action="session_cancelled", before={"status": "booked"},
                         after={"status": "cancelled"}, reason=cancellation.reason)
    if len(own) == 1:
        [(event.session_id, fields)] = own.items()
        event.after = {"status": "cancelled", **fields}
    else:
        event.sessions = own
    return event


def cancellation_write(cancellation: Cancellation) -> AtomicWrite:
    plan, now = cancellation.plan, cancellation.plan.now
    venue_id = plan.venue_id
    write = AtomicWrite()
    for before, after in zip(cancellation.sessions_before, cancellation.sessions_after, strict=True):
        actions = [SessionRecord.status.set("cancelled"), SessionRecord.cancelled_at.set(now),
                   SessionRecord.refund_status.set(after.refund_status), SessionRecord.refund_window.set("closed"),
                   SessionRecord.window_shard.remove(), SessionRecord.version.add(1)]
        if after.refund_id:
            actions.append(SessionRecord.refund_id.set(after.refund_id))
        # Still booked, not moved meanwhile, and (for guests) not started, against the same clock.
        condition = (SessionRecord.status == "booked") & (SessionRecord.slot_id == before.slot_id)
        if not cancellation.by_staff:
            condition &= SessionRecord.start > now
        write.update(f"session:{before.session_id}", before, actions=actions, condition=condition)
    write.put("history", _history(cancellation))
    for slot_id, seats in Counter(s.slot_id for s in plan.sessions).items():
        # A guest cannot cancel in a slot the venue has closed: its job cancels the session with
        # the closure's refund (often the whole amount), which the guest's own rule could cut.
        slot_condition = SlotRecord.slot_id.exists()
        if not cancellation.by_staff:
            slot_condition &= SlotRecord.closure_job_id.does_not_exist()
        write.update(f"slot:{slot_id}", SlotRecord(venue_id, slot_id),
                     actions=[SlotRecord.remaining.add(seats), SlotRecord.booked.add(-seats)],
                     condition=slot_condition)
    if cancellation.refund is not None:
        refund = cancellation.refund
        # No locator: the refund's id names its purchase, so an admin's retry, which names the
        # refund alone, reads it by key (chalicelib/ids.py).
        write.put("refund", refund, condition=RefundRecord.item.does_not_exist())
    venue_cache.settings_unchanged(write, cancellation.receipt.venue)  # the plan applied the venue's settings
    summaries.update(write, plan.transaction_id, {
        s.session_id: {"status": "cancelled", "refund_status": s.refund_status} for s in cancellation.sessions_after})
    notifications.queue(write, _notice(cancellation))
    return write


def _notice(cancellation: Cancellation) -> NotificationRecord | None:
    """The guest's one email about this cancellation: the slot closed, or the sessions cancelled
    (by staff, with their reason, or by the guest)."""
    plan, sessions = cancellation.plan, cancellation.sessions_before
    venue, transaction = cancellation.receipt.venue, cancellation.receipt.transaction
    if cancellation.closed_slot is not None:
        return notifications.slot_closed(venue, transaction.guest_id, transaction.transaction_id,
                                         cancellation.closed_slot, [s.participant_name for s in sessions],
                                         plan.refund_amount, cancellation.reason or "", plan.now)
    refunds = plan.refunds
    views = [{**notifications.session_view(s.product_name, s.participant_name, s.start, s.end),
              "amount": int(s.amount), "refunded": s.session_id in plan.refunded_ids,
              "refund_amount": refunds[s.session_id].refund_amount,
              "fee_amount": refunds[s.session_id].fee_amount} for s in sessions]
    return notifications.sessions_cancelled(venue, transaction.guest_id, transaction.transaction_id, views,
                                            refund_amount=plan.refund_amount, now=plan.now,
                                            by_staff=cancellation.by_staff, reason=cancellation.reason)


def _actor(cancellation: Cancellation) -> str:
    return cancellation.actor or f"guest:{cancellation.receipt.transaction.guest_id}"


def _state(session: SessionRecord) -> rules.SessionState:
    return rules.SessionState(start=session.start, status=session.status,
                              refund_forfeited=bool(session.refund_forfeited))


def _request_hash(transaction_id: str, session_ids: list[str], expected_refund_amount: int | None = None,
                  **more: Any) -> str:
    request: dict[str, Any] = {"transaction_id": transaction_id, "session_ids": sorted(session_ids), **more}
    if expected_refund_amount is not None:  # absent, the hash stays what it was before the field existed
        request["expected_refund_amount"] = expected_refund_amount
    canonical = json.dumps(request)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _earlier_answer(record_key: str, request_hash: str, now: datetime) -> dict[str, Any] | None:
    try:
        record = IdempotencyRecord.get(record_key, consistent_read=True)
    except IdempotencyRecord.DoesNotExist:
        return None
    if record.expired(now):
        return None
    if record.request_hash != request_hash:
        raise IdempotencyConflict("this Idempotency-Key was used with another request")
    return dict(record.response)


def idempotency_key_valid(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(" " <= char <= "~" for char in key)

