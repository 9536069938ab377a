"""A transaction's history: every change to it (purchase, edits, cancellations, refunds), who
made it and why, as the venue's staff read it."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib.errors import NotFound
from chalicelib.storage import pages
from chalicelib.storage.models import HistoryEvent


def events(venue_id: str, transaction_id: str, limit: int = pages.DEFAULT_LIMIT,
           cursor: str | None = None) -> tuple[list[HistoryEvent], str | None]:
    """A transaction's events, oldest first, a page at a time. A cursor is signed for this venue
    and transaction, so only a page of a transaction the venue owns leads to the next."""
    def page(start: dict[str, Any] | None, count: int) -> Iterable[HistoryEvent]:
        return HistoryEvent.query(transaction_id, limit=count, page_size=count, last_evaluated_key=start)

    found, next_cursor = pages.page(page, limit, cursor, f"history:{venue_id}:{transaction_id}",
                                    ("transaction_id", "event_id"))
    if cursor is None and (not found or found[0].venue_id != venue_id):
        raise NotFound("no such transaction")
    return found, next_cursor
