"""The admin API: venues, keys, settings, slots and guests, through the Chalice test client."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import Api, World, iso, now


def test_a_new_venue_starts_with_both_switches_off_and_a_24_hour_cutoff(world: World) -> None:
    venue = world.venue()
    settings = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/settings")
    assert settings.status == 200
    assert settings.json["allow_guest_modify"] is False
    assert settings.json["refund_on_cancel"] is False
    assert settings.json["refund_cutoff_hours"] == 24
    assert settings.json["version"] == 1


def test_saved_settings_read_back_with_a_new_version(world: World) -> None:
    venue = world.venue()
    saved = world.settings(venue, allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=48)
    read = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/settings").json
    assert read == saved
    assert read["version"] == 2 and read["refund_cutoff_hours"] == 48 and read["allow_guest_modify"] is True
    assert read["updated_at"].endswith("Z")


@pytest.mark.parametrize("body, field", [
    ({"allow_guest_modify": True, "refund_on_cancel": True}, "refund_cutoff_hours"),
    ({"allow_guest_modify": "yes", "refund_on_cancel": True, "refund_cutoff_hours": 2}, "allow_guest_modify"),
    ({"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 8761}, "refund_cutoff_hours"),
    ({"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": -1}, "refund_cutoff_hours"),
    ({"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 2.5}, "refund_cutoff_hours"),
    ({"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": True}, "refund_cutoff_hours"),
    ({"allow_guest_modify": True, "refund_on_cancel": 1, "refund_cutoff_hours": 2}, "refund_on_cancel"),
    ({"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 2, "extra": 1}, "extra"),
])
def test_bad_settings_are_refused_naming_the_field_and_change_nothing(world: World, body: dict, field: str) -> None:
    venue = world.venue()
    answer = venue.admin.put(f"/v1/admin/venues/{venue.venue_id}/settings", body)
    assert answer.status == 400
    assert answer.error_code == "invalid_request"
    assert field in answer.json["error"]["details"]["fields"]
    assert venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/settings").json["version"] == 1


def test_malformed_json_gets_the_contract_error_shape(world: World) -> None:
    venue = world.venue()
    answer = venue.admin.call("PUT", f"/v1/admin/venues/{venue.venue_id}/settings", raw=b"{not json")
    assert answer.status == 400
    assert answer.json["error"]["code"] == "invalid_request"
    assert "message" in answer.json["error"]


def test_a_json_array_body_is_refused(world: World) -> None:
    venue = world.venue()
    answer = venue.admin.call("PUT", f"/v1/admin/venues/{venue.venue_id}/settings", raw=b"[1, 2]")
    assert answer.status == 400 and answer.error_code == "invalid_request"


def test_a_wrong_method_gets_405_in_the_contract_shape(world: World) -> None:
    venue = world.venue()
    answer = venue.admin.call("DELETE", f"/v1/admin/venues/{venue.venue_id}/settings")
    assert answer.status == 405
    assert answer.error_code == "method_not_allowed"


def test_a_body_that_is_not_json_content_type_gets_415_in_the_contract_shape(world: World) -> None:
    venue = world.venue()
    answer = venue.admin.call("PUT", f"/v1/admin/venues/{venue.venue_id}/settings", raw=b"a=b",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 415
    assert answer.error_code == "unsupported_media_type"


def test_no_key_or_a_bad_key_is_401(world: World, client) -> None:
    venue = world.venue()
    for credential in (None, "rbk_not_a_real_key", "garbage"):
        answer = Api(client, credential).get(f"/v1/admin/venues/{venue.venue_id}/settings")
        assert answer.status == 401 and answer.error_code == "unauthorized"


def test_a_venue_key_may_not_touch_another_venue(world: World) -> None:
    mine, theirs = world.venue(), world.venue()
    for method, path, body in [
        ("GET", f"/v1/admin/venues/{theirs.venue_id}/settings", None),
        ("PUT", f"/v1/admin/venues/{theirs.venue_id}/settings",
         {"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 1}),
        ("POST", f"/v1/admin/venues/{theirs.venue_id}/slots", {}),
        ("POST", f"/v1/admin/venues/{theirs.venue_id}/guests", {}),
    ]:
        answer = mine.admin.call(method, path, body)
        assert answer.status == 403 and answer.error_code == "forbidden", (method, path)
    assert theirs.admin.get(f"/v1/admin/venues/{theirs.venue_id}/settings").json["version"] == 1


def test_only_the_platform_key_creates_venues_and_mints_keys(world: World) -> None:
    venue = world.venue()
    created = venue.admin.post("/v1/admin/venues", {"name": "X", "timezone": "UTC", "currency": "usd"})
    assert created.status == 403
    minted = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/api-keys", {})
    assert minted.status == 403


def test_a_minted_key_is_shown_once_and_works_only_for_its_venue(world: World) -> None:
    venue = world.venue()
    minted = world.platform.post(f"/v1/admin/venues/{venue.venue_id}/api-keys", {})
    assert minted.status == 201
    key = minted.json["api_key"]
    assert Api(world.client, key).get(f"/v1/admin/venues/{venue.venue_id}/settings").status == 200
    from chalicelib.storage.models import ApiKeyRecord

    stored = [record for record in ApiKeyRecord.scan() if record.key_id == minted.json["key_id"]]
    assert len(stored) == 1 and key not in stored[0].key_hash and stored[0].key_hash != key


def test_a_venue_id_can_be_chosen_once(world: World) -> None:
    import secrets

    venue_id = f"park-{secrets.token_hex(4)}"
    body = {"venue_id": venue_id, "name": "Park", "timezone": "America/New_York", "currency": "usd"}
    assert world.platform.post("/v1/admin/venues", body).status == 201
    again = world.platform.post("/v1/admin/venues", body)
    assert again.status == 409 and again.error_code == "conflict"


@pytest.mark.parametrize("body, field", [
    ({"name": "X", "timezone": "Mars/Olympus", "currency": "usd"}, "timezone"),
    ({"name": "X", "timezone": "UTC", "currency": "USD"}, "currency"),
    ({"name": "", "timezone": "UTC", "currency": "usd"}, "name"),
    ({"name": "X\u0000", "timezone": "UTC", "currency": "usd"}, "name"),
    ({"timezone": "UTC", "currency": "usd"}, "name"),
])
def test_bad_venues_are_refused(world: World, body: dict, field: str) -> None:
    answer = world.platform.post("/v1/admin/venues", body)
    assert answer.status == 400 and field in answer.json["error"]["details"]["fields"]


def test_an_unknown_venue_is_404_for_the_platform_key(world: World) -> None:
    answer = world.platform.get("/v1/admin/venues/NOPE/settings")
    assert answer.status == 404 and answer.error_code == "not_found"


def test_slots_are_listed_by_product_and_local_date(world: World) -> None:
    venue = world.venue(timezone_name="Pacific/Auckland")
    start = (now() + timedelta(days=5)).replace(hour=23, minute=30, second=0)  # next day in Auckland
    slot = world.slot(venue, start=start, capacity=4)
    assert slot["remaining"] == 4 and slot["booked"] == 0 and slot["start"] == iso(start)
    from zoneinfo import ZoneInfo

    local_day = start.astimezone(ZoneInfo("Pacific/Auckland")).date()
    listed = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={local_day}")
    assert [s["slot_id"] for s in listed.json["slots"]] == [slot["slot_id"]]
    utc_day = start.date()
    other = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={utc_day}")
    assert slot["slot_id"] not in [s["slot_id"] for s in other.json["slots"]]


@pytest.mark.parametrize("change, field", [
    ({"capacity": 0}, "capacity"),
    ({"start": "2030-01-01T10:00:00"}, "start"),
    ({"end": "tomorrow"}, "end"),
    ({"capacity": "3"}, "capacity"),
])
def test_bad_slots_are_refused(world: World, change: dict, field: str) -> None:
    venue = world.venue()
    body = {"product_id": "p", "product_name": "P", "start": "2030-01-01T10:00:00Z",
            "end": "2030-01-01T11:00:00Z", "capacity": 3, **change}
    answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/slots", body)
    assert answer.status == 400 and field in answer.json["error"]["details"]["fields"]


def test_a_slot_must_start_before_it_ends(world: World) -> None:
    venue = world.venue()
    answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/slots", {
        "product_id": "p", "product_name": "P", "start": "2030-01-01T11:00:00+01:00",
        "end": "2030-01-01T10:00:00Z", "capacity": 3})
    assert answer.status == 400 and answer.error_code == "invalid_request"


def test_guest_emails_are_unique_per_venue_whatever_their_case(world: World) -> None:
    venue, other = world.venue(), world.venue()
    body = {"email": "Sam@Example.com", "password": "long enough pw", "name": "Sam"}
    first = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests", body)
    assert first.status == 201 and first.json["email"] == "sam@example.com"
    again = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests", {**body, "email": "SAM@example.com"})
    assert again.status == 409 and again.error_code == "conflict"
    assert other.admin.post(f"/v1/admin/venues/{other.venue_id}/guests", body).status == 201


def test_guest_passwords_are_stored_as_argon2id_hashes(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    from chalicelib.storage.models import GuestRecord

    stored = GuestRecord.get(venue.venue_id, guest.email)
    assert stored.password_hash.startswith("$argon2id$") and guest.password not in stored.password_hash
