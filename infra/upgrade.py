"""Brings the data the first round wrote up to what the second round's code reads: the session
summary on every purchase (and who bought it), the refund attributes of the admin's refund list,
and the locators that let a refund and a guest be read by key.

    STAGE=prod python -m infra.upgrade --dry-run     # counts what it would write, writes nothing
    STAGE=prod python -m infra.upgrade               # writes it; safe to run again, or to stop and rerun

Run it after deploying the second round (docs/deploy.md, "Upgrading from the first round"). Table
names come from the app's own configuration (`STAGE` or `TABLE_PREFIX`, chalicelib/config.py),
AWS credentials and region from the environment as for any AWS tool. It Scans the guests and the
bookings, a page at a time. Every write is conditional on what it adds being still absent, so it
never overwrites anything the app wrote meanwhile, and a second run finds nothing left to do.
It prints one JSON line per step with its counts (and its counts so far every 10,000 items), and a
last line with the totals.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

PAGE = 100  # items per Scan page, and locators per BatchGetItem (DynamoDB's limit is 100)
PROGRESS_EVERY = 100  # pages: a progress line every 10,000 items, so a long run shows it is moving
GUESTS_KEPT = 50_000  # guests kept in memory for naming their purchases' buyer without a read each


@dataclass
class Counts:
    """What one step found and did. `written`: this run's writes; `already`: a conditional write
    that found the attribute there (written by the app or another run since the page was read)."""

    step: str
    seen: int = 0
    missing: int = 0
    written: int = 0
    already: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def line(self, dry_run: bool) -> dict[str, Any]:
        return {"event": "upgrade_step", "step": self.step, "dry_run": dry_run, "seen": self.seen,
                "missing": self.missing, "written": self.written, "already": self.already,
                **({"skipped": self.skipped} if self.skipped else {})}


# --- The plan: what an item lacks, decided from the item alone --------------------------------

@dataclass(frozen=True)
class Fill:
    """Attributes to add to one stored item, each only if it is still absent."""

    record: Any  # the PynamoDB record, keys set
    values: dict[str, Any]  # attribute name -> value


def refund_fill(refund: Any, header: Any | None) -> Fill | None:
    """A first-round refund lacks `refund_venue_id` (so the admin's list, which reads the
    venue-refund-list index, misses it) and the purchase's `guest_id` (its outcome's email then
    costs two extra reads). (A refund without `refund_key` needs none: its locator finds it.)"""
    values: dict[str, Any] = {}
    if refund.refund_venue_id is None:
        values["refund_venue_id"] = refund.venue_id
    if refund.guest_id is None and header is not None:
        values["guest_id"] = header.guest_id
    return Fill(refund, values) if values else None


def header_fill(header: Any, items: list[Any], guest: Any | None) -> Fill | None:
    """A first-round purchase header lacks the summary of its sessions (the guest's list shows
    nothing of them, and every write that updates one entry of it fails) and who bought it (the
    admin's refund list). The summary says what the receipt says: a session's refund status is its
    refund's, which the worker updates without rewriting the sessions."""
    from chalicelib.storage import summaries
    from chalicelib.storage.models import RefundRecord, SessionRecord

    values: dict[str, Any] = {}
    if header.summary is None:
        refund_status = {str(r.refund_id): str(r.status) for r in items if isinstance(r, RefundRecord)}
        summary = {}
        for session in (i for i in items if isinstance(i, SessionRecord)):
            refunds = refund_status.get(session.refund_id) if session.refund_id else None
            summary[session.session_id] = summaries.entry(session, refund_status=refunds)
        values["summary"] = summary
    if guest is not None:
        if header.guest_name is None:
            values["guest_name"] = guest.name
        if header.guest_email is None:
            values["guest_email"] = guest.email
    return Fill(header, values) if values else None


# --- Doing it: conditional writes that only add -----------------------------------------------

def _add_if_absent(fill: Fill) -> bool:
    """SET each attribute to `if_not_exists(attribute, value)`, on a bookings item that exists and
    still lacks one of them: never overwrites, never creates an item. False if nothing was missing."""
    from chalicelib.storage.conditional import update_if

    model = type(fill.record)
    paths = {name: getattr(model, name) for name in fill.values}
    actions: list[Action] = [path.set(path | value) for name, value in fill.values.items() for path in [paths[name]]]
    condition: Condition | None = None
    for path in paths.values():
        condition = path.does_not_exist() if condition is None else condition | path.does_not_exist()
    return update_if(fill.record, actions, model.item.exists() & condition)


def _put_locator(locator: Any) -> bool:
    from chalicelib.storage.conditional import save_if
    from chalicelib.storage.models import Locator

    return save_if(locator, Locator.key.does_not_exist())


class Upgrade:
    def __init__(self, dry_run: bool, venue_id: str | None, out: Callable[[dict[str, Any]], None]) -> None:
        self.dry_run = dry_run
        self.venue_id = venue_id
        self.out = out
        self._guests: dict[str, Any] = {}

    def run(self) -> list[Counts]:
        steps = [self.guest_locators(), *self.bookings()]
        totals = {"missing": sum(c.missing for c in steps), "written": sum(c.written for c in steps),
                  "already": sum(c.already for c in steps)}
        self.out({"event": "upgrade_done", "dry_run": self.dry_run, "venue_id": self.venue_id, **totals})
        return steps

    def _progress(self, page: int, *steps: Counts) -> None:
        if page % PROGRESS_EVERY == 0:
            for counts in steps:
                self.out({**counts.line(self.dry_run), "event": "upgrade_progress"})

    def _apply(self, counts: Counts, write: Callable[[], bool]) -> None:
        counts.missing += 1
        if self.dry_run:
            return
        if write():
            counts.written += 1
        else:
            counts.already += 1

    def guest_locators(self) -> Counts:
        """`guest#<guest_id>` -> venue and email, for every guest: a purchase reads its guest by key
        through it (the guest-id index it falls back to may lag a guest created a moment ago)."""
        from chalicelib.storage.models import GuestRecord, Locator

        counts = Counts("guest_locators")
        found = (GuestRecord.query(self.venue_id, page_size=PAGE) if self.venue_id
                 else GuestRecord.scan(page_size=PAGE))
        for number, page in enumerate(_chunks(found, PAGE), start=1):
            counts.seen += len(page)
            existing = _existing_locators(f"guest#{g.guest_id}" for g in page)
            for guest in page:
                self._keep(guest.guest_id, guest)
                if f"guest#{guest.guest_id}" in existing:
                    continue
                locator = Locator(f"guest#{guest.guest_id}", venue_id=guest.venue_id, email=guest.email)
                self._apply(counts, partial(_put_locator, locator))
            self._progress(number, counts)
        self.out(counts.line(self.dry_run))
        return counts

    def bookings(self) -> list[Counts]:
        """Purchase headers, then refunds, from one Scan of the bookings table."""
        from chalicelib.ids import purchase_of_refund
        from chalicelib.storage.models import BookingItem, Locator, RefundRecord, TransactionRecord

        headers, refunds, locators = Counts("purchase_summaries"), Counts("refunds"), Counts("refund_locators")
        # Every refund (a first-round one's locator is checked), and the headers that lack something; never
        # the sessions, most of the table, nor headers already upgraded, so a rerun returns little.
        condition = (BookingItem.kind == RefundRecord) | ((BookingItem.kind == TransactionRecord) & (
            TransactionRecord.summary.does_not_exist() | TransactionRecord.guest_name.does_not_exist()
            | TransactionRecord.guest_email.does_not_exist()))
        if self.venue_id:
            condition &= BookingItem.venue_id == self.venue_id
        for number, page in enumerate(_chunks(BookingItem.scan(filter_condition=condition, page_size=PAGE), PAGE),
                                      start=1):
            page_refunds = [i for i in page if isinstance(i, RefundRecord)]
            # A refund whose id names its purchase needs no locator: it is read by key.
            unnamed = {r.refund_id for r in page_refunds if purchase_of_refund(r.refund_id) is None}
            existing = _existing_locators(f"refund#{refund_id}" for refund_id in unnamed)
            for item in page:
                if isinstance(item, TransactionRecord):
                    headers.seen += 1
                    self._header(item, headers)
            for refund in page_refunds:
                refunds.seen += 1
                if refund.refund_id in unnamed:
                    locators.seen += 1
                if refund.refund_id in unnamed and f"refund#{refund.refund_id}" not in existing:
                    locator = Locator(f"refund#{refund.refund_id}", venue_id=refund.venue_id,
                                      transaction_id=refund.transaction_id)
                    self._apply(locators, partial(_put_locator, locator))
                self._refund(refund, refunds)
            self._progress(number, headers, refunds, locators)
        for counts in (headers, refunds, locators):
            self.out(counts.line(self.dry_run))
        return [headers, refunds, locators]

    def _header(self, header: Any, counts: Counts) -> None:
        from chalicelib.storage.models import BookingItem

        if header.summary is not None and header.guest_name is not None and header.guest_email is not None:
            return
        guest = self._guest(header.guest_id)
        if guest is None:
            counts.skip("guest_not_found")
        items = list(BookingItem.query(header.transaction_id, consistent_read=True)) if header.summary is None else []
        fill = header_fill(header, items, guest)
        if fill is not None:
            self._apply(counts, partial(_add_if_absent, fill))

    def _refund(self, refund: Any, counts: Counts) -> None:
        from chalicelib.storage.models import BookingItem, TransactionRecord

        if refund.refund_venue_id is not None and refund.guest_id is not None:
            return
        header = None
        if refund.guest_id is None:
            try:
                header = BookingItem.get(refund.transaction_id, "transaction", consistent_read=True)
            except BookingItem.DoesNotExist:
                counts.skip("purchase_not_found")
        fill = refund_fill(refund, header if isinstance(header, TransactionRecord) else None)
        if fill is not None:
            self._apply(counts, partial(_add_if_absent, fill))

    def _guest(self, guest_id: str) -> Any | None:
        from chalicelib.storage.models import GuestRecord

        if guest_id not in self._guests:
            # Not kept from the guest step: one of many, created since, or gone.
            self._keep(guest_id, next(iter(GuestRecord.by_id.query(guest_id, limit=1)), None))
        return self._guests[guest_id]

    def _keep(self, guest_id: str, guest: Any | None) -> None:
        if len(self._guests) >= GUESTS_KEPT:
            self._guests.clear()
        self._guests[guest_id] = guest


def _existing_locators(keys: Iterable[str]) -> set[str]:
    from chalicelib.storage.models import Locator

    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return set()
    return {locator.key for locator in Locator.batch_get(wanted, consistent_read=True)}


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def upgrade(dry_run: bool = False, venue_id: str | None = None,
            out: Callable[[dict[str, Any]], None] | None = None) -> list[Counts]:
    """Run every step; `venue_id` limits it to one venue (to try it on one first)."""
    return Upgrade(dry_run, venue_id, out or _print).run()


def _print(line: dict[str, Any]) -> None:
    print(json.dumps(line, sort_keys=True), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.upgrade", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="count what is missing, write nothing")
    parser.add_argument("--venue", metavar="VENUE_ID", help="only this venue's data")
    args = parser.parse_args(argv)
    upgrade(dry_run=args.dry_run, venue_id=args.venue)
    return 0


if __name__ == "__main__":
    sys.exit(main())
