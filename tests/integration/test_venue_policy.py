"""The venue's policy through the HTTP API: the new settings, the edit cutoff, the cancellation
fee, no refund regained by moving, no refund when nothing is due, and a cancellation tied to the
amount the guest was quoted (`expected_refund_amount` -> 409 `quote_changed`)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Guest, Response, Venue, World, iso, now
from tests.dynamodb_calls import count_dynamodb_calls
from tests.integration.test_cancellations import cancel, receipt_of, settle
from tests.integration.test_openapi import assert_answer_matches

POLICY_DEFAULTS = {"modify_cutoff_hours": 0, "cancellation_fee_fixed": 0, "cancellation_fee_percent": 0,
                   "notify_guests": True}
TX = "/v1/me/transactions/{transaction_id}"


def put_settings(venue: Venue, allow_guest_modify: bool = True, refund_on_cancel: bool = True,
                 refund_cutoff_hours: int = 24, **policy: Any) -> Response:
    return venue.admin.put(f"/v1/admin/venues/{venue.venue_id}/settings", {
        "allow_guest_modify": allow_guest_modify, "refund_on_cancel": refund_on_cancel,
        "refund_cutoff_hours": refund_cutoff_hours, **policy})


def policy_venue(world: World, **policy: Any) -> Venue:
    venue = world.venue()
    saved = put_settings(venue, **policy)
    assert saved.status == 200, saved.json
    return venue


def quote(guest: Guest, made: dict[str, Any], sessions: list[int]) -> Response:
    ids = [made["sessions"][i]["session_id"] for i in sessions]
    return guest.api.post(f"/v1/me/transactions/{made['transaction_id']}/cancellation-quote", {"session_ids": ids})


def edit(guest: Guest, made: dict[str, Any], body: dict[str, Any], session: int = 0) -> Response:
    session_id = made["sessions"][session]["session_id"]
    return guest.api.patch(f"/v1/me/transactions/{made['transaction_id']}/sessions/{session_id}", body)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stripe_calls_for(world: World, payment_intent_id: str) -> list[dict[str, Any]]:
    return [r for r in world.stack.stripe.requests() if r["params"].get("payment_intent") == payment_intent_id]


def assert_cancelled_without_a_refund(world: World, guest: Guest, made: dict[str, Any], done: Response) -> None:
    """The cancellation went through with nothing to pay back: no refund on the receipt, no Stripe call."""
    assert done.status == 200 and done.json["refund"] is None
    assert done.json["sessions"][0]["refund_status"] == "not_refunded"
    world.stack.deliver_all()
    assert receipt_of(guest, made)["refunds"] == []
    assert stripe_calls_for(world, made["payment_intent_id"]) == []


def claims_of(guest: Guest) -> Any:
    from chalicelib.services import access

    return access.authenticate_guest(f"Bearer {guest.api.credential}", now())


# --- Settings ---------------------------------------------------------------------------------

def test_a_new_venue_has_no_edit_cutoff_no_fee_and_emails_guests(world: World) -> None:
    venue = world.venue()
    read = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/settings")
    assert {k: read.json[k] for k in POLICY_DEFAULTS} == POLICY_DEFAULTS
    assert_answer_matches("GET", "/v1/admin/venues/{venue_id}/settings", read)


def test_the_policy_is_saved_and_a_later_put_without_it_keeps_it(world: World) -> None:
    venue = world.venue()
    policy = {"modify_cutoff_hours": 48, "cancellation_fee_fixed": 300, "cancellation_fee_percent": 10,
              "notify_guests": False}
    saved = put_settings(venue, **policy)
    assert saved.status == 200 and {k: saved.json[k] for k in policy} == policy
    assert_answer_matches("PUT", "/v1/admin/venues/{venue_id}/settings", saved)

    only_three = put_settings(venue, refund_cutoff_hours=12)
    assert only_three.status == 200 and only_three.json["refund_cutoff_hours"] == 12
    assert {k: only_three.json[k] for k in policy} == policy
    one_more = put_settings(venue, refund_cutoff_hours=12, cancellation_fee_percent=0)
    assert {k: one_more.json[k] for k in policy} == {**policy, "cancellation_fee_percent": 0}
    read = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/settings").json
    assert read == one_more.json and read["version"] == 4


@pytest.mark.parametrize("field, value", [
    ("modify_cutoff_hours", -1), ("modify_cutoff_hours", 8761), ("modify_cutoff_hours", 1.5),
    ("modify_cutoff_hours", None), ("cancellation_fee_fixed", -1), ("cancellation_fee_fixed", "300"),
    ("cancellation_fee_fixed", 100_000_001), ("cancellation_fee_percent", 101), ("cancellation_fee_percent", -1),
    ("cancellation_fee_percent", True), ("cancellation_fee_percent", None), ("notify_guests", "yes"),
    ("notify_guests", 0), ("notify_guests", None),
])
def test_bad_policy_values_are_refused_naming_the_field_and_change_nothing(world: World, field: str,
                                                                           value: Any) -> None:
    venue = world.venue()
    answer = put_settings(venue, **{field: value})
    assert answer.status == 400 and list(answer.json["error"]["details"]["fields"]) == [field]
    assert_answer_matches("PUT", "/v1/admin/venues/{venue_id}/settings", answer)
    read = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/settings").json
    assert read["version"] == 1 and read["allow_guest_modify"] is False


def test_the_three_original_fields_are_still_required(world: World) -> None:
    venue = world.venue()
    answer = venue.admin.put(f"/v1/admin/venues/{venue.venue_id}/settings", {"cancellation_fee_fixed": 100})
    assert answer.status == 400
    assert set(answer.json["error"]["details"]["fields"]) == {"allow_guest_modify", "refund_on_cancel",
                                                              "refund_cutoff_hours"}


# --- The edit cutoff --------------------------------------------------------------------------

def test_an_edit_after_the_modify_deadline_is_refused_and_the_receipt_says_from_when(world: World) -> None:
    venue = policy_venue(world, modify_cutoff_hours=48)
    guest = world.guest(venue)
    tomorrow, next_week = world.slot(venue, start=now() + timedelta(hours=36)), world.slot(venue, start=now() + timedelta(days=7))
    other = world.slot(venue, start=now() + timedelta(days=5))
    made = world.purchase(guest, [tomorrow, next_week])

    shown = {s["slot_id"]: s for s in receipt_of(guest, made)["sessions"]}
    late, early = shown[tomorrow["slot_id"]], shown[next_week["slot_id"]]
    assert late["modify_deadline"] == iso(at(tomorrow["start"]) - timedelta(hours=48))
    assert late["actions"] == {"edit": False, "cancel": True, "refund_on_cancel": True}
    assert early["modify_deadline"] == iso(at(next_week["start"]) - timedelta(hours=48))
    assert early["actions"]["edit"] is True

    index = [s["session_id"] for s in made["sessions"]].index(late["session_id"])
    for body in ({"slot_id": other["slot_id"]}, {"participant_name": "Leo"}):
        refused = edit(guest, made, body, session=index)
        assert refused.status == 409 and refused.error_code == "session_not_editable"
        assert refused.json["error"]["details"] == {"reason": "modify_cutoff",
                                                    "modify_deadline": late["modify_deadline"]}
        assert_answer_matches("PATCH", TX + "/sessions/{session_id}", refused)
    assert {s["slot_id"]: s for s in receipt_of(guest, made)["sessions"]}[tomorrow["slot_id"]] == late
    assert edit(guest, made, {"participant_name": "Leo"}, session=1 - index).status == 200


def test_the_edit_cutoff_is_exact_to_the_second(world: World) -> None:
    from chalicelib.errors import SessionNotEditable
    from chalicelib.services import edits

    venue = policy_venue(world, modify_cutoff_hours=10)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue, start=now() + timedelta(days=2))])
    deadline = at(made["sessions"][0]["modify_deadline"])
    session_id = made["sessions"][0]["session_id"]

    at_deadline = edits.edit_session(claims_of(guest), made["transaction_id"], session_id, deadline,
                                     participant_name="On Time")
    assert at_deadline.session.participant_name == "On Time"
    with pytest.raises(SessionNotEditable) as late:
        edits.edit_session(claims_of(guest), made["transaction_id"], session_id, deadline + timedelta(seconds=1),
                           participant_name="Too Late")
    assert late.value.details == {"reason": "modify_cutoff", "modify_deadline": made["sessions"][0]["modify_deadline"]}
    assert receipt_of(guest, made)["sessions"][0]["participant_name"] == "On Time"


def test_without_an_edit_cutoff_the_session_has_no_modify_deadline(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue, start=now() + timedelta(hours=2))])
    assert made["sessions"][0]["modify_deadline"] is None
    assert edit(guest, made, {"participant_name": "Leo"}).status == 200


# --- The cancellation fee ---------------------------------------------------------------------

def test_the_fee_is_kept_from_each_refundable_session_and_stripe_refunds_the_rest(world: World) -> None:
    venue = policy_venue(world, cancellation_fee_fixed=300, cancellation_fee_percent=10)
    guest = world.guest(venue)
    far, near = world.slot(venue, start=now() + timedelta(days=3)), world.slot(venue, start=now() + timedelta(hours=5))
    made = world.purchase(guest, [far, far, near], amount=2501)

    quoted = quote(guest, made, [0, 1, 2])
    assert quoted.status == 200
    assert_answer_matches("POST", TX + "/cancellation-quote", quoted)
    by_slot = {s["slot_id"]: s["session_id"] for s in made["sessions"]}
    lines = {s["session_id"]: (s["refundable"], s["refund_amount"], s["fee_amount"]) for s in quoted.json["sessions"]}
    refundable = [lines[s["session_id"]] for s in made["sessions"] if s["slot_id"] == far["slot_id"]]
    assert refundable == [(True, 1951, 550)] * 2  # 2501 - 300 - floor(250.1)
    assert lines[by_slot[near["slot_id"]]] == (False, 0, 0)
    assert (quoted.json["refund_amount"], quoted.json["fee_amount"]) == (3902, 1100)

    done = cancel(guest, made, [0, 1, 2], expected_refund_amount=3902)
    assert done.status == 200 and done.json["refund"]["amount"] == 3902
    assert_answer_matches("POST", TX + "/cancellations", done)
    after = settle(world, guest, made)
    [refund] = after["refunds"]
    assert refund["status"] == "refunded" and refund["amount"] == 3902
    [paid] = [r for r in world.stack.stripe.refunds() if r["metadata"].get("refund_id") == refund["refund_id"]]
    assert paid["amount"] == 3902
    events = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}/history")
    cancelled = {e["session_id"]: e["after"] for e in events.json["events"] if e["action"] == "session_cancelled"}
    assert sorted((a["refund_amount"], a["fee_amount"]) for a in cancelled.values()) == [
        (0, 0), (1951, 550), (1951, 550)]


def test_a_fee_that_keeps_everything_makes_no_refund_and_never_calls_stripe(world: World) -> None:
    venue = policy_venue(world, cancellation_fee_fixed=5000)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue, start=now() + timedelta(days=3))], amount=2500)

    quoted = quote(guest, made, [0]).json
    assert (quoted["refund_amount"], quoted["fee_amount"]) == (0, 2500)
    assert quoted["sessions"][0] == {"session_id": made["sessions"][0]["session_id"], "refundable": True,
                                     "refund_amount": 0, "fee_amount": 2500, "amount": 2500}
    done = cancel(guest, made, [0], expected_refund_amount=0)
    assert_cancelled_without_a_refund(world, guest, made, done)


def test_a_free_session_is_cancelled_without_a_refund_or_a_stripe_call(world: World) -> None:
    venue = policy_venue(world)
    guest = world.guest(venue)
    slot = world.slot(venue, start=now() + timedelta(days=3))
    made = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
        "guest_id": guest.guest_id, "payment_intent_id": world.payment_intent(2500), "currency": "usd",
        "sessions": [{"slot_id": slot["slot_id"], "participant_name": "Paid", "amount": 2500},
                     {"slot_id": slot["slot_id"], "participant_name": "Free", "amount": 0}]}).json
    free = [s["amount"] for s in made["sessions"]].index(0)

    assert quote(guest, made, [free]).json["refund_amount"] == 0
    done = cancel(guest, made, [free])
    assert_cancelled_without_a_refund(world, guest, made, done)


# --- No refund regained by moving -------------------------------------------------------------

def test_a_move_inside_the_no_refund_window_never_wins_the_refund_back(world: World) -> None:
    from chalicelib.services.refund_windows import reproject_venue
    from chalicelib.storage.models import SessionRecord

    venue = policy_venue(world, refund_cutoff_hours=24)
    guest = world.guest(venue)
    tonight, next_week = world.slot(venue, start=now() + timedelta(hours=12)), world.slot(venue, start=now() + timedelta(days=7))
    made = world.purchase(guest, [tonight])
    assert made["sessions"][0]["refund_window"] == "closed"

    moved = edit(guest, made, {"slot_id": next_week["slot_id"]})

    assert moved.status == 200 and moved.json["start"] == next_week["start"]
    assert (moved.json["refund_window"], moved.json["refund_deadline"]) == ("closed", None)
    assert moved.json["actions"]["refund_on_cancel"] is False
    assert_answer_matches("PATCH", TX + "/sessions/{session_id}", moved)
    stored = SessionRecord.get(made["transaction_id"], f"session#{moved.json['session_id']}", consistent_read=True)
    assert (stored.refund_forfeited, stored.window_shard) == (True, None)  # not in the open-windows index
    [event] = [e for e in venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/transactions/"
                                          f"{made['transaction_id']}/history").json["events"]
               if e["action"] == "session_moved"]
    assert event["after"]["refund_forfeited"] is True

    # A lower cutoff re-projects the venue's deadlines; the forfeited window stays shut.
    assert put_settings(venue, refund_cutoff_hours=1).status == 200
    world.stack.deliver_all()
    reproject_venue(venue.venue_id, now())
    stored.refresh(consistent_read=True)
    assert (stored.refund_window, stored.window_shard) == ("closed", None)
    assert quote(guest, made, [0]).json["sessions"][0]["refundable"] is False

    done = cancel(guest, made, [0])
    assert done.status == 200 and done.json["refund"] is None
    assert done.json["sessions"][0]["refund_status"] == "not_refunded"
    assert stripe_calls_for(world, made["payment_intent_id"]) == []


def test_moving_into_the_window_and_back_out_does_not_reopen_it(world: World) -> None:
    venue = policy_venue(world, refund_cutoff_hours=24)
    guest = world.guest(venue)
    later, tonight, next_week = (world.slot(venue, start=now() + timedelta(days=d)) for d in (3, 0.5, 7))
    made = world.purchase(guest, [later])

    into = edit(guest, made, {"slot_id": tonight["slot_id"]}).json  # before its deadline: takes tonight's
    assert into["refund_deadline"] == iso(at(tonight["start"]) - timedelta(hours=24))
    assert into["refund_window"] == "closed"
    back_out = edit(guest, made, {"slot_id": next_week["slot_id"]}).json
    assert (back_out["refund_window"], back_out["refund_deadline"]) == ("closed", None)
    assert cancel(guest, made, [0]).json["refund"] is None


def test_a_move_before_the_refund_deadline_keeps_the_refund_with_the_new_deadline(world: World) -> None:
    venue = policy_venue(world, refund_cutoff_hours=24)
    guest = world.guest(venue)
    later, next_week = world.slot(venue, start=now() + timedelta(days=3)), world.slot(venue, start=now() + timedelta(days=7))
    made = world.purchase(guest, [later])
    moved = edit(guest, made, {"slot_id": next_week["slot_id"]}).json
    assert moved["refund_window"] == "open"
    assert moved["refund_deadline"] == iso(at(next_week["start"]) - timedelta(hours=24))
    assert cancel(guest, made, [0]).json["refund"]["amount"] == 2500


# --- The quote the guest confirmed ------------------------------------------------------------

def test_a_changed_fee_between_quote_and_confirmation_is_409_quote_changed_and_cancels_nothing(
        world: World) -> None:
    venue = policy_venue(world)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue, start=now() + timedelta(days=3))] * 2, amount=2500)
    quoted = quote(guest, made, [0, 1]).json
    assert quoted["refund_amount"] == 5000

    assert put_settings(venue, cancellation_fee_fixed=500).status == 200
    with count_dynamodb_calls() as calls:
        changed = cancel(guest, made, [0, 1], key="confirm-1", expected_refund_amount=5000)

    assert changed.status == 409 and changed.error_code == "quote_changed"
    assert_answer_matches("POST", TX + "/cancellations", changed)
    new_quote = changed.json["error"]["details"]["quote"]
    assert new_quote == quote(guest, made, [0, 1]).json
    assert (new_quote["refund_amount"], new_quote["fee_amount"]) == (4000, 1000)
    assert "TransactWriteItems" not in calls.operations
    after = receipt_of(guest, made)
    assert [s["status"] for s in after["sessions"]] == ["booked", "booked"] and after["refunds"] == []

    confirmed = cancel(guest, made, [0, 1], key="confirm-2", expected_refund_amount=4000)
    assert confirmed.status == 200 and confirmed.json["refund"]["amount"] == 4000
    assert cancel(guest, made, [0, 1], key="confirm-2", expected_refund_amount=4000).json == confirmed.json


def test_a_deadline_passing_between_quote_and_confirmation_is_quote_changed(world: World) -> None:
    from chalicelib.api import representations as shape
    from chalicelib.errors import QuoteChanged
    from chalicelib.services import cancellations

    venue = policy_venue(world, refund_cutoff_hours=24)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue, start=now() + timedelta(days=2))])
    deadline = at(made["sessions"][0]["refund_deadline"])
    ids = [made["sessions"][0]["session_id"]]

    quoted = shape.quote(cancellations.quote(claims_of(guest), made["transaction_id"], ids, deadline))
    assert quoted["refund_amount"] == 2500
    with pytest.raises(QuoteChanged) as changed:
        cancellations.cancel(claims_of(guest), made["transaction_id"], ids, deadline + timedelta(seconds=1), None,
                             shape.cancellation, expected_refund_amount=2500, render_quote=shape.quote,
                             queues=world.stack.app_module.parts.queues)
    assert changed.value.details is not None and changed.value.details["quote"]["refund_amount"] == 0
    assert receipt_of(guest, made)["sessions"][0]["status"] == "booked"


@pytest.mark.parametrize("value", [-1, "2500", 25.5, None, True, 3_000_000_001])
def test_a_bad_expected_refund_amount_is_400_and_cancels_nothing(world: World, value: Any) -> None:
    venue = policy_venue(world)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    answer = cancel(guest, made, [0], expected_refund_amount=value)
    assert answer.status == 400 and "expected_refund_amount" in answer.json["error"]["details"]["fields"]
    assert receipt_of(guest, made)["sessions"][0]["status"] == "booked"


def test_a_matching_expected_refund_amount_cancels_as_before(world: World) -> None:
    venue = policy_venue(world, cancellation_fee_percent=20)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)], amount=1999)
    quoted = quote(guest, made, [0]).json
    assert (quoted["refund_amount"], quoted["fee_amount"]) == (1600, 399)  # floor(399.8) kept
    done = cancel(guest, made, [0], expected_refund_amount=quoted["refund_amount"])
    assert done.status == 200 and done.json["refund"]["amount"] == 1600
