"""A venue's record kept in a warm Lambda for a few seconds, so a receipt is one DynamoDB call and
a cancellation two.

What may rest on a cached copy (at most `MAX_AGE_SECONDS` old):
- what a guest is shown (a receipt's `actions`, its time zone): a settings change shows within
  seconds, as it would after any read that raced it;
- a write, only if it carries `settings_unchanged(...)`: a ConditionCheck that the venue's
  `settings_version` is still the one the decision was made on. If it moved, the write changes
  nothing, the caller drops the copy, reads the venue again (strongly consistent) and decides
  once more. So no decision that changes data rests on settings that are no longer current.

A settings change made through this Lambda drops its own copy at once (`forget`).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chalicelib.storage.atomic import AtomicWrite
from chalicelib.storage.models import VenueRecord

MAX_AGE_SECONDS = 5.0
SETTINGS_LABEL = "venue_settings"  # the ConditionCheck's label in an AtomicWrite

_lock = threading.Lock()
_copies: dict[str, tuple[float, VenueRecord]] = {}
_clock: Callable[[], float] = time.monotonic


def venue(venue_id: str) -> VenueRecord:
    """The venue, from this Lambda's copy if it is recent enough. Raises VenueRecord.DoesNotExist."""
    with _lock:
        found = _copies.get(venue_id)
    if found is not None and _clock() - found[0] <= MAX_AGE_SECONDS:
        return found[1]
    return fresh(venue_id)


def fresh(venue_id: str) -> VenueRecord:
    """The venue as DynamoDB has it now (a strongly consistent read), kept as the new copy."""
    read_at = _clock()
    record = VenueRecord.get(venue_id, consistent_read=True)
    with _lock:
        _copies[venue_id] = (read_at, record)
    return record


def forget(venue_id: str) -> None:
    with _lock:
        _copies.pop(venue_id, None)


def settings_unchanged(write: AtomicWrite, record: VenueRecord) -> None:
    """Make `write` apply only while the venue's settings are those `record` shows."""
    write.check(SETTINGS_LABEL, VenueRecord, record.venue_id, None,
                VenueRecord.settings_version == int(record.settings_version))
