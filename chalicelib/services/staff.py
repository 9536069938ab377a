"""Staff at the front desk acting for a guest with the venue's key: finding the guest, opening
their transactions and receipts. Staff change them in `edits` (`staff_edit_session`) and
`cancellations` (`staff_cancel`), with a reason, past the switches that bind guests: never past
capacity, and a started session can be cancelled but not moved."""
from __future__ import annotations

from chalicelib.errors import NotFound
from chalicelib.services import guests, purchases, receipts
from chalicelib.services.receipts import Receipt
from chalicelib.storage.models import GuestRecord, TransactionRecord, VenueRecord


def find_guests(venue: VenueRecord, email: str) -> list[GuestRecord]:
    """The guest with exactly this email (already lowercased: emails are stored so), or none.
    One GetItem: the email is the guest's key within the venue."""
    try:
        return [GuestRecord.get(venue.venue_id, email)]
    except GuestRecord.DoesNotExist:
        return []


def guest_of_venue(venue: VenueRecord, guest_id: str) -> GuestRecord:
    """The guest, if they are this venue's; another venue's guest is not found, like a missing one.
    Read by key, so a guest created a moment ago is found although the guest-id index may lag."""
    guest = guests.guest_of_venue(venue.venue_id, guest_id)
    if guest is None:
        raise NotFound("no such guest at this venue", {"guest_id": guest_id})
    return guest


def guest_transactions(venue: VenueRecord, guest_id: str, limit: int,
                       cursor: str | None) -> tuple[list[TransactionRecord], str | None]:
    guest = guest_of_venue(venue, guest_id)
    return purchases.guest_transactions(venue.venue_id, guest.guest_id, limit, cursor)


def receipt(venue: VenueRecord, transaction_id: str) -> Receipt:
    """Any receipt of the venue: one Query (the venue from the warm Lambda's copy)."""
    return receipts.receipt(venue.venue_id, transaction_id)
