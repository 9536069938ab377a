"""Abuse: forged and misused credentials, other people's ids, hostile bodies and password guessing.
Each gets the contract's answer, and each changes nothing anyone can see."""
from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Guest, Response, Venue, World, now
from tests.integration.test_login_throttle import guesses_at_once

UNKNOWN_ID = "01JNOSUCHTHING000000000000"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch) -> None:
    """argon2id at its lowest cost in this module: the real cost is ~0.7 s a hash on CI machines,
    and what is under test here is who gets in and what they see, not the hash."""
    from argon2 import PasswordHasher

    from chalicelib import auth

    monkeypatch.setattr(auth, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def routes(world: World, prefix: str) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app under `prefix`."""
    app = world.stack.app_module.app  # type: ignore[union-attr]
    return sorted((method, path) for path, entries in app.routes.items() if path.startswith(prefix)
                  for method in entries)


def fill(template: str, **ids: str) -> str:
    path = template
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no id given for {template}"
    return path


def body_for(method: str, template: str, session_id: str = UNKNOWN_ID) -> Any:
    """A body each route would accept from its rightful caller."""
    if method == "GET":
        return None
    if template.endswith(("/cancellation-quote", "/cancellations")):
        return {"session_ids": [session_id]}
    if "/sessions/" in template:
        return {"participant_name": "Mallory"}
    if template.endswith("/settings"):
        return {"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 1}
    if template.endswith("/slots"):
        return {"product_id": "jump-60", "product_name": "Evil", "start": "2030-01-01T10:00:00Z",
                "end": "2030-01-01T11:00:00Z", "capacity": 5}
    if template.endswith("/guests"):
        return {"email": "mallory@example.com", "password": "correct horse battery", "name": "Mallory"}
    if template.endswith("/transactions"):
        return {"guest_id": UNKNOWN_ID, "payment_intent_id": "pi_x", "currency": "usd",
                "sessions": [{"slot_id": UNKNOWN_ID, "participant_name": "M", "amount": 1}]}
    if template == "/v1/admin/venues":
        return {"name": "Evil", "timezone": "Europe/London", "currency": "usd"}
    return {}


def assert_error(answer: Response, status: int, code: str) -> None:
    assert (answer.status, answer.error_code) == (status, code), (answer.status, answer.raw[:300])
    assert set(answer.json) == {"error"} and isinstance(answer.json["error"]["message"], str)


@pytest.fixture
def two_venues(world: World) -> dict[str, Any]:
    """Venue A with a guest and a refundable purchase; venue B with its own guest and purchase."""
    ours = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    theirs = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest, victim, stranger = world.guest(ours), world.guest(ours), world.guest(theirs)
    slot = world.slot(ours, capacity=5)
    their_slot = world.slot(theirs, capacity=5)
    return {"ours": ours, "theirs": theirs, "guest": guest, "victim": victim, "stranger": stranger,
            "slot": slot, "mine": world.purchase(guest, [slot]), "victims": world.purchase(victim, [slot]),
            "strangers": world.purchase(stranger, [their_slot])}


def snapshot(world: World, venue: Venue, receipts: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything an abuser might change at `venue`, read with the platform key."""
    platform = world.platform
    day = receipts[0]["sessions"][0]["start"][:10] if receipts else now().date().isoformat()
    state = {
        "settings": platform.get(f"/v1/admin/venues/{venue.venue_id}/settings").json,
        "slots": platform.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}").json,
        "refunds": platform.get(f"/v1/admin/venues/{venue.venue_id}/refunds").json,
    }
    for receipt in receipts:
        path = f"/v1/admin/venues/{venue.venue_id}/transactions/{receipt['transaction_id']}/history"
        state[receipt["transaction_id"]] = platform.get(path).json
    return state


def stripe_refund_count(world: World) -> int:
    return len(world.stack.stripe.refunds())


# --- Guest tokens -------------------------------------------------------------------------------

def forged_tokens(guest: Guest, victim: Guest) -> dict[str, str]:
    from chalicelib import auth
    from chalicelib.config import secret

    token = guest.api.credential
    assert token is not None
    header, payload, signature = token.split(".")
    claims = json.loads(unb64(payload))
    as_victim = b64(json.dumps({**claims, "sub": victim.guest_id}, separators=(",", ":")).encode())
    flipped = payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:]
    none_header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    none_lower = b64(json.dumps({"alg": "None"}).encode())
    expired, _ = auth.issue_token(secret("TOKEN_SECRET"), guest.venue.venue_id, guest.guest_id,
                                  now() - timedelta(hours=13), 12 * 3600)
    other_secret, _ = auth.issue_token("not-our-secret", guest.venue.venue_id, guest.guest_id, now(), 3600)
    return {
        "payload char flipped": f"{header}.{flipped}.{signature}",
        "payload names another guest": f"{header}.{as_victim}.{signature}",
        "expired": expired,
        "alg none, empty signature": f"{none_header}.{as_victim}.",
        "alg None, no signature part": f"{none_lower}.{payload}",
        "alg none, old signature": f"{none_header}.{payload}.{signature}",
        "signed with another secret": other_secret,
        "signature dropped": f"{header}.{payload}.",
        "not a token": "hello",
        "venue api key as guest token": guest.venue.key,
        "platform key as guest token": ADMIN_KEY,
        "huge": "a." * 5000 + "b",
    }


def test_forged_expired_and_unsigned_tokens_are_refused_on_every_guest_route(world: World, two_venues) -> None:
    guest, victim, mine = two_venues["guest"], two_venues["victim"], two_venues["mine"]
    victims, ours = two_venues["victims"], two_venues["ours"]
    before = snapshot(world, ours, [mine, victims])
    stripe_before = stripe_refund_count(world)
    guest_routes = routes(world, "/v1/me/")
    assert ("GET", "/v1/me/transactions/{transaction_id}") in guest_routes
    for name, token in forged_tokens(guest, victim).items():
        api = Api(world.client, token)
        for method, template in guest_routes:
            for receipt in (mine, victims):
                path = fill(template, transaction_id=receipt["transaction_id"],
                            session_id=receipt["sessions"][0]["session_id"])
                answer = api.call(method, path, body_for(method, template, receipt["sessions"][0]["session_id"]))
                assert (name, answer.status, answer.error_code) == (name, 401, "unauthorized"), path
    assert Api(world.client, None).get(f"/v1/me/transactions/{mine['transaction_id']}").status == 401
    assert snapshot(world, ours, [mine, victims]) == before
    assert stripe_refund_count(world) == stripe_before


def test_a_guest_token_does_not_reach_another_venues_transaction(world: World, two_venues) -> None:
    guest, strangers, theirs = two_venues["guest"], two_venues["strangers"], two_venues["theirs"]
    before = snapshot(world, theirs, [strangers])
    for method, template in routes(world, "/v1/me/transactions/{transaction_id}"):
        session_id = strangers["sessions"][0]["session_id"]
        theirs_answer = guest.api.call(method, fill(template, transaction_id=strangers["transaction_id"],
                                                    session_id=session_id), body_for(method, template, session_id))
        nothing = guest.api.call(method, fill(template, transaction_id=UNKNOWN_ID, session_id=session_id),
                                 body_for(method, template, session_id))
        assert_error(theirs_answer, 404, "not_found")
        assert theirs_answer.raw == nothing.raw, template
    keys = ("transaction_id", "purchased_at", "currency", "total", "booking_reference")
    assert [{k: t[k] for k in (*keys, "session_count")} for t in guest.api.get("/v1/me/transactions").json[
        "transactions"]] == [{k: two_venues["mine"][k] for k in keys} | {"session_count": 1}]
    assert snapshot(world, theirs, [strangers]) == before


def test_other_guests_transactions_and_sessions_look_exactly_like_nonexistent_ones(world: World, two_venues) -> None:
    """Every guest route with an id in it: another guest's transaction answers byte for byte what
    an id that never existed answers; another guest's session inside my own transaction too."""
    guest, mine, victims, ours = two_venues["guest"], two_venues["mine"], two_venues["victims"], two_venues["ours"]
    before = snapshot(world, ours, [mine, victims])
    stripe_before = stripe_refund_count(world)
    victim_session = victims["sessions"][0]["session_id"]
    templates = routes(world, "/v1/me/transactions/{transaction_id}")
    assert len(templates) >= 3
    for method, template in templates:
        # Their transaction (with their session) against a transaction that does not exist.
        theirs = guest.api.call(method, fill(template, transaction_id=victims["transaction_id"],
                                             session_id=victim_session), body_for(method, template, victim_session))
        nothing = guest.api.call(method, fill(template, transaction_id=UNKNOWN_ID, session_id=UNKNOWN_ID),
                                 body_for(method, template, UNKNOWN_ID))
        assert_error(theirs, 404, "not_found")
        assert theirs.raw == nothing.raw.replace(UNKNOWN_ID.encode(), victim_session.encode()), template
        if method == "GET":
            continue
        # Their session inside my transaction, against a session that does not exist.
        theirs = guest.api.call(method, fill(template, transaction_id=mine["transaction_id"],
                                             session_id=victim_session), body_for(method, template, victim_session))
        nothing = guest.api.call(method, fill(template, transaction_id=mine["transaction_id"],
                                              session_id=UNKNOWN_ID), body_for(method, template, UNKNOWN_ID))
        assert_error(theirs, 404, "not_found")
        assert theirs.raw == nothing.raw.replace(UNKNOWN_ID.encode(), victim_session.encode()), template
    assert snapshot(world, ours, [mine, victims]) == before
    assert stripe_refund_count(world) == stripe_before


# --- Admin keys ---------------------------------------------------------------------------------

def test_a_venue_key_is_forbidden_on_every_route_of_another_venue(world: World, two_venues) -> None:
    ours, theirs, strangers = two_venues["ours"], two_venues["theirs"], two_venues["strangers"]
    before = snapshot(world, theirs, [strangers])
    templates = routes(world, "/v1/admin/venues/{venue_id}")
    assert len(templates) >= 10
    for method, template in templates:
        path = fill(template, venue_id=theirs.venue_id, transaction_id=strangers["transaction_id"],
                    refund_id=UNKNOWN_ID, session_id=strangers["sessions"][0]["session_id"],
                    guest_id=two_venues["stranger"].guest_id, slot_id=strangers["sessions"][0]["slot_id"],
                    job_id=UNKNOWN_ID)
        if "/slots" in path and method == "GET":
            path += f"?product_id=jump-60&date={strangers['sessions'][0]['start'][:10]}"
        if path.endswith("/guests") and method == "GET":
            path += f"?email={two_venues['stranger'].email}"
        answer = ours.admin.call(method, path, body_for(method, template))
        assert_error(answer, 403, "forbidden")
        # The same for a venue that does not exist: a key learns nothing about other venues.
        elsewhere = ours.admin.call(method, path.replace(theirs.venue_id, UNKNOWN_ID), body_for(method, template))
        assert elsewhere.raw == answer.raw, template
    assert snapshot(world, theirs, [strangers]) == before


def test_only_the_platform_key_creates_venues_and_mints_keys(world: World, two_venues) -> None:
    ours = two_venues["ours"]
    made = ours.admin.post("/v1/admin/venues", body_for("POST", "/v1/admin/venues"))
    assert_error(made, 403, "forbidden")
    minted = ours.admin.post(f"/v1/admin/venues/{ours.venue_id}/api-keys", {})
    assert_error(minted, 403, "forbidden")
    for credential in ("rbk_" + "x" * 43, "rbk_", ADMIN_KEY + "x", ADMIN_KEY[:-1], "x" * 10_000, ""):
        answer = Api(world.client, credential).post("/v1/admin/venues", body_for("POST", "/v1/admin/venues"))
        assert_error(answer, 401, "unauthorized")
    guest_token = two_venues["guest"].api.credential
    answer = Api(world.client, guest_token).get(f"/v1/admin/venues/{ours.venue_id}/settings")
    assert_error(answer, 401, "unauthorized")
    assert ours.admin.get(f"/v1/admin/venues/{ours.venue_id}/settings").json["version"] == 2  # one PUT, at setup


# --- Hostile bodies, queries and paths ------------------------------------------------------------

def hostile_bodies() -> dict[str, bytes]:
    return {
        "64 KiB and one byte": b'{"session_ids": ["' + b"a" * (64 * 1024) + b'"]}',
        "deep arrays": b"[" * 60_000,
        "deep objects": b'{"a":' * 12_000,
        "not UTF-8": b'{"session_ids": ["\xff\xfe"]}',
        "lone surrogate": b'{"session_ids": ["\\ud800"]}',
        "NaN": b'{"session_ids": NaN}',
        "Infinity": b'{"session_ids": Infinity}',
        "1e400": b'{"session_ids": 1e400}',
        "huge integer": b'{"session_ids": ' + b"9" * 5000 + b"}",
        "duplicate keys": b'{"session_ids": ["a"], "session_ids": ["b"]}',
        "a list": b'[{"session_ids": ["a"]}]',
        "a string": b'"session_ids"',
        "null": b"null",
        "whitespace only": b"  \n\t ",
        "truncated": b'{"session_ids": ["a"',
        "1000 session ids": json.dumps({"session_ids": [f"s{i}" for i in range(1000)]}).encode(),
        "ids as numbers": b'{"session_ids": [1, 2]}',
        "ids as booleans": b'{"session_ids": [true]}',
        "an object for the list": b'{"session_ids": {"0": "a"}}',
        "NUL in an id": b'{"session_ids": ["a\\u0000b"]}',
        "unknown field": b'{"session_ids": ["a"], "amount": 1}',
    }


def test_hostile_bodies_get_a_4xx_in_the_contract_shape_and_change_nothing(world: World, two_venues) -> None:
    guest, mine, ours = two_venues["guest"], two_venues["mine"], two_venues["ours"]
    before = snapshot(world, ours, [mine])
    targets = [("POST", f"/v1/me/transactions/{mine['transaction_id']}/{route}")
               for route in ("cancellation-quote", "cancellations")]
    if ("PATCH", "/v1/me/transactions/{transaction_id}/sessions/{session_id}") in routes(world, "/v1/me/"):
        targets.append(("PATCH", f"/v1/me/transactions/{mine['transaction_id']}/sessions/"
                                 f"{mine['sessions'][0]['session_id']}"))
    for name, raw in hostile_bodies().items():
        for method, path in targets:
            answer = guest.api.call(method, path, raw=raw)
            expected = (413, "payload_too_large") if name.startswith("64 KiB") else (400, "invalid_request")
            assert (name, answer.status, answer.error_code) == (name, *expected)
            assert set(answer.json) == {"error"}
        login = Api(world.client, None).call("POST", f"/v1/venues/{ours.venue_id}/login", raw=raw)
        assert 400 <= login.status < 500 and login.error_code in ("invalid_request", "payload_too_large"), name
    assert snapshot(world, ours, [mine]) == before


def test_wrong_types_and_extreme_values_in_admin_bodies_are_400(world: World) -> None:
    venue = world.venue()
    admin, base = venue.admin, f"/v1/admin/venues/{venue.venue_id}"
    settings_before = admin.get(f"{base}/settings").json
    good = {"allow_guest_modify": True, "refund_on_cancel": False, "refund_cutoff_hours": 24}
    for field, value in [("refund_cutoff_hours", "24"), ("refund_cutoff_hours", True), ("refund_cutoff_hours", 24.0),
                         ("refund_cutoff_hours", -0.0), ("refund_cutoff_hours", -1),
                         ("refund_cutoff_hours", 8761), ("refund_cutoff_hours", 10 ** 30), ("refund_cutoff_hours", None),
                         ("allow_guest_modify", 1), ("allow_guest_modify", "true"), ("allow_guest_modify", None)]:
        answer = admin.put(f"{base}/settings", {**good, field: value})
        assert (field, value, answer.status, answer.error_code) == (field, value, 400, "invalid_request")
        assert field in answer.json["error"]["details"]["fields"]
    huge = admin.call("PUT", f"{base}/settings", raw=json.dumps(good).replace("24", "1e400"))
    assert_error(huge, 400, "invalid_request")
    assert "refund_cutoff_hours" in huge.json["error"]["details"]["fields"]
    for constant in ("NaN", "Infinity", "-Infinity"):
        answer = admin.call("PUT", f"{base}/settings", raw=json.dumps(good).replace("24", constant))
        assert_error(answer, 400, "invalid_request")
    assert admin.get(f"{base}/settings").json == settings_before
    assert admin.put(f"{base}/settings", {**good, "refund_cutoff_hours": -0}).status == 200  # -0 is 0


NASTY_TEXT = {
    "NUL": "Ada\x00Lovelace", "newline": "Ada\nLovelace", "escape": "Ada\x1b[31m", "DEL": "Ada\x7f",
    "line separator": "Ada\u2028Lovelace", "tab": "Ada\tLovelace", "very long": "A" * 10_000,
    "only spaces": " " * 50, "empty": "", "not a string": 42,
}


def test_control_characters_and_very_long_names_are_refused(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    admin, base = venue.admin, f"/v1/admin/venues/{venue.venue_id}"
    slot = world.slot(venue)
    for label, text in NASTY_TEXT.items():
        made = admin.post(f"{base}/guests", {"email": f"x{len(label)}@example.com", "password": "long enough pw",
                                             "name": text})
        assert (label, made.status, made.error_code) == (label, 400, "invalid_request")
        made = admin.post(f"{base}/slots", {"product_id": "jump-60", "product_name": text,
                                            "start": slot["start"], "end": slot["end"], "capacity": 3})
        assert (label, made.status, made.error_code) == (label, 400, "invalid_request")
        bought = admin.post(f"{base}/transactions", {
            "guest_id": guest.guest_id, "payment_intent_id": "pi_unused", "currency": "usd",
            "sessions": [{"slot_id": slot["slot_id"], "participant_name": text, "amount": 100}]})
        assert (label, bought.status, bought.error_code) == (label, 400, "invalid_request")
    for email in ("a\x00b@example.com", "a\nb@example.com", "a@exa\x07mple.com", "a" * 300 + "@example.com"):
        made = admin.post(f"{base}/guests", {"email": email, "password": "long enough pw", "name": "Ada"})
        assert (email, made.status, made.error_code) == (email, 400, "invalid_request")
    assert guest.api.get("/v1/me/transactions").json["transactions"] == []
    listed = admin.get(f"{base}/slots?product_id=jump-60&date={venue.day_of(slot)}").json["slots"]
    assert [s["slot_id"] for s in listed] == [slot["slot_id"]] and listed[0]["booked"] == 0


def test_unknown_query_parameters_are_refused_like_unknown_fields(world: World, two_venues) -> None:
    guest, mine, ours = two_venues["guest"], two_venues["mine"], two_venues["ours"]
    session_id = mine["sessions"][0]["session_id"]
    calls: list[tuple[Api, str, str, Any]] = [
        (guest.api, "GET", f"/v1/me/transactions/{mine['transaction_id']}", None),
        (guest.api, "GET", "/v1/me/transactions", None),
        (guest.api, "POST", f"/v1/me/transactions/{mine['transaction_id']}/cancellation-quote",
         {"session_ids": [session_id]}),
        (ours.admin, "GET", f"/v1/admin/venues/{ours.venue_id}/settings", None),
        (ours.admin, "GET", f"/v1/admin/venues/{ours.venue_id}", None),
        (Api(world.client, None), "GET", f"/v1/venues/{ours.venue_id}", None),
        (ours.admin, "GET", f"/v1/admin/venues/{ours.venue_id}/refunds", None),
        (ours.admin, "PUT", f"/v1/admin/venues/{ours.venue_id}/settings",
         {"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 24}),
    ]
    for api, method, path, body in calls:
        assert api.call(method, path, body).status == 200, path
        answer = api.call(method, path + ("&" if "?" in path else "?") + "debug=1", body)
        assert (path, answer.status, answer.error_code) == (path, 400, "invalid_request")
        assert "debug" in answer.json["error"]["details"]["fields"]


WEIRD_IDS = ["%00", "..%2F..%2Fadmin", "a%20b", "%FF", "x" * 2000, "%2e%2e", "%C0%AE", "'%20OR%20'1'='1", "a;b",
             "%0d%0aSet-Cookie:x", "a" * 65]


def test_weird_path_ids_are_not_found(world: World, two_venues) -> None:
    for weird in WEIRD_IDS:
        weird_path_id_is_not_found(world, two_venues, weird)


def weird_path_id_is_not_found(world: World, two_venues: dict[str, Any], weird: str) -> None:
    guest, ours = two_venues["guest"], two_venues["ours"]
    for api, method, template in [(guest.api, m, t) for m, t in routes(world, "/v1/me/transactions/{")] + [
            (ours.admin, m, t) for m, t in routes(world, "/v1/admin/venues/{venue_id}/")]:
        ids = {"venue_id": ours.venue_id, "transaction_id": weird, "session_id": weird, "refund_id": weird}
        if "{transaction_id}" not in template and "{refund_id}" not in template:
            continue
        answer = api.call(method, fill(template, **ids), body_for(method, template))
        assert (template, answer.status, answer.error_code) == (template, 404, "not_found")
    answer = Api(world.client, None).post(f"/v1/venues/{weird}/login", {"email": "a@example.com", "password": "x"})
    assert answer.status in (401, 404) and answer.status != 500


# --- Password guessing ----------------------------------------------------------------------------

@pytest.fixture
def verifications(monkeypatch) -> Callable[[], int]:
    """How many passwords have been checked, so a test can see which attempts skipped argon2."""
    from chalicelib import auth

    verified = []
    real_verify = auth.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        verified.append(1)
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    return lambda: len(verified)


def normalised(answer: Response) -> tuple[int, Any, str | None]:
    """The answer with the seconds left of a lockout blanked (they count down with the clock)."""
    body = answer.json
    if answer.error_code == "too_many_attempts":
        body["error"]["details"]["retry_after_seconds"] = "N"
    return answer.status, body, "Retry-After" if "retry-after" in answer.headers else None


@pytest.mark.slow
def test_a_thousand_wrong_passwords_are_throttled_per_email_and_reveal_no_email(world: World, verifications) -> None:
    from chalicelib.config import config

    venue = world.venue()
    known = [world.guest(venue, email=f"known-{i}@example.com", login=False) for i in range(63)]
    unknown = [f"nobody-{i}@example.com" for i in range(62)]
    emails = [g.email for g in known] + unknown
    attempts_each = 8  # 125 emails x 8 = 1,000 wrong passwords
    limit = config().login_max_failures
    verified_before = verifications()
    anonymous = Api(world.client, None)
    started = time.monotonic()
    for attempt in range(attempts_each):
        seen: set[tuple[int, str, str | None]] = set()
        for email in emails:
            answer = anonymous.post(f"/v1/venues/{venue.venue_id}/login",
                                    {"email": email, "password": f"wrong-{attempt}"})
            status, body, retry_after = normalised(answer)
            seen.add((status, json.dumps(body, sort_keys=True), retry_after))
            if attempt < limit:
                assert (status, answer.error_code) == (401, "invalid_credentials"), (email, attempt)
            else:
                assert (status, answer.error_code) == (429, "too_many_attempts"), (email, attempt)
                assert 0 < int(answer.headers["retry-after"]) <= config().login_lockout_seconds
        assert len(seen) == 1, f"attempt {attempt} told emails apart: {seen}"
    elapsed = time.monotonic() - started
    # Throttled attempts are answered before any password hashing.
    assert verifications() - verified_before == len(emails) * limit
    # The right password does not get through the lockout either.
    right = anonymous.post(f"/v1/venues/{venue.venue_id}/login", {"email": known[0].email, "password": known[0].password})
    assert right.status == 429
    # Another venue's guest with the same email is not locked out by these attempts.
    elsewhere = world.venue()
    twin = world.guest(elsewhere, email=known[1].email, login=False)
    assert anonymous.post(f"/v1/venues/{elsewhere.venue_id}/login",
                          {"email": twin.email, "password": twin.password}).status == 200
    print(f"1,000 login attempts in {elapsed:.1f}s")


def test_parallel_wrong_passwords_cannot_outrun_the_throttle(world: World) -> None:
    """Thirty guesses at once for one email: no more than the limit are checked, the rest are 429."""
    from chalicelib.config import config

    venue = world.venue()
    guest = world.guest(venue, login=False)
    outcomes = guesses_at_once(guest, 30)
    assert "ok" not in outcomes
    assert outcomes.count("invalid_credentials") <= config().login_max_failures
    assert outcomes.count("too_many_attempts") >= 30 - config().login_max_failures


def test_a_successful_login_does_not_count_as_a_failure(world: World) -> None:
    from chalicelib.config import config

    venue = world.venue()
    guest = world.guest(venue, login=False)
    anonymous = Api(world.client, None)
    for _ in range(config().login_max_failures + 3):
        answer = anonymous.post(f"/v1/venues/{venue.venue_id}/login", {"email": guest.email, "password": guest.password})
        assert answer.status == 200
