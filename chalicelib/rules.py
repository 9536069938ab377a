"""The venue's rules for editing, cancelling and refunding sessions: pure functions of
(settings, session, now). No I/O; times are timezone-aware and compared as instants, so hours
are elapsed hours and daylight saving changes nothing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

MAX_CUTOFF_HOURS = 8760


@dataclass(frozen=True)
class VenueSettings:
    allow_guest_modify: bool = False
    refund_on_cancel: bool = False
    refund_cutoff_hours: int = 24


@dataclass(frozen=True)
class SessionState:
    start: datetime
    status: str  # "booked" | "cancelled"


@dataclass(frozen=True)
class Actions:
    edit: bool
    cancel: bool
    refund_on_cancel: bool


class Refusal(str, Enum):
    """Why a guest may not do something now; the value is what `details.reason` says."""

    FEATURE_DISABLED = "feature_disabled"
    CANCELLED = "cancelled"
    STARTED = "started"
    OTHER_PRODUCT = "other_product"
    SLOT_STARTED = "slot_started"


def refund_deadline(settings: VenueSettings, start: datetime) -> datetime | None:
    """The last instant at which cancelling still refunds; None when refunds are off."""
    if not settings.refund_on_cancel:
        return None
    # In UTC: Python subtracts wall-clock time between datetimes of one zone, and on a
    # daylight-saving night that is not the elapsed hours the rule promises.
    return start.astimezone(timezone.utc) - timedelta(hours=settings.refund_cutoff_hours)


def has_started(start: datetime, now: datetime) -> bool:
    return now >= start


def refund_due(settings: VenueSettings, start: datetime, now: datetime) -> bool:
    """Cancelling at `now` refunds: refunds are on and now is at or before the deadline."""
    deadline = refund_deadline(settings, start)
    return deadline is not None and now <= deadline and not has_started(start, now)


def refund_window(settings: VenueSettings, start: datetime, now: datetime) -> str:
    return "open" if refund_due(settings, start, now) else "closed"


def _booked_and_ahead(session: SessionState, now: datetime) -> Refusal | None:
    if session.status != "booked":
        return Refusal.CANCELLED
    if has_started(session.start, now):
        return Refusal.STARTED
    return None


def edit_refusal(settings: VenueSettings, session: SessionState, now: datetime) -> Refusal | None:
    if not settings.allow_guest_modify:
        return Refusal.FEATURE_DISABLED
    return _booked_and_ahead(session, now)


def cancel_refusal(settings: VenueSettings, session: SessionState, now: datetime) -> Refusal | None:
    """Guests may cancel up to the start when either switch is on; the refund is decided apart."""
    if not (settings.allow_guest_modify or settings.refund_on_cancel):
        return Refusal.FEATURE_DISABLED
    return _booked_and_ahead(session, now)


def move_refusal(session_product_id: str, slot_product_id: str, slot_start: datetime,
                 now: datetime) -> Refusal | None:
    """A session may move only to a slot of its own product that has not started."""
    if slot_product_id != session_product_id:
        return Refusal.OTHER_PRODUCT
    if has_started(slot_start, now):
        return Refusal.SLOT_STARTED
    return None


def session_actions(settings: VenueSettings, session: SessionState, now: datetime) -> Actions:
    return Actions(
        edit=edit_refusal(settings, session, now) is None,
        cancel=cancel_refusal(settings, session, now) is None,
        refund_on_cancel=session.status == "booked" and refund_due(settings, session.start, now),
    )


def local_month_bounds(first_day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of the calendar month holding `first_day`, in the venue's zone."""
    next_month = date(first_day.year + first_day.month // 12, first_day.month % 12 + 1, 1)
    return local_day_bounds(first_day.replace(day=1), zone)[0], local_day_bounds(next_month, zone)[0]


def local_day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a calendar day in the venue's time zone."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)
