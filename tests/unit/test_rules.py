"""The venue's rules at their edges: exactly at the deadline, a second either side, daylight
saving nights in the venue's zone, sessions already started, settings switched off."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib import rules
from chalicelib.rules import Refusal, SessionState, VenueSettings

START = datetime(2027, 3, 10, 10, 0, tzinfo=UTC)
BOTH_ON = VenueSettings(allow_guest_modify=True, refund_on_cancel=True, refund_cutoff_hours=24)


def booked(start: datetime = START) -> SessionState:
    return SessionState(start=start, status="booked")


def test_the_refund_deadline_is_the_start_minus_the_cutoff() -> None:
    assert rules.refund_deadline(BOTH_ON, START) == START - timedelta(hours=24)


def test_with_refunds_off_there_is_no_deadline_and_nothing_is_refunded() -> None:
    off = VenueSettings(allow_guest_modify=True, refund_on_cancel=False, refund_cutoff_hours=24)
    assert rules.refund_deadline(off, START) is None
    assert not rules.refund_due(off, START, START - timedelta(days=30))
    assert rules.refund_window(off, START, START - timedelta(days=30)) == "closed"


def test_cancelling_exactly_at_the_deadline_refunds() -> None:
    deadline = START - timedelta(hours=24)
    assert rules.refund_due(BOTH_ON, START, deadline)
    assert rules.refund_window(BOTH_ON, START, deadline) == "open"


def test_one_second_after_the_deadline_does_not_refund() -> None:
    late = START - timedelta(hours=24) + timedelta(seconds=1)
    assert not rules.refund_due(BOTH_ON, START, late)
    assert rules.refund_window(BOTH_ON, START, late) == "closed"


def test_one_second_before_the_deadline_refunds() -> None:
    assert rules.refund_due(BOTH_ON, START, START - timedelta(hours=24, seconds=1))


def test_a_zero_hour_cutoff_refunds_until_the_start_but_not_at_it() -> None:
    zero = VenueSettings(allow_guest_modify=False, refund_on_cancel=True, refund_cutoff_hours=0)
    assert rules.refund_due(zero, START, START - timedelta(seconds=1))
    assert not rules.refund_due(zero, START, START)


def test_the_cutoff_counts_elapsed_hours_across_the_spring_forward_night() -> None:
    """London skips 01:00-02:00 on 2027-03-28: 24 hours before 10:00 local is 09:00 local the day before."""
    london = ZoneInfo("Europe/London")
    start = datetime(2027, 3, 28, 10, 0, tzinfo=london)
    deadline = rules.refund_deadline(BOTH_ON, start)
    assert deadline is not None and start - deadline == timedelta(hours=24)
    assert deadline.astimezone(london).hour == 9


def test_the_cutoff_counts_elapsed_hours_across_the_fall_back_night() -> None:
    """London repeats 01:00-02:00 on 2027-10-31: 24 hours before 10:00 local is 11:00 local the day before."""
    london = ZoneInfo("Europe/London")
    start = datetime(2027, 10, 31, 10, 0, tzinfo=london)
    deadline = rules.refund_deadline(BOTH_ON, start)
    assert deadline is not None and deadline.astimezone(london).hour == 11
    assert rules.refund_due(BOTH_ON, start, deadline) and not rules.refund_due(BOTH_ON, start, deadline + timedelta(seconds=1))


def test_a_started_session_can_be_neither_edited_nor_cancelled_nor_refunded() -> None:
    assert rules.edit_refusal(BOTH_ON, booked(), START) is Refusal.STARTED
    assert rules.cancel_refusal(BOTH_ON, booked(), START + timedelta(minutes=1)) is Refusal.STARTED
    assert rules.session_actions(BOTH_ON, booked(), START) == rules.Actions(False, False, False)


def test_a_session_can_be_cancelled_until_its_start_even_without_a_refund() -> None:
    just_before = START - timedelta(seconds=1)
    assert rules.cancel_refusal(BOTH_ON, booked(), just_before) is None
    assert rules.session_actions(BOTH_ON, booked(), just_before) == rules.Actions(True, True, False)


def test_a_cancelled_session_is_refused_for_its_own_reason() -> None:
    cancelled = SessionState(start=START, status="cancelled")
    early = START - timedelta(days=5)
    assert rules.edit_refusal(BOTH_ON, cancelled, early) is Refusal.CANCELLED
    assert rules.cancel_refusal(BOTH_ON, cancelled, early) is Refusal.CANCELLED
    assert rules.session_actions(BOTH_ON, cancelled, early) == rules.Actions(False, False, False)


def test_with_both_switches_off_guests_may_do_nothing() -> None:
    off = VenueSettings()
    early = START - timedelta(days=5)
    assert rules.edit_refusal(off, booked(), early) is Refusal.FEATURE_DISABLED
    assert rules.cancel_refusal(off, booked(), early) is Refusal.FEATURE_DISABLED


def test_refunds_alone_let_guests_cancel_but_not_edit() -> None:
    refunds_only = VenueSettings(allow_guest_modify=False, refund_on_cancel=True, refund_cutoff_hours=24)
    early = START - timedelta(days=5)
    assert rules.session_actions(refunds_only, booked(), early) == rules.Actions(False, True, True)


def test_editing_alone_lets_guests_cancel_without_refund() -> None:
    edit_only = VenueSettings(allow_guest_modify=True, refund_on_cancel=False, refund_cutoff_hours=24)
    early = START - timedelta(days=5)
    assert rules.session_actions(edit_only, booked(), early) == rules.Actions(True, True, False)


def test_a_move_must_stay_within_the_product_and_go_to_a_slot_not_started() -> None:
    now = START - timedelta(days=1)
    assert rules.move_refusal("jump", "jump", START, now) is None
    assert rules.move_refusal("jump", "climb", START, now) is Refusal.OTHER_PRODUCT
    assert rules.move_refusal("jump", "jump", now, now) is Refusal.SLOT_STARTED


def test_a_local_day_in_auckland_starts_the_utc_day_before() -> None:
    low, high = rules.local_day_bounds(date(2027, 1, 15), "Pacific/Auckland")
    assert low == datetime(2027, 1, 14, 11, 0, tzinfo=UTC)  # NZDT is UTC+13
    assert high - low == timedelta(hours=24)


def test_a_local_day_of_a_daylight_saving_change_is_23_or_25_hours_long() -> None:
    spring = rules.local_day_bounds(date(2027, 3, 28), "Europe/London")
    autumn = rules.local_day_bounds(date(2027, 10, 31), "Europe/London")
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
