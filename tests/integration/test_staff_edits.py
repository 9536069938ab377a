"""Staff move and rename a guest's session for a reason: past the guests' switch, never past
capacity, product, a cancelled or a started session; the history names the key and the reason."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import SOON, Response, Venue, World, now, sleep_until_started
from tests.integration.test_openapi import assert_matches_spec

PATH = "/v1/admin/venues/{venue_id}/transactions/{transaction_id}/sessions/{session_id}"


def staff_edit(venue: Venue, made: dict[str, Any], body: Any, session: int = 0, admin: Any = None) -> Response:
    path = PATH.format(venue_id=venue.venue_id, transaction_id=made["transaction_id"],
                       session_id=made["sessions"][session]["session_id"])
    return (admin or venue.admin).patch(path, body)


def seats(venue: Venue, slot: dict[str, Any]) -> tuple[int, int]:
    from chalicelib.storage.models import SlotRecord

    record = SlotRecord.get(venue.venue_id, slot["slot_id"], consistent_read=True)
    return int(record.booked), int(record.remaining)


def history(venue: Venue, made: dict[str, Any]) -> list[dict[str, Any]]:
    path = f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}/history"
    return venue.admin.get(path).json["events"]


def key_id(world: World, venue: Venue) -> str:
    from chalicelib.auth import api_key_digest
    from chalicelib.storage.models import ApiKeyRecord

    return str(ApiKeyRecord.get(api_key_digest(venue.key)).key_id)


def test_staff_move_a_session_where_guests_may_not_and_the_history_says_who_and_why(world: World) -> None:
    venue = world.venue(allow_guest_modify=False)
    guest = world.guest(venue)
    friday, saturday = world.slot(venue, start=now() + timedelta(days=3)), world.slot(venue, start=now() + timedelta(days=4))
    made = world.purchase(guest, [friday], names=["Mia"])
    assert guest.api.patch(f"/v1/me/transactions/{made['transaction_id']}/sessions/{made['sessions'][0]['session_id']}",
                           {"slot_id": saturday["slot_id"]}).status == 403

    answer = staff_edit(venue, made, {"slot_id": saturday["slot_id"], "reason": "Guest phoned: please Saturday"})

    assert answer.status == 200, answer.json
    assert_matches_spec("PATCH", PATH, 200, answer.json, answer.headers)
    assert (answer.json["slot_id"], answer.json["start"]) == (saturday["slot_id"], saturday["start"])
    assert seats(venue, friday) == (0, 10) and seats(venue, saturday) == (1, 9)
    receipt = guest.api.get(f"/v1/me/transactions/{made['transaction_id']}").json
    assert receipt["sessions"][0]["slot_id"] == saturday["slot_id"]
    event = history(venue, made)[-1]
    assert event["action"] == "session_moved" and event["reason"] == "Guest phoned: please Saturday"
    assert event["actor"] == f"admin:{key_id(world, venue)}"
    assert venue.key not in event["actor"]  # the key's id, never the key


def test_staff_rename_a_participant_with_the_platform_key(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)], names=["Mia"])
    answer = staff_edit(venue, made, {"participant_name": "  Mila ", "reason": "typo at the till"},
                        admin=world.platform)
    assert answer.status == 200 and answer.json["participant_name"] == "Mila"
    event = history(venue, made)[-1]
    assert (event["actor"], event["action"], event["reason"]) == ("admin:platform", "participant_renamed",
                                                                  "typo at the till")
    assert (event["before"], event["after"]) == ({"participant_name": "Mia"}, {"participant_name": "Mila"})


BAD_EDITS = [
    ({"participant_name": "Mila"}, "reason"),
    ({"participant_name": "Mila", "reason": ""}, "reason"),
    ({"participant_name": "Mila", "reason": "   "}, "reason"),
    ({"participant_name": "Mila", "reason": "x" * 501}, "reason"),
    ({"participant_name": "Mila", "reason": 7}, "reason"),
    ({"reason": "nothing to change"}, "slot_id"),
    ({"participant_name": "Mila", "reason": "ok", "refund": "full"}, "refund"),
]


def test_an_edit_without_a_proper_reason_or_change_is_refused_and_changes_nothing(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    made = world.purchase(guest, [world.slot(venue)], names=["Mia"])
    for body, field in BAD_EDITS:
        answer = staff_edit(venue, made, body)
        assert answer.status == 400 and field in answer.json["error"]["details"]["fields"], (body, answer.json)
    assert [e["action"] for e in history(venue, made)] == ["purchased"]


def test_a_reason_of_exactly_500_characters_is_taken(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    made = world.purchase(guest, [world.slot(venue)], names=["Mia"])
    assert staff_edit(venue, made, {"participant_name": "Mila", "reason": "r" * 500}).status == 200


def test_staff_never_overbook_nor_change_the_product(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    slot = world.slot(venue)
    full = world.slot(venue, start=now() + timedelta(days=4), capacity=1)
    world.purchase(world.guest(venue, login=False), [full])
    other_product = world.slot(venue, product_id="climb-90", product_name="Climb 90")
    made = world.purchase(guest, [slot])
    answer = staff_edit(venue, made, {"slot_id": full["slot_id"], "reason": "they insisted"})
    assert answer.status == 409 and answer.error_code == "slot_full"
    assert seats(venue, full) == (1, 0) and seats(venue, slot) == (1, 9)
    answer = staff_edit(venue, made, {"slot_id": other_product["slot_id"], "reason": "wrong product"})
    assert answer.status == 400 and "slot_id" in answer.json["error"]["details"]["fields"]
    assert [e["action"] for e in history(venue, made)] == ["purchased"]


def test_staff_never_edit_a_cancelled_or_started_session(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    soon = world.slot(venue, start=now() + SOON)
    later, past = world.slot(venue), world.slot(venue, start=now() - timedelta(minutes=5))
    made = world.purchase(guest, [soon, later])
    cancelled = guest.api.post(f"/v1/me/transactions/{made['transaction_id']}/cancellations",
                               {"session_ids": [made["sessions"][1]["session_id"]]})
    assert cancelled.status == 200
    answer = staff_edit(venue, made, {"participant_name": "Zed", "reason": "late rename"}, session=1)
    assert answer.status == 409 and answer.json["error"]["details"] == {"reason": "cancelled"}
    answer = staff_edit(venue, made, {"slot_id": past["slot_id"], "reason": "move to a past slot"})
    assert answer.status == 409 and answer.json["error"]["details"]["reason"] == "slot_started"

    sleep_until_started(soon)
    answer = staff_edit(venue, made, {"slot_id": later["slot_id"], "reason": "too late"})
    assert answer.status == 409 and answer.json["error"]["details"] == {"reason": "started"}
    assert seats(venue, soon) == (1, 9)


def test_only_the_venues_key_edits_and_only_its_own_sessions(world: World) -> None:
    venue, other = world.venue(), world.venue()
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)], names=["Mia"])
    body = {"participant_name": "Zed", "reason": "not mine"}
    assert staff_edit(venue, made, body, admin=guest.api).status == 401
    assert staff_edit(venue, made, body, admin=other.admin).status == 403
    path = PATH.format(venue_id=other.venue_id, transaction_id=made["transaction_id"],
                       session_id=made["sessions"][0]["session_id"])
    assert other.admin.patch(path, body).status == 404
    assert [s["participant_name"] for s in guest.api.get(
        f"/v1/me/transactions/{made['transaction_id']}").json["sessions"]] == ["Mia"]
