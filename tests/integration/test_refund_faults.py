"""Refund faults not covered in test_cancellations: races between workers, the dead-letter queue,
the reconciler and Stripe's webhooks, and failures at SQS and DynamoDB. Faults are injected at the
boundaries (the Stripe stand-in, the SQS client, DynamoDB writes); each case ends in exactly one
Stripe refund of the right amount, or a refund visibly `failed`."""
from __future__ import annotations

import json
import os
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import World, now
from tests.integration.test_cancellations import (
    cancel,
    receipt_of,
    refund_event,
    settle,
    signed,
    stripe_refunds_for,
    webhook,
)
from tests.integration.test_openapi import assert_matches_spec


def sqs_event(message_id: str, transaction_id: str, refund_id: str, sent_ms: int | None = None) -> dict[str, Any]:
    return {"Records": [{
        "messageId": message_id, "receiptHandle": f"rh-{message_id}",
        "body": json.dumps({"transaction_id": transaction_id, "refund_id": refund_id}),
        "attributes": {"SentTimestamp": str(sent_ms if sent_ms is not None else int(time.time() * 1000))}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"}]}


def run_handler(world: World, name: str, message_id: str, receipt: dict[str, Any], refund_id: str,
                sent_ms: int | None = None) -> Any:
    from infra.local.stack import lambda_context

    handler = getattr(world.stack.app_module, name)
    return handler(sqs_event(message_id, receipt["transaction_id"], refund_id, sent_ms), lambda_context(name))


def refund_posts(world: World, refund_id: str) -> list[dict[str, Any]]:
    return [r for r in world.stack.stripe.requests() if r["method"] == "POST" and r["path"] == "/v1/refunds"
            and r["params"].get("metadata", {}).get("refund_id") == refund_id]


def paid_once(world: World, refund_id: str, amount: int) -> None:
    [paid] = stripe_refunds_for(world, refund_id)
    assert paid["amount"] == amount and paid["status"] == "succeeded"


def in_background(target: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(target(*args)))
    thread.start()
    return thread, result


def test_two_workers_paying_the_same_refund_at_once_pay_once(bought) -> None:
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    world.stack.app_module.parts.stripe.gateway()._stripe()  # built before the race, so both workers reach Stripe at once
    hold = world.stack.stripe.hold_next()
    first, first_result = in_background(run_handler, world, "handle_refunds", "m-1", receipt, refund_id)
    hold.wait_until_reached()  # one worker's request is now in progress at Stripe
    second = run_handler(world, "handle_refunds", "m-2", receipt, refund_id)
    hold.release()
    first.join()
    failures = first_result[0]["batchItemFailures"] + second["batchItemFailures"]
    assert len(failures) == 1  # the one told 409 comes back later
    assert sorted(r["status"] for r in refund_posts(world, refund_id)) == [200, 409]
    after = settle(world, guest, receipt)  # the queued message and m-2's redelivery find it settled
    assert after["refunds"][0]["status"] == "refunded"
    paid_once(world, refund_id, 2500)
    assert len(refund_posts(world, refund_id)) == 2


def test_the_reconciler_resending_a_refund_in_flight_pays_once(bought) -> None:
    from chalicelib.services import refund_reconciler

    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0, 1]).json["refund"]["refund_id"]
    hold = world.stack.stripe.hold_next()
    worker, _ = in_background(world.stack.deliver_all)
    hold.wait_until_reached()
    queues = world.stack.app_module.parts.queues
    assert refund_reconciler.resend_stale(now() + timedelta(minutes=10), queues) >= 1  # it looks stale: still pending
    world.stack.deliver_all()  # the duplicate, while the original is at Stripe
    hold.release()
    worker.join()
    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "refunded"
    paid_once(world, refund_id, 5000)
    assert 409 in [r["status"] for r in refund_posts(world, refund_id)]


def test_a_failed_sqs_delete_after_success_pays_once(bought) -> None:
    """The worker paid and recorded it, but the message's delete failed: it comes back, and the
    redelivery finds the refund settled without asking Stripe again."""
    from infra.local.stack import deliver_batch

    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    real_sqs = world.stack._sqs()

    class DeleteFails:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_sqs, name)

        def delete_message_batch(self, **kwargs: Any) -> Any:
            raise ConnectionError("SQS endpoint unreachable")

    queue = world.stack.app_module.config().queue_name("refunds")  # type: ignore[union-attr]
    with pytest.raises(ConnectionError):
        deliver_batch(DeleteFails(), world.stack.queue_url(queue), queue, world.stack.app_module.handle_refunds)
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "refunded"
    time.sleep(1.2)  # the visibility timeout: the message is back
    assert world.stack.deliver_all() >= 1
    paid_once(world, refund_id, 2500)
    assert len(refund_posts(world, refund_id)) == 1


def test_stripe_answering_idempotency_key_in_use_is_retried_later(bought) -> None:
    world, guest, receipt = bought
    world.stack.stripe.fail_next([409], path_prefix="/v1/refunds", method="POST")
    refund_id = cancel(guest, receipt, [2]).json["refund"]["refund_id"]
    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "refunded"
    paid_once(world, refund_id, 2500)
    attempts = refund_posts(world, refund_id)
    assert [a["status"] for a in attempts] == [409, 200] and len({a["idempotency_key"] for a in attempts}) == 1


def test_a_late_success_after_the_dead_letter_queue_is_found_by_the_admin_retry_not_paid_again(bought) -> None:
    """Stripe paid on the first attempt but the answer was lost; every later attempt failed, so
    the dead-letter queue marked it failed. The admin's retry finds Stripe's refund and records it."""
    world, guest, receipt = bought
    world.stack.stripe.drop_next(path_prefix="/v1/refunds", method="POST")
    world.stack.stripe.fail_next([500] * 8, path_prefix="/v1/refunds", method="POST")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    after = settle(world, guest, receipt, seconds=30)
    world.stack.stripe.reset_faults()
    assert after["refunds"][0]["status"] == "failed"
    paid_once(world, refund_id, 2500)  # yet Stripe holds it
    retried = world.platform.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    assert retried.status == 202 and retried.json["status"] == "refunded"
    assert retried.json["stripe_refund_id"] == stripe_refunds_for(world, refund_id)[0]["id"]
    world.stack.deliver_all()
    paid_once(world, refund_id, 2500)
    assert not [r for r in refund_posts(world, refund_id) if r["idempotency_key"].endswith("-g2")]
    assert [s["refund_status"] for s in receipt_of(guest, receipt)["sessions"]][:1] == ["refunded"]


def test_a_worker_told_success_after_the_dead_letter_queue_gave_up_records_it(bought) -> None:
    """The last delivery was still at Stripe when the dead-letter handler marked it failed:
    Stripe's success, arriving after, is recorded rather than left for the admin to discover."""
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    hold = world.stack.stripe.hold_next()
    worker, result = in_background(run_handler, world, "handle_refunds", "m-1", receipt, refund_id)
    hold.wait_until_reached()
    run_handler(world, "handle_refund_dead_letters", "d-1", receipt, refund_id)
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "failed"
    hold.release()
    worker.join()
    assert result == [{"batchItemFailures": []}]
    after = receipt_of(guest, receipt)
    assert after["refunds"][0]["status"] == "refunded" and after["sessions"][0]["refund_status"] == "refunded"
    retried = world.platform.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    assert retried.status == 409 and retried.error_code == "refund_not_retryable"
    settle(world, guest, receipt)
    paid_once(world, refund_id, 2500)


def test_a_refund_failed_webhook_before_our_own_write_leaves_it_failed(bought) -> None:
    """Stripe accepted the refund, then told us by webhook that it failed, before the worker
    wrote its success: the failure stands and is shown to the guest and the admin."""
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [1]).json["refund"]["refund_id"]
    hold = world.stack.stripe.hold_next()
    worker, _ = in_background(run_handler, world, "handle_refunds", "m-1", receipt, refund_id)
    hold.wait_until_reached()
    body, signature = signed(refund_event("refund.failed", "failed", refund_id, receipt),
                             os.environ["STRIPE_WEBHOOK_SECRET"])
    assert webhook(world, body, signature).json["outcome"] == "failed"
    hold.release()
    worker.join()
    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "failed" and after["sessions"][1]["refund_status"] == "failed"
    failed = world.platform.get(f"/v1/admin/venues/{receipt['venue_id']}/refunds?status=failed").json["refunds"]
    assert [(r["refund_id"], r["failure_code"]) for r in failed] == [(refund_id, "expired_or_canceled_card")]
    assert len(refund_posts(world, refund_id)) == 1


def test_a_refund_failed_webhook_racing_the_workers_success_write_is_not_lost(bought, monkeypatch) -> None:
    """The webhook read the refund `pending`; the worker wrote `refunded` before the webhook
    wrote `failed`. Stripe's failure must still be recorded, not answered 200 and dropped."""
    from chalicelib.services import stripe_webhooks

    world, guest, receipt = bought
    world.stack.stripe.drop_next()  # Stripe makes the refund; the worker does not hear of it yet
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    world.stack.deliver_all()
    [made] = stripe_refunds_for(world, refund_id)
    real_load = stripe_webhooks.load
    raced: list[bool] = []

    def load_then_the_worker_writes(transaction_id: str, rid: str, consistent: bool = True) -> Any:
        found = real_load(transaction_id, rid, consistent)
        if not raced:
            raced.append(True)
            world.stack.deliver_all()  # the worker pays and writes `refunded` now
        return found

    monkeypatch.setattr(stripe_webhooks, "load", load_then_the_worker_writes)
    time.sleep(1.1)  # the dropped delivery's message is visible again
    body, signature = signed(refund_event("refund.failed", "failed", refund_id, receipt, made["id"]),
                             os.environ["STRIPE_WEBHOOK_SECRET"])
    answer = webhook(world, body, signature)
    monkeypatch.undo()
    assert answer.status == 200 and answer.json["outcome"] == "failed"
    after = receipt_of(guest, receipt)
    assert after["refunds"][0]["status"] == "failed" and after["sessions"][0]["refund_status"] == "failed"
    paid_once(world, refund_id, 2500)


def test_a_write_conflict_after_stripe_paid_brings_the_message_back(bought, monkeypatch) -> None:
    """DynamoDB cancelled the worker's write for a concurrent transaction (not a failed
    condition): the refund is still pending, so the message must come back, not be deleted."""
    from chalicelib.storage import atomic

    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    real_commit = atomic.AtomicWrite.commit
    conflicts: list[bool] = []

    def conflict_once(self: Any) -> None:
        if not conflicts:
            conflicts.append(True)
            raise atomic.AtomicWriteFailed([], conflict=True)
        real_commit(self)

    monkeypatch.setattr(atomic.AtomicWrite, "commit", conflict_once)
    after = settle(world, guest, receipt, seconds=10)
    assert conflicts and after["refunds"][0]["status"] == "refunded"
    paid_once(world, refund_id, 2500)


def test_a_worker_killed_between_stripes_answer_and_our_write_pays_once(bought, monkeypatch) -> None:
    from chalicelib.storage import atomic

    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0, 2]).json["refund"]["refund_id"]
    real_commit = atomic.AtomicWrite.commit
    killed: list[bool] = []

    def killed_once(self: Any) -> None:
        if not killed:
            killed.append(True)
            raise TimeoutError("Lambda timed out")
        real_commit(self)

    monkeypatch.setattr(atomic.AtomicWrite, "commit", killed_once)
    after = settle(world, guest, receipt)
    assert killed and after["refunds"][0]["status"] == "refunded"
    paid_once(world, refund_id, 5000)
    posts = refund_posts(world, refund_id)
    assert len(posts) == 2 and posts[1]["replayed"] and len({p["idempotency_key"] for p in posts}) == 1


def test_a_stale_dead_letter_does_not_fail_the_admins_retry(bought) -> None:
    """A duplicate of the first attempt's message reaches the dead-letter queue after the admin
    retried: the retry (the next key generation) goes on and pays once."""
    world, guest, receipt = bought
    world.stack.stripe.decline_next("charge_disputed")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    first_sent_ms = int(time.time() * 1000) - 1000
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "failed"
    retried = world.platform.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    assert retried.status == 202 and retried.json["status"] == "pending"
    run_handler(world, "handle_refund_dead_letters", "d-old", receipt, refund_id, first_sent_ms)  # generation 1's
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "pending"
    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "refunded"
    paid_once(world, refund_id, 2500)


def test_a_retry_the_worker_pays_at_once_still_answers_that_it_was_sent_again(bought, monkeypatch: Any) -> None:
    """A worker quicker than the retry's own answer (the local pump under load) pays the refund
    before the answer is written: the admin is still told it was sent again, not that Stripe
    had made it before."""
    world, guest, receipt = bought
    world.stack.stripe.decline_next("charge_disputed")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "failed"
    queues = world.stack.app_module.parts.queues
    send = queues.send_refund

    def send_and_pay_at_once(transaction_id: str, refund_id: str) -> None:
        send(transaction_id, refund_id)
        world.stack.deliver_all()

    monkeypatch.setattr(queues, "send_refund", send_and_pay_at_once)
    retried = world.platform.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    monkeypatch.undo()

    assert retried.status == 202 and retried.json["status"] == "pending"
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "refunded"
    paid_once(world, refund_id, 2500)


def test_a_retry_whose_read_after_its_write_would_be_throttled_answers_pending_and_sends_it_again(
        bought, faults: Any) -> None:
    """DynamoDB throttles reads past botocore's own retries just after the retry's write moved the
    refund back to pending: the admin is told it is pending again (not a 503 saying nothing
    changed), and its message goes out at once rather than waiting for the reconciler."""
    world, guest, receipt = bought
    world.stack.stripe.decline_next("charge_disputed")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "failed"
    # Held at Stripe's look-up, after the retry read the refund and before it writes: every
    # DynamoDB read from then on is throttled.
    asked = world.stack.stripe.hold_next(path_prefix="/v1/refunds", method="GET")
    path = f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry"
    admin, answered = in_background(world.platform.post, path, {})
    asked.wait_until_reached()
    faults.throttle_next(20, operation="GetItem")  # more than botocore's own retries
    asked.release()
    admin.join()
    faults.off()

    [retried] = answered
    assert retried.status == 202, retried.json
    assert retried.json["status"] == "pending" and retried.json["refund_id"] == refund_id
    assert (retried.json["failure_code"], retried.json["stripe_refund_id"]) == (None, None)
    assert_matches_spec("POST", "/v1/admin/venues/{venue_id}/refunds/{refund_id}/retry", 202, retried.json,
                        retried.headers)
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "pending"
    world.stack.deliver_all()  # the retry's own message: the reconciler is not run here
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "refunded"
    paid_once(world, refund_id, 2500)
