"""A transaction's history: every change to it (purchase, edits, cancellations, refunds), who
made it and why, as the venue's staff read it.

A cancellation of several sessions is stored as one item that reads as one event per session
(`HistoryEvent.sessions`): event `<id>-1`, `<id>-2`, ... So a page counts events, not items, and
its cursor names the last event shown, which may be part of an item."""
from __future__ import annotations

import re
from collections.abc import Iterator

from chalicelib.errors import NotFound
from chalicelib.storage import pages
from chalicelib.storage.models import HistoryEvent

_PART = "-"  # between an item's event id (a ULID, which never holds it) and a session's number
# What a cursor may name: an item's event id, or one session's part of an item (`<id>-<n>`).
_CURSOR_EVENT = re.compile(r"[0-9A-Za-z]{1,64}(-[1-9][0-9]{0,3})?")


def events(venue_id: str, transaction_id: str, limit: int = pages.DEFAULT_LIMIT,
           cursor: str | None = None) -> tuple[list[HistoryEvent], str | None]:
    """A transaction's events, oldest first, a page at a time. A cursor is signed for this venue
    and transaction, so only a page of a transaction the venue owns leads to the next."""
    scope, key_names = f"history:{venue_id}:{transaction_id}", ("transaction_id", "event_id")
    after = _cursor_event(cursor, scope, key_names) if cursor else None
    found: list[HistoryEvent] = []
    for event in _from(transaction_id, after, limit + 1):
        found.append(event)
        if len(found) > limit:
            break
    if cursor is None and (not found or found[0].venue_id != venue_id):
        raise NotFound("no such transaction")
    if len(found) <= limit:
        return found, None
    shown = found[:limit]
    last = {"transaction_id": {"S": transaction_id}, "event_id": {"S": shown[-1].event_id}}
    return shown, pages.encode_cursor(last, scope)


def _cursor_event(cursor: str, scope: str, key_names: tuple[str, str]) -> str:
    """The event a cursor names, or 400: a cursor names an event this list showed, never anything
    else, even one made with our key."""
    named = pages.decode_cursor(cursor, scope, key_names)["event_id"]
    event_id = named.get("S") if isinstance(named, dict) else None
    if not isinstance(event_id, str) or not _CURSOR_EVENT.fullmatch(event_id):
        raise pages.invalid_cursor()
    return event_id


def _from(transaction_id: str, after: str | None, page_size: int) -> Iterator[HistoryEvent]:
    """The events after the event `after` (from the start if None), oldest first."""
    item_id, _, part = (after or "").partition(_PART)
    if not after:
        stored = HistoryEvent.query(transaction_id, page_size=page_size)
    elif part:  # the next events may be the rest of that item's
        stored = HistoryEvent.query(transaction_id, HistoryEvent.event_id >= item_id, page_size=page_size)
    else:
        stored = HistoryEvent.query(transaction_id, HistoryEvent.event_id > item_id, page_size=page_size)
    for record in stored:
        for event in expanded(record):
            # The events of that item up to the part shown are past; a part of an item that was
            # never expanded means the item itself is.
            if part and record.event_id == item_id and int(event.event_id.partition(_PART)[2] or 0) <= int(part):
                continue
            yield event


def expanded(record: HistoryEvent) -> list[HistoryEvent]:
    """The events a stored item stands for: itself, or one per session it holds."""
    if not record.sessions:
        return [record]
    return [HistoryEvent(transaction_id=record.transaction_id, event_id=f"{record.event_id}{_PART}{n}",
                         venue_id=record.venue_id, at=record.at, actor=record.actor, action=record.action,
                         session_id=session_id, before=record.before, after={**(record.after or {}), **own},
                         reason=record.reason)
             for n, (session_id, own) in enumerate(dict(record.sessions).items(), start=1)]
