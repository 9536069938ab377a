"""The edit planner: what a guest's edit changes, or why it is refused, decided without I/O."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import errors
from chalicelib.rules import VenueSettings
from chalicelib.services.edits import EditPlan, Move, plan_edit
from chalicelib.storage.models import SessionRecord, SlotRecord

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
ON = VenueSettings(allow_guest_modify=True)


def session(start: datetime = NOW + timedelta(days=2), status: str = "booked") -> SessionRecord:
    return SessionRecord(transaction_id="T1", item="session#S1", venue_id="V1", session_id="S1", slot_id="A",
                         product_id="jump", product_name="Jump", start=start, end=start + timedelta(hours=1),
                         participant_name="Mia", amount=2500, status=status)


def slot(slot_id: str = "B", start: datetime = NOW + timedelta(days=4), product_id: str = "jump",
         remaining: int = 5) -> SlotRecord:
    return SlotRecord(venue_id="V1", slot_id=slot_id, product_key=f"V1#{product_id}", product_id=product_id,
                      product_name="Jump", start=start, end=start + timedelta(hours=1), capacity=10,
                      booked=10 - remaining, remaining=remaining)


def test_a_move_plans_the_new_slot_with_before_and_after() -> None:
    target = slot()
    plan = plan_edit(ON, session(), target, "B", None, NOW)
    assert plan.move == Move(from_slot_id="A", to_slot_id="B", start=target.start, end=target.end, product_name="Jump")
    assert plan.participant_name is None and plan.action == "session_moved"
    assert plan.before == {"slot_id": "A", "start": "2026-03-30T12:00:00Z", "end": "2026-03-30T13:00:00Z"}
    assert plan.after == {"slot_id": "B", "start": "2026-04-01T12:00:00Z", "end": "2026-04-01T13:00:00Z"}


def test_a_rename_plans_only_the_name() -> None:
    plan = plan_edit(ON, session(), None, None, "Leo", NOW)
    assert plan == EditPlan(session_id="S1", move=None, participant_name="Leo",
                            before={"participant_name": "Mia"}, after={"participant_name": "Leo"})
    assert plan.action == "participant_renamed"


def test_a_move_and_a_rename_together_are_one_edit() -> None:
    plan = plan_edit(ON, session(), slot(), "B", "Leo", NOW)
    assert plan.action == "session_edited" and set(plan.after) == {"slot_id", "start", "end", "participant_name"}


def test_the_same_slot_and_the_same_name_change_nothing() -> None:
    plan = plan_edit(ON, session(), slot("A"), "A", "Mia", NOW)
    assert plan.changes_nothing and plan.before == plan.after == {}


def test_a_renamed_product_shows_in_the_history() -> None:
    target = slot()
    target.product_name = "Jump (new name)"
    plan = plan_edit(ON, session(), target, "B", None, NOW)
    assert (plan.before["product_name"], plan.after["product_name"]) == ("Jump", "Jump (new name)")


@pytest.mark.parametrize("settings, record, error, reason", [
    (VenueSettings(allow_guest_modify=False, refund_on_cancel=True), session(), errors.FeatureDisabled, None),
    (ON, session(status="cancelled"), errors.SessionNotEditable, "cancelled"),
    (ON, session(start=NOW), errors.SessionNotEditable, "started"),  # exactly at the start: started
])
def test_what_may_not_be_edited_is_refused(settings: VenueSettings, record: SessionRecord,
                                           error: type[errors.RebookError], reason: str | None) -> None:
    with pytest.raises(error) as refused:
        plan_edit(settings, record, None, None, "Leo", NOW)
    assert (refused.value.details or {}).get("reason") == reason


def test_the_target_slot_must_exist_be_of_the_product_not_have_started_and_have_a_seat() -> None:
    with pytest.raises(errors.NotFound):
        plan_edit(ON, session(), None, "B", None, NOW)
    with pytest.raises(errors.InvalidRequest):
        plan_edit(ON, session(), slot(product_id="climb"), "B", None, NOW)
    with pytest.raises(errors.SessionNotEditable) as started:
        plan_edit(ON, session(), slot(start=NOW), "B", None, NOW)
    assert started.value.details == {"reason": "slot_started", "slot_id": "B"}
    with pytest.raises(errors.SlotFull):
        plan_edit(ON, session(), slot(remaining=0), "B", None, NOW)
    assert plan_edit(ON, session(), slot(remaining=1), "B", None, NOW).move is not None
