"""What a guest recognises a purchase by (a short booking reference, its products, its first
session, its state, all from one Query), which days of a month still have a free slot, and the
refunds list as the venue's admin reads it (guest, sessions, reference)."""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Guest, World, now
from tests.dynamodb_calls import count_dynamodb_calls

REFERENCE = re.compile(r"^[2-9A-HJKMNP-TV-Z]{3}-[2-9A-HJKMNP-TV-Z]{3}$")


def listed(guest: Guest) -> dict[str, Any]:
    answer = guest.api.get("/v1/me/transactions")
    assert answer.status == 200, answer.json
    [purchase] = answer.json["transactions"]
    return dict(purchase)


def settle(world: World, guest: Guest, transaction_id: str, seconds: float = 20) -> dict[str, Any]:
    """Run the refund worker until no refund of the purchase is pending; the receipt after it."""
    deadline = time.monotonic() + seconds
    while True:
        world.stack.deliver_all()
        receipt = guest.api.get(f"/v1/me/transactions/{transaction_id}").json
        if all(r["status"] != "pending" for r in receipt["refunds"]) or time.monotonic() > deadline:
            return dict(receipt)
        time.sleep(0.2)


# --- Booking references and the purchase list ----------------------------------------------

def test_each_purchase_has_a_short_reference_on_its_receipt_and_in_the_list(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    first = world.purchase(guest, [world.slot(venue)])
    second = world.purchase(guest, [world.slot(venue)])
    assert REFERENCE.match(first["booking_reference"]) and REFERENCE.match(second["booking_reference"])
    assert first["booking_reference"] != second["booking_reference"]
    receipt = guest.api.get(f"/v1/me/transactions/{first['transaction_id']}").json
    assert receipt["booking_reference"] == first["booking_reference"]
    references = {t["transaction_id"]: t["booking_reference"]
                  for t in guest.api.get("/v1/me/transactions").json["transactions"]}
    assert references == {first["transaction_id"]: first["booking_reference"],
                          second["transaction_id"]: second["booking_reference"]}


def test_the_list_names_the_products_and_the_first_session(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    later = world.slot(venue, start=now() + timedelta(days=6), product_id="toddler-45", product_name="Toddler Time")
    sooner = world.slot(venue, start=now() + timedelta(days=2))
    world.purchase(guest, [later, sooner, world.slot(venue, start=now() + timedelta(days=4))])
    purchase = listed(guest)
    assert purchase["products"] == ["Open Jump 60 min", "Toddler Time"]  # in start order, each once
    assert purchase["first_session_start"] == sooner["start"]
    assert (purchase["booked_count"], purchase["cancelled_count"], purchase["refund_status"]) == (3, 0, "none")


def test_the_list_follows_a_move_a_cancellation_and_the_refund_in_one_query(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    slots = [world.slot(venue, start=now() + timedelta(days=d)) for d in (3, 4)]
    made = world.purchase(guest, slots)
    tid = made["transaction_id"]
    first, second = made["sessions"]

    earlier = world.slot(venue, start=now() + timedelta(days=2))
    moved = guest.api.patch(f"/v1/me/transactions/{tid}/sessions/{second['session_id']}", {"slot_id": earlier["slot_id"]})
    assert moved.status == 200, moved.json
    assert listed(guest)["first_session_start"] == earlier["start"]

    cancelled = guest.api.post(f"/v1/me/transactions/{tid}/cancellations", {"session_ids": [second["session_id"]]})
    assert cancelled.status == 200, cancelled.json
    purchase = listed(guest)
    assert (purchase["booked_count"], purchase["cancelled_count"], purchase["refund_status"]) == (1, 1, "pending")
    assert purchase["first_session_start"] == first["start"]  # the first session still booked

    settle(world, guest, tid)
    with count_dynamodb_calls() as calls:
        purchase = listed(guest)
    assert purchase["refund_status"] == "refunded"
    assert calls.operations == ["Query"]


def test_a_failed_refund_shows_failed_in_the_list_until_the_venue_retries(world: World) -> None:
    venue = world.venue(refund_on_cancel=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    world.stack.stripe.decline_next("charge_disputed", "The charge is disputed.")
    refund = guest.api.post(f"/v1/me/transactions/{made['transaction_id']}/cancellations",
                            {"session_ids": [made["sessions"][0]["session_id"]]}).json["refund"]
    settle(world, guest, made["transaction_id"])
    assert (listed(guest)["refund_status"], listed(guest)["booked_count"]) == ("failed", 0)
    retried = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/refunds/{refund['refund_id']}/retry", {})
    assert retried.status == 202
    settle(world, guest, made["transaction_id"])
    assert listed(guest)["refund_status"] == "refunded"


def test_a_cancellation_without_refund_says_not_refunded(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=False)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue), world.slot(venue)])
    guest.api.post(f"/v1/me/transactions/{made['transaction_id']}/cancellations",
                   {"session_ids": [s["session_id"] for s in made["sessions"]]})
    purchase = listed(guest)
    assert (purchase["booked_count"], purchase["cancelled_count"], purchase["refund_status"]) == (0, 2, "not_refunded")


# --- The admin's refunds list ---------------------------------------------------------------

def test_the_admin_refunds_list_names_the_guest_the_sessions_and_the_reference(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue, email="mia.parent@example.com")
    made = world.purchase(guest, [world.slot(venue), world.slot(venue, start=now() + timedelta(days=5))],
                          names=["Mia", "Leo"])
    tid, mia = made["transaction_id"], made["sessions"][0]
    guest.api.patch(f"/v1/me/transactions/{tid}/sessions/{mia['session_id']}", {"participant_name": "Mia Smith"})
    guest.api.post(f"/v1/me/transactions/{tid}/cancellations", {"session_ids": [mia["session_id"]]})
    with count_dynamodb_calls() as calls:
        answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/refunds")
    assert answer.status == 200
    [refund] = answer.json["refunds"]
    assert refund["booking_reference"] == made["booking_reference"]
    assert refund["guest"] == {"guest_id": guest.guest_id, "name": "Ada Guest", "email": "mia.parent@example.com"}
    assert refund["sessions"] == [{"session_id": mia["session_id"], "product_name": "Open Jump 60 min",
                                   "start": mia["start"], "participant_name": "Mia Smith"}]
    assert calls.operations.count("BatchGetItem") == 1


# --- Availability: the days of a month with a free slot --------------------------------------

def month_of(moment: datetime, zone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m}"


def test_availability_lists_the_days_with_a_free_slot_in_one_query(world: World) -> None:
    venue = world.venue(timezone_name="America/New_York")
    guest = world.guest(venue)
    zone = ZoneInfo("America/New_York")
    # Mid-month next month, so "now" never cuts into it.
    base = (now().astimezone(zone).replace(day=1) + timedelta(days=40)).replace(day=10, hour=10, minute=0, second=0)
    world.slot(venue, start=base)  # free
    full = world.slot(venue, start=base + timedelta(days=2), capacity=1)
    world.purchase(guest, [full])
    world.slot(venue, start=base + timedelta(days=3), product_id="toddler-45", product_name="Toddler Time")
    # 23:30 in New York on the 20th is already the 21st in UTC: it counts for the 20th.
    late = world.slot(venue, start=base.replace(day=20, hour=23, minute=30))
    month = f"{base:%Y-%m}"
    with count_dynamodb_calls() as calls:
        answer = guest.api.get(f"/v1/venues/{venue.venue_id}/availability?product_id=jump-60&month={month}")
    assert answer.status == 200, answer.json
    assert answer.json == {"venue_id": venue.venue_id, "product_id": "jump-60", "month": month,
                           "timezone": "America/New_York",
                           "days": [f"{month}-10", f"{month}-20"]}
    assert calls.operations == ["GetItem", "Query"]
    assert late["start"].startswith(f"{month}-21")  # stored in UTC


def test_availability_leaves_out_slots_that_have_started(world: World) -> None:
    venue = world.venue(timezone_name="UTC")
    guest = world.guest(venue)
    today = now()
    world.slot(venue, start=today - timedelta(minutes=30))  # started: not bookable
    answer = guest.api.get(f"/v1/venues/{venue.venue_id}/availability?product_id=jump-60&month={today:%Y-%m}")
    assert answer.status == 200 and answer.json["days"] == []


def test_availability_refuses_bad_months_and_unknown_venues(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    for month in ("2026-13", "2026-1", "1969-12", "2201-01", "\uff12\uff10\uff12\uff16-12", "december"):
        answer = guest.api.get(f"/v1/venues/{venue.venue_id}/availability?product_id=jump-60&month={month}")
        assert answer.status == 400 and answer.error_code == "invalid_request", month
    assert guest.api.get(f"/v1/venues/{venue.venue_id}/availability?product_id=jump-60").status == 400
    unknown = guest.api.get("/v1/venues/01ARZ3NDEKTSV4RRFFQ69G5FAV/availability?product_id=jump-60&month=2026-12")
    assert unknown.status == 404 and unknown.error_code == "not_found"


def test_the_public_venue_route_names_the_venue_and_an_unknown_one_is_not_found(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    answer = guest.api.get(f"/v1/venues/{venue.venue_id}")
    assert answer.status == 200 and answer.json["name"] == "Bounce Park"
    unknown = guest.api.get("/v1/venues/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert unknown.status == 404 and unknown.error_code == "not_found"


def test_a_month_in_a_zone_ahead_of_utc_starts_at_its_own_midnight(world: World) -> None:
    venue = world.venue(timezone_name="Pacific/Auckland")
    zone = ZoneInfo("Pacific/Auckland")
    local = (now().astimezone(zone).replace(day=1) + timedelta(days=40)).replace(day=1, hour=0, minute=30, second=0)
    slot = world.slot(venue, start=local)  # 00:30 on the 1st in Auckland: the previous month in UTC
    assert datetime.fromisoformat(slot["start"].replace("Z", "+00:00")).astimezone(UTC).day != 1
    answer = venue.admin.get(f"/v1/venues/{venue.venue_id}/availability?product_id=jump-60&month={local:%Y-%m}")
    assert answer.json["days"] == [f"{local:%Y-%m}-01"]
    previous = local - timedelta(days=1)
    answer = venue.admin.get(f"/v1/venues/{venue.venue_id}/availability?product_id=jump-60&month={previous:%Y-%m}")
    assert answer.json["days"] == []


def test_the_first_and_last_usable_months_answer_empty_in_every_zone(world: World) -> None:
    for zone in ("Pacific/Auckland", "America/New_York", "UTC"):
        venue = world.venue(timezone_name=zone)
        for month in ("1970-01", "2200-12"):
            answer = venue.admin.get(f"/v1/venues/{venue.venue_id}/availability?product_id=jump-60&month={month}")
            assert (answer.status, answer.json["days"]) == (200, []), (zone, month)
