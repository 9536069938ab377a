"""A guest hears by email when staff change their booking: who did it and why, once each, through
the same outbox as the guest's own changes."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import World, now
from tests.integration.test_emails import emails_to, kinds_sent
from tests.integration.test_slot_closures import close, finish
from tests.integration.test_staff_cancellations import staff_cancel
from tests.integration.test_staff_edits import staff_edit


def test_a_session_staff_move_emails_the_guest_that_the_venue_changed_it_and_why(world: World) -> None:
    venue = world.venue(allow_guest_modify=False)
    guest = world.guest(venue)
    friday, saturday = world.slot(venue, start=now() + timedelta(days=3)), world.slot(venue, start=now() + timedelta(days=4))
    made = world.purchase(guest, [friday], names=["Mia"])

    answer = staff_edit(venue, made, {"slot_id": saturday["slot_id"], "reason": "Guest phoned: please Saturday"})

    assert answer.status == 200, answer.json
    [email] = emails_to(world, guest)
    assert "has changed" in email["subject"] and "Mia" in email["subject"]
    assert "Bounce Park has changed a session you booked" in email["text"]
    assert "Reason: Guest phoned: please Saturday" in email["text"]
    assert kinds_sent(world, guest) == {"session_changed": 1}


def test_sessions_staff_cancel_email_the_guest_the_venues_reason_and_the_refund(bought: Any) -> None:
    world, guest, made = bought

    answer = staff_cancel(guest.venue, made, [0, 1], refund="full", reason="the pool is closed for repairs")

    assert answer.status == 200, answer.json
    emails = emails_to(world, guest)  # the refund worker runs too
    assert [e["subject"] for e in emails] == ["2 sessions cancelled: $50.00 on its way back",
                                              "Your refund of $50.00 has been paid"]
    assert "Bounce Park has cancelled 2 sessions" in emails[0]["text"]
    assert "Reason: the pool is closed for repairs" in emails[0]["text"]
    assert kinds_sent(world, guest) == {"sessions_cancelled": 1, "refund_refunded": 1}


def test_closing_a_slot_emails_each_purchase_once_with_its_participants_and_the_reason(world: World) -> None:
    venue = world.venue(refund_on_cancel=True)
    ada, bob = world.guest(venue), world.guest(venue)
    slot = world.slot(venue, start=(now() + timedelta(days=3)).replace(hour=9, minute=30, second=0))
    world.purchase(ada, [slot, slot], names=["Mia", "Leo"], amount=2500)
    world.purchase(bob, [slot], names=["Ben"], amount=2500)

    answer = close(venue, slot, refund="full", reason="the trampolines are under repair")

    assert answer.status == 202, answer.json
    finish(world, venue, answer.json["job_id"], seconds=120)
    world.replay_streams()  # a stream delivered twice sends nothing twice
    ada_emails = [e for e in emails_to(world, ada) if "cancelled by Bounce Park" in e["subject"]]
    [closed] = ada_emails
    assert closed["subject"].startswith("Open Jump 60 min on ")
    assert "Mia, Leo" in closed["text"] and "$50.00 will be refunded" in closed["text"]
    assert "the trampolines are under repair" in closed["html"]
    [bobs] = [e for e in emails_to(world, bob) if "cancelled by Bounce Park" in e["subject"]]
    assert "Ben" in bobs["text"] and "$25.00 will be refunded" in bobs["text"]
    assert kinds_sent(world, ada) == {"slot_closed": 1, "refund_refunded": 1}
