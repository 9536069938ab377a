"""Guests hear about every change by email, exactly once: through the outbox, the notifications
stream and moto's SES, whatever is delivered twice, fails or crashes on the way."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Iterator

from tests.conftest import Guest, World, now


def emails_to(world: World, guest: Guest) -> list[dict[str, Any]]:
    world.stack.deliver_all()
    return [email for email in world.stack.emails() if email["to"] == [guest.email]]


def move(guest: Guest, made: dict[str, Any], slot: dict[str, Any], session: int = 0) -> Any:
    session_id = made["sessions"][session]["session_id"]
    return guest.api.patch(f"/v1/me/transactions/{made['transaction_id']}/sessions/{session_id}",
                           {"slot_id": slot["slot_id"]})


def test_a_guest_who_moves_a_session_gets_one_email_saying_from_when_to_when(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, timezone_name="America/New_York")
    guest = world.guest(venue)
    start = (now() + timedelta(days=3)).replace(hour=15, minute=0, second=0)
    first, later = world.slot(venue, start=start), world.slot(venue, start=start + timedelta(days=1))
    made = world.purchase(guest, [first], names=["Mia"])

    assert move(guest, made, later).status == 200

    [email] = emails_to(world, guest)
    assert "has changed" in email["subject"] and "Mia" in email["subject"]
    assert email["from"] == f'Bounce Park <{world.stack.env["MAIL_FROM"]}>'
    # 15:00 UTC is 10:00 (or 11:00 in summer) in New York: the venue's clock, its zone named.
    local = start.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert f"{local:%H:%M} ({local.tzname()})" in email["text"]
    assert "Mia" in email["html"] and made["transaction_id"] in email["text"]
    assert f"?venue={venue.venue_id}" in email["text"]

