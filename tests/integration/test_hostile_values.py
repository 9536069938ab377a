"""Values crafted to break parsing or to mislead people: dates no venue can use, digits from
other scripts, time zones that are not real places, and names that look empty or like someone
else's. Each is a 400 in the contract's shape that says nothing of Python, and changes nothing."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Api, Response, World, iso, now

# Phrases of Python's own exceptions that must never reach a client.
PYTHON_WORDS = ("isoformat", "timedelta", "strictly between", "must be in 0..", "out of range", "invalid literal",
                "Traceback", "NoneType", "object has no", "year 0 is out", "OverflowError", "ValueError",
                "unconverted data")


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch) -> None:
    """argon2id at its lowest cost here: what is under test is validation, not the hash."""
    from argon2 import PasswordHasher

    from chalicelib import auth

    monkeypatch.setattr(auth, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def refused(answer: Response, field: str) -> None:
    assert (answer.status, answer.error_code) == (400, "invalid_request"), (answer.status, answer.raw[:300])
    assert field in answer.json["error"]["details"]["fields"], answer.json
    text = answer.raw.decode()
    assert not [word for word in PYTHON_WORDS if word in text], text


# --- Point 12: dates a venue cannot use -----------------------------------------------------------

UNUSABLE_DAYS = ["9999-12-31", "0001-01-01", "1969-12-31", "2201-01-01", "0000-01-01"]


@pytest.mark.parametrize("zone", ["Pacific/Auckland", "America/New_York", "UTC"])
def test_days_outside_1970_to_2200_are_400_on_every_route_that_takes_a_day(world: World, zone: str) -> None:
    venue = world.venue(timezone_name=zone)
    slot = world.slot(venue)
    public, admin = Api(world.client, None), venue.admin
    for day in UNUSABLE_DAYS:
        refused(public.get(f"/v1/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}"), "date")
        refused(admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}"), "date")
    for day in ("1970-01-01", "2200-12-31"):  # the edges are usable, and simply empty
        assert public.get(f"/v1/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}").json == {"slots": []}
        assert admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}").status == 200
    # The venue's own day of the slot (in Auckland that is often the day after the UTC date).
    listed = admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={venue.day_of(slot)}")
    assert [s["slot_id"] for s in listed.json["slots"]] == [slot["slot_id"]]


def test_slot_times_outside_1970_to_2200_are_400_and_create_nothing(world: World) -> None:
    venue = world.venue(timezone_name="Pacific/Auckland")
    base = f"/v1/admin/venues/{venue.venue_id}/slots"
    good_start = now() + timedelta(days=2)
    for start, end in [("9999-12-31T23:00:00Z", "9999-12-31T23:30:00Z"),
                       ("0001-01-01T00:00:00+01:00", "0001-01-01T01:00:00+01:00"),
                       ("1969-12-31T23:00:00Z", "1969-12-31T23:30:00Z"),
                       ("2201-01-01T00:00:00Z", "2201-01-01T01:00:00Z")]:
        made = venue.admin.post(base, {"product_id": "jump-60", "product_name": "Jump", "start": start, "end": end,
                                       "capacity": 3})
        refused(made, "start")
    made = venue.admin.post(base, {"product_id": "jump-60", "product_name": "Jump", "start": iso(good_start),
                                   "end": "9999-12-31T23:59:59-12:00", "capacity": 3})
    refused(made, "end")
    listed = venue.admin.get(f"{base}?product_id=jump-60&date={iso(good_start)[:10]}")
    assert listed.json == {"slots": []}


# --- Point 17: ASCII digits, real time zones, no Python in messages -------------------------------

def test_digits_from_other_scripts_are_not_numbers(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    for limit in ("\u0665", "\uff15", "\u0967\u0966", "5\u0660", "\U0001d7d3"):
        refused(guest.api.get(f"/v1/me/transactions?limit={limit}"), "limit")
    assert guest.api.get("/v1/me/transactions?limit=5").status == 200
    for day in ("\uff12\uff10\uff13\uff10-01-01", "2030-\u0661\u0662-01", "\u0968\u0966\u0969\u0966-01-01"):
        refused(Api(world.client, None).get(f"/v1/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}"),
                "date")
    base = f"/v1/admin/venues/{venue.venue_id}/slots"
    for start in ("\uff12\uff10\uff13\uff10-01-01T10:00:00Z", "2030-01-01T1\u0660:00:00Z",
                  "2030-01-01T10:00:00.\u0665Z", "2030-01-01T10:00:00+0\u0665:00"):
        refused(venue.admin.post(base, {"product_id": "jump-60", "product_name": "Jump", "start": start,
                                        "end": "2030-01-01T11:00:00Z", "capacity": 3}), "start")


def test_times_python_cannot_read_are_refused_in_our_words(world: World) -> None:
    venue = world.venue()
    base = f"/v1/admin/venues/{venue.venue_id}/slots"
    for start in ("2030-01-01T10:00:00+24:00", "2030-01-01T10:00:00+99:59", "2030-01-01T25:00:00Z",
                  "2030-01-01T10:61:00Z", "2030-02-30T10:00:00Z", "2030-13-01T10:00:00Z"):
        answer = venue.admin.post(base, {"product_id": "jump-60", "product_name": "Jump", "start": start,
                                         "end": "2030-01-01T11:00:00Z", "capacity": 3})
        refused(answer, "start")


@pytest.mark.parametrize("zone", ["localtime", "Factory", "EST5EDT", "US/Eastern", "Asia/Calcutta", "posixrules",
                                  "Etc/GMT+5", "GMT", "Europe/Kiev", "posix/Europe/London", "right/UTC", "Zulu"])
def test_venues_take_only_canonical_iana_zones(world: World, zone: str) -> None:
    made = world.platform.post("/v1/admin/venues", {"name": "Bounce Park", "timezone": zone, "currency": "usd"})
    refused(made, "timezone")


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "Europe/Kyiv", "America/Argentina/Buenos_Aires",
                                  "Australia/Lord_Howe"])
def test_canonical_zones_are_taken(world: World, zone: str) -> None:
    made = world.platform.post("/v1/admin/venues", {"name": "Bounce Park", "timezone": zone, "currency": "usd"})
    assert (made.status, made.json["timezone"]) == (201, zone)


# --- Point 16: names -----------------------------------------------------------------------------

INVISIBLE_NAMES = {
    "zero-width spaces only": "\u200b\u200b\u200b",
    "hangul filler only": "\u3164",
    "braille blank only": "\u2800\u2800",
    "halfwidth hangul filler": "\uffa0",
    "word joiner only": "\u2060",
    "combining mark only": "\u0301",
    "zero-width space inside": "Ada\u200bLovelace",
    "left-to-right mark": "Ada\u200e",
    "right-to-left mark inside": "Ad\u200fa",
    "right-to-left override": "\u202eecnerolF",
    "first strong isolate": "\u2068Ada\u2069",
    "arabic letter mark": "Ada\u061c",
    "byte order mark": "\ufeffAda",
    "soft hyphen": "Ada\u00adLovelace",
    "tag characters": "Ada\U000e0041\U000e0042",
    "variation selector after a letter": "Ada\ufe0f",
    "zero-width joiner at the end": "Ada\u200d",
}


def name_calls(world: World) -> tuple[Any, Any]:
    """Every route that stores a name, as functions of the name: (answers, what was stored)."""
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    slot = world.slot(venue)
    bought = world.purchase(guest, [slot])
    base = f"/v1/admin/venues/{venue.venue_id}"
    session_path = f"/v1/me/transactions/{bought['transaction_id']}/sessions/{bought['sessions'][0]['session_id']}"
    counter = iter(range(10_000))

    def attempt(name: str) -> dict[str, Response]:
        n = next(counter)
        return {
            "venue name": world.platform.post("/v1/admin/venues", {"name": name, "timezone": "UTC", "currency": "usd"}),
            "guest name": venue.admin.post(f"{base}/guests", {"email": f"named-{n}@example.com",
                                                               "password": "long enough pw", "name": name}),
            "product name": venue.admin.post(f"{base}/slots", {"product_id": "jump-60", "product_name": name,
                                                               "start": slot["start"], "end": slot["end"],
                                                               "capacity": 3}),
            "participant name": venue.admin.post(f"{base}/transactions", {
                "guest_id": guest.guest_id, "payment_intent_id": world.payment_intent(100), "currency": "usd",
                "sessions": [{"slot_id": slot["slot_id"], "participant_name": name, "amount": 100}]}),
            "participant rename": guest.api.patch(session_path, {"participant_name": name}),
        }

    def stored() -> Any:
        return (guest.api.get(f"/v1/me/transactions/{bought['transaction_id']}").json,
                venue.admin.get(f"{base}/slots?product_id=jump-60&date={venue.day_of(slot)}").json)

    return attempt, stored


def test_invisible_and_direction_characters_in_names_are_refused(world: World) -> None:
    attempt, stored = name_calls(world)
    before = stored()
    for label, name in INVISIBLE_NAMES.items():
        for route, answer in attempt(name).items():
            assert (label, route, answer.status, answer.error_code) == (label, route, 400, "invalid_request"), \
                answer.raw[:200]
            assert not [word for word in PYTHON_WORDS if word in answer.raw.decode()]
    assert stored() == before


def test_names_are_stored_in_nfc_so_lookalikes_are_one_name(world: World) -> None:
    attempt, stored = name_calls(world)
    decomposed = "Zoe\u0308 Bj\u006f\u0308rk"  # e + combining diaeresis
    answers = attempt(decomposed)
    assert {route: a.status for route, a in answers.items()} == {
        "venue name": 201, "guest name": 201, "product name": 201, "participant name": 201, "participant rename": 200}
    composed = "Zo\u00eb Bj\u00f6rk"
    assert answers["venue name"].json["name"] == composed
    assert answers["guest name"].json["name"] == composed
    assert answers["product name"].json["product_name"] == composed
    assert answers["participant name"].json["sessions"][0]["participant_name"] == composed
    assert answers["participant rename"].json["participant_name"] == composed
    receipt, _ = stored()
    assert receipt["sessions"][0]["participant_name"] == composed
    assert json.dumps(receipt, ensure_ascii=False).count("\u0308") == 0


def test_names_in_scripts_that_need_joiners_and_emoji_are_kept(world: World) -> None:
    attempt, _ = name_calls(world)
    for name in ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian with a zero-width non-joiner
                 "\u0915\u094d\u200d\u0937",  # Devanagari with a zero-width joiner
                 "Ada \u2764\ufe0f", "\U0001f468\u200d\U0001f469\u200d\U0001f467 family", "O'Brien-Smith Jr."):
        answers = attempt(name)
        assert answers["participant rename"].status == 200, (name, answers["participant rename"].raw)
        assert answers["participant rename"].json["participant_name"] == name
        assert answers["guest name"].status == 201


def test_a_trailing_newline_does_not_slip_through_a_pattern(world: World) -> None:
    """`$` also matches before a final newline: every pattern must match the whole value."""
    venue = world.venue()
    guest = world.guest(venue)
    slot = world.slot(venue)
    base = f"/v1/admin/venues/{venue.venue_id}"
    intent = world.payment_intent(100)
    order = {"guest_id": guest.guest_id, "payment_intent_id": intent, "currency": "usd",
             "sessions": [{"slot_id": slot["slot_id"], "participant_name": "Mia", "amount": 100}]}
    refused(world.platform.post("/v1/admin/venues", {"name": "Bounce Park", "timezone": "UTC", "currency": "usd\n"}),
            "currency")
    refused(venue.admin.post(f"{base}/transactions", {**order, "currency": "usd\n"}), "currency")
    refused(venue.admin.post(f"{base}/transactions", {**order, "payment_intent_id": intent + "\n"}),
            "payment_intent_id")
    refused(venue.admin.post(f"{base}/transactions", {**order, "guest_id": guest.guest_id + "\n"}), "guest_id")
    refused(venue.admin.post(f"{base}/slots", {"product_id": "jump-60\n", "product_name": "Open Jump",
                                               "start": slot["start"], "end": slot["end"], "capacity": 3}),
            "product_id")
    refused(venue.admin.post(f"{base}/slots", {"product_id": "jump-60", "product_name": "Open Jump",
                                               "start": slot["start"] + "\n", "end": slot["end"], "capacity": 3}),
            "start")
    refused(venue.admin.get(f"{base}/refunds?cursor=abc%0A"), "cursor")
    assert guest.api.get("/v1/me/transactions").json["transactions"] == []  # nothing was bought
    listed = venue.admin.get(f"{base}/slots?product_id=jump-60&date={venue.day_of(slot)}").json["slots"]
    assert [s["slot_id"] for s in listed] == [slot["slot_id"]]  # and no slot was made


def test_null_is_not_a_way_to_leave_out_a_venue_id_or_a_guests_password(world: World) -> None:
    """Both are optional strings, left out to have an id made or the guest invited: a null is
    refused, so it neither makes a venue nor emails an invitation."""
    venue = world.venue()
    email = "null-password@example.com"
    refused(venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests",
                             {"email": email, "password": None, "name": "Nell"}), "password")
    assert venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/guests?email={email}").json == {"guests": []}
    world.stack.deliver_all()
    assert venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/notifications").json["notifications"] == []
    refused(world.platform.post("/v1/admin/venues", {"venue_id": None, "name": "Null Park", "timezone": "Europe/London",
                                                      "currency": "gbp"}), "venue_id")


def test_null_is_not_a_way_to_leave_a_session_unchanged(world: World) -> None:
    """The contract gives `slot_id` and `participant_name` as strings, left out when unchanged:
    a null beside a real change is refused, and nothing changes."""
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    session = made["sessions"][0]
    mine = f"/v1/me/transactions/{made['transaction_id']}/sessions/{session['session_id']}"
    staff = f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}/sessions/{session['session_id']}"
    refused(guest.api.patch(mine, {"slot_id": None, "participant_name": "Theo"}), "slot_id")
    refused(guest.api.patch(mine, {"participant_name": None, "slot_id": session["slot_id"]}), "participant_name")
    refused(venue.admin.patch(staff, {"slot_id": None, "participant_name": "Theo", "reason": "asked by phone"}),
            "slot_id")
    receipt = guest.api.get(f"/v1/me/transactions/{made['transaction_id']}").json
    assert [(s["slot_id"], s["participant_name"]) for s in receipt["sessions"]] == [
        (session["slot_id"], session["participant_name"])]
