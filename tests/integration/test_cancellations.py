"""Cancelling sessions and the refund that follows: quoted, cancelled all or nothing, paid through
the Stripe stand-in exactly once whatever fails, and visible on the receipt and to the admin."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import SOON, Guest, Response, World, now, sleep_until_started


def cancel(guest: Guest, receipt: dict[str, Any], sessions: list[int], key: str | None = None,
           **body: Any) -> Response:
    """The guest cancels the receipt's sessions at these positions (more of the body in `body`)."""
    ids = [receipt["sessions"][i]["session_id"] for i in sessions]
    headers = {"Idempotency-Key": key} if key else None
    return guest.api.post(f"/v1/me/transactions/{receipt['transaction_id']}/cancellations",
                          {"session_ids": ids, **body}, headers=headers)


def receipt_of(guest: Guest, receipt: dict[str, Any]) -> dict[str, Any]:
    return guest.api.get(f"/v1/me/transactions/{receipt['transaction_id']}").json


def stripe_refunds_for(world: World, refund_id: str) -> list[dict[str, Any]]:
    return [r for r in world.stack.stripe.refunds() if r["metadata"].get("refund_id") == refund_id]


def settle(world: World, guest: Guest, receipt: dict[str, Any], seconds: float = 20) -> dict[str, Any]:
    """Deliver queued messages (waiting out visibility timeouts) until no refund is pending."""
    deadline = time.monotonic() + seconds
    while True:
        world.stack.deliver_all()
        body = receipt_of(guest, receipt)
        if all(r["status"] != "pending" for r in body["refunds"]) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def assert_refunded_once(world: World, guest: Guest, receipt: dict[str, Any], refund_id: str) -> None:
    """Once the refund worker is done, the receipt's refund is refunded and Stripe paid it once."""
    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "refunded"
    assert len(stripe_refunds_for(world, refund_id)) == 1


def test_the_quote_shows_what_would_be_refunded_and_changes_nothing(world: World) -> None:
    venue = world.venue(refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    far, near = world.slot(venue, start=now() + timedelta(days=3)), world.slot(venue, start=now() + timedelta(hours=5))
    receipt = world.purchase(guest, [far, near], amount=1800)
    ids = [s["session_id"] for s in receipt["sessions"]]
    quote = guest.api.post(f"/v1/me/transactions/{receipt['transaction_id']}/cancellation-quote", {"session_ids": ids})
    assert quote.status == 200
    assert quote.json["refund_amount"] == 1800 and quote.json["currency"] == "usd"
    slot_of = {s["session_id"]: s["slot_id"] for s in receipt["sessions"]}
    refundable = {slot_of[s["session_id"]]: s["refundable"] for s in quote.json["sessions"]}
    assert refundable == {far["slot_id"]: True, near["slot_id"]: False}
    assert receipt_of(guest, receipt)["sessions"] == receipt["sessions"]


def test_cancelling_two_sessions_refunds_them_once_through_stripe(bought) -> None:
    world, guest, receipt = bought
    answer = cancel(guest, receipt, [0, 1])
    assert answer.status == 200
    assert answer.json["cancelled_session_ids"] == [receipt["sessions"][0]["session_id"],
                                                    receipt["sessions"][1]["session_id"]]
    refund = answer.json["refund"]
    assert refund["status"] == "pending" and refund["amount"] == 5000
    assert [s["refund_status"] for s in answer.json["sessions"]] == ["pending", "pending"]
    assert all(s["status"] == "cancelled" for s in answer.json["sessions"])

    after = settle(world, guest, receipt)
    assert [r["status"] for r in after["refunds"]] == ["refunded"]
    statuses = [(s["status"], s["refund_status"]) for s in after["sessions"]]
    assert statuses == [("cancelled", "refunded"), ("cancelled", "refunded"), ("booked", "none")]
    [paid] = stripe_refunds_for(world, refund["refund_id"])
    assert paid["amount"] == 5000 and paid["payment_intent"] == receipt["payment_intent_id"]
    assert paid["metadata"] == {"refund_id": refund["refund_id"], "transaction_id": receipt["transaction_id"],
                                "venue_id": receipt["venue_id"], "key_generation": "1"}


def test_cancelling_gives_the_seats_back(bought) -> None:
    _, guest, receipt = bought
    from chalicelib.storage.models import SlotRecord

    slot_id = receipt["sessions"][0]["slot_id"]
    assert SlotRecord.get(receipt["venue_id"], slot_id).booked == 1
    assert cancel(guest, receipt, [0]).status == 200
    slot = SlotRecord.get(receipt["venue_id"], slot_id)
    assert (slot.booked, slot.remaining) == (0, slot.capacity)


def test_cancelling_inside_the_cutoff_gives_no_refund(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    receipt = world.purchase(guest, [world.slot(venue, start=now() + timedelta(hours=3))])
    answer = cancel(guest, receipt, [0])
    assert answer.status == 200 and answer.json["refund"] is None
    assert answer.json["sessions"][0]["refund_status"] == "not_refunded"
    assert receipt_of(guest, receipt)["refunds"] == []
    assert not [r for r in world.stack.stripe.requests()
                if r["params"].get("payment_intent") == receipt["payment_intent_id"]]


def test_with_refunds_off_a_guest_may_still_cancel_without_refund(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=False)
    guest = world.guest(venue)
    receipt = world.purchase(guest, [world.slot(venue)])
    answer = cancel(guest, receipt, [0])
    assert answer.status == 200 and answer.json["refund"] is None
    assert answer.json["sessions"][0]["refund_status"] == "not_refunded"


def test_with_both_switches_off_cancelling_is_refused(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    receipt = world.purchase(guest, [world.slot(venue)])
    answer = cancel(guest, receipt, [0])
    assert answer.status == 403 and answer.error_code == "feature_disabled"
    assert receipt_of(guest, receipt)["sessions"][0]["status"] == "booked"


def test_several_sessions_are_cancelled_all_or_nothing(bought) -> None:
    _, guest, receipt = bought
    assert cancel(guest, receipt, [0]).status == 200
    answer = cancel(guest, receipt, [0, 1, 2])
    assert answer.status == 409 and answer.error_code == "session_not_cancellable"
    assert answer.json["error"]["details"]["sessions"] == {receipt["sessions"][0]["session_id"]: "cancelled"}
    after = receipt_of(guest, receipt)
    assert [s["status"] for s in after["sessions"]] == ["cancelled", "booked", "booked"]


def test_a_started_session_cannot_be_cancelled(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue)
    soon = world.slot(venue, start=now() + SOON)
    receipt = world.purchase(guest, [soon])
    sleep_until_started(soon)
    answer = cancel(guest, receipt, [0])
    assert answer.status == 409 and answer.json["error"]["details"]["sessions"] == {
        receipt["sessions"][0]["session_id"]: "started"}


def test_unknown_sessions_and_other_guests_transactions_are_not_found(bought) -> None:
    world, guest, receipt = bought
    stranger = world.guest(world.venue(allow_guest_modify=True))
    assert cancel(stranger, receipt, [0]).status == 404
    answer = guest.api.post(f"/v1/me/transactions/{receipt['transaction_id']}/cancellations",
                            {"session_ids": ["01JNOTASESSION0000000000000"]})
    assert answer.status == 404


@pytest.mark.parametrize("body", [{}, {"session_ids": []}, {"session_ids": ["a", "a"]}, {"session_ids": "a"},
                                  {"session_ids": ["x"] * 31}, {"session_ids": ["a"], "extra": True}])
def test_bad_cancellation_bodies_are_400(bought, body: dict[str, Any]) -> None:
    _, guest, receipt = bought
    answer = guest.api.post(f"/v1/me/transactions/{receipt['transaction_id']}/cancellations", body)
    assert answer.status == 400 and answer.error_code == "invalid_request"


def test_the_refund_decision_is_exact_to_the_second(world: World) -> None:
    """Cancelling at the deadline refunds; one second after it does not."""
    from chalicelib.services import access, cancellations
    from chalicelib.times import parse_rfc3339

    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=10)
    guest = world.guest(venue)
    start = now() + timedelta(days=2)
    receipt = world.purchase(guest, [world.slot(venue, start=start), world.slot(venue, start=start)])
    claims = access.authenticate_guest(f"Bearer {guest.api.credential}", now())
    deadline = parse_rfc3339(receipt["sessions"][0]["refund_deadline"])
    assert deadline == start - timedelta(hours=10)
    [on_time, late] = [s["session_id"] for s in receipt["sessions"]]
    from chalicelib.api import representations as shape

    queues = world.stack.app_module.parts.queues
    at_deadline = cancellations.cancel(claims, receipt["transaction_id"], [on_time], deadline, None, shape.cancellation,
                                       queues=queues)
    after_deadline = cancellations.cancel(claims, receipt["transaction_id"], [late], deadline + timedelta(seconds=1),
                                          None, shape.cancellation, queues=queues)
    assert at_deadline["refund"] is not None and at_deadline["sessions"][0]["refund_status"] == "pending"
    assert after_deadline["refund"] is None and after_deadline["sessions"][0]["refund_status"] == "not_refunded"


def test_a_retried_request_with_the_same_idempotency_key_gets_the_first_answer(bought) -> None:
    world, guest, receipt = bought
    first = cancel(guest, receipt, [0, 1], key="confirm-123")
    again = cancel(guest, receipt, [1, 0], key="confirm-123")
    assert first.status == again.status == 200
    assert again.json == first.json
    other = cancel(guest, receipt, [2], key="confirm-123")
    assert other.status == 409 and other.error_code == "idempotency_conflict"
    after = settle(world, guest, receipt)
    assert len(after["refunds"]) == 1 and after["sessions"][2]["status"] == "booked"
    assert len(stripe_refunds_for(world, first.json["refund"]["refund_id"])) == 1


def test_ten_parallel_cancellations_of_one_session_refund_once(bought) -> None:
    from chalicelib.api import representations as shape
    from chalicelib.errors import RebookError
    from chalicelib.services import access, cancellations

    world, guest, receipt = bought
    claims = access.authenticate_guest(f"Bearer {guest.api.credential}", now())
    session_id = receipt["sessions"][0]["session_id"]
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def attempt() -> None:
        barrier.wait()
        try:
            cancellations.cancel(claims, receipt["transaction_id"], [session_id], now(), None, shape.cancellation,
                                 queues=world.stack.app_module.parts.queues)
            outcomes.append("cancelled")
        except RebookError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("cancelled") == 1
    assert set(outcomes) - {"cancelled"} <= {"session_not_cancellable"}
    after = settle(world, guest, receipt)
    [refund] = after["refunds"]
    assert refund["status"] == "refunded" and len(stripe_refunds_for(world, refund["refund_id"])) == 1
    from chalicelib.storage.models import SlotRecord

    assert SlotRecord.get(receipt["venue_id"], receipt["sessions"][0]["slot_id"]).booked == 0


def test_stripe_failing_with_500_503_and_429_first_still_pays_once(bought) -> None:
    world, guest, receipt = bought
    world.stack.stripe.fail_next([500, 503, 429], path_prefix="/v1/refunds", method="POST")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "refunded"
    [paid] = stripe_refunds_for(world, refund_id)
    assert paid["amount"] == 2500
    attempts = [r for r in world.stack.stripe.requests() if r["path"] == "/v1/refunds" and r["method"] == "POST"
                and r["params"].get("metadata", {}).get("refund_id") == refund_id]
    assert len(attempts) == 4 and len({a["idempotency_key"] for a in attempts}) == 1


def test_a_final_stripe_error_marks_the_refund_failed_and_the_admin_can_retry(bought) -> None:
    world, guest, receipt = bought
    venue_admin = world.platform
    world.stack.stripe.decline_next("charge_disputed", "The charge is disputed.")
    refund_id = cancel(guest, receipt, [0, 2]).json["refund"]["refund_id"]
    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "failed"
    assert [s["refund_status"] for s in after["sessions"]] == ["failed", "none", "failed"]
    failed = venue_admin.get(f"/v1/admin/venues/{receipt['venue_id']}/refunds?status=failed").json["refunds"]
    assert [(r["refund_id"], r["failure_code"]) for r in failed] == [(refund_id, "charge_disputed")]
    assert stripe_refunds_for(world, refund_id) == []

    retried = venue_admin.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    assert retried.status == 202 and retried.json["status"] == "pending"
    assert_refunded_once(world, guest, receipt, refund_id)
    again = venue_admin.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    assert again.status == 409 and again.error_code == "refund_not_retryable"


def test_an_admin_retry_records_a_refund_stripe_already_made(bought) -> None:
    """The worker was told `failed`, but Stripe had paid: the retry records it, pays nothing more."""
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    from chalicelib.services import refund_payments, refund_states
    from chalicelib.times import utc_now

    record = refund_states.load(receipt["transaction_id"], refund_id)
    world.stack.app_module.parts.stripe.gateway().create_refund(
        payment_intent_id=record.payment_intent_id, amount=2500,
        idempotency_key=refund_payments.idempotency_key(record),
        metadata={"refund_id": refund_id, "transaction_id": receipt["transaction_id"], "venue_id": receipt["venue_id"]})
    refund_states.settle_failed(record, "lost_answer", "simulated", utc_now(), from_status="pending")
    retried = world.platform.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    assert retried.status == 202 and retried.json["status"] == "refunded"
    world.stack.deliver_all()
    assert len(stripe_refunds_for(world, refund_id)) == 1


def test_a_crash_after_stripe_answered_pays_once(bought) -> None:
    world, guest, receipt = bought
    world.stack.stripe.drop_next(path_prefix="/v1/refunds", method="POST")
    refund_id = cancel(guest, receipt, [1]).json["refund"]["refund_id"]
    assert_refunded_once(world, guest, receipt, refund_id)


def test_the_same_message_delivered_three_times_pays_once(bought) -> None:
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    for _ in range(3):
        world.stack.app_module.parts.queues.send_refund(receipt["transaction_id"], refund_id)
    assert_refunded_once(world, guest, receipt, refund_id)


def test_one_bad_message_does_not_replay_the_others(bought) -> None:
    """A partial batch response: the worker reports only the failed message."""
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    world.stack.stripe.fail_next([503], path_prefix="/v1/refunds", method="POST")
    other_id = cancel(guest, receipt, [1]).json["refund"]["refund_id"]
    app_module = world.stack.app_module
    event = {"Records": [
        {"messageId": "m-1", "receiptHandle": "r1", "body": json.dumps({"transaction_id": receipt["transaction_id"],
                                                                         "refund_id": refund_id}),
         "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"},
        {"messageId": "m-2", "receiptHandle": "r2", "body": json.dumps({"transaction_id": receipt["transaction_id"],
                                                                         "refund_id": other_id}),
         "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"}]}
    from infra.local.stack import lambda_context

    result = app_module.handle_refunds(event, lambda_context("handle_refunds"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert len(stripe_refunds_for(world, other_id)) == 1 and stripe_refunds_for(world, refund_id) == []


def test_a_failed_sqs_send_is_recovered_by_the_reconciler(bought, monkeypatch) -> None:
    world, guest, receipt = bought
    from chalicelib.config import config

    monkeypatch.setenv("REFUND_QUEUE_URL", config().refund_queue_url + "-missing")
    config.cache_clear()
    try:
        answer = cancel(guest, receipt, [0])
    finally:
        monkeypatch.undo()
        config.cache_clear()
    assert answer.status == 200 and answer.json["refund"]["status"] == "pending"
    refund_id = answer.json["refund"]["refund_id"]
    world.stack.deliver_all()
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "pending"  # nothing was queued

    from chalicelib.services import refund_reconciler

    assert refund_reconciler.resend_stale(now() + timedelta(minutes=10), world.stack.app_module.parts.queues) >= 1
    assert_refunded_once(world, guest, receipt, refund_id)


def test_a_refund_stripe_never_accepts_ends_failed_through_the_dead_letter_queue(bought) -> None:
    world, guest, receipt = bought
    world.stack.stripe.fail_next([500] * 8, path_prefix="/v1/refunds", method="POST")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    after = settle(world, guest, receipt, seconds=30)
    world.stack.stripe.reset_faults()
    assert after["refunds"][0]["status"] == "failed"
    failed = world.platform.get(f"/v1/admin/venues/{receipt['venue_id']}/refunds?status=failed").json["refunds"]
    assert failed[0]["failure_code"] == "retries_exhausted"
    assert stripe_refunds_for(world, refund_id) == []


def signed(payload: dict[str, Any], secret: str, at: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    timestamp = at if at is not None else int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={signature}"


def webhook(world: World, body: bytes, signature: str | None) -> Any:
    from tests.conftest import Api

    headers = {"Stripe-Signature": signature} if signature else {}
    return Api(world.client, None).call("POST", "/v1/webhooks/stripe", raw=body, headers=headers)


def refund_event(kind: str, status: str, refund_id: str, receipt: dict[str, Any],
                 stripe_refund_id: str | None = None) -> dict[str, Any]:
    """Stripe's event about the Stripe refund `stripe_refund_id` made for our refund (by default one
    Stripe has not answered the worker about yet)."""
    return {"id": f"evt_{refund_id}_{status}", "type": kind, "data": {"object": {
        "id": stripe_refund_id or f"re_{refund_id}", "object": "refund", "status": status,
        "failure_reason": "expired_or_canceled_card",
        "metadata": {"refund_id": refund_id, "transaction_id": receipt["transaction_id"]}}}}


def test_a_late_failure_from_stripe_shows_as_failed_once_even_when_replayed(bought) -> None:
    import os

    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "refunded"
    [paid] = stripe_refunds_for(world, refund_id)
    body, signature = signed(refund_event("refund.failed", "failed", refund_id, receipt, paid["id"]),
                             os.environ["STRIPE_WEBHOOK_SECRET"])
    first, replay = webhook(world, body, signature), webhook(world, body, signature)
    assert first.status == replay.status == 200
    assert first.json["outcome"] == "failed" and replay.json["outcome"] == "duplicate"
    after = receipt_of(guest, receipt)
    assert after["refunds"][0]["status"] == "failed" and after["sessions"][0]["refund_status"] == "failed"


def test_a_webhook_arriving_before_our_own_write_records_the_refund_once(bought) -> None:
    import os

    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    body, signature = signed(refund_event("refund.updated", "succeeded", refund_id, receipt),
                             os.environ["STRIPE_WEBHOOK_SECRET"])
    assert webhook(world, body, signature).json["outcome"] == "refunded"
    after = settle(world, guest, receipt)  # the worker's delivery now finds it settled
    assert after["refunds"][0]["status"] == "refunded"
    assert stripe_refunds_for(world, refund_id) == []  # the event was ours; the worker paid nothing more


def test_unsigned_tampered_or_stale_webhooks_are_refused(bought) -> None:
    import os

    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    secret = os.environ["STRIPE_WEBHOOK_SECRET"]
    body, signature = signed(refund_event("refund.failed", "failed", refund_id, receipt), secret)
    stale_body, stale = signed(refund_event("refund.failed", "failed", refund_id, receipt), secret,
                               at=int(time.time()) - 3600)
    for payload, header in ((body, None), (body + b" ", signature), (stale_body, stale),
                            (body, signature.replace("v1=", "v0="))):
        answer = webhook(world, payload, header)
        assert answer.status == 400 and answer.error_code == "invalid_request"
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "pending"


def test_refunds_are_listed_for_the_venue_only(bought) -> None:
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    listed = world.platform.get(f"/v1/admin/venues/{receipt['venue_id']}/refunds").json["refunds"]
    assert [r["refund_id"] for r in listed] == [refund_id]
    other = world.venue()
    assert other.admin.get(f"/v1/admin/venues/{other.venue_id}/refunds").json["refunds"] == []
    assert other.admin.get(f"/v1/admin/venues/{receipt['venue_id']}/refunds").status == 403
    assert world.platform.post(f"/v1/admin/venues/{other.venue_id}/refunds/{refund_id}/retry", {}).status == 404
    assert world.platform.get(f"/v1/admin/venues/{receipt['venue_id']}/refunds?status=lost").status == 400



def test_a_new_refund_is_found_by_its_id_alone_with_no_locator_or_index_entry(bought) -> None:
    """The refund-id index and the locators serve only the first round's refunds: a refund made
    now names its purchase in its id, writes neither, and the admin still reaches it by that id."""
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0, 1]).json["refund"]["refund_id"]
    from chalicelib.storage.models import BookingItem, Locator

    assert list(BookingItem.refunds_by_id.query(refund_id)) == []
    assert Locator.find(f"refund#{refund_id}") is None
    found = world.platform.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    # Found (a refund it did not find would be 404), and not failed, so not retried.
    assert found.status == 409 and found.error_code == "refund_not_retryable"
    assert found.json["error"]["details"]["status"] in ("pending", "refunded")


def test_a_refund_id_made_up_from_real_ids_is_not_found_and_retries_nothing(bought) -> None:
    """A refund id names its purchase (`<transaction_id>-<ULID>`): one made up from a real purchase
    of this venue or another, a guest, a session or junk is the 404 of a refund that does not
    exist, at every venue, and the real refund is still there to retry."""
    from chalicelib.ids import new_id

    world, guest, receipt = bought
    venue, transaction_id = guest.venue, receipt["transaction_id"]
    world.stack.stripe.decline_next("charge_disputed")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "failed"
    other = world.venue(refund_on_cancel=True)
    stranger = world.guest(other)
    theirs = world.purchase(stranger, [world.slot(other)])
    their_refund_id = cancel(stranger, theirs, [0]).json["refund"]["refund_id"]
    own = refund_id.split("-", 1)[1]
    made_up = [f"{transaction_id}-{new_id()}", f"{theirs['transaction_id']}-{own}", their_refund_id,
               f"{guest.guest_id}-{own}", f"{receipt['sessions'][0]['session_id']}-{own}", own, f"-{own}",
               f"{transaction_id}-", f"{transaction_id}--{own}", f"{refund_id}-{own}"[:64], "-", "x" * 65]
    for made in made_up:
        answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/refunds/{made}/retry", {})
        assert (answer.status, answer.error_code) == (404, "not_found"), (made, answer.json)
    for admin in (other.admin, world.platform):
        answer = admin.post(f"/v1/admin/venues/{other.venue_id}/refunds/{refund_id}/retry", {})
        assert (answer.status, answer.error_code) == (404, "not_found")
    assert [r["status"] for r in receipt_of(guest, receipt)["refunds"]] == ["failed"]
    retried = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/refunds/{refund_id}/retry", {})
    assert retried.status == 202 and retried.json["status"] == "pending", retried.json
