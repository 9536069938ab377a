"""The venue's policy rules at their edges: the edit cutoff a second either side and on both
daylight-saving nights, the cancellation fee (larger than the amount, rounding on odd amounts,
amounts of 0), and a move after the refund deadline that must not win the refund back."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib import errors, rules
from chalicelib.rules import RefundMode, Refusal, SessionRefund, SessionState, VenueSettings
from chalicelib.services.edits import plan_edit
from chalicelib.storage.models import SessionRecord, SlotRecord

START = datetime(2027, 3, 10, 10, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
SECOND = timedelta(seconds=1)


def policy(**changes: object) -> VenueSettings:
    base = {"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 24}
    return VenueSettings(**{**base, **changes})  # type: ignore[arg-type]


def booked(start: datetime = START, forfeited: bool = False) -> SessionState:
    return SessionState(start=start, status="booked", refund_forfeited=forfeited)


# --- The edit cutoff --------------------------------------------------------------------------

def test_with_no_edit_cutoff_a_guest_may_edit_until_the_start_and_there_is_no_modify_deadline() -> None:
    settings = policy(modify_cutoff_hours=0)
    assert rules.modify_deadline(settings, START) is None
    assert rules.edit_refusal(settings, booked(), START - SECOND) is None
    assert rules.edit_refusal(settings, booked(), START) is Refusal.STARTED


@pytest.mark.parametrize("offset, refusal", [(-SECOND, None), (timedelta(0), None), (SECOND, Refusal.MODIFY_CUTOFF)])
def test_an_edit_is_allowed_up_to_and_at_the_modify_deadline_and_refused_a_second_after(
        offset: timedelta, refusal: Refusal | None) -> None:
    settings = policy(modify_cutoff_hours=48)
    deadline = rules.modify_deadline(settings, START)
    assert deadline == START - timedelta(hours=48)
    assert rules.edit_refusal(settings, booked(), deadline + offset) is refusal


def test_past_the_modify_deadline_the_session_may_still_be_cancelled_but_not_edited() -> None:
    settings = policy(modify_cutoff_hours=48, refund_cutoff_hours=24)
    late = START - timedelta(hours=30)
    assert rules.session_actions(settings, booked(), late) == rules.Actions(edit=False, cancel=True,
                                                                             refund_on_cancel=True)


def test_the_edit_cutoff_of_a_cancelled_or_started_session_says_why_first() -> None:
    settings = policy(modify_cutoff_hours=48)
    assert rules.edit_refusal(settings, SessionState(start=START, status="cancelled"), START - timedelta(hours=1)) \
        is Refusal.CANCELLED
    assert rules.edit_refusal(settings, booked(), START) is Refusal.STARTED


@pytest.mark.parametrize("start, local_hour", [
    (datetime(2027, 3, 28, 10, 0, tzinfo=LONDON), 9),  # spring forward: 01:00-02:00 is skipped
    (datetime(2027, 10, 31, 10, 0, tzinfo=LONDON), 11),  # fall back: 01:00-02:00 happens twice
])
def test_the_edit_cutoff_counts_elapsed_hours_on_both_daylight_saving_nights(start: datetime,
                                                                             local_hour: int) -> None:
    settings = policy(modify_cutoff_hours=24)
    deadline = rules.modify_deadline(settings, start)
    assert deadline is not None and start - deadline == timedelta(hours=24)
    assert deadline.astimezone(LONDON).hour == local_hour
    assert rules.edit_refusal(settings, booked(start), deadline - SECOND) is None
    assert rules.edit_refusal(settings, booked(start), deadline) is None
    assert rules.edit_refusal(settings, booked(start), deadline + SECOND) is Refusal.MODIFY_CUTOFF


# --- The cancellation fee ---------------------------------------------------------------------

@pytest.mark.parametrize("amount, fixed, percent, refund, fee", [
    (2500, 0, 0, 2500, 0),
    (2500, 300, 0, 2200, 300),
    (2500, 0, 10, 2250, 250),
    (2500, 300, 10, 1950, 550),
    (999, 0, 10, 900, 99),  # 99.9 kept rounds down to 99
    (2501, 100, 15, 2026, 475),  # 375.15 rounds down to 375
    (3, 0, 33, 3, 0),  # 0.99 rounds down to nothing
    (1, 0, 50, 1, 0),
    (2500, 3000, 0, 0, 2500),  # a fee larger than the amount keeps the amount, never more
    (2500, 2500, 0, 0, 2500),
    (2500, 2000, 30, 0, 2500),  # together larger than the amount
    (2500, 0, 100, 0, 2500),
    (0, 0, 0, 0, 0),  # a free session: refundable, nothing to give back
    (0, 500, 50, 0, 0),
])
def test_the_fee_is_fixed_plus_a_percent_rounded_down_and_never_more_than_the_amount(
        amount: int, fixed: int, percent: int, refund: int, fee: int) -> None:
    settings = policy(cancellation_fee_fixed=fixed, cancellation_fee_percent=percent)
    decided = rules.session_refund(settings, booked(), amount, START - timedelta(days=3))
    assert decided == SessionRefund(refundable=True, refund_amount=refund, fee_amount=fee)


@pytest.mark.parametrize("offset, refundable", [(-SECOND, True), (timedelta(0), True), (SECOND, False)])
def test_the_fee_applies_only_up_to_the_refund_deadline_after_it_nothing_is_kept_or_given(
        offset: timedelta, refundable: bool) -> None:
    settings = policy(cancellation_fee_fixed=300, cancellation_fee_percent=10)
    deadline = rules.refund_deadline(settings, START)
    assert deadline is not None
    decided = rules.session_refund(settings, booked(), 2500, deadline + offset)
    expected = SessionRefund(True, 1950, 550) if refundable else SessionRefund(False, 0, 0)
    assert decided == expected


@pytest.mark.parametrize("start", [datetime(2027, 3, 28, 10, 0, tzinfo=LONDON),
                                   datetime(2027, 10, 31, 10, 0, tzinfo=LONDON)])
def test_the_refund_with_its_fee_holds_a_second_either_side_of_the_deadline_on_daylight_saving_nights(
        start: datetime) -> None:
    settings = policy(refund_cutoff_hours=24, cancellation_fee_percent=20)
    deadline = start.astimezone(UTC) - timedelta(hours=24)
    assert rules.session_refund(settings, booked(start), 1000, deadline) == SessionRefund(True, 800, 200)
    assert rules.session_refund(settings, booked(start), 1000, deadline + SECOND) == SessionRefund(False, 0, 0)


def test_with_refunds_off_a_fee_never_applies() -> None:
    settings = policy(refund_on_cancel=False, cancellation_fee_fixed=300)
    assert rules.session_refund(settings, booked(), 2500, START - timedelta(days=30)) == SessionRefund(False, 0, 0)


def test_a_staff_choice_of_full_or_none_ignores_the_deadline_and_the_fee() -> None:
    settings = policy(cancellation_fee_fixed=300, cancellation_fee_percent=10)
    late = START - timedelta(hours=1)
    assert rules.session_refund(settings, booked(), 2500, late, RefundMode.FULL) == SessionRefund(True, 2500, 0)
    early = START - timedelta(days=3)
    assert rules.session_refund(settings, booked(), 2500, early, RefundMode.NONE) == SessionRefund(False, 0, 0)


@given(amount=st.integers(0, rules.MAX_FEE_FIXED), fixed=st.integers(0, rules.MAX_FEE_FIXED),
       percent=st.integers(0, rules.MAX_FEE_PERCENT))
def test_refund_plus_fee_is_the_amount_and_the_refund_follows_the_contracts_formula(
        amount: int, fixed: int, percent: int) -> None:
    settings = policy(cancellation_fee_fixed=fixed, cancellation_fee_percent=percent)
    decided = rules.session_refund(settings, booked(), amount, START - timedelta(days=2))
    assert decided.refundable
    assert decided.refund_amount == max(0, amount - fixed - (amount * percent) // 100)
    assert decided.refund_amount + decided.fee_amount == amount
    assert 0 <= decided.fee_amount <= amount


# --- No refund regained by moving -------------------------------------------------------------

@pytest.mark.parametrize("offset, forfeits", [(-SECOND, False), (timedelta(0), False), (SECOND, True)])
def test_a_move_after_the_refund_deadline_forfeits_the_refund_and_at_it_does_not(
        offset: timedelta, forfeits: bool) -> None:
    settings = policy(refund_cutoff_hours=24)
    deadline = START - timedelta(hours=24)
    assert rules.move_forfeits_refund(settings, booked(), deadline + offset) is forfeits


def test_a_move_while_refunds_are_off_forfeits_nothing() -> None:
    assert not rules.move_forfeits_refund(policy(refund_on_cancel=False), booked(), START - timedelta(hours=1))


def test_a_forfeited_session_is_never_refunded_whatever_its_start_or_the_settings() -> None:
    far = START + timedelta(days=30)
    generous = policy(refund_cutoff_hours=0)
    assert rules.refund_deadline(generous, far, forfeited=True) is None
    assert not rules.refund_due(generous, far, START, forfeited=True)
    assert rules.refund_window(generous, far, START, forfeited=True) == "closed"
    assert rules.session_refund(generous, booked(far, forfeited=True), 2500, START) == SessionRefund(False, 0, 0)
    assert rules.session_actions(generous, booked(far, forfeited=True), START).refund_on_cancel is False
    assert rules.move_forfeits_refund(generous, booked(far, forfeited=True), START)


# --- The edit planner with the policy ---------------------------------------------------------

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def session_record(start: datetime, forfeited: bool = False) -> SessionRecord:
    return SessionRecord(transaction_id="T1", item="session#S1", venue_id="V1", session_id="S1", slot_id="A",
                         product_id="jump", product_name="Jump", start=start, end=start + timedelta(hours=1),
                         participant_name="Mia", amount=2500, status="booked",
                         refund_forfeited=True if forfeited else None)


def slot_record(start: datetime) -> SlotRecord:
    return SlotRecord(venue_id="V1", slot_id="B", product_key="V1#jump", product_id="jump", product_name="Jump",
                      start=start, end=start + timedelta(hours=1), capacity=10, booked=0, remaining=10)


def test_an_edit_past_the_modify_deadline_is_refused_saying_from_when() -> None:
    settings = policy(modify_cutoff_hours=48)
    start = NOW + timedelta(hours=47, minutes=59, seconds=59)
    with pytest.raises(errors.SessionNotEditable) as refused:
        plan_edit(settings, session_record(start), None, None, "Leo", NOW)
    assert refused.value.details == {"reason": "modify_cutoff", "modify_deadline": "2027-03-01T11:59:59Z"}
    assert plan_edit(settings, session_record(start + SECOND), None, None, "Leo", NOW).participant_name == "Leo"


def test_the_planner_marks_a_late_move_as_forfeiting_the_refund_and_records_it_in_the_history() -> None:
    settings = policy(refund_cutoff_hours=24)
    inside_window = session_record(NOW + timedelta(hours=12))
    plan = plan_edit(settings, inside_window, slot_record(NOW + timedelta(days=5)), "B", None, NOW)
    assert plan.forfeits_refund
    assert (plan.before["refund_forfeited"], plan.after["refund_forfeited"]) == (False, True)


def test_the_planner_lets_an_early_move_or_a_rename_keep_the_refund() -> None:
    settings = policy(refund_cutoff_hours=24)
    early = session_record(NOW + timedelta(days=2))
    assert not plan_edit(settings, early, slot_record(NOW + timedelta(hours=5)), "B", None, NOW).forfeits_refund
    late = session_record(NOW + timedelta(hours=12))
    assert not plan_edit(settings, late, None, None, "Leo", NOW).forfeits_refund
    already = session_record(NOW + timedelta(hours=12), forfeited=True)
    moved_again = plan_edit(settings, already, slot_record(NOW + timedelta(days=5)), "B", None, NOW)
    assert not moved_again.forfeits_refund and "refund_forfeited" not in moved_again.after


def test_a_venue_saved_before_the_policy_fields_existed_reads_the_contracts_defaults() -> None:
    from chalicelib.storage.models import VenueRecord

    stored = {"venue_id": {"S": "V1"}, "name": {"S": "Old Park"}, "timezone": {"S": "UTC"}, "currency": {"S": "usd"},
              "allow_guest_modify": {"BOOL": True}, "refund_on_cancel": {"BOOL": True},
              "refund_cutoff_hours": {"N": "12"}, "settings_version": {"N": "3"},
              "settings_updated_at": {"S": "2026-01-01T00:00:00.000000+0000"},
              "created_at": {"S": "2026-01-01T00:00:00.000000+0000"}}
    assert VenueRecord.from_raw_data(stored).settings() == VenueSettings(
        allow_guest_modify=True, refund_on_cancel=True, refund_cutoff_hours=12, modify_cutoff_hours=0,
        cancellation_fee_fixed=0, cancellation_fee_percent=0, notify_guests=True)
