"""Guests hear about every change by email, exactly once: through the outbox, the notifications
stream and moto's SES, whatever is delivered twice, fails or crashes on the way."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Guest, Venue, World, now
from tests.integration.test_cancellations import cancel


def emails_to(world: World, guest: Guest) -> list[dict[str, Any]]:
    world.stack.deliver_all()
    return [email for email in world.stack.emails() if email["to"] == [guest.email]]


def kinds_sent(world: World, guest: Guest) -> Counter[str]:
    listed = notifications(guest.venue, guest_id=guest.guest_id)
    return Counter(n["kind"] for n in listed if n["status"] == "sent")


def notifications(venue: Venue, **query: str) -> list[dict[str, Any]]:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/notifications?{params}")
    assert answer.status == 200, answer.json
    return list(answer.json["notifications"])


def move(guest: Guest, made: dict[str, Any], slot: dict[str, Any], session: int = 0) -> Any:
    session_id = made["sessions"][session]["session_id"]
    return guest.api.patch(f"/v1/me/transactions/{made['transaction_id']}/sessions/{session_id}",
                           {"slot_id": slot["slot_id"]})


def ses_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": f"injected {code}"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail")


@contextmanager
def ses_fault(event: str, fault: Callable[[], Exception], times: int = 1) -> Iterator[list[int]]:
    """Inject `fault` into the sender's SES client `times` times: before the request (SES answered
    no) or after it (SES sent it, then the sender died before writing `sent`)."""
    import app

    calls: list[int] = []

    def hook(**_: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise fault()

    client = app.parts.mail.client()  # the app's own sender, on SES
    client.meta.events.register(f"{event}.sesv2.SendEmail", hook, unique_id="test-ses-fault")
    try:
        yield calls
    finally:
        client.meta.events.unregister(f"{event}.sesv2.SendEmail", unique_id="test-ses-fault")


class LambdaCrashed(Exception):
    """The sender's process ending between SES's answer and its own write."""


def settings(world: World, venue: Venue, **fields: Any) -> None:
    saved = venue.admin.put(f"/v1/admin/venues/{venue.venue_id}/settings", {
        "allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 24, **fields})
    assert saved.status == 200, saved.json


# --- What each email says ----------------------------------------------------------------------

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
    before, after = (moment.astimezone(ZoneInfo("America/New_York")) for moment in (start, start + timedelta(days=1)))
    assert f"Before: Open Jump 60 min for Mia, {before:%A} {before.day} {before:%B %Y, %H:%M} ({before.tzname()})" in email["text"]
    assert f"{after:%A} {after.day} {after:%B %Y, %H:%M}" in email["html"]
    assert made["transaction_id"] in email["text"] and f"?venue={venue.venue_id}" in email["text"]
    [listed] = notifications(venue)
    assert (listed["kind"], listed["status"], listed["to"], listed["subject"]) == (
        "session_changed", "sent", guest.email, email["subject"])


def test_a_participant_named_like_markup_is_text_in_the_html_part(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    first, later = world.slot(venue), world.slot(venue, start=now() + timedelta(days=4))
    made = world.purchase(guest, [first], names=["<script>alert(1)</script>"])

    assert move(guest, made, later).status == 200

    [email] = emails_to(world, guest)
    assert "<script>" not in email["html"] and "&lt;script&gt;alert(1)&lt;/script&gt;" in email["html"]
    assert "<script>alert(1)</script>" in email["text"]  # the text part is plain text


def test_cancelling_emails_the_sessions_and_the_refund_to_expect_then_that_it_was_paid(bought) -> None:
    world, guest, made = bought

    assert cancel(guest, made, [0, 1]).status == 200

    emails = emails_to(world, guest)  # the refund worker runs too
    assert [e["subject"] for e in emails] == ["2 sessions cancelled: $50.00 on its way back",
                                              "Your refund of $50.00 has been paid"]
    assert "$50.00 will be refunded to the card you paid with" in emails[0]["text"]
    assert emails[0]["text"].count(": $25.00 back") == 2 and "Kid 1" in emails[0]["text"]
    assert "5 to 10 business days" in emails[1]["text"]
    assert kinds_sent(world, guest) == {"sessions_cancelled": 1, "refund_refunded": 1}


def test_a_cancellation_email_says_what_the_fee_keeps(world: World) -> None:
    venue = world.venue()
    settings(world, venue, cancellation_fee_percent=10, cancellation_fee_fixed=0)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])

    assert cancel(guest, made, [0]).status == 200

    cancelled = emails_to(world, guest)[0]
    assert cancelled["subject"] == "1 session cancelled: $22.50 on its way back"
    assert ": $22.50 back ($2.50 kept as the cancellation fee)" in cancelled["text"]
    assert "$2.50 kept as the cancellation fee" in cancelled["html"]


def test_a_cancellation_without_refund_says_none_is_due(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=False)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)], amount=1200)

    assert cancel(guest, made, [0]).status == 200

    [email] = emails_to(world, guest)
    assert email["subject"] == "1 session cancelled" and "No refund is due" in email["text"]


def test_a_refund_stripe_refuses_emails_the_guest_what_to_do(bought) -> None:
    world, guest, made = bought
    world.stack.stripe.decline_next("charge_disputed")

    assert cancel(guest, made, [2]).status == 200

    emails = emails_to(world, guest)
    assert [e["subject"] for e in emails] == ["1 session cancelled: $25.00 on its way back",
                                              "Your refund of $25.00 could not be paid"]
    assert "If you have changed or closed that card, please contact Bounce Park" in emails[1]["text"]


def test_money_is_written_in_the_venues_currency() -> None:
    from chalicelib.emails.wording import money

    assert [money(2500, "usd"), money(2500, "eur"), money(1200, "jpy"), money(12345, "kwd"), money(990, "sek")] == [
        "$25.00", "€25.00", "¥1,200", "12.345 KWD", "9.90 SEK"]


def test_every_kind_has_a_text_and_an_html_template_with_the_portal_link() -> None:
    from chalicelib.emails import rendering, wording

    for kind in wording.KINDS:
        assert (rendering.TEMPLATES / f"{kind}.txt").is_file() and (rendering.TEMPLATES / f"{kind}.html").is_file()


# --- Exactly once ------------------------------------------------------------------------------

def test_duplicate_stream_deliveries_send_each_email_once(bought) -> None:
    world, guest, made = bought
    later = world.slot(world_venue(bought), start=now() + timedelta(days=6))
    assert move(guest, made, later).status == 200
    assert cancel(guest, made, [1]).status == 200
    world.stack.deliver_all()

    for _ in range(2):  # every record of this test's stream delivered again, twice
        world.replay_streams()
        assert world.stack.deliver_all() > 0

    assert Counter(e["subject"].split(" ")[1] for e in emails_to(world, guest)) == Counter(
        {"booking": 1, "session": 1, "refund": 1})
    assert kinds_sent(world, guest) == {"session_changed": 1, "sessions_cancelled": 1, "refund_refunded": 1}


def world_venue(bought: Any) -> Venue:
    return bought[1].venue


def test_ses_throttling_then_success_sends_one_email(bought) -> None:
    world, guest, made = bought
    settle_others_notices(world)
    with ses_fault("before-call", lambda: ses_error("TooManyRequestsException", 429), times=2) as calls:
        assert cancel(guest, made, [0]).status == 200
        world.stack.stripe.decline_next("charge_disputed")  # no second email in this story
        emails = emails_to(world, guest)
    assert len(calls) >= 3  # refused twice, then sent
    assert [e["subject"] for e in emails].count("1 session cancelled: $25.00 on its way back") == 1


def test_ses_failing_on_its_side_then_recovering_sends_one_email(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    settle_others_notices(world)
    with ses_fault("before-call", lambda: ses_error("InternalFailure", 500)) as calls:
        assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200
        assert len(emails_to(world, guest)) == 1
    assert len(calls) == 2


def test_a_crash_between_ses_answering_and_the_sent_write_sends_nothing_more(world: World) -> None:
    from chalicelib.services import notifications as outbox

    mail = world.stack.app_module.parts.mail  # the sender the app's own handlers use
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    settle_others_notices(world)
    with ses_fault("after-call", lambda: LambdaCrashed("the sender died after SES answered")) as calls:
        assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200
        world.stack.deliver_all()
        world.replay_streams()
        world.stack.deliver_all()
        outbox.resend_stale(now() + timedelta(minutes=6), mail)  # the sweeper finds it unsent, still claimed

    assert len(calls) == 1 and len(emails_to(world, guest)) == 1
    # Once its claim has expired, nobody can know whether the guest has it: the admin is told.
    outbox.resend_stale(now() + timedelta(minutes=30), mail)
    [listed] = notifications(venue)
    assert (listed["status"], listed["failure_code"]) == ("failed", "delivery_unknown")
    assert len(emails_to(world, guest)) == 1


def test_a_refusal_by_ses_is_failed_in_the_admin_list_and_logged_as_a_metric(world: World, capsys: Any) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    settle_others_notices(world)
    with ses_fault("before-call", lambda: ses_error("MessageRejected", 400), times=5) as calls:
        assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200
        assert emails_to(world, guest) == []
        world.replay_streams()
        world.stack.deliver_all()
    assert len(calls) == 1  # a final answer is not retried
    [listed] = notifications(venue, guest_id=guest.guest_id)
    assert (listed["status"], listed["failure_code"], listed["sent_at"]) == ("failed", "MessageRejected", None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["failure_code"] for line in lines if line.get("event") == "notification_failed"] == ["MessageRejected"]


def settle_others_notices(world: World) -> None:
    """The sweeper reads every venue's unsent notices: those other tests on this worker left
    queued (their stream records never delivered) are sent now, with SES well, so the SES faults
    and sweeps a story counts meet its own notice alone, whichever tests ran before it."""
    from chalicelib.services import notifications as outbox

    world.stack.deliver_all()
    outbox.resend_stale(now() + timedelta(minutes=6), world.stack.app_module.parts.mail)


def test_a_notice_whose_stream_retries_ran_out_is_sent_by_the_sweeper_once(world: World) -> None:
    from chalicelib.services import notifications as outbox

    settle_others_notices(world)
    mail = world.stack.app_module.parts.mail  # the sender the app's own handlers use
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    with ses_fault("before-call", lambda: ses_error("TooManyRequestsException", 429), times=1000) as calls:
        assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200
        world.stack.deliver_all()  # SES stays busy through every retry; the stream moves past the record
    assert len(calls) == 11 and emails_to(world, guest) == []
    assert [n["status"] for n in notifications(venue)] == ["queued"]

    assert outbox.resend_stale(now(), mail) == {}  # too fresh: the stream may still be retrying it
    assert outbox.resend_stale(now() + timedelta(minutes=6), mail) == {"sent": 1}
    assert outbox.resend_stale(now() + timedelta(minutes=12), mail) == {}
    assert len(emails_to(world, guest)) == 1 and [n["status"] for n in notifications(venue)] == ["sent"]


def test_a_notice_ses_never_accepts_is_given_up_as_failed_after_a_day(world: World) -> None:
    from chalicelib.services import notifications as outbox

    settle_others_notices(world)
    mail = world.stack.app_module.parts.mail  # the sender the app's own handlers use
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    with ses_fault("before-call", lambda: ses_error("ServiceUnavailable", 503), times=1000):
        assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200
        world.stack.deliver_all()
        outcomes = [outbox.resend_stale(now() + later, mail) for later in (
            timedelta(minutes=6), timedelta(hours=12), timedelta(hours=25), timedelta(hours=26))]
    assert outcomes == [{"retry": 1}, {"retry": 1}, {"failed": 1}, {}]  # tried for a day, then given up
    [listed] = notifications(venue)
    assert (listed["status"], listed["failure_code"]) == ("failed", "retries_exhausted")
    assert emails_to(world, guest) == []


# --- No email ----------------------------------------------------------------------------------

def test_no_email_for_changes_when_the_venue_switched_notifications_off(bought) -> None:
    world, guest, made = bought
    settings(world, guest.venue, notify_guests=False)
    later = world.slot(guest.venue, start=now() + timedelta(days=6))

    assert move(guest, made, later).status == 200
    assert cancel(guest, made, [1]).status == 200

    assert emails_to(world, guest) == [] and notifications(guest.venue) == []
    settings(world, guest.venue)  # absent: keeps its value
    assert guest.venue.admin.get(f"/v1/admin/venues/{guest.venue.venue_id}/settings").json["notify_guests"] is False


def test_no_email_for_a_refused_change(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue)
    full = world.slot(venue, start=now() + timedelta(days=4), capacity=1)
    world.purchase(world.guest(venue), [full])
    made = world.purchase(guest, [world.slot(venue)])
    closed = world.venue()
    closed_guest = world.guest(closed)
    closed_made = world.purchase(closed_guest, [world.slot(closed)])

    assert move(guest, made, full).status == 409  # slot_full
    assert guest.api.patch(f"/v1/me/transactions/{made['transaction_id']}/sessions/{made['sessions'][0]['session_id']}",
                           {"participant_name": ""}).status == 400
    assert cancel(closed_guest, closed_made, [0]).status == 403  # feature_disabled
    assert cancel(guest, made, [0]).status == 200
    assert cancel(guest, made, [0]).status == 409  # cancelled already

    assert [e["subject"] for e in emails_to(world, guest)] == ["1 session cancelled: $25.00 on its way back",
                                                               "Your refund of $25.00 has been paid"]
    assert emails_to(world, closed_guest) == [] and notifications(closed) == []
    assert world.venue().admin.get(f"/v1/admin/venues/{venue.venue_id}/notifications").status == 403


# --- The admin's list --------------------------------------------------------------------------

def test_the_admin_pages_through_a_guests_notifications_newest_first(world: World) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest, other = world.guest(venue), world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    world.purchase(other, [world.slot(venue)])
    for day in range(4, 9):
        assert move(guest, made, world.slot(venue, start=now() + timedelta(days=day))).status == 200
    world.stack.deliver_all()

    pages, cursor = [], ""
    while True:
        answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/notifications?guest_id={guest.guest_id}&limit=2"
                                 + (f"&cursor={cursor}" if cursor else ""))
        assert answer.status == 200
        pages.append(answer.json["notifications"])
        cursor = answer.json["next_cursor"]
        if not cursor:
            break
    listed = [n for page in pages for n in page]
    assert [len(page) for page in pages][:3] == [2, 2, 1]
    assert len(listed) == 5 and {n["guest_id"] for n in listed} == {guest.guest_id}
    assert [n["notification_id"] for n in listed] == sorted((n["notification_id"] for n in listed), reverse=True)
    assert venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/notifications?cursor=bogus").status == 400


def test_a_closed_slot_queued_with_its_cancellation_emails_once_per_transaction(world: World) -> None:
    """The staff work's slot closure queues `slot_closed` in the write that cancels a transaction's
    sessions: one email per transaction, whatever is delivered again."""
    from chalicelib.services import notifications as outbox
    from chalicelib.storage.atomic import AtomicWrite
    from chalicelib.storage.models import SlotRecord, VenueRecord

    venue = world.venue(refund_on_cancel=True)
    guest = world.guest(venue)
    slot = world.slot(venue, start=(now() + timedelta(days=3)).replace(hour=9, minute=30, second=0))
    made = world.purchase(guest, [slot, slot], names=["Mia", "Leo"])
    write = AtomicWrite()
    outbox.queue(write, outbox.slot_closed(
        VenueRecord.get(venue.venue_id), guest.guest_id, made["transaction_id"],
        SlotRecord.get(venue.venue_id, slot["slot_id"]), ["Mia", "Leo"], 5000, "the trampolines are under repair",
        now()))
    write.commit()
    world.stack.deliver_all()
    world.replay_streams()

    [email] = emails_to(world, guest)
    assert email["subject"].startswith("Open Jump 60 min on ") and email["subject"].endswith("is cancelled by Bounce Park")
    assert "Mia, Leo" in email["text"] and "$50.00 will be refunded" in email["text"]
    assert "the trampolines are under repair" in email["html"]


def test_no_slot_closed_email_when_the_venue_switched_notifications_off(world: World) -> None:
    from chalicelib.services import notifications as outbox
    from chalicelib.storage.models import SlotRecord, VenueRecord

    venue = world.venue()
    settings(world, venue, notify_guests=False)
    slot = world.slot(venue)
    assert outbox.slot_closed(VenueRecord.get(venue.venue_id), "g", "t", SlotRecord.get(venue.venue_id, slot["slot_id"]),
                              ["Mia"], 0, "repairs", now()) is None


def test_an_email_that_cannot_be_built_fails_once_and_sends_nothing(world: World) -> None:
    """A venue name no mail header may carry (a line break: the API refuses one today, a record
    saved before it did may hold one) fails the notice before anything is claimed or sent, and the
    admin sees why: no header injection, no claim left behind."""
    from chalicelib.storage.models import VenueRecord

    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    VenueRecord(venue.venue_id).update(actions=[VenueRecord.name.set("Bounce\nBcc: everyone@example.com")])
    assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200

    assert emails_to(world, guest) == []
    world.replay_streams()
    world.stack.deliver_all()
    [listed] = notifications(venue)
    assert (listed["status"], listed["failure_code"]) == ("failed", "render_failed")
    assert not [e for e in world.stack.emails() if "everyone@example.com" in e["to"]]


def test_emails_keep_flowing_after_a_change_that_did_not_commit(world: World) -> None:
    """A guest created with a taken email rolls back a write that held an invitation: no email
    for it, and the next change's email still goes (the stream is read where the table is now)."""
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    world.stack.deliver_all()
    taken = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests", {"email": guest.email, "name": "Copy"})
    assert taken.error_code == "conflict"
    world.stack.deliver_all()

    assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200

    assert [e["subject"].split(" has ")[-1] for e in emails_to(world, guest)] == ["changed"]
    assert [n["kind"] for n in notifications(venue)] == ["session_changed"]
