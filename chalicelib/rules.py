"""The venue's rules for editing, cancelling and refunding sessions: pure functions of
(settings, session, now). No I/O; times are timezone-aware and compared as instants, so hours
are elapsed hours and daylight saving changes nothing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

MAX_CUTOFF_HOURS = 8760
MAX_FEE_PERCENT = 100
MAX_FEE_FIXED = 100_000_000  # the largest amount a session can have
MAX_SESSIONS = 30  # in one purchase, and so in one cancellation


@dataclass(frozen=True)
class VenueSettings:
    allow_guest_modify: bool = False
    refund_on_cancel: bool = False
    refund_cutoff_hours: int = 24
    modify_cutoff_hours: int = 0  # 0: guests may edit until the start
    cancellation_fee_fixed: int = 0  # minor units kept from each refundable session's refund
    cancellation_fee_percent: int = 0  # percent of the session's amount kept from its refund
    notify_guests: bool = True


@dataclass(frozen=True)
class SessionState:
    start: datetime
    status: str  # "booked" | "cancelled"
    # Moved after its refund deadline: no later move or settings change makes it refundable again.
    refund_forfeited: bool = False


@dataclass(frozen=True)
class Actions:
    edit: bool
    cancel: bool
    refund_on_cancel: bool


class Refusal(StrEnum):
    """Why a guest may not do something now; the value is what `details.reason` says."""

    FEATURE_DISABLED = "feature_disabled"
    CANCELLED = "cancelled"
    STARTED = "started"
    OTHER_PRODUCT = "other_product"
    SLOT_STARTED = "slot_started"
    MODIFY_CUTOFF = "modify_cutoff"


class RefundMode(StrEnum):
    """How much a cancellation gives back: the venue's rule (`policy`, fee included), the whole
    amount (`full`, staff only) or nothing (`none`, staff only)."""

    POLICY = "policy"
    FULL = "full"
    NONE = "none"


@dataclass(frozen=True)
class SessionRefund:
    """What cancelling one session gives back and what the venue keeps; refund + fee = amount
    when refundable, both 0 when not."""

    refundable: bool
    refund_amount: int
    fee_amount: int


def _hours_before(start: datetime, hours: int) -> datetime:
    # In UTC: Python subtracts wall-clock time between datetimes of one zone, and on a
    # daylight-saving night that is not the elapsed hours the rules promise.
    return start.astimezone(UTC) - timedelta(hours=hours)


def refund_deadline(settings: VenueSettings, start: datetime, forfeited: bool = False) -> datetime | None:
    """The last instant at which cancelling still refunds; None when refunds are off or the
    session forfeited its refund by a late move."""
    if not settings.refund_on_cancel or forfeited:
        return None
    return _hours_before(start, settings.refund_cutoff_hours)


def has_started(start: datetime, now: datetime) -> bool:
    return now >= start


def refund_due(settings: VenueSettings, start: datetime, now: datetime, forfeited: bool = False) -> bool:
    """Cancelling at `now` refunds: refunds are on and now is at or before the deadline."""
    deadline = refund_deadline(settings, start, forfeited)
    return deadline is not None and now <= deadline and not has_started(start, now)


def refund_window(settings: VenueSettings, start: datetime, now: datetime, forfeited: bool = False) -> str:
    return "open" if refund_due(settings, start, now, forfeited) else "closed"


def modify_deadline(settings: VenueSettings, start: datetime) -> datetime | None:
    """The last instant at which a guest may still move or rename the session; None when the
    cutoff is 0 (editing is then allowed until the start)."""
    if settings.modify_cutoff_hours <= 0:
        return None
    return _hours_before(start, settings.modify_cutoff_hours)


def move_forfeits_refund(settings: VenueSettings, session: SessionState, now: datetime) -> bool:
    """A move at `now` leaves the session non-refundable for good when its refund deadline has
    passed: otherwise moving to a later slot would reopen the window a guest had let close."""
    if session.refund_forfeited:
        return True
    return settings.refund_on_cancel and not refund_due(settings, session.start, now)


def cancellation_fee(settings: VenueSettings, amount: int) -> int:
    """What the venue keeps of a refundable session's amount: fixed plus a percent rounded
    down, never more than the amount itself."""
    percent = amount * settings.cancellation_fee_percent // 100
    return min(amount, settings.cancellation_fee_fixed + percent)


def session_refund(settings: VenueSettings, session: SessionState, amount: int, now: datetime,
                   mode: RefundMode = RefundMode.POLICY) -> SessionRefund:
    """What cancelling `session` at `now` gives back, under the settings in force at `now`."""
    if mode is RefundMode.NONE:
        return SessionRefund(refundable=False, refund_amount=0, fee_amount=0)
    if mode is RefundMode.FULL:
        return SessionRefund(refundable=True, refund_amount=amount, fee_amount=0)
    if not refund_due(settings, session.start, now, session.refund_forfeited):
        return SessionRefund(refundable=False, refund_amount=0, fee_amount=0)
    fee = cancellation_fee(settings, amount)
    return SessionRefund(refundable=True, refund_amount=amount - fee, fee_amount=fee)


def _booked_and_ahead(session: SessionState, now: datetime) -> Refusal | None:
    if session.status != "booked":
        return Refusal.CANCELLED
    if has_started(session.start, now):
        return Refusal.STARTED
    return None


def edit_refusal(settings: VenueSettings, session: SessionState, now: datetime) -> Refusal | None:
    """Guests may move or rename a booked session until `start - modify_cutoff_hours` (inclusive)."""
    if not settings.allow_guest_modify:
        return Refusal.FEATURE_DISABLED
    refusal = _booked_and_ahead(session, now)
    if refusal is not None:
        return refusal
    deadline = modify_deadline(settings, session.start)
    if deadline is not None and now > deadline:
        return Refusal.MODIFY_CUTOFF
    return None


def staff_edit_refusal(session: SessionState, now: datetime) -> Refusal | None:
    """Staff act past the guests' switches and cutoffs, but a cancelled or started session stays
    as it is."""
    return _booked_and_ahead(session, now)


def staff_cancel_refusal(settings: VenueSettings, session: SessionState, now: datetime) -> Refusal | None:
    """Staff may cancel any booked session, started or not (a no-show, a closed pool), whatever
    the guests' switches say."""
    return None if session.status == "booked" else Refusal.CANCELLED


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
        refund_on_cancel=session.status == "booked" and refund_due(settings, session.start, now,
                                                                   session.refund_forfeited),
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
    return start.astimezone(UTC), end.astimezone(UTC)
