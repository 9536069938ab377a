"""Staff cancel a guest's sessions for a reason, started or not, refunding by the venue's rule, in
full or not at all, through the same refund queue, worker and states as a guest's cancellation."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import SOON, Response, Venue, World, now, sleep_until_started
from tests.integration.test_cancellations import receipt_of, settle
from tests.integration.test_openapi import assert_matches_spec

PATH = "/v1/admin/venues/{venue_id}/transactions/{transaction_id}/cancellations"


def staff_cancel(venue: Venue, made: dict[str, Any], sessions: list[int], refund: str = "policy",
                 reason: str = "guest phoned: child is sick", key: str | None = None, admin: Any = None,
                 **extra: Any) -> Response:
    body = {"session_ids": [made["sessions"][i]["session_id"] for i in sessions], "refund": refund,
            "reason": reason, **extra}
    headers = {"Idempotency-Key": key} if key else None
    path = PATH.format(venue_id=venue.venue_id, transaction_id=made["transaction_id"])
    return (admin or venue.admin).post(path, body, headers=headers)


def seats(venue: Venue, slot_id: str) -> tuple[int, int]:
    from chalicelib.storage.models import SlotRecord

    record = SlotRecord.get(venue.venue_id, slot_id, consistent_read=True)
    return int(record.booked), int(record.remaining)


def history(venue: Venue, made: dict[str, Any]) -> list[dict[str, Any]]:
    path = f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}/history"
    return venue.admin.get(path).json["events"]


def stripe_refunds_of(world: World, made: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in world.stack.stripe.refunds() if r["metadata"].get("transaction_id") == made["transaction_id"]]


def test_staff_cancel_by_the_venues_rule_refunds_what_a_guest_would_get(bought: Any) -> None:
    world, guest, made = bought
    venue = guest.venue
    answer = staff_cancel(venue, made, [0, 1], refund="policy")
    assert answer.status == 200, answer.json
    assert_matches_spec("POST", PATH, 200, answer.json, answer.headers)
    assert answer.json["refund"]["amount"] == 5000 and answer.json["refund"]["status"] == "pending"
    assert [s["status"] for s in answer.json["sessions"]] == ["cancelled", "cancelled"]
    after = settle(world, guest, made)
    assert [r["status"] for r in after["refunds"]] == ["refunded"]
    [paid] = stripe_refunds_of(world, made)
    assert paid["amount"] == 5000 and paid["metadata"]["refund_id"] == answer.json["refund"]["refund_id"]
    assert seats(venue, made["sessions"][0]["slot_id"]) == (0, 10)
    events = [e for e in history(venue, made) if e["action"] == "session_cancelled"]
    assert len(events) == 2 and {e["reason"] for e in events} == {"guest phoned: child is sick"}
    assert all(e["actor"].startswith("admin:") and e["actor"] != "admin:platform" for e in events)


def test_policy_inside_the_cutoff_refunds_nothing_and_full_refunds_everything(world: World) -> None:
    venue = world.venue(refund_on_cancel=True, cutoff_hours=48)
    guest = world.guest(venue, login=False)
    tomorrow = world.slot(venue, start=now() + timedelta(hours=20))
    made = world.purchase(guest, [tomorrow, tomorrow], amount=1800)

    by_rule = staff_cancel(venue, made, [0], refund="policy")
    assert by_rule.status == 200 and by_rule.json["refund"] is None
    assert by_rule.json["sessions"][0]["refund_status"] == "not_refunded"

    in_full = staff_cancel(venue, made, [1], refund="full", reason="our heater broke")
    assert in_full.status == 200 and in_full.json["refund"]["amount"] == 1800
    world.stack.deliver_all()
    [paid] = stripe_refunds_of(world, made)
    assert paid["amount"] == 1800


def test_none_refunds_nothing_and_never_calls_stripe(bought: Any) -> None:
    world, guest, made = bought
    venue = guest.venue
    before = len(world.stack.stripe.requests())
    answer = staff_cancel(venue, made, [0, 1, 2], refund="none", reason="no-show, venue rules")
    assert answer.status == 200 and answer.json["refund"] is None
    assert [s["refund_status"] for s in answer.json["sessions"]] == ["not_refunded"] * 3
    world.stack.deliver_all()
    assert len(world.stack.stripe.requests()) == before
    assert receipt_of(guest, made)["refunds"] == []
    assert venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/refunds").json["refunds"] == []


def test_free_sessions_cancelled_in_full_make_no_refund(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    made = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
        "guest_id": guest.guest_id, "payment_intent_id": world.payment_intent(100), "currency": "usd",
        "sessions": [{"slot_id": world.slot(venue)["slot_id"], "participant_name": "Free Kid", "amount": 0}]}).json
    answer = staff_cancel(venue, made, [0], refund="full")
    assert answer.status == 200 and answer.json["refund"] is None
    assert answer.json["sessions"][0]["refund_status"] == "not_refunded"


def test_staff_cancel_a_session_that_has_started_which_a_guest_cannot(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue)
    soon = world.slot(venue, start=now() + SOON)
    made = world.purchase(guest, [soon], amount=900)
    sleep_until_started(soon)
    by_guest = guest.api.post(f"/v1/me/transactions/{made['transaction_id']}/cancellations",
                              {"session_ids": [made["sessions"][0]["session_id"]]})
    assert by_guest.status == 409
    answer = staff_cancel(venue, made, [0], refund="full", reason="pool closed mid-session")
    assert answer.status == 200 and answer.json["refund"]["amount"] == 900
    assert receipt_of(guest, made)["sessions"][0]["status"] == "cancelled"


def test_a_cancelled_session_cannot_be_cancelled_again_and_all_or_nothing_holds(bought: Any) -> None:
    _world, guest, made = bought
    venue = guest.venue
    assert staff_cancel(venue, made, [0], refund="full").status == 200
    again = staff_cancel(venue, made, [0, 1], refund="full")
    assert again.status == 409 and again.error_code == "session_not_cancellable"
    assert again.json["error"]["details"]["sessions"] == {made["sessions"][0]["session_id"]: "cancelled"}
    assert [s["status"] for s in receipt_of(guest, made)["sessions"]] == ["cancelled", "booked", "booked"]
    unknown = staff_cancel(venue, {**made, "sessions": [{"session_id": "NOSUCHSESSION"}]}, [0])
    assert unknown.status == 404


def test_an_idempotency_key_answers_a_repeat_once_and_refuses_another_body(bought: Any) -> None:
    world, guest, made = bought
    venue = guest.venue
    first = staff_cancel(venue, made, [0], refund="full", key="desk-42")
    repeat = staff_cancel(venue, made, [0], refund="full", key="desk-42")
    assert first.status == repeat.status == 200 and first.json == repeat.json
    other = staff_cancel(venue, made, [0], refund="none", key="desk-42")
    assert other.status == 409 and other.error_code == "idempotency_conflict"
    bad = staff_cancel(venue, made, [1], refund="full", key="bad key\u00e9")
    assert bad.status == 400
    settle(world, guest, made)
    assert len(stripe_refunds_of(world, made)) == 1
    assert len(receipt_of(guest, made)["refunds"]) == 1


def test_bad_bodies_are_refused_and_change_nothing(bought: Any) -> None:
    _world, guest, made = bought
    venue = guest.venue
    path = PATH.format(venue_id=venue.venue_id, transaction_id=made["transaction_id"])
    ids = [made["sessions"][0]["session_id"]]
    for body, field in [({"session_ids": ids, "refund": "full"}, "reason"),
                        ({"session_ids": ids, "reason": "x"}, "refund"),
                        ({"session_ids": ids, "refund": "half", "reason": "x"}, "refund"),
                        ({"session_ids": ids, "refund": "full", "reason": "x" * 501}, "reason"),
                        ({"session_ids": ids, "refund": "full", "reason": "\u0000"}, "reason"),
                        ({"session_ids": [], "refund": "full", "reason": "x"}, "session_ids"),
                        ({"session_ids": ids, "refund": "full", "reason": "x", "notify": True}, "notify")]:
        answer = venue.admin.post(path, body)
        assert answer.status == 400 and field in answer.json["error"]["details"]["fields"], (body, answer.json)
    assert [s["status"] for s in receipt_of(guest, made)["sessions"]] == ["booked"] * 3


def test_only_the_venues_own_key_cancels(bought: Any) -> None:
    world, guest, made = bought
    venue = guest.venue
    other = world.venue()
    assert staff_cancel(venue, made, [0], admin=guest.api).status == 401
    assert staff_cancel(venue, made, [0], admin=other.admin).status == 403
    elsewhere = other.admin.post(PATH.format(venue_id=other.venue_id, transaction_id=made["transaction_id"]),
                                 {"session_ids": [made["sessions"][0]["session_id"]], "refund": "full",
                                  "reason": "not ours"})
    assert elsewhere.status == 404
    assert [s["status"] for s in receipt_of(guest, made)["sessions"]] == ["booked"] * 3
    platform = staff_cancel(venue, made, [0], admin=world.platform)
    assert platform.status == 200
    assert history(venue, made)[-1]["actor"] == "admin:platform"




def test_staff_see_the_amount_of_each_refund_choice_before_confirming(world: World) -> None:
    venue = world.venue(refund_on_cancel=True, cutoff_hours=48)
    guest = world.guest(venue, login=False)
    made = world.purchase(guest, [world.slot(venue, start=now() + timedelta(days=5)),
                                  world.slot(venue, start=now() + timedelta(hours=20))], amount=1200)
    path = f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}/cancellation-quote"
    ids = [s["session_id"] for s in made["sessions"]]
    quotes = {}
    for refund in ("policy", "full", "none"):
        answer = venue.admin.post(path, {"session_ids": ids, "refund": refund})
        assert answer.status == 200, answer.json
        assert_matches_spec("POST", "/v1/admin/venues/{venue_id}/transactions/{transaction_id}/cancellation-quote",
                            200, answer.json, answer.headers)
        quotes[refund] = answer.json["refund_amount"]
    assert quotes == {"policy": 1200, "full": 2400, "none": 0}
    confirmed = staff_cancel(venue, made, [0, 1], refund="policy")
    assert confirmed.json["refund"]["amount"] == quotes["policy"]
    assert venue.admin.post(path, {"session_ids": ids, "refund": "full"}).status == 409  # cancelled now
    assert venue.admin.post(path, {"session_ids": ids}).status == 400
    assert guest.api.post(path, {"session_ids": ids, "refund": "full"}).status == 401


def test_policy_keeps_the_venues_fee_and_full_keeps_nothing(world: World) -> None:
    venue = world.venue()
    saved = venue.admin.put(f"/v1/admin/venues/{venue.venue_id}/settings", {
        "allow_guest_modify": False, "refund_on_cancel": True, "refund_cutoff_hours": 24,
        "cancellation_fee_fixed": 100, "cancellation_fee_percent": 10})
    assert saved.status == 200, saved.json
    guest = world.guest(venue, login=False)
    made = world.purchase(guest, [world.slot(venue), world.slot(venue, start=now() + timedelta(days=4))], amount=2000)
    by_rule = staff_cancel(venue, made, [0], refund="policy")
    assert by_rule.json["refund"]["amount"] == 2000 - 100 - 200
    in_full = staff_cancel(venue, made, [1], refund="full")
    assert in_full.json["refund"]["amount"] == 2000
    world.stack.deliver_all()
    assert sorted(r["amount"] for r in stripe_refunds_of(world, made)) == [1700, 2000]


def test_a_changed_amount_since_the_quote_refuses_the_staff_cancellation(bought: Any) -> None:
    _world, guest, made = bought
    venue = guest.venue
    answer = staff_cancel(venue, made, [0], refund="full", expected_refund_amount=1000)
    assert answer.status == 409 and answer.error_code == "quote_changed"
    assert answer.json["error"]["details"]["quote"]["refund_amount"] == 2500
    assert receipt_of(guest, made)["sessions"][0]["status"] == "booked"
    assert staff_cancel(venue, made, [0], refund="full", expected_refund_amount=2500).status == 200
