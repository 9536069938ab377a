"""Guests get back into their account by email: a password reset link that works once, for 30
minutes, only as the newest, only at its venue; invitations for guests created without a
password; and every token issued before a reset refused afterwards."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.conftest import Api, Guest, Venue, World, now
from tests.dynamodb_calls import count_dynamodb_calls

NEW_PASSWORD = "a brand new passphrase"


def ask_reset(world: World, venue: Venue, email: str) -> Any:
    return Api(world.client, None).post(f"/v1/venues/{venue.venue_id}/password-reset", {"email": email})


def confirm(world: World, venue: Venue, token: str, password: str = NEW_PASSWORD) -> Any:
    return Api(world.client, None).post(f"/v1/venues/{venue.venue_id}/password-reset/confirm",
                                        {"token": token, "password": password})


def login(world: World, venue: Venue, email: str, password: str) -> Any:
    return Api(world.client, None).post(f"/v1/venues/{venue.venue_id}/login", {"email": email, "password": password})


def links_to(world: World, email: str) -> list[str]:
    """The account links emailed to `email`, oldest first, as a guest would copy them from the text part."""
    world.stack.deliver_all()
    return [re.search(r"(http\S+reset\.html\S+)", e["text"]).group(1)  # type: ignore[union-attr]
            for e in world.stack.emails() if e["to"] == [email]]


def token_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["token"][0]


def reset_token(world: World, venue: Venue, guest: Guest) -> str:
    """The token of the link the guest is emailed after asking for a reset at `venue`."""
    ask_reset(world, venue, guest.email)
    return token_of(links_to(world, guest.email)[0])


def test_a_guest_resets_a_forgotten_password_from_the_emailed_link(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)

    asked = ask_reset(world, venue, guest.email)

    assert (asked.status, asked.json) == (202, {})
    [link] = links_to(world, guest.email)
    assert link.startswith(f"{world.stack.env.get('PORTAL_URL', 'http://127.0.0.1:8000')}/reset.html?venue={venue.venue_id}&token=")
    done = confirm(world, venue, token_of(link))
    assert done.status == 200, done.json
    assert done.json["guest"]["guest_id"] == guest.guest_id and done.json["token_type"] == "Bearer"
    assert login(world, venue, guest.email, NEW_PASSWORD).status == 200
    assert login(world, venue, guest.email, guest.password).error_code == "invalid_credentials"


def test_an_unknown_email_gets_the_same_answer_and_no_email(world: World) -> None:
    venue = world.venue()
    asked = ask_reset(world, venue, "nobody-here@example.com")
    assert (asked.status, asked.json) == (202, {})
    assert links_to(world, "nobody-here@example.com") == []
    assert ask_reset(world, venue, "not an email").error_code == "invalid_request"


def test_a_reset_for_an_unknown_email_does_the_same_dynamodb_work_as_for_a_known_one(world: World) -> None:
    """Response time must not tell which emails have accounts: both paths make the same calls
    (the unknown one's write is refused by its own condition and changes nothing)."""
    venue = world.venue()
    guest = world.guest(venue, login=False)
    with count_dynamodb_calls() as known_calls:
        known = ask_reset(world, venue, guest.email)
    with count_dynamodb_calls() as unknown_calls:
        unknown = ask_reset(world, venue, "nobody-at-all@example.com")
    assert (known.status, known.json) == (unknown.status, unknown.json) == (202, {})
    assert known_calls.operations == unknown_calls.operations
    assert known_calls.operations[-3:] == ["GetItem", "GetItem", "TransactWriteItems"]
    assert links_to(world, "nobody-at-all@example.com") == [] and len(links_to(world, guest.email)) == 1
    listed = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/notifications").json["notifications"]
    assert [n["to"] for n in listed] == [guest.email]  # the decoy left no notification behind
    assert login(world, venue, "nobody-at-all@example.com", "whatever it is").error_code == "invalid_credentials"


def test_a_link_works_once(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    token = reset_token(world, venue, guest)

    assert confirm(world, venue, token).status == 200
    again = confirm(world, venue, token, "yet another passphrase")
    assert (again.status, again.error_code) == (400, "invalid_reset_token")
    assert login(world, venue, guest.email, NEW_PASSWORD).status == 200


def test_only_the_newest_link_works(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    ask_reset(world, venue, guest.email)
    ask_reset(world, venue, guest.email)
    older, newer = (token_of(link) for link in links_to(world, guest.email))

    assert confirm(world, venue, older).error_code == "invalid_reset_token"
    assert confirm(world, venue, newer).status == 200


def test_a_link_expires_after_30_minutes(world: World) -> None:
    from chalicelib.errors import InvalidResetToken
    from chalicelib.services import account_access

    venue = world.venue()
    guest = world.guest(venue, login=False)
    token = reset_token(world, venue, guest)

    try:
        account_access.confirm(venue.venue_id, token, NEW_PASSWORD, now() + timedelta(minutes=31))
    except InvalidResetToken:
        pass
    else:
        raise AssertionError("a 31-minute-old link set the password")
    assert account_access.confirm(venue.venue_id, token, NEW_PASSWORD, now() + timedelta(minutes=29)).guest.guest_id == guest.guest_id


def test_a_link_works_only_at_its_own_venue(world: World) -> None:
    venue, other = world.venue(), world.venue()
    guest = world.guest(venue, login=False)
    world.guest(other, email=guest.email, login=False)  # the same person is a guest of both
    token = reset_token(world, venue, guest)

    assert confirm(world, other, token).error_code == "invalid_reset_token"
    assert login(world, other, guest.email, NEW_PASSWORD).status == 401
    assert confirm(world, venue, token).status == 200


def test_forged_and_malformed_tokens_are_refused(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    token = reset_token(world, venue, guest)
    notification_id, mac = token.split(".")
    for forged in (f"{notification_id}.{mac[:-2]}AA", notification_id, f"{notification_id}.", "x" * 300, "../.."):
        answer = confirm(world, venue, forged)
        assert answer.status == 400 and answer.error_code in ("invalid_reset_token", "invalid_request"), forged
    assert confirm(world, venue, token, "short").error_code == "invalid_request"  # the password rules hold
    assert confirm(world, venue, token).status == 200


def test_links_are_stored_only_as_digests_and_never_listed(world: World) -> None:
    from chalicelib.storage.models import GuestRecord, NotificationRecord

    venue = world.venue()
    guest = world.guest(venue, login=False)
    token = reset_token(world, venue, guest)

    stored = [GuestRecord.get(venue.venue_id, guest.email).serialize()]
    stored += [n.serialize() for n in NotificationRecord.query(venue.venue_id)]
    secret_part = token.split(".")[1]
    assert secret_part not in repr(stored) and token not in repr(stored)
    listed = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/notifications").json["notifications"]
    assert [n["kind"] for n in listed] == ["password_reset"] and secret_part not in repr(listed)


def test_reset_requests_are_throttled_like_logins(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    answers = [ask_reset(world, venue, guest.email) for _ in range(7)]
    assert [a.status for a in answers][:5] == [202] * 5 and answers[-1].status == 429
    assert int(answers[-1].headers["retry-after"]) > 0
    assert "reset" in answers[-1].json["error"]["message"]  # not the wrong password's words
    assert len(links_to(world, guest.email)) <= 5
    unknown = [ask_reset(world, venue, "ghost@example.com").status for _ in range(7)]
    assert unknown[-1] == 429  # the same for an unknown address: 429 tells nothing


def test_after_a_reset_every_older_token_is_refused(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    phone = Guest(venue, guest.guest_id, guest.email, guest.password, Api(world.client, None))
    phone.api.credential = login(world, venue, guest.email, guest.password).json["token"]
    receipt_path = f"/v1/me/transactions/{made['transaction_id']}"
    assert guest.api.get(receipt_path).status == 200

    ask_reset(world, venue, guest.email)
    fresh = confirm(world, venue, token_of(links_to(world, guest.email)[0])).json["token"]

    for old in (guest.api, phone.api):
        assert old.get(receipt_path).error_code == "unauthorized"
        assert old.get("/v1/me/transactions").error_code == "unauthorized"
        session_id = made["sessions"][0]["session_id"]
        assert old.patch(f"{receipt_path}/sessions/{session_id}", {"participant_name": "Zed"}).status == 401
        assert old.post(f"{receipt_path}/cancellation-quote", {"session_ids": [session_id]}).status == 401
    new = Api(world.client, fresh)
    assert new.get(receipt_path).status == 200 and new.get("/v1/me/transactions").status == 200
    relogged = Api(world.client, login(world, venue, guest.email, NEW_PASSWORD).json["token"])
    with count_dynamodb_calls() as calls:
        assert relogged.get(receipt_path).status == 200
    never_reset = world.guest(venue)
    other_receipt = f"/v1/me/transactions/{world.purchase(never_reset, [world.slot(venue)])['transaction_id']}"
    assert never_reset.api.get(other_receipt).status == 200  # warm, as the first guest's was
    with count_dynamodb_calls() as baseline:
        assert never_reset.api.get(other_receipt).status == 200
    # The revocation rides on the venue record the receipt reads (or has cached) anyway.
    assert calls.calls == baseline.calls


def test_other_guests_tokens_survive_a_reset(world: World) -> None:
    venue = world.venue()
    guest, other = world.guest(venue), world.guest(venue)
    ask_reset(world, venue, guest.email)
    confirm(world, venue, token_of(links_to(world, guest.email)[0]))
    assert other.api.get("/v1/me/transactions").status == 200


def test_a_guest_created_without_password_is_invited_and_chooses_one(world: World) -> None:
    venue = world.venue()
    email = "invited-guest@example.com".replace("@", f"-{venue.venue_id[-6:].lower()}@")
    created = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests", {"email": email, "name": "Ines"})
    assert created.status == 201, created.json

    world.stack.deliver_all()
    [invitation] = [e for e in world.stack.emails() if e["to"] == [email]]
    assert invitation["subject"] == "Bounce Park invites you to manage your bookings" and "Ines" in invitation["text"]
    assert login(world, venue, email, "").status in (400, 401)
    assert login(world, venue, email, "any password at all").error_code == "invalid_credentials"
    [link] = links_to(world, email)
    done = confirm(world, venue, token_of(link))
    assert done.status == 200 and done.json["guest"]["name"] == "Ines"
    assert login(world, venue, email, NEW_PASSWORD).status == 200


def test_an_invitation_lasts_7_days(world: World) -> None:
    from chalicelib.errors import InvalidResetToken
    from chalicelib.services import account_access

    venue = world.venue()
    email = f"late-{venue.venue_id[-6:].lower()}@example.com"
    assert venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests", {"email": email, "name": "Lou"}).status == 201
    token = token_of(links_to(world, email)[0])
    try:
        account_access.confirm(venue.venue_id, token, NEW_PASSWORD, now() + timedelta(days=7, minutes=1))
    except InvalidResetToken:
        pass
    else:
        raise AssertionError("an 8-day-old invitation set the password")
    assert account_access.confirm(venue.venue_id, token, NEW_PASSWORD, now() + timedelta(days=6, hours=23)).token


def test_invitations_and_resets_go_out_even_when_change_emails_are_off(world: World) -> None:
    venue = world.venue()
    saved = venue.admin.put(f"/v1/admin/venues/{venue.venue_id}/settings", {
        "allow_guest_modify": False, "refund_on_cancel": False, "refund_cutoff_hours": 24, "notify_guests": False})
    assert saved.status == 200 and saved.json["notify_guests"] is False
    guest = world.guest(venue, login=False)
    ask_reset(world, venue, guest.email)
    assert len(links_to(world, guest.email)) == 1


def test_a_login_with_an_unknown_email_does_the_same_work_as_a_wrong_password(world: World) -> None:
    """Login checks a password hash for an unknown email too, and makes the same calls."""
    venue = world.venue()
    guest = world.guest(venue, login=False)
    login(world, venue, "warm-up@example.com", "x" * 12)  # the dummy hash is made once per process
    with count_dynamodb_calls() as known_calls:
        known = login(world, venue, guest.email, "not the password at all")
    with count_dynamodb_calls() as unknown_calls:
        unknown = login(world, venue, "nobody-at-all@example.com", "not the password at all")
    assert (known.status, known.json) == (unknown.status, unknown.json)
    assert known.error_code == "invalid_credentials"
    assert known_calls.operations == unknown_calls.operations
