"""The JSON shape of each resource in the contract, built from storage records and rule results."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from chalicelib import rules
from chalicelib.ids import booking_reference
from chalicelib.storage import summaries
from chalicelib.storage.models import (
    GuestRecord,
    HistoryEvent,
    JobRecord,
    NotificationRecord,
    RefundRecord,
    SessionRecord,
    SlotRecord,
    TransactionRecord,
    VenueRecord,
)
from chalicelib.times import format_utc

if TYPE_CHECKING:
    from chalicelib.services.cancellations import Cancellation, CancellationPlan


def venue(record: VenueRecord) -> dict[str, Any]:
    return {"venue_id": record.venue_id, "name": record.name, "timezone": record.timezone,
            "currency": record.currency, "settings": settings(record), "created_at": format_utc(record.created_at),
            "stripe_account": record.stripe_account}


def public_venue(record: VenueRecord) -> dict[str, Any]:
    """What a guest portal shows before login: no settings, no keys."""
    return {"venue_id": record.venue_id, "name": record.name, "timezone": record.timezone,
            "currency": record.currency}


def settings(record: VenueRecord) -> dict[str, Any]:
    return {
        "venue_id": record.venue_id,
        "allow_guest_modify": bool(record.allow_guest_modify),
        "refund_on_cancel": bool(record.refund_on_cancel),
        "refund_cutoff_hours": int(record.refund_cutoff_hours),
        **_policy(record.settings()),
        "updated_at": format_utc(record.settings_updated_at),
        "version": int(record.settings_version),
    }


def _policy(venue_settings: rules.VenueSettings) -> dict[str, Any]:
    return {"modify_cutoff_hours": venue_settings.modify_cutoff_hours,
            "cancellation_fee_fixed": venue_settings.cancellation_fee_fixed,
            "cancellation_fee_percent": venue_settings.cancellation_fee_percent,
            "notify_guests": venue_settings.notify_guests}


def slot(record: SlotRecord) -> dict[str, Any]:
    return {
        "slot_id": record.slot_id, "venue_id": record.venue_id, "product_id": record.product_id,
        "product_name": record.product_name, "start": format_utc(record.start), "end": format_utc(record.end),
        "capacity": int(record.capacity), "booked": int(record.booked), "remaining": int(record.remaining),
        "status": record.status,
    }


def guest(record: GuestRecord) -> dict[str, Any]:
    return {"guest_id": record.guest_id, "email": record.email, "name": record.name}


def session(record: SessionRecord, venue_settings: rules.VenueSettings, now: datetime,
            refunds: list[RefundRecord] | None = None) -> dict[str, Any]:
    """`refunds`: the transaction's refunds, when known. A refunded session shows its refund's
    current status: the refund worker updates the refund only, never its sessions."""
    forfeited = bool(record.refund_forfeited)
    state = rules.SessionState(start=record.start, status=record.status, refund_forfeited=forfeited)
    actions = rules.session_actions(venue_settings, state, now)
    booked = record.status == "booked"
    return {
        "session_id": record.session_id, "slot_id": record.slot_id, "product_id": record.product_id,
        "product_name": record.product_name, "start": format_utc(record.start), "end": format_utc(record.end),
        "participant_name": record.participant_name, "amount": int(record.amount), "status": record.status,
        "refund_status": session_refund_status(record, refunds or []),
        "refund_deadline": format_utc(rules.refund_deadline(venue_settings, record.start, forfeited))
        if booked else None,
        # The stored projection may lag a settings change; the rule is always current.
        "refund_window": rules.refund_window(venue_settings, record.start, now, forfeited) if booked else "closed",
        "modify_deadline": format_utc(rules.modify_deadline(venue_settings, record.start)) if booked else None,
        "actions": {"edit": actions.edit, "cancel": actions.cancel, "refund_on_cancel": actions.refund_on_cancel},
    }


def session_refund_status(record: SessionRecord, refunds: list[RefundRecord]) -> str:
    found = next((r for r in refunds if record.refund_id and r.refund_id == record.refund_id), None)
    return str(found.status) if found is not None else str(record.refund_status)


def refund(record: RefundRecord, detailed: bool = False, purchase: TransactionRecord | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "refund_id": record.refund_id, "amount": int(record.amount), "currency": record.currency,
        "status": record.status, "session_ids": list(record.session_ids),
        "created_at": format_utc(record.created_at),
    }
    if detailed:
        body.update({
            "transaction_id": record.transaction_id, "venue_id": record.venue_id,
            "payment_intent_id": record.payment_intent_id, "stripe_refund_id": record.stripe_refund_id,
            "failure_code": record.failure_code, "failure_message": record.failure_message,
            "updated_at": format_utc(record.updated_at),
        })
    if purchase is not None:
        # What the venue's admin needs to recognise the refund: whose, which sessions, which receipt.
        refunded = set(record.session_ids)
        body.update({
            "booking_reference": booking_reference(purchase.transaction_id),
            "guest": {"guest_id": purchase.guest_id, "name": purchase.guest_name, "email": purchase.guest_email},
            "sessions": [{"session_id": s.session_id, "product_name": s.product_name, "start": format_utc(s.start),
                          "participant_name": s.participant_name}
                         for s in summaries.read(purchase) if s.session_id in refunded],
        })
    return body


def transaction_summary(record: TransactionRecord) -> dict[str, Any]:
    """A purchase as the guest's list shows it, from the header item alone (its summary)."""
    sessions = summaries.read(record)
    booked = [s for s in sessions if s.status == "booked"]
    first = (booked or sessions)[0] if sessions else None
    return {"transaction_id": record.transaction_id, "purchased_at": format_utc(record.purchased_at),
            "currency": record.currency, "total": int(record.total), "session_count": int(record.session_count),
            "booking_reference": booking_reference(record.transaction_id),
            "products": list(dict.fromkeys(s.product_name for s in sessions)),
            "first_session_start": format_utc(first.start) if first else None,
            "booked_count": len(booked), "cancelled_count": len(sessions) - len(booked),
            "refund_status": summaries.purchase_refund_status(sessions)}


def receipt(venue_record: VenueRecord, transaction: TransactionRecord, sessions: list[SessionRecord],
            refunds: list[RefundRecord], now: datetime) -> dict[str, Any]:
    venue_settings = venue_record.settings()
    return {
        "transaction_id": transaction.transaction_id, "venue_id": transaction.venue_id,
        "booking_reference": booking_reference(transaction.transaction_id), "timezone": venue_record.timezone, "purchased_at": format_utc(transaction.purchased_at),
        "currency": transaction.currency, "total": int(transaction.total),
        "payment_intent_id": transaction.payment_intent_id,
        "sessions": [session(s, venue_settings, now, refunds)
                     for s in sorted(sessions, key=lambda s: (s.start, s.session_id))],
        "refunds": [refund(r) for r in sorted(refunds, key=lambda r: r.created_at)],
    }


def availability(venue_record: VenueRecord, product_id: str, month: date, days: list[date]) -> dict[str, Any]:
    return {"venue_id": venue_record.venue_id, "product_id": product_id, "month": f"{month:%Y-%m}",
            "timezone": venue_record.timezone, "days": [day.isoformat() for day in days]}


def history_event(record: HistoryEvent) -> dict[str, Any]:
    return {"event_id": record.event_id, "at": format_utc(record.at), "actor": record.actor,
            "action": record.action, "session_id": record.session_id, "before": record.before,
            "after": record.after, "reason": record.reason}


def quote(plan: CancellationPlan) -> dict[str, Any]:
    """What the confirm dialog shows: per session, whether it would be refunded, the refund and
    the fee kept, and the sums."""
    return {"refund_amount": plan.refund_amount, "fee_amount": plan.fee_amount,
            "currency": plan.currency,
            "sessions": [{"session_id": s.session_id, "refundable": s.refund.refundable,
                          "refund_amount": s.refund.refund_amount, "fee_amount": s.refund.fee_amount,
                          "amount": s.amount} for s in plan.sessions]}


def cancellation(done: Cancellation) -> dict[str, Any]:
    settings = done.receipt.venue.settings()
    return {"cancelled_session_ids": [s.session_id for s in done.plan.sessions],
            "refund": refund(done.refund) if done.refund is not None else None,
            "sessions": [session(s, settings, done.plan.now) for s in done.sessions_after]}


def job(record: JobRecord) -> dict[str, Any]:
    return {
        "job_id": record.job_id, "kind": record.kind, "venue_id": record.venue_id, "slot_id": record.slot_id,
        "status": record.status, "reason": record.reason, "refund": record.refund_mode,
        "sessions_total": int(record.sessions_total), "sessions_cancelled": int(record.sessions_cancelled),
        "refunds_created": int(record.refunds_created), "created_at": format_utc(record.created_at),
        "finished_at": format_utc(record.finished_at) if record.finished_at else None,
    }


def notification(record: NotificationRecord) -> dict[str, Any]:
    """An email to a guest as the venue admin sees it: never its body, so never a secret link.
    `sending` is shown as `queued`: to the admin it has not gone yet."""
    return {"notification_id": record.notification_id, "kind": record.kind, "guest_id": record.guest_id,
            "to": record.to, "subject": record.subject,
            "status": "queued" if record.status == "sending" else record.status,
            "failure_code": record.failure_code, "created_at": format_utc(record.created_at),
            "sent_at": format_utc(record.sent_at)}
