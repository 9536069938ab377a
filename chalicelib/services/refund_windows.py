"""Refund windows in the background: the sweep that closes the windows whose deadline has passed,
and the job that re-projects a venue's stored deadlines after its settings change."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib import rules
from chalicelib.config import config
from chalicelib.observability import log_error, log_event
from chalicelib.storage.conditional import update_if
from chalicelib.storage.models import BookingItem, SessionRecord, VenueRecord
from chalicelib.storage.windows import projected_window, window_actions

# A session whose venue is gone can no longer be refunded: its window closes.
_NO_REFUNDS = rules.VenueSettings(refund_on_cancel=False)
_SESSION_PREFIX = "session#"
# A settings change racing with the job makes it run again with the newer settings.
_MAX_REPROJECTIONS = 3


@dataclass(frozen=True)
class WindowUpdate:
    """One planned write: the session's stored window, re-projected from its venue's current
    settings, on the condition that the session is still booked and still where it was seen."""

    transaction_id: str
    item: str
    seen_start: datetime
    seen_deadline: datetime | None
    projection: dict[str, Any]

    @property
    def closes(self) -> bool:
        return bool(self.projection["refund_window"] == "closed")


@dataclass
class SweepResult:
    closed: int = 0
    reprojected: int = 0  # still open under the current settings: the stored deadline moved instead
    skipped: int = 0  # cancelled or moved since the index was read
    items_read: int = 0
    venues_read: int = 0
    shards: int = 0


@dataclass
class ReprojectResult:
    venue_id: str
    settings_version: int | None = None
    sessions_read: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # cancelled, moved since the index was read, or its refund forfeited
    rounds: int = 0


@dataclass
class _SettingsCache:
    """Each venue's settings, read at most once per sweep."""

    settings: dict[str, rules.VenueSettings] = field(default_factory=dict)
    reads: int = 0

    def load(self, venue_ids: Iterable[str]) -> None:
        missing = sorted(set(venue_ids) - self.settings.keys())
        if not missing:
            return
        for venue in VenueRecord.batch_get(missing):
            self.settings[venue.venue_id] = venue.settings()
            self.reads += 1
        for venue_id in missing:
            self.settings.setdefault(venue_id, _NO_REFUNDS)

    def __getitem__(self, venue_id: str) -> rules.VenueSettings:
        return self.settings[venue_id]


def session_id_of(item: str) -> str:
    return item[len(_SESSION_PREFIX):]


def plan_window(session: SessionRecord, settings: rules.VenueSettings, now: datetime) -> WindowUpdate:
    """The stored window `session` should have under `settings` at `now`."""
    return WindowUpdate(
        transaction_id=session.transaction_id, item=session.item, seen_start=session.start,
        seen_deadline=session.refund_deadline,
        projection=projected_window(settings, session_id_of(session.item), session.start, now))


def is_unchanged(session: SessionRecord, update: WindowUpdate) -> bool:
    stored = {"refund_deadline": session.refund_deadline, "refund_window": session.refund_window,
              "window_shard": session.window_shard}
    return stored == update.projection



def close_due_windows(now: datetime, page_size: int = 100) -> SweepResult:
    """Close every open refund window whose stored deadline is before `now`, reading only those
    from the sparse index. The venue's current settings decide: a window they still hold open
    (the cutoff was lowered and the re-projection has not run yet) gets its new deadline instead."""
    result = SweepResult(shards=config().window_shards)
    venues = _SettingsCache()
    for shard in range(result.shards):
        for page in _crossing(shard, now, page_size):
            result.items_read += len(page)
            venues.load(session.venue_id for session in page)
            for session in page:
                update = plan_window(session, venues[session.venue_id], now)
                if not _write(update, SessionRecord.refund_deadline == update.seen_deadline):
                    result.skipped += 1
                elif update.closes:
                    result.closed += 1
                else:
                    result.reprojected += 1
    result.venues_read = venues.reads
    log_event("refund_windows_closed", closed=result.closed, reprojected=result.reprojected,
              skipped=result.skipped, shards=result.shards, items_read=result.items_read,
              venues_read=result.venues_read)
    return result


def _crossing(shard: int, now: datetime, page_size: int) -> Iterator[list[SessionRecord]]:
    """Pages of the sessions in `shard` whose open window's deadline is before `now`, oldest
    first, through any backlog."""
    start_key = None
    while True:
        page = BookingItem.open_refund_windows.query(
            shard, SessionRecord.refund_deadline < now, limit=page_size, last_evaluated_key=start_key)
        sessions = [item for item in page if isinstance(item, SessionRecord)]
        if sessions:
            yield sessions
        start_key = page.last_evaluated_key
        if not start_key:
            return



def reproject_venue(venue_id: str, now: datetime) -> ReprojectResult:
    """Bring the stored windows of the venue's future sessions in line with its current settings.
    Idempotent: it writes only what differs. If the settings change while it runs, it runs again,
    so a slower run with older settings cannot have the last word."""
    result = ReprojectResult(venue_id=venue_id)
    for _ in range(_MAX_REPROJECTIONS):
        venue = _venue(venue_id)
        if venue is None:
            log_event("refund_deadlines_venue_missing", venue_id=venue_id)
            return result
        result.rounds += 1
        result.settings_version = int(venue.settings_version)
        _reproject(venue, now, result)
        latest = _venue(venue_id)
        if latest is None or int(latest.settings_version) == result.settings_version:
            break
    log_event("refund_deadlines_reprojected", venue_id=venue_id, settings_version=result.settings_version,
              sessions_read=result.sessions_read, updated=result.updated, unchanged=result.unchanged,
              skipped=result.skipped, rounds=result.rounds)
    return result


def _venue(venue_id: str) -> VenueRecord | None:
    try:
        return VenueRecord.get(venue_id, consistent_read=True)
    except VenueRecord.DoesNotExist:
        return None


def _reproject(venue: VenueRecord, now: datetime, result: ReprojectResult) -> None:
    settings = venue.settings()
    for session in BookingItem.sessions_by_venue_start.query(venue.venue_id, SessionRecord.start > now):
        if not isinstance(session, SessionRecord) or session.status != "booked":
            continue
        result.sessions_read += 1
        update = plan_window(session, settings, now)
        if is_unchanged(session, update):
            result.unchanged += 1
        elif _write(update):
            result.updated += 1
        else:
            result.skipped += 1


def reproject_from_messages(messages: list[tuple[str, str]], now: datetime) -> dict[str, Any]:
    """Handle a batch of deadline-update messages `(message id, body)`; each venue is re-projected
    once however many of its messages the batch holds. Answers SQS's partial batch response, so
    only the messages that failed come back. (Not `queue_messages.each_message`, which takes one
    message at a time: here the unit of work is the venue, and a venue's messages fail together.)"""
    by_venue: dict[str, list[str]] = {}
    failed: list[str] = []
    for message_id, body in messages:
        venue_id = _venue_id(body)
        if venue_id is None:
            log_error("deadline_update_unreadable", message_id=message_id)
            failed.append(message_id)
        else:
            by_venue.setdefault(venue_id, []).append(message_id)
    for venue_id, message_ids in by_venue.items():
        try:
            reproject_venue(venue_id, now)
        except Exception as error:  # the message comes back; after the retries, the dead-letter queue
            log_error("refund_deadlines_reprojection_failed", venue_id=venue_id, error=repr(error))
            failed.extend(message_ids)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _venue_id(body: str) -> str | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    venue_id = message.get("venue_id") if isinstance(message, dict) else None
    return venue_id if isinstance(venue_id, str) and venue_id else None



def _write(update: WindowUpdate, condition: Any = None) -> bool:
    """Store the planned window if the session is still booked and has not moved; False if not."""
    guard = (SessionRecord.status == "booked") & (SessionRecord.start == update.seen_start)
    if not update.closes:
        # Neither index projects the forfeit (a move after the deadline), so the write checks it:
        # a forfeited session's window never reopens, whatever the settings say.
        guard &= SessionRecord.refund_forfeited.does_not_exist()
    if condition is not None:
        guard &= condition
    return update_if(SessionRecord(update.transaction_id, update.item), window_actions(update.projection), guard)
