"""Identifiers: opaque, time-ordered ids (ULIDs) for the machine, and the short booking
reference a guest reads out on the phone."""
from __future__ import annotations

import hashlib

# No 0/O, 1/I/L or U: a reference read aloud or copied by hand cannot be misread.
_REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    # Imported on first use: python-ulid brings typing_extensions, and read-only requests
    # (receipts, lists) never make an id, so their cold starts skip both.
    from ulid import ULID

    return str(ULID())


def refund_id(transaction_id: str) -> str:
    """A new refund's id: its purchase's id, '-', a new id. It names the purchase, so a refund
    given by its id alone (an admin's retry) is read by key, with no locator written for it."""
    return f"{transaction_id}{_REFUND_SEPARATOR}{new_id()}"


def purchase_of_refund(refund_id: str) -> str | None:
    """The purchase a refund id names; None for the first round's refund ids (plain ULIDs),
    which their locator or the refund-id index find."""
    transaction_id, separator, own = refund_id.partition(_REFUND_SEPARATOR)
    return transaction_id if separator and transaction_id and own else None


_REFUND_SEPARATOR = "-"  # never in a ULID (Crockford's base 32)


def booking_reference(transaction_id: str) -> str:
    """`K7Q-4PX`: six characters derived from the transaction id, so every purchase has one
    from the start (old ones too) and nothing has to be stored or kept unique. It names a
    purchase to a person; the transaction id stays the key."""
    number = int.from_bytes(hashlib.sha256(transaction_id.encode()).digest()[:8], "big")
    characters = []
    for _ in range(6):
        number, index = divmod(number, len(_REFERENCE_ALPHABET))
        characters.append(_REFERENCE_ALPHABET[index])
    return f"{''.join(characters[:3])}-{''.join(characters[3:])}"
