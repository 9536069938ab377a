"""A slot closing while others write to its sessions: a guest cancelling at the same moment, staff
cancelling by hand before the job reaches the session or between the job's read and its write.
Whatever the order, each session is cancelled once, each charge refunded at most once and never
beyond its amount, the seat counter ends at zero, and nobody is answered with a 5xx.

The orders are set, not hoped for: the fault switch holds one named DynamoDB request before it
reaches moto (infra/local/faults.py `hold_next`) while the other side runs to the end."""
from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from tests.conftest import Venue, World, now
from tests.integration.test_refund_faults import in_background
from tests.integration.test_slot_closures import close, deliver_piece, finish, slot_seats, stripe_refunds_of
from tests.integration.test_staff_cancellations import staff_cancel


def receipt(venue: Venue, made: dict[str, Any]) -> dict[str, Any]:
    answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}")
    assert answer.status == 200, answer.json
    return answer.json


def test_a_guest_cancellation_read_before_the_slot_closed_and_written_after_is_refused_and_the_closure_refunds_it(
        world: World, faults: Any) -> None:
    """The guest's cancellation is inside the venue's 24-hour cutoff (their own rule refunds
    nothing); staff close the slot with a full refund between the guest's read and write. The
    guest's write must not land: it would cancel the session without the refund the closure owes."""
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue)
    soon = world.slot(venue, start=now() + timedelta(hours=3))
    later = world.slot(venue, start=now() + timedelta(days=3))
    made = world.purchase(guest, [soon, later], amount=1800)
    in_soon = made["sessions"][0]["session_id"]
    quote = guest.api.post(f"/v1/me/transactions/{made['transaction_id']}/cancellation-quote",
                           {"session_ids": [in_soon]}).json
    assert quote["refund_amount"] == 0  # by the guest's own rule

    at_write = faults.hold_next("TransactWriteItems")
    cancelling, answered = in_background(
        guest.api.post, f"/v1/me/transactions/{made['transaction_id']}/cancellations", {"session_ids": [in_soon]})
    at_write.wait_until_reached()  # the guest's plan is made, its write on the way
    job = close(venue, soon, refund="full", reason="the pool's heater broke").json
    at_write.release()
    cancelling.join()

    [refused] = answered
    assert (refused.status, refused.error_code) == (409, "slot_closed"), refused.json
    done = finish(world, venue, job["job_id"])
    assert (done["status"], done["sessions_total"], done["sessions_cancelled"], done["refunds_created"]) \
        == ("done", 1, 1, 1)
    sessions = {s["session_id"]: (s["status"], s["refund_status"]) for s in receipt(venue, made)["sessions"]}
    assert sessions == {in_soon: ("cancelled", "refunded"), made["sessions"][1]["session_id"]: ("booked", "none")}
    assert [r["amount"] for r in stripe_refunds_of(world, {made["transaction_id"]})] == [1800]
    assert slot_seats(venue, soon["slot_id"]) == (0, 10)
    assert slot_seats(venue, later["slot_id"]) == (1, 9)


def test_a_session_staff_cancel_by_hand_before_the_job_reaches_it_is_refunded_once_by_their_choice(
        world: World) -> None:
    venue = world.venue()
    ada, bob = world.guest(venue, login=False), world.guest(venue, login=False)
    slot = world.slot(venue)
    by_hand = world.purchase(ada, [slot, slot], amount=1200)
    by_job = world.purchase(bob, [slot], amount=2000)
    job = close(venue, slot, refund="full").json
    assert job["sessions_total"] == 3

    # The front desk cancels Ada's first session by hand, without a refund, before the job runs.
    cancelled = staff_cancel(venue, by_hand, [0], refund="none", reason="guest phoned first")
    assert cancelled.status == 200, cancelled.json
    done = finish(world, venue, job["job_id"])

    # The job cancelled what was left: Ada's second session and Bob's; it counts only its own.
    assert (done["status"], done["sessions_cancelled"], done["refunds_created"]) == ("done", 2, 2)
    assert [(s["status"], s["refund_status"]) for s in receipt(venue, by_hand)["sessions"]] \
        == [("cancelled", "not_refunded"), ("cancelled", "refunded")]
    assert [r["amount"] for r in stripe_refunds_of(world, {by_hand["transaction_id"]})] == [1200]
    assert [r["amount"] for r in stripe_refunds_of(world, {by_job["transaction_id"]})] == [2000]
    assert slot_seats(venue, slot["slot_id"]) == (0, 10)


def test_staff_cancelling_between_the_jobs_read_and_its_write_leaves_one_cancellation_and_one_refund(
        world: World, faults: Any) -> None:
    """The job read the purchase (both sessions booked); staff cancel one of them with a full
    refund before the job's write lands. The job's write fails its condition, it reads again and
    cancels only the session still booked: one cancellation each, one refund each, nothing twice."""
    venue = world.venue()
    guest = world.guest(venue, login=False)
    slot = world.slot(venue)
    made = world.purchase(guest, [slot, slot], amount=1500)
    job = close(venue, slot, refund="full").json

    at_write = faults.hold_next("TransactWriteItems")
    piece, answered = in_background(deliver_piece, world, job["job_id"], 0, "m-piece")
    at_write.wait_until_reached()  # the job's cancellation of both sessions is on its way
    by_staff = staff_cancel(venue, made, [1], refund="full", reason="guest phoned")
    assert by_staff.status == 200, by_staff.json
    at_write.release()
    piece.join()

    assert answered == [{"batchItemFailures": []}]
    done = finish(world, venue, job["job_id"])
    assert (done["status"], done["sessions_cancelled"], done["refunds_created"]) == ("done", 1, 1)
    assert [(s["status"], s["refund_status"]) for s in receipt(venue, made)["sessions"]] \
        == [("cancelled", "refunded")] * 2
    assert sorted(r["amount"] for r in stripe_refunds_of(world, {made["transaction_id"]})) == [1500, 1500]
    history = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/transactions/{made['transaction_id']}/history")
    cancellations = [e for e in history.json["events"] if e["action"] == "session_cancelled"]
    assert sorted(e["session_id"] for e in cancellations) == sorted(s["session_id"] for s in made["sessions"])
    assert slot_seats(venue, slot["slot_id"]) == (0, 10)


def test_staff_cancelling_many_sessions_while_the_job_runs_refunds_each_charge_once_and_no_more(
        world: World, faults: Any) -> None:
    """Twelve purchases in a closing slot; the job's piece has read them all when four front-desk
    clerks start cancelling them by hand, from the last bought back (the job goes from the first),
    each with a full refund. Each charge is
    refunded exactly once, in full, by whichever got there first; a clerk who came second is told
    the session is no longer cancellable (409), never a 5xx. (The clerks call the service itself,
    as the route does: Chalice's test client serves one request at a time, as a Lambda does.)"""
    from chalicelib import rules
    from chalicelib.api import representations as shape
    from chalicelib.errors import RebookError
    from chalicelib.storage.models import VenueRecord

    venue = world.venue()
    slot = world.slot(venue, capacity=20)
    purchases = [world.purchase(world.guest(venue, login=False), [slot], amount=1000 + i) for i in range(12)]
    job = close(venue, slot, refund="full").json
    assert job["sessions_total"] == 12
    record = VenueRecord.get(venue.venue_id)
    queues = world.stack.app_module.parts.queues  # type: ignore[union-attr]
    outcomes: list[str] = []
    start = threading.Barrier(5)

    def clerk(share: list[dict[str, Any]]) -> None:
        start.wait()
        for made in share:
            try:
                cancellations.staff_cancel("admin:clerk", record, made["transaction_id"],
                                           [made["sessions"][0]["session_id"]], rules.RefundMode.FULL, "phoned",
                                           now(), None, shape.cancellation, queues=queues)
                outcomes.append("cancelled")
            except RebookError as error:
                outcomes.append(error.code)

    from chalicelib.services import cancellations

    at_write = faults.hold_next("TransactWriteItems")
    worker, answered = in_background(deliver_piece, world, job["job_id"], 0, "m-piece")
    at_write.wait_until_reached()  # the piece has read all twelve; its first cancellation is on its way
    from_the_last = purchases[::-1]
    clerks_at_work = [threading.Thread(target=clerk, args=(from_the_last[i::4],)) for i in range(4)]
    for thread in clerks_at_work:
        thread.start()
    start.wait()
    at_write.release()
    for thread in [*clerks_at_work, worker]:
        thread.join()

    assert answered == [{"batchItemFailures": []}]
    clerks = outcomes
    assert len(clerks) == 12 and set(clerks) <= {"cancelled", "session_not_cancellable"}
    done = finish(world, venue, job["job_id"])
    by_clerks = clerks.count("cancelled")
    assert (done["status"], done["sessions_cancelled"], done["refunds_created"]) == ("done", 12 - by_clerks,
                                                                                     12 - by_clerks)
    paid = stripe_refunds_of(world, {m["transaction_id"] for m in purchases})
    assert sorted((r["metadata"]["transaction_id"], r["amount"]) for r in paid) \
        == sorted((m["transaction_id"], 1000 + i) for i, m in enumerate(purchases))
    assert {s["status"] for m in purchases for s in receipt(venue, m)["sessions"]} == {"cancelled"}
    assert slot_seats(venue, slot["slot_id"]) == (0, 20)
