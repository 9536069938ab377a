"""The venue admin's refunds: the list (all, or one status), finding one refund, and retrying a
failed one."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from chalicelib import ids
from chalicelib.errors import NotFound, RefundNotRetryable, ServiceUnavailable
from chalicelib.observability import log_error
from chalicelib.parts import QueueSender, StripeAccess
from chalicelib.services.refund_states import PAID_AT_STRIPE, load, transition
from chalicelib.storage import pages
from chalicelib.storage.models import BookingItem, Locator, RefundRecord, TransactionRecord
from chalicelib.storage.reads import Key, read_many


def venue_refunds(venue_id: str, status: str | None, limit: int,
                  cursor: str | None) -> tuple[list[RefundRecord], dict[str, TransactionRecord], str | None]:
    """The venue's refunds, newest first, a page at a time: of one status, or all of them; with
    the purchase (header item, with its session summary) behind each."""
    if status is None:
        # The list of every status reads the venue-refund-list index's keys, then the refunds
        # themselves with their purchases in the same BatchGetItem: the index holds no more than
        # keys so that a refund changing status never rewrites its entry.
        def every(start: dict[str, Any] | None, count: int) -> Iterable[BookingItem]:
            return RefundRecord.refunds_by_venue.query(venue_id, scan_index_forward=False, limit=count,
                                                       page_size=count, last_evaluated_key=start)

        entries, next_cursor = pages.page(every, limit, cursor, f"refunds:{venue_id}", _ALL_REFUNDS_KEY)
        found = _read_with_purchases([Key(BookingItem, e.transaction_id, e.item) for e in entries])
        refunds = [r for r in found if isinstance(r, RefundRecord)]
        return refunds, {p.transaction_id: p for p in found if isinstance(p, TransactionRecord)}, next_cursor

    def of_status(start: dict[str, Any] | None, count: int) -> Iterable[RefundRecord]:
        return [r for r in RefundRecord.refunds_by_venue_status.query(
            f"{venue_id}#{status}", scan_index_forward=False, limit=count, page_size=count, last_evaluated_key=start)
            if isinstance(r, RefundRecord)]

    of_one, next_cursor = pages.page(of_status, limit, cursor, f"refunds:{venue_id}:{status}", _STATUS_REFUNDS_KEY)
    return of_one, _purchases_of(of_one), next_cursor


_ALL_REFUNDS_KEY = ("transaction_id", "item", "refund_venue_id", "created_at")
_STATUS_REFUNDS_KEY = ("transaction_id", "item", "venue_status", "created_at")


def _read_with_purchases(refund_keys: list[Key]) -> list[Any]:
    """The refunds under these keys and their purchases, read together: one BatchGetItem per
    hundred items. Strongly: an entry the index shows is never missing from the read (an
    eventually consistent read just after the refund's write could miss it, and the page's
    cursor would pass it by)."""
    purchase_keys = [Key(BookingItem, t, "transaction") for t in dict.fromkeys(k.hash_key for k in refund_keys)]
    return [item for item in read_many(refund_keys + purchase_keys) if item is not None]


def _purchases_of(found: list[RefundRecord]) -> dict[str, TransactionRecord]:
    """The purchase behind each refund, read together: one BatchGetItem per hundred purchases."""
    keys = [Key(BookingItem, tid, "transaction") for tid in sorted({r.transaction_id for r in found})]
    return {h.transaction_id: h for h in read_many(keys, consistent=False) if isinstance(h, TransactionRecord)}


def find(venue_id: str, refund_id: str) -> RefundRecord:
    """The venue's refund `refund_id`, decided on reads by key: its id names its purchase, or (the
    first round's refunds) a locator does; older refunds are found through the refund-id index,
    long caught up with them."""
    named = ids.purchase_of_refund(refund_id)
    if named is not None:
        refund = load(named, refund_id)
        if refund is None or refund.venue_id != venue_id:
            raise NotFound("no such refund")
        return refund
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


def retry(refund: RefundRecord, actor: str, now: datetime, stripe: StripeAccess, queues: QueueSender) -> RefundRecord:
    """An admin's retry of a failed refund: if Stripe already holds a refund for it (paid by an
    earlier attempt), record that; otherwise try again under the next key generation."""
    from chalicelib.payments import PaymentError

    if refund.status != "failed":
        raise RefundNotRetryable("only a failed refund can be retried", {"status": refund.status})
    try:
        existing = stripe.gateway().find_refund(payment_intent_id=refund.payment_intent_id,
                                                refund_id=refund.refund_id, stripe_account=refund.stripe_account)
    except PaymentError as error:
        raise ServiceUnavailable("Stripe could not be asked about this refund; try again") from error
    if existing is not None and existing.status in PAID_AT_STRIPE:
        recorded = transition(refund, "failed", "refunded", now, stripe_refund_id=existing.id, actor=actor)
        if recorded is None:
            raise RefundNotRetryable("the refund changed meanwhile; reload it")
        return recorded
    # The answer is the refund as this retry's write left it, with no read in between: a read
    # after the message could find it paid already (and tell the admin Stripe had made it
    # before), and a read that failed after the write would answer that nothing had changed.
    retried = transition(refund, "failed", "pending", now, actor=actor)
    if retried is None:
        raise RefundNotRetryable("the refund changed meanwhile; reload it")
    try:
        queues.send_refund(refund.transaction_id, refund.refund_id)
    except Exception as error:  # the reconciler re-sends it
        log_error("refund_send_failed", refund_id=refund.refund_id, transaction_id=refund.transaction_id,
                  error=repr(error))
    return retried
