"""Staff at the front desk find a guest by email, open their transactions and any receipt of the
venue, with the venue's key only."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Api, World, now
from tests.integration.test_openapi import assert_matches_spec


def test_staff_find_a_guest_by_email_whatever_its_case(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, email="Ada.Lovelace@Example.com", login=False)
    answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/guests?email=ADA.lovelace@example.COM")
    assert answer.status == 200
    assert answer.json == {"guests": [{"guest_id": guest.guest_id, "email": "ada.lovelace@example.com",
                                       "name": "Ada Guest"}]}
    assert_matches_spec("GET", "/v1/admin/venues/{venue_id}/guests", 200, answer.json, answer.headers)


def test_an_unknown_email_or_a_near_match_finds_nobody(world: World) -> None:
    venue = world.venue()
    world.guest(venue, email="ada@example.com", login=False)
    for email in ("nobody@example.com", "ada@example.co", "da@example.com"):
        answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/guests?email={email}")
        assert answer.status == 200 and answer.json == {"guests": []}, email


def test_a_guest_of_another_venue_is_not_found_by_email(world: World) -> None:
    here, there = world.venue(), world.venue()
    world.guest(there, email="shared@example.com", login=False)
    answer = here.admin.get(f"/v1/admin/venues/{here.venue_id}/guests?email=shared@example.com")
    assert answer.json == {"guests": []}


@pytest.mark.parametrize("query", ["", "?email=not-an-email", "?email=a@b.c&extra=1"])
def test_a_search_without_a_proper_email_is_refused(world: World, query: str) -> None:
    venue = world.venue()
    answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/guests{query}")
    assert answer.status == 400 and answer.error_code == "invalid_request"


def test_staff_page_through_a_guests_transactions_newest_first(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    slot = world.slot(venue)
    bought = [world.purchase(guest, [slot], amount=1000 + i) for i in range(3)]
    path = f"/v1/admin/venues/{venue.venue_id}/guests/{guest.guest_id}/transactions"
    first = venue.admin.get(f"{path}?limit=2")
    assert first.status == 200
    assert_matches_spec("GET", "/v1/admin/venues/{venue_id}/guests/{guest_id}/transactions", 200,
                        first.json, first.headers)
    assert [t["total"] for t in first.json["transactions"]] == [1002, 1001]
    second = venue.admin.get(f"{path}?limit=2&cursor={first.json['next_cursor']}")
    assert [t["transaction_id"] for t in second.json["transactions"]] == [bought[0]["transaction_id"]]
    # What the guest sees is what staff see.
    assert guest.api.get("/v1/me/transactions?limit=2").json == first.json


def test_a_guest_of_another_venue_has_no_transactions_here(world: World) -> None:
    here, there = world.venue(), world.venue()
    theirs = world.guest(there)
    answer = here.admin.get(f"/v1/admin/venues/{here.venue_id}/guests/{theirs.guest_id}/transactions")
    assert answer.status == 404 and answer.error_code == "not_found"
    unknown = here.admin.get(f"/v1/admin/venues/{here.venue_id}/guests/NOSUCHGUEST/transactions")
    assert unknown.status == 404


def test_a_forged_cursor_is_refused(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    path = f"/v1/admin/venues/{venue.venue_id}/guests/{guest.guest_id}/transactions"
    for cursor in ("bm90LWpzb24", "eyJhIjogMX0", "%%%"):
        answer = venue.admin.get(f"{path}?cursor={cursor}")
        assert answer.status == 400 and answer.error_code == "invalid_request", cursor


def test_staff_open_any_receipt_of_their_venue(bought: Any) -> None:
    _world, guest, receipt = bought
    venue = guest.venue
    answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/transactions/{receipt['transaction_id']}")
    assert answer.status == 200
    assert_matches_spec("GET", "/v1/admin/venues/{venue_id}/transactions/{transaction_id}", 200,
                        answer.json, answer.headers)
    assert answer.json == guest.api.get(f"/v1/me/transactions/{receipt['transaction_id']}").json


def test_only_the_venues_own_key_or_the_platform_key_may_look(world: World) -> None:
    venue, other = world.venue(), world.venue()
    guest = world.guest(venue)
    receipt = world.purchase(guest, [world.slot(venue, start=now() + timedelta(days=2))])
    paths = [f"/v1/admin/venues/{venue.venue_id}/guests?email={guest.email}",
             f"/v1/admin/venues/{venue.venue_id}/guests/{guest.guest_id}/transactions",
             f"/v1/admin/venues/{venue.venue_id}/transactions/{receipt['transaction_id']}"]
    for path in paths:
        assert guest.api.get(path).status == 401, path  # a guest token is no key
        assert Api(world.client, None).get(path).status == 401, path
        assert Api(world.client, "rbk_not_a_key").get(path).status == 401, path
        forbidden = other.admin.get(path)
        assert forbidden.status == 403 and forbidden.error_code == "forbidden", path
        assert world.platform.get(path).status == 200, path
    # The other venue's own paths do not reach this venue's receipt either.
    mixed = other.admin.get(f"/v1/admin/venues/{other.venue_id}/transactions/{receipt['transaction_id']}")
    assert mixed.status == 404 and mixed.error_code == "not_found"
    unknown = world.platform.get(f"/v1/admin/venues/NOSUCHVENUE/transactions/{receipt['transaction_id']}")
    assert unknown.status == 404
    missing = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/transactions/NOSUCHTRANSACTION")
    assert missing.status == 404
