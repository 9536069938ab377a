"""Cancelling sessions: the quote the confirm dialog shows, and the cancellation itself — every
session, its seat, the refund record and the history in one atomic write, then the refund id to
the refund queue."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from chalicelib import rules
from chalicelib.auth import GuestClaims
from chalicelib.errors import FeatureDisabled, IdempotencyConflict, NotFound, SessionNotCancellable
from chalicelib.ids import new_id
from chalicelib.observability import log_error, log_event
from chalicelib import queues
from chalicelib.services.purchases import Receipt, guest_receipt
from chalicelib.storage import summaries
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import (
    HistoryEvent,
    IdempotencyRecord,
    RefundRecord,
    SessionRecord,
    SlotRecord,
)
from chalicelib.storage.shards import shard_of

MAX_SESSIONS = 30
IDEMPOTENCY_TTL = timedelta(hours=24)
REFUND_SHARDS = 4


@dataclass(frozen=True)
class CancellationPlan:
    """What cancelling would do: which sessions go, which of them are refunded, and for how much."""

    receipt: Receipt
    sessions: list[SessionRecord]
    refundable_ids: frozenset[str]
    now: datetime

    @property
    def refund_amount(self) -> int:
        return sum(int(s.amount) for s in self.sessions if s.session_id in self.refundable_ids)


@dataclass(frozen=True)
class Cancellation:
    plan: CancellationPlan
    refund: RefundRecord | None
    sessions_after: list[SessionRecord]


def plan_cancellation(receipt: Receipt, session_ids: list[str], now: datetime) -> CancellationPlan:
    """Decide, changing nothing. All or nothing: one session that cannot go refuses them all."""
    by_id = {s.session_id: s for s in receipt.sessions}
    missing = [sid for sid in session_ids if sid not in by_id]
    if missing:
        raise NotFound("no such session in this transaction", {"session_ids": missing})
    settings = receipt.venue.settings()
    refusals = {sid: rules.cancel_refusal(settings, _state(by_id[sid]), now) for sid in session_ids}
    if any(reason is rules.Refusal.FEATURE_DISABLED for reason in refusals.values()):
        raise FeatureDisabled("this venue does not let guests cancel sessions online")
    refused = {sid: reason.value for sid, reason in refusals.items() if reason is not None}
    if refused:
        raise SessionNotCancellable("some sessions cannot be cancelled now", {"sessions": refused})
    sessions = [by_id[sid] for sid in session_ids]
    refundable = frozenset(s.session_id for s in sessions if rules.refund_due(settings, s.start, now))
    return CancellationPlan(receipt=receipt, sessions=sessions, refundable_ids=refundable, now=now)


def quote(claims: GuestClaims, transaction_id: str, session_ids: list[str], now: datetime) -> CancellationPlan:
    return plan_cancellation(guest_receipt(claims, transaction_id), session_ids, now)


def cancel(claims: GuestClaims, transaction_id: str, session_ids: list[str], now: datetime,
           idempotency_key: str | None, render: Callable[[Cancellation], dict[str, Any]]) -> dict[str, Any]:
    """Cancel and answer with `render(...)`. With an Idempotency-Key, a repeat of the same
    request gets the first answer again; the answer is stored in the same atomic write."""
    request_hash = _request_hash(transaction_id, session_ids)
    record_key = f"cancel#{claims.guest_id}#{idempotency_key}" if idempotency_key else None
    if record_key:
        earlier = _earlier_answer(record_key, request_hash)
        if earlier is not None:
            return earlier
    plan = plan_cancellation(guest_receipt(claims, transaction_id), session_ids, now)
    cancellation = _apply(plan)
    answer = render(cancellation)
    write = _cancellation_write(cancellation)
    if record_key:
        write.put("idempotency", IdempotencyRecord(
            key=record_key, request_hash=request_hash, state="completed", status_code=200, response=answer,
            expires_at=now + IDEMPOTENCY_TTL), condition=IdempotencyRecord.key.does_not_exist())
    try:
        write.commit()
    except AtomicWriteFailed as failure:
        if record_key and "idempotency" in failure.failed:  # the same request, a moment earlier
            earlier = _earlier_answer(record_key, request_hash)
            if earlier is not None:
                return earlier
        raise SessionNotCancellable("some sessions changed meanwhile; reload and try again",
                                    {"sessions": {label.split(":", 1)[1]: "changed" for label in failure.failed
                                                  if label.startswith("session:")}}) from None
    refund = cancellation.refund
    log_event("sessions_cancelled", venue_id=plan.receipt.venue.venue_id, transaction_id=transaction_id,
              guest_id=claims.guest_id, session_ids=session_ids, refund_id=refund.refund_id if refund else None,
              refund_amount=plan.refund_amount)
    if refund is not None:
        try:
            queues.send_refund(transaction_id, refund.refund_id)
        except Exception as error:  # the reconciler re-sends refunds left pending, so nothing is lost
            log_error("refund_send_failed", refund_id=refund.refund_id, transaction_id=transaction_id,
                      error=repr(error))
    return answer


def _apply(plan: CancellationPlan) -> Cancellation:
    """The records as they will be after the cancellation (nothing written yet)."""
    receipt, now = plan.receipt, plan.now
    refund = None
    if plan.refundable_ids:
        refund_id = new_id()
        refund = RefundRecord(
            transaction_id=receipt.transaction.transaction_id, item=f"refund#{refund_id}",
            venue_id=receipt.venue.venue_id, refund_id=refund_id, refund_key=refund_id,
            amount=plan.refund_amount,
            currency=receipt.transaction.currency, status="pending",
            session_ids=sorted(plan.refundable_ids), payment_intent_id=receipt.transaction.payment_intent_id,
            stripe_account=receipt.transaction.stripe_account,
            created_at=now, updated_at=now, venue_status=f"{receipt.venue.venue_id}#pending",
            pending_shard=shard_of(refund_id, REFUND_SHARDS), key_generation=1)
    after = []
    for session in plan.sessions:
        refunded = session.session_id in plan.refundable_ids
        cancelled = SessionRecord.from_raw_data(session.serialize())
        cancelled.status, cancelled.cancelled_at = "cancelled", now
        cancelled.refund_status = "pending" if refunded else "not_refunded"
        cancelled.refund_id = refund.refund_id if refunded and refund else None
        cancelled.refund_window, cancelled.window_shard = "closed", None
        after.append(cancelled)
    return Cancellation(plan=plan, refund=refund, sessions_after=after)


def _cancellation_write(cancellation: Cancellation) -> AtomicWrite:
    plan, now = cancellation.plan, cancellation.plan.now
    venue_id = plan.receipt.venue.venue_id
    write = AtomicWrite()
    for before, after in zip(plan.sessions, cancellation.sessions_after):
        actions = [SessionRecord.status.set("cancelled"), SessionRecord.cancelled_at.set(now),
                   SessionRecord.refund_status.set(after.refund_status), SessionRecord.refund_window.set("closed"),
                   SessionRecord.window_shard.remove(), SessionRecord.version.add(1)]
        if after.refund_id:
            actions.append(SessionRecord.refund_id.set(after.refund_id))
        # Still booked, not moved meanwhile, and not started (checked against the same clock).
        condition = ((SessionRecord.status == "booked") & (SessionRecord.slot_id == before.slot_id)
                     & (SessionRecord.start > now))
        write.update(f"session:{before.session_id}", before, actions=actions, condition=condition)
        write.put(f"history:{before.session_id}", HistoryEvent(
            transaction_id=before.transaction_id, event_id=new_id(), venue_id=venue_id, at=now,
            actor=_actor(cancellation), action="session_cancelled", session_id=before.session_id,
            before={"status": "booked"}, after={"status": "cancelled", "refund_status": after.refund_status}))
    for slot_id, seats in Counter(s.slot_id for s in plan.sessions).items():
        write.update(f"slot:{slot_id}", SlotRecord(venue_id, slot_id),
                     actions=[SlotRecord.remaining.add(seats), SlotRecord.booked.add(-seats)],
                     condition=SlotRecord.slot_id.exists())
    if cancellation.refund is not None:
        write.put("refund", cancellation.refund, condition=RefundRecord.item.does_not_exist())
    summaries.update(write, plan.receipt.transaction.transaction_id, {
        s.session_id: {"status": "cancelled", "refund_status": s.refund_status} for s in cancellation.sessions_after})
    return write


def _actor(cancellation: Cancellation) -> str:
    return f"guest:{cancellation.plan.receipt.transaction.guest_id}"


def _state(session: SessionRecord) -> rules.SessionState:
    return rules.SessionState(start=session.start, status=session.status)


def _request_hash(transaction_id: str, session_ids: list[str]) -> str:
    canonical = json.dumps({"transaction_id": transaction_id, "session_ids": sorted(session_ids)})
    return hashlib.sha256(canonical.encode()).hexdigest()


def _earlier_answer(record_key: str, request_hash: str) -> dict[str, Any] | None:
    try:
        record = IdempotencyRecord.get(record_key, consistent_read=True)
    except IdempotencyRecord.DoesNotExist:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyConflict("this Idempotency-Key was used with another request")
    return dict(record.response)


def idempotency_key_valid(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(" " <= char <= "~" for char in key)

