"""Receipts: one transaction as its guest and the venue's staff read it, with its sessions and
refunds, in one Query."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.auth import GuestClaims
from chalicelib.errors import NotFound
from chalicelib.services.access import require_current_token
from chalicelib.storage import venue_cache
from chalicelib.storage.models import BookingItem, RefundRecord, SessionRecord, TransactionRecord, VenueRecord


@dataclass(frozen=True)
class Receipt:
    venue: VenueRecord
    transaction: TransactionRecord
    sessions: list[SessionRecord]
    refunds: list[RefundRecord]


def receipt(venue_id: str, transaction_id: str, guest_id: str | None = None) -> Receipt:
    """The whole transaction in one Query (the venue comes from the warm Lambda's copy, see
    storage/venue_cache.py). Another guest's or venue's transaction is not found, exactly like
    one that does not exist."""
    items = list(BookingItem.query(transaction_id))
    transaction = next((i for i in items if isinstance(i, TransactionRecord)), None)
    if transaction is None or transaction.venue_id != venue_id or (guest_id and transaction.guest_id != guest_id):
        raise NotFound("no such transaction")
    venue = venue_cache.venue(venue_id)  # a few seconds old at most: writes re-check the settings
    return Receipt(
        venue=venue, transaction=transaction,
        sessions=[i for i in items if isinstance(i, SessionRecord)],
        refunds=[i for i in items if isinstance(i, RefundRecord)],
    )


def guest_receipt(claims: GuestClaims, transaction_id: str) -> Receipt:
    found = receipt(claims.venue_id, transaction_id, guest_id=claims.guest_id)
    require_current_token(claims, found.venue)
    return found
