"""Guests edit their booked sessions: move one to another slot, rename its participant, or both."""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.conftest import SOON, Guest, Response, Venue, World, iso, now, sleep_until_started
from tests.dynamodb_calls import count_dynamodb_calls


def edit(guest: Guest, made: dict[str, Any], body: Any, session: int = 0) -> Response:
    session_id = made["sessions"][session]["session_id"]
    return guest.api.patch(f"/v1/me/transactions/{made['transaction_id']}/sessions/{session_id}", body)


def seats(venue: Venue, slot: dict[str, Any]) -> tuple[int, int]:
    from chalicelib.storage.models import SlotRecord

    record = SlotRecord.get(venue.venue_id, slot["slot_id"], consistent_read=True)
    return int(record.booked), int(record.remaining)


def receipt_session(guest: Guest, made: dict[str, Any], session: int = 0) -> dict[str, Any]:
    receipt = guest.api.get(f"/v1/me/transactions/{made['transaction_id']}").json
    [found] = [s for s in receipt["sessions"] if s["session_id"] == made["sessions"][session]["session_id"]]
    return found


def history(venue: Venue, made: dict[str, Any]) -> list[dict[str, Any]]:
    return venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}/history").json[
        "events"]


def stored_session(made: dict[str, Any], session: int = 0) -> Any:
    from chalicelib.storage.models import SessionRecord

    return SessionRecord.get(made["transaction_id"], f"session#{made['sessions'][session]['session_id']}",
                             consistent_read=True)


def test_a_guest_moves_a_session_to_another_days_slot(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    monday = world.slot(venue, start=now() + timedelta(days=3))
    wednesday = world.slot(venue, start=now() + timedelta(days=5))
    made = world.purchase(guest, [monday], names=["Mia"])

    answer = edit(guest, made, {"slot_id": wednesday["slot_id"]})

    assert answer.status == 200, answer.json
    moved = answer.json
    assert (moved["slot_id"], moved["start"], moved["end"]) == (
        wednesday["slot_id"], wednesday["start"], wednesday["end"])
    assert moved["participant_name"] == "Mia" and moved["status"] == "booked"
    wednesday_start = datetime.fromisoformat(wednesday["start"].replace("Z", "+00:00"))
    assert moved["refund_deadline"] == iso(wednesday_start - timedelta(hours=24))
    assert moved["refund_window"] == "open"
    assert seats(venue, monday) == (0, 10) and seats(venue, wednesday) == (1, 9)
    assert receipt_session(guest, made) == moved
    stored = stored_session(made)
    assert stored.refund_deadline == wednesday_start - timedelta(hours=24) and stored.window_shard is not None
    event = history(venue, made)[-1]
    assert event["actor"] == f"guest:{guest.guest_id}" and event["action"] == "session_moved"
    assert event["session_id"] == moved["session_id"]
    assert event["before"] == {"slot_id": monday["slot_id"], "start": monday["start"], "end": monday["end"]}
    assert event["after"] == {"slot_id": wednesday["slot_id"], "start": wednesday["start"], "end": wednesday["end"]}


def test_moving_inside_the_cutoff_closes_the_refund_window(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    later = world.slot(venue, start=now() + timedelta(days=3))
    tonight = world.slot(venue, start=now() + timedelta(hours=12))
    made = world.purchase(guest, [later])
    assert made["sessions"][0]["refund_window"] == "open"

    moved = edit(guest, made, {"slot_id": tonight["slot_id"]}).json

    tonight_start = datetime.fromisoformat(tonight["start"].replace("Z", "+00:00"))
    assert moved["refund_window"] == "closed" and moved["actions"]["refund_on_cancel"] is False
    assert moved["refund_deadline"] == iso(tonight_start - timedelta(hours=24))
    stored = stored_session(made)
    assert stored.refund_window == "closed" and stored.window_shard is None  # gone from the open-windows index


def test_a_guest_renames_the_participant(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    slot = world.slot(venue)
    made = world.purchase(guest, [slot], names=["Mia"])

    answer = edit(guest, made, {"participant_name": "  Leo Smith  "})

    assert answer.status == 200 and answer.json["participant_name"] == "Leo Smith"
    assert answer.json["slot_id"] == slot["slot_id"] and seats(venue, slot) == (1, 9)
    event = history(venue, made)[-1]
    assert (event["action"], event["before"], event["after"]) == (
        "participant_renamed", {"participant_name": "Mia"}, {"participant_name": "Leo Smith"})


@pytest.mark.parametrize("name", ["x" * 101, "Le\u0007o", "Leo\nSmith", "   ", "", 42])
def test_a_name_that_is_not_printable_text_of_1_to_100_characters_is_refused(world: World, name: Any) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)], names=["Mia"])

    answer = edit(guest, made, {"participant_name": name})

    assert answer.status == 400 and answer.error_code == "invalid_request"
    assert "participant_name" in answer.json["error"]["details"]["fields"]
    assert receipt_session(guest, made)["participant_name"] == "Mia"


def test_a_name_of_exactly_100_characters_is_taken(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    assert edit(guest, made, {"participant_name": "é" * 100}).json["participant_name"] == "é" * 100


def test_a_move_and_a_rename_in_one_request_are_one_change(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    first, second = world.slot(venue), world.slot(venue, start=now() + timedelta(days=4))
    made = world.purchase(guest, [first], names=["Mia"])
    before = len(history(venue, made))

    answer = edit(guest, made, {"slot_id": second["slot_id"], "participant_name": "Leo"})

    assert answer.status == 200
    assert (answer.json["slot_id"], answer.json["participant_name"]) == (second["slot_id"], "Leo")
    events = history(venue, made)
    assert len(events) == before + 1
    assert events[-1]["action"] == "session_edited"
    assert events[-1]["before"] == {"slot_id": first["slot_id"], "start": first["start"], "end": first["end"],
                                    "participant_name": "Mia"}
    assert events[-1]["after"] == {"slot_id": second["slot_id"], "start": second["start"], "end": second["end"],
                                   "participant_name": "Leo"}
    assert seats(venue, first) == (0, 10) and seats(venue, second) == (1, 9)


def test_moving_to_the_slot_it_is_in_changes_nothing_and_writes_nothing(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    slot = world.slot(venue)
    made = world.purchase(guest, [slot], names=["Mia"])

    with count_dynamodb_calls() as calls:
        answer = edit(guest, made, {"slot_id": slot["slot_id"]})

    assert answer.status == 200 and answer.json == receipt_session(guest, made)
    assert calls.operations == ["BatchGetItem"]
    assert seats(venue, slot) == (1, 9)
    assert [e["action"] for e in history(venue, made)] == ["purchased"]


def test_the_same_slot_with_a_new_name_is_a_rename(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    slot = world.slot(venue)
    made = world.purchase(guest, [slot], names=["Mia"])

    answer = edit(guest, made, {"slot_id": slot["slot_id"], "participant_name": "Leo"})

    assert answer.status == 200 and answer.json["participant_name"] == "Leo"
    assert seats(venue, slot) == (1, 9)
    assert history(venue, made)[-1]["action"] == "participant_renamed"


@pytest.mark.parametrize("body", [None, {}, {"slot_id": None}, {"participant_name": None, "slot_id": None},
                                  {"colour": "red"}, {"participant_name": "Leo", "start": "2030-01-01T00:00:00Z"},
                                  {"slot_id": 7}, {"slot_id": "no spaces allowed"}, [], "Leo"])
def test_an_edit_that_says_nothing_valid_to_change_is_a_400(world: World, body: Any) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])

    answer = edit(guest, made, body)

    assert answer.status == 400 and answer.error_code == "invalid_request", answer.json


def test_malformed_json_is_a_400(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    session_id = made["sessions"][0]["session_id"]
    answer = guest.api.call("PATCH", f"/v1/me/transactions/{made['transaction_id']}/sessions/{session_id}",
                            raw=b'{"participant_name": ')
    assert answer.status == 400 and answer.error_code == "invalid_request"


def test_editing_is_refused_while_the_venue_has_it_switched_off(world: World) -> None:
    venue = world.venue(allow_guest_modify=False, refund_on_cancel=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)], names=["Mia"])

    answer = edit(guest, made, {"participant_name": "Leo"})

    assert answer.status == 403 and answer.error_code == "feature_disabled"
    assert receipt_session(guest, made)["participant_name"] == "Mia"


def test_a_cancelled_session_cannot_be_edited(world: World) -> None:
    from chalicelib.storage.models import SessionRecord

    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    slot, other = world.slot(venue), world.slot(venue)
    made = world.purchase(guest, [slot])
    stored_session(made).update(actions=[SessionRecord.status.set("cancelled")])

    for body in ({"participant_name": "Leo"}, {"slot_id": other["slot_id"]}):
        answer = edit(guest, made, body)
        assert answer.status == 409 and answer.error_code == "session_not_editable"
        assert answer.json["error"]["details"] == {"reason": "cancelled"}
    assert seats(venue, other) == (0, 10)


def test_a_session_that_has_started_cannot_be_edited(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    soon = world.slot(venue, start=now() + SOON)
    later = world.slot(venue)
    made = world.purchase(guest, [soon])
    sleep_until_started(soon)

    answer = edit(guest, made, {"slot_id": later["slot_id"]})

    assert answer.status == 409 and answer.error_code == "session_not_editable"
    assert answer.json["error"]["details"] == {"reason": "started"}
    assert seats(venue, soon) == (1, 9) and seats(venue, later) == (0, 10)


def test_a_session_cannot_move_to_a_slot_that_has_started(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    slot, started = world.slot(venue), world.slot(venue, start=now() - timedelta(minutes=5))
    made = world.purchase(guest, [slot])

    answer = edit(guest, made, {"slot_id": started["slot_id"]})

    assert answer.status == 409 and answer.error_code == "session_not_editable"
    assert answer.json["error"]["details"] == {"reason": "slot_started", "slot_id": started["slot_id"]}
    assert seats(venue, started) == (0, 10)


def test_a_full_slot_takes_no_one_and_nothing_changes(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest, other_guest = world.guest(venue), world.guest(venue)
    slot, full = world.slot(venue), world.slot(venue, capacity=1)
    world.purchase(other_guest, [full])
    made = world.purchase(guest, [slot], names=["Mia"])

    answer = edit(guest, made, {"slot_id": full["slot_id"], "participant_name": "Leo"})

    assert answer.status == 409 and answer.error_code == "slot_full"
    assert answer.json["error"]["details"] == {"slot_id": full["slot_id"]}
    assert seats(venue, slot) == (1, 9) and seats(venue, full) == (1, 0)
    unchanged = receipt_session(guest, made)
    assert (unchanged["slot_id"], unchanged["participant_name"]) == (slot["slot_id"], "Mia")
    assert [e["action"] for e in history(venue, made)] == ["purchased"]


def test_a_session_cannot_move_to_another_product(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    jump, climb = world.slot(venue), world.slot(venue, product_id="climb-30", product_name="Climb 30 min")
    made = world.purchase(guest, [jump])

    answer = edit(guest, made, {"slot_id": climb["slot_id"]})

    assert answer.status == 400 and answer.error_code == "invalid_request"
    assert "slot_id" in answer.json["error"]["details"]["fields"]
    assert seats(venue, climb) == (0, 10)


def test_a_slot_of_another_venue_or_none_at_all_is_not_found(world: World) -> None:
    venue, elsewhere = world.venue(allow_guest_modify=True), world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    theirs = world.slot(elsewhere)

    for slot_id in (theirs["slot_id"], "01JAAAAAAAAAAAAAAAAAAAAAAA"):
        answer = edit(guest, made, {"slot_id": slot_id})
        assert answer.status == 404 and answer.error_code == "not_found"
        assert answer.json["error"]["details"] == {"slot_id": slot_id}
    assert seats(elsewhere, theirs) == (0, 10)


def test_nobody_edits_a_session_of_someone_elses_transaction(world: World) -> None:
    venue, elsewhere = world.venue(allow_guest_modify=True), world.venue(allow_guest_modify=True)
    owner, other = world.guest(venue), world.guest(venue)
    stranger = world.guest(elsewhere, email=owner.email, password=owner.password)
    made = world.purchase(owner, [world.slot(venue)], names=["Mia"])
    session_id = made["sessions"][0]["session_id"]

    missing = other.api.patch(f"/v1/me/transactions/01JAAAAAAAAAAAAAAAAAAAAAAA/sessions/{session_id}",
                              {"participant_name": "Eve"})
    assert missing.status == 404
    for intruder in (other, stranger):
        answer = edit(intruder, made, {"participant_name": "Eve"})
        assert answer.status == 404 and answer.json == missing.json
    unknown = owner.api.patch(f"/v1/me/transactions/{made['transaction_id']}/sessions/01JAAAAAAAAAAAAAAAAAAAAAAA",
                              {"participant_name": "Eve"})
    assert unknown.status == 404 and unknown.error_code == "not_found"
    assert owner.api.patch(f"/v1/me/transactions/{made['transaction_id']}/sessions/no%20such",
                           {"participant_name": "Eve"}).status == 404
    owner.api.credential = None
    assert edit(owner, made, {"participant_name": "Eve"}).status == 401
    assert stored_session(made).participant_name == "Mia"


def test_a_session_cancelled_while_the_move_is_decided_is_not_moved(world: World, monkeypatch: Any) -> None:
    from chalicelib.services import edits
    from chalicelib.storage.models import SessionRecord

    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    slot, target = world.slot(venue), world.slot(venue, start=now() + timedelta(days=4))
    made = world.purchase(guest, [slot])
    read_then_cancel = edits.read_together

    def racing_read(keys: Any) -> Any:
        found = read_then_cancel(keys)
        stored_session(made).update(actions=[SessionRecord.status.set("cancelled")])
        return found

    monkeypatch.setattr(edits, "read_together", racing_read)
    answer = edit(guest, made, {"slot_id": target["slot_id"]})

    assert answer.status == 409 and answer.error_code == "session_not_editable"
    assert answer.json["error"]["details"] == {"reason": "cancelled"}
    assert seats(venue, target) == (0, 10) and seats(venue, slot) == (1, 9)
    assert [e["action"] for e in history(venue, made)] == ["purchased"]


def test_a_move_costs_one_read_and_one_write_however_big_the_transaction(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    slot, target = world.slot(venue, capacity=20), world.slot(venue, start=now() + timedelta(days=4), capacity=20)
    small, big = world.purchase(guest, [slot]), world.purchase(guest, [slot] * 10)

    costs = []
    for made in (small, big):
        with count_dynamodb_calls() as calls:
            assert edit(guest, made, {"slot_id": target["slot_id"], "participant_name": "Leo"}, session=0).status == 200
        costs.append(calls.operations)

    assert costs == [["BatchGetItem", "TransactWriteItems"]] * 2
    with count_dynamodb_calls() as calls:
        assert edit(guest, big, {"participant_name": "Ada"}, session=5).status == 200
    assert calls.operations == ["BatchGetItem", "TransactWriteItems"]


@pytest.mark.slow
def test_many_guests_racing_for_few_seats_over_http_never_overbook(world: World, http_api: str) -> None:
    from chalicelib.services import access

    venue = world.venue(allow_guest_modify=True)
    source, target = world.slot(venue, capacity=12), world.slot(venue, start=now() + timedelta(days=4), capacity=3)
    guests = [world.guest(venue, login=False) for _ in range(12)]
    for guest in guests:  # a token straight from the issuer: login is tested elsewhere, and argon2 is slow
        guest.api.credential = access.guest_token(venue.venue_id, guest.guest_id, datetime.now(UTC))[0]
    purchases = [world.purchase(guest, [source]) for guest in guests]
    start = threading.Barrier(len(guests))

    def move(guest: Guest, made: dict[str, Any]) -> tuple[int, Any]:
        session_id = made["sessions"][0]["session_id"]
        start.wait()
        answer = requests.patch(f"{http_api}/v1/me/transactions/{made['transaction_id']}/sessions/{session_id}",
                                json={"slot_id": target["slot_id"]},
                                headers={"Authorization": f"Bearer {guest.api.credential}"}, timeout=30)
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=len(guests)) as pool:
        answers = list(pool.map(move, guests, purchases))

    assert Counter(status for status, _ in answers) == {200: 3, 409: 9}
    assert all(body["error"]["code"] == "slot_full" for status, body in answers if status == 409)
    assert seats(venue, target) == (3, 0)
    assert seats(venue, source) == (9, 3)  # seats given back for the three movers only
    movers = {body["session_id"] for status, body in answers if status == 200}
    for guest, made in zip(guests, purchases, strict=True):
        session = receipt_session(guest, made)
        assert session["slot_id"] == (target["slot_id"] if session["session_id"] in movers else source["slot_id"])
