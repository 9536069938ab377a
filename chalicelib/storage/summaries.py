"""The small summary a transaction's header item keeps of its sessions, so that a guest's list
of purchases (one Query of the guest index) can name products, dates and states without reading
any session. Every atomic write that changes what it shows updates it in the same write: one
map entry per session, each field set by its own document path, so two writes about different
sessions of one purchase never undo each other.

Each entry's fields are stored under one-letter names (`STORED`): the header is rewritten, with
its `guest-purchases` index entry, by every cancellation and every refund's outcome, and DynamoDB
bills each of those writes per KB of the whole item. The full names cost about 45 bytes a
session, which is what put a five-session purchase over 1 KB."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.storage.atomic import AtomicWrite
from chalicelib.storage.models import SessionRecord, TransactionRecord
from chalicelib.times import format_utc, parse_rfc3339

LABEL = "summary"


# What the summary says of a session -> the name it is stored under.
STORED = {"product_name": "p", "start": "s", "participant_name": "n", "status": "c", "refund_status": "r"}


def entry(session: SessionRecord, refund_status: str | None = None) -> dict[str, str]:
    """The session's entry as stored; `refund_status` when its refund's status is not the
    session's own (a refunded session shows its refund's, which the session does not carry)."""
    return stored({"product_name": session.product_name, "start": format_utc(session.start) or "",
                   "participant_name": session.participant_name, "status": session.status,
                   "refund_status": refund_status or session.refund_status})


def stored(fields: dict[str, str]) -> dict[str, str]:
    return {STORED[name]: value for name, value in fields.items()}


def of_sessions(sessions: Iterable[SessionRecord]) -> dict[str, dict[str, str]]:
    return {session.session_id: entry(session) for session in sessions}


def update(write: AtomicWrite, transaction_id: str, changes: dict[str, dict[str, str]]) -> None:
    """Add to `write` the header update that records `changes` ({session_id: {field: value}})."""
    actions = [TransactionRecord.summary[session_id][STORED[name]].set(value)
               for session_id, fields in changes.items() for name, value in fields.items()]
    if actions:
        write.update(LABEL, TransactionRecord(transaction_id, "transaction"), actions=actions,
                     condition=TransactionRecord.item.exists())


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    product_name: str
    start: datetime
    participant_name: str
    status: str
    refund_status: str


def read(transaction: TransactionRecord) -> list[SessionSummary]:
    """The header's summary, in start order; empty for a header written before summaries."""
    # PynamoDB's as_dict is untyped.
    raw = transaction.summary.as_dict() if transaction.summary is not None else {}  # type: ignore[no-untyped-call]
    found = [SessionSummary(session_id=session_id, product_name=str(fields.get(STORED["product_name"], "")),
                            start=parse_rfc3339(str(fields[STORED["start"]])),
                            participant_name=str(fields.get(STORED["participant_name"], "")),
                            status=str(fields.get(STORED["status"], "booked")),
                            refund_status=str(fields.get(STORED["refund_status"], "none")))
             for session_id, fields in raw.items() if isinstance(fields, dict) and fields.get(STORED["start"])]
    return sorted(found, key=lambda s: (s.start, s.session_id))


def purchase_refund_status(sessions: list[SessionSummary]) -> str:
    """One word for the purchase's refunds: what a guest most needs to know comes first."""
    states = {s.refund_status for s in sessions}
    for state in ("failed", "pending", "refunded", "not_refunded"):
        if state in states:
            return state
    return "none"

