"""Paying refunds: the worker that asks Stripe for each refund exactly once, whatever is retried,
and the dead-letter handler that gives up on one Stripe never answered.

The worker asks Stripe under an idempotency key that is the same on every retry of one key
generation, on the Stripe account the purchase was paid on, and records the answer through
`refund_states` (each move conditional on the state it leaves), so duplicates, races and crashes
pay once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.config import config
from chalicelib.observability import log_error, log_event
from chalicelib.parts import StripeAccess
from chalicelib.services.refund_states import (
    GAVE_UP,
    PAID_AT_STRIPE,
    load,
    settle_failed,
    settle_refunded,
    transition,
)
from chalicelib.storage.models import RefundRecord

if TYPE_CHECKING:
    from chalicelib.payments import StripeGateway, StripeRefund

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


def pay(message: RefundMessage, now: datetime, stripe: StripeAccess) -> str:
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
        paid = _pay_at_stripe(refund, now, stripe)
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


def _pay_at_stripe(refund: RefundRecord, now: datetime, stripe: StripeAccess) -> StripeRefund:
    """Stripe's refund for ours: the one it already holds when our key may have expired there,
    else one created under our idempotency key (once more with a fresh key if ours was refused)."""
    from chalicelib.payments import FinalPaymentError

    gateway = stripe.gateway()
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
        if not error.operational or not stripe.refresh_key():
            raise
    return create(stripe.gateway())


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
        transition(current, "failed", "refunded", now, stripe_refund_id=stripe_refund_id)


# --- The dead-letter handler -------------------------------------------------------------------

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
