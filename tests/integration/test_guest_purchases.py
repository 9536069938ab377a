"""Guests: purchases recorded by the store, login, transaction lists, receipts and availability."""
from __future__ import annotations

from datetime import timedelta

from tests.conftest import Api, World, iso, now


def test_a_guest_sees_their_purchase_and_its_receipt(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue)
    slot_a, slot_b = world.slot(venue), world.slot(venue, start=now() + timedelta(days=4))
    made = world.purchase(guest, [slot_a, slot_b], amount=2500, names=["Mia", "Leo"])

    listed = guest.api.get("/v1/me/transactions")
    assert listed.status == 200
    assert listed.json["transactions"] == [{
        "transaction_id": made["transaction_id"], "purchased_at": made["purchased_at"], "currency": "usd",
        "total": 5000, "session_count": 2, "booking_reference": made["booking_reference"],
        "products": ["Open Jump 60 min"], "first_session_start": slot_a["start"], "booked_count": 2,
        "cancelled_count": 0, "refund_status": "none"}]
    receipt = guest.api.get(f"/v1/me/transactions/{made['transaction_id']}")
    assert receipt.status == 200
    body = receipt.json
    assert body["timezone"] == "Europe/London" and body["total"] == 5000 and body["refunds"] == []
    assert [s["participant_name"] for s in body["sessions"]] == ["Mia", "Leo"]
    first = body["sessions"][0]
    assert first["status"] == "booked" and first["refund_status"] == "none"
    assert first["refund_window"] == "open"
    assert first["actions"] == {"edit": True, "cancel": True, "refund_on_cancel": True}
    assert first["start"] == slot_a["start"] and first["product_name"] == slot_a["product_name"]


def test_a_purchase_takes_its_seats(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    slot = world.slot(venue, capacity=3)
    world.purchase(guest, [slot, slot])
    listed = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={venue.day_of(slot)}")
    [after] = [s for s in listed.json["slots"] if s["slot_id"] == slot["slot_id"]]
    assert (after["booked"], after["remaining"]) == (2, 1)


def test_an_oversold_purchase_takes_no_seat_at_all(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    roomy, tight = world.slot(venue, capacity=5), world.slot(venue, capacity=1)
    answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
        "guest_id": guest.guest_id, "payment_intent_id": world.payment_intent(7500), "currency": "usd",
        "sessions": [{"slot_id": roomy["slot_id"], "participant_name": "A", "amount": 2500},
                     {"slot_id": tight["slot_id"], "participant_name": "B", "amount": 2500},
                     {"slot_id": tight["slot_id"], "participant_name": "C", "amount": 2500}]})
    assert answer.status == 409 and answer.error_code == "slot_full"
    assert answer.json["error"]["details"]["slot_ids"] == [tight["slot_id"]]
    from chalicelib.storage.models import SlotRecord

    assert SlotRecord.get(venue.venue_id, roomy["slot_id"]).booked == 0
    assert SlotRecord.get(venue.venue_id, tight["slot_id"]).booked == 0
    assert guest.api.get("/v1/me/transactions").json["transactions"] == []


def test_a_purchase_its_stripe_payment_does_not_back_is_refused(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    slot = world.slot(venue)

    def attempt(payment_intent_id: str, currency: str = "usd") -> tuple[int, str | None]:
        answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
            "guest_id": guest.guest_id, "payment_intent_id": payment_intent_id, "currency": currency,
            "sessions": [{"slot_id": slot["slot_id"], "participant_name": "A", "amount": 2500}]})
        return answer.status, answer.error_code

    assert attempt("pi_does_not_exist") == (422, "payment_not_accepted")
    assert attempt(world.payment_intent(1000)) == (422, "payment_not_accepted")  # does not cover 2500
    assert attempt(world.payment_intent(2500, "eur")) == (422, "payment_not_accepted")
    assert attempt(world.payment_intent(2500), currency="eur") == (400, "invalid_request")  # not the venue's
    paid = world.payment_intent(2500)
    assert attempt(paid) == (201, None)
    assert attempt(paid) == (409, "conflict")  # one payment, one purchase
    from chalicelib.storage.models import SlotRecord

    assert SlotRecord.get(venue.venue_id, slot["slot_id"]).booked == 1


def test_a_purchase_of_a_slot_elsewhere_or_started_is_refused(world: World) -> None:
    venue, other = world.venue(), world.venue()
    guest = world.guest(venue)
    theirs = world.slot(other)
    started = world.slot(venue, start=now() - timedelta(minutes=5))
    for slot, status in ((theirs, 404), (started, 400)):
        answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
            "guest_id": guest.guest_id, "payment_intent_id": world.payment_intent(100), "currency": "usd",
            "sessions": [{"slot_id": slot["slot_id"], "participant_name": "A", "amount": 100}]})
        assert answer.status == status


def test_a_purchase_for_a_guest_of_another_venue_is_refused(world: World) -> None:
    venue, other = world.venue(), world.venue()
    stranger = world.guest(other)
    slot = world.slot(venue)
    answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
        "guest_id": stranger.guest_id, "payment_intent_id": world.payment_intent(100), "currency": "usd",
        "sessions": [{"slot_id": slot["slot_id"], "participant_name": "A", "amount": 100}]})
    assert answer.status == 404


def test_purchase_bodies_are_validated(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    slot = world.slot(venue)
    base = {"guest_id": guest.guest_id, "payment_intent_id": "pi_x", "currency": "usd"}
    for sessions in ([], [{"slot_id": slot["slot_id"], "participant_name": "A", "amount": -1}],
                     [{"slot_id": slot["slot_id"], "participant_name": "A", "amount": 1.5}],
                     [{"slot_id": slot["slot_id"], "participant_name": "", "amount": 1}],
                     [{"slot_id": slot["slot_id"], "participant_name": "A", "amount": 1}] * 31):
        answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {**base, "sessions": sessions})
        assert answer.status == 400 and "sessions" in answer.json["error"]["details"]["fields"]


def test_another_guest_sees_nothing_of_a_purchase(world: World) -> None:
    venue = world.venue()
    owner, other = world.guest(venue), world.guest(venue)
    made = world.purchase(owner, [world.slot(venue)])
    assert other.api.get("/v1/me/transactions").json["transactions"] == []
    mine = other.api.get(f"/v1/me/transactions/{made['transaction_id']}")
    missing = other.api.get("/v1/me/transactions/01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert mine.status == missing.status == 404
    assert mine.json == missing.json


def test_a_guest_of_another_venue_sees_nothing_of_a_purchase(world: World) -> None:
    venue, other_venue = world.venue(), world.venue()
    owner = world.guest(venue)
    made = world.purchase(owner, [world.slot(venue)])
    # Same email, another venue: a different guest.
    stranger = world.guest(other_venue, email=owner.email, password=owner.password)
    assert stranger.api.get(f"/v1/me/transactions/{made['transaction_id']}").status == 404
    assert stranger.api.get("/v1/me/transactions").json["transactions"] == []


def test_transactions_come_newest_first_a_page_at_a_time(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    slot = world.slot(venue, capacity=20)
    made = [world.purchase(guest, [slot])["transaction_id"] for _ in range(5)]
    seen, cursor = [], None
    for _ in range(5):
        path = "/v1/me/transactions?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = guest.api.get(path).json
        seen += [t["transaction_id"] for t in page["transactions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))


def test_a_forged_cursor_is_a_400(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    for cursor in ("garbage", "eyJhIjogMX0"):
        answer = guest.api.get(f"/v1/me/transactions?cursor={cursor}")
        assert answer.status == 400 and answer.error_code == "invalid_request"
    assert guest.api.get("/v1/me/transactions?limit=0").status == 400


def test_login_gives_a_token_bound_to_the_venue(world: World) -> None:
    venue, other = world.venue(), world.venue()
    guest = world.guest(venue, login=False)
    answer = Api(world.client, None).post(f"/v1/venues/{venue.venue_id}/login",
                                          {"email": guest.email.upper(), "password": guest.password})
    assert answer.status == 200
    assert answer.json["token_type"] == "Bearer" and answer.json["guest"]["guest_id"] == guest.guest_id
    elsewhere = Api(world.client, None).post(f"/v1/venues/{other.venue_id}/login",
                                             {"email": guest.email, "password": guest.password})
    assert elsewhere.status == 401 and elsewhere.error_code == "invalid_credentials"


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    anonymous = Api(world.client, None)
    wrong = anonymous.post(f"/v1/venues/{venue.venue_id}/login", {"email": guest.email, "password": "nope-nope"})
    unknown = anonymous.post(f"/v1/venues/{venue.venue_id}/login", {"email": "who@example.com", "password": "nope"})
    assert wrong.status == unknown.status == 401
    assert wrong.json == unknown.json


def test_repeated_failed_logins_are_throttled_even_with_the_right_password(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    anonymous = Api(world.client, None)
    for _ in range(5):
        assert anonymous.post(f"/v1/venues/{venue.venue_id}/login",
                              {"email": guest.email, "password": "wrong password"}).status == 401
    locked = anonymous.post(f"/v1/venues/{venue.venue_id}/login", {"email": guest.email, "password": guest.password})
    assert locked.status == 429 and locked.error_code == "too_many_attempts"
    assert 0 < int(locked.headers["retry-after"]) <= 900
    other = world.guest(venue, login=False)  # another email is not affected
    assert anonymous.post(f"/v1/venues/{venue.venue_id}/login",
                          {"email": other.email, "password": other.password}).status == 200


def test_guest_routes_need_a_valid_token(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    for credential in (None, "not.a.token", guest.api.credential + "x", venue.key):
        answer = Api(world.client, credential).get("/v1/me/transactions")
        assert answer.status == 401 and answer.error_code == "unauthorized"


def test_availability_lists_open_slots_of_a_product_on_a_local_day(world: World) -> None:
    venue = world.venue(timezone_name="Pacific/Auckland")
    day_start = now() + timedelta(days=6)
    late = world.slot(venue, start=day_start.replace(hour=23, minute=30, second=0), capacity=2)
    other_product = world.slot(venue, start=day_start.replace(hour=23, minute=30, second=0), product_id="climb")
    from zoneinfo import ZoneInfo

    local_day = day_start.replace(hour=23, minute=30, second=0).astimezone(ZoneInfo("Pacific/Auckland")).date()
    answer = Api(world.client, None).get(f"/v1/venues/{venue.venue_id}/slots?product_id=jump-60&date={local_day}")
    assert answer.status == 200
    ids = [s["slot_id"] for s in answer.json["slots"]]
    assert late["slot_id"] in ids and other_product["slot_id"] not in ids
    assert answer.json["slots"][0]["remaining"] == 2


def test_availability_needs_a_product_and_a_real_date(world: World) -> None:
    venue = world.venue()
    anonymous = Api(world.client, None)
    for query in ("", "?product_id=jump-60", "?product_id=jump-60&date=2026-02-30", "?product_id=a&date=tomorrow"):
        answer = anonymous.get(f"/v1/venues/{venue.venue_id}/slots{query}")
        assert answer.status == 400 and answer.error_code == "invalid_request", query
    assert anonymous.get("/v1/venues/NOPE/slots?product_id=a&date=2026-01-01").status == 404


def test_the_admin_sees_the_purchase_in_the_history(world: World) -> None:
    venue = world.venue()
    made = world.purchase(world.guest(venue), [world.slot(venue)])
    events = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}/history")
    assert events.status == 200
    assert [e["action"] for e in events.json["events"]] == ["purchased"]
    other = world.venue()
    assert other.admin.get(f"/v1/admin/venues/{other.venue_id}/transactions/{made['transaction_id']}/history").status == 404


def test_times_in_answers_are_utc_with_z(world: World) -> None:
    venue = world.venue(refund_on_cancel=True)
    start = (now() + timedelta(days=2)).astimezone()
    made = world.purchase(world.guest(venue), [world.slot(venue, start=start)])
    session = made["sessions"][0]
    assert session["start"] == iso(start) and session["refund_deadline"] == iso(start - timedelta(hours=24))


def test_a_portal_can_show_the_venue_before_login_without_its_settings(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, timezone_name="Pacific/Auckland", currency="nzd")
    answer = Api(world.client, None).get(f"/v1/venues/{venue.venue_id}")
    assert answer.status == 200
    assert answer.json == {"venue_id": venue.venue_id, "name": "Bounce Park", "timezone": "Pacific/Auckland",
                           "currency": "nzd"}
    assert Api(world.client, None).get("/v1/venues/NOPE").status == 404
