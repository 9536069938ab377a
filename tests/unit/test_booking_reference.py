"""The booking reference a guest reads out: short, unambiguous, and always the same for a purchase."""
from __future__ import annotations

import re

from chalicelib.ids import booking_reference, new_id

READABLE = re.compile(r"^[2-9A-HJKMNP-TV-Z]{3}-[2-9A-HJKMNP-TV-Z]{3}$")  # no 0/O, 1/I/L or U


def test_a_reference_is_six_readable_characters_and_always_the_same() -> None:
    transaction_id = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert READABLE.match(booking_reference(transaction_id))
    assert booking_reference(transaction_id) == booking_reference(transaction_id)


def test_references_of_many_purchases_rarely_collide_and_never_use_lookalikes() -> None:
    references = [booking_reference(new_id()) for _ in range(5000)]
    assert all(READABLE.match(r) for r in references)
    assert len(set(references)) >= 4990  # 30^6 possible: a collision is rare, never relied on
