"""Stripe's webhook, for refunds: a refund Stripe accepted can still fail later, and Stripe may
tell us of a success before our own worker recorded it.

Events are applied once each (by event id, remembered in the same write as their effect), only to
the Stripe refund we recorded (or, before we recorded one, to a refund made under our current key
generation), and only when they come from the account the purchase was paid on.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.errors import InvalidRequest, ServiceUnavailable
from chalicelib.observability import log_event
from chalicelib.services.refund_states import load, transition
from chalicelib.storage.models import IdempotencyRecord, RefundRecord

REFUND_EVENTS = frozenset({"refund.updated", "refund.failed", "refund.created", "charge.refund.updated"})
# Stripe retries a webhook for three days and keeps events for thirty: an event applied is
# remembered as long as it could come again.
STRIPE_EVENT_MEMORY = timedelta(days=30)


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


def _remembered(event: StripeEvent, refund: RefundRecord, now: datetime) -> IdempotencyRecord:
    """The record that the event was applied, written with its effect: a re-delivered event can
    never apply twice."""
    return IdempotencyRecord(key=_event_key(event.event_id), request_hash=refund.refund_id,
                             expires_at=now + STRIPE_EVENT_MEMORY)


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
        written = transition(refund, refund.status, "failed", now,
                             failure_code=str(data.get("failure_reason") or "refund_failed"),
                             failure_message="Stripe reported that the refund failed",
                             stripe_refund_id=data["id"], remember=_remembered(event, refund, now))
        return "failed" if written is not None else None
    if status in ("succeeded", "pending") and refund.status == "pending":
        written = transition(refund, "pending", "refunded", now, stripe_refund_id=data["id"],
                             remember=_remembered(event, refund, now))
        return "refunded" if written is not None else None
    return "unchanged"
