"""What AWS does that moto does not, made to happen by the fault switch (infra/local/faults.py):
transaction conflicts, throttling, index lag, duplicate deliveries and Lambda deadlines; and our
own Stripe key, Stripe's 24-hour idempotency, expired idempotency records and forged cursors.
Each test shows what a guest or a venue would notice: no false refusal, nothing changed on a 503,
nothing paid twice or lost."""
from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.faults import FaultRates
from tests.conftest import Guest, World, now
from tests.integration.test_cancellations import cancel, receipt_of, settle, stripe_refunds_for
from tests.integration.test_emails import emails_to, move, notifications, settle_others_notices
from tests.integration.test_openapi import assert_matches_spec

CANCEL_PATH = "/v1/me/transactions/{transaction_id}/cancellations"


def refund_posts(world: World, refund_id: str) -> list[dict[str, Any]]:
    return [r for r in world.stack.stripe.requests() if r["method"] == "POST" and r["path"] == "/v1/refunds"
            and r["params"].get("metadata", {}).get("refund_id") == refund_id]


def refunds_event(receipt: dict[str, Any], refund_ids: list[str]) -> dict[str, Any]:
    return {"Records": [{
        "messageId": f"m-{refund_id}", "receiptHandle": f"rh-{refund_id}",
        "body": json.dumps({"transaction_id": receipt["transaction_id"], "refund_id": refund_id}),
        "attributes": {"SentTimestamp": str(int(time.time() * 1000))}, "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1",
    } for refund_id in refund_ids]}


def slot_remaining(world: World, guest: Guest, slot_id: str, start: str) -> int:
    venue = guest.venue
    day = start[:10]
    slots = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}").json["slots"]
    return next(s["remaining"] for s in slots if s["slot_id"] == slot_id)


# --- 1. A conflict is not a refusal; a write that stays busy is a 503 that changed nothing ------

def test_a_purchase_that_meets_conflicting_transactions_is_recorded_not_refused(world: World, faults: Any) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    slot = world.slot(venue, capacity=2)
    faults.conflict_next(2)
    receipt = world.purchase(guest, [slot])
    assert faults.injected["conflict"] == 2
    assert [s["slot_id"] for s in receipt["sessions"]] == [slot["slot_id"]]


def test_a_cancellation_that_meets_conflicting_transactions_goes_through(bought, faults: Any) -> None:
    world, guest, receipt = bought
    faults.conflict_next(2)
    answer = cancel(guest, receipt, [0])
    assert answer.status == 200, answer.json
    assert faults.injected["conflict"] == 2
    after = settle(world, guest, receipt)
    assert after["sessions"][0]["status"] == "cancelled" and after["refunds"][0]["status"] == "refunded"


def test_a_move_that_meets_three_conflicts_in_a_row_goes_through(bought, faults: Any) -> None:
    world, guest, receipt = bought
    target = world.slot(guest.venue, start=now() + timedelta(days=6))
    session = receipt["sessions"][0]
    faults.conflict_next(3)
    moved = guest.api.patch(f"/v1/me/transactions/{receipt['transaction_id']}/sessions/{session['session_id']}",
                            {"slot_id": target["slot_id"]})
    assert moved.status == 200, moved.json
    assert moved.json["slot_id"] == target["slot_id"] and faults.injected["conflict"] == 3


def test_a_cancellation_dynamodb_keeps_refusing_is_a_503_with_retry_after_and_changes_nothing(
        bought, faults: Any) -> None:
    world, guest, receipt = bought
    slot = receipt["sessions"][0]
    seats = slot_remaining(world, guest, slot["slot_id"], slot["start"])
    faults.set(FaultRates(conflicts=1.0))
    answer = cancel(guest, receipt, [0, 1])
    faults.off()
    assert answer.status == 503 and answer.error_code == "temporarily_unavailable"
    assert int(answer.headers["retry-after"]) >= 1
    assert_matches_spec("POST", CANCEL_PATH, 503, answer.json, answer.headers)
    after = receipt_of(guest, receipt)
    assert [s["status"] for s in after["sessions"]] == ["booked"] * 3 and after["refunds"] == []
    assert slot_remaining(world, guest, slot["slot_id"], slot["start"]) == seats
    assert cancel(guest, receipt, [0, 1]).status == 200  # the same request, once DynamoDB is free
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "refunded"


def test_a_purchase_dynamodb_keeps_refusing_is_a_503_and_the_payment_can_be_recorded_after(
        world: World, faults: Any) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    slot = world.slot(venue, capacity=1)
    intent = world.payment_intent(2500)
    body = {"guest_id": guest.guest_id, "payment_intent_id": intent, "currency": "usd",
            "sessions": [{"slot_id": slot["slot_id"], "participant_name": "Kid", "amount": 2500}]}
    faults.set(FaultRates(conflicts=1.0))
    refused = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", body)
    faults.off()
    assert refused.status == 503 and refused.error_code == "temporarily_unavailable"
    assert slot_remaining(world, guest, slot["slot_id"], slot["start"]) == 1  # the seat was not taken
    recorded = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", body)
    assert recorded.status == 201, recorded.json


def test_staff_writes_and_reads_dynamodb_keeps_refusing_are_the_documented_503_and_change_nothing(
        bought, faults: Any) -> None:
    _world, guest, receipt = bought
    venue = guest.venue
    session_id = receipt["sessions"][0]["session_id"]
    staff = "/v1/admin/venues/{venue_id}/transactions/{transaction_id}"
    base = staff.format(venue_id=venue.venue_id, transaction_id=receipt["transaction_id"])
    faults.set(FaultRates(conflicts=1.0))
    cancelled = venue.admin.post(f"{base}/cancellations", {"session_ids": [session_id], "refund": "full",
                                                            "reason": "the pool flooded"})
    renamed = venue.admin.patch(f"{base}/sessions/{session_id}", {"participant_name": "Theo", "reason": "by phone"})
    faults.off()
    faults.throttle_next(20, operation="Query")  # more than botocore's own retries
    history = venue.admin.get(f"{base}/history")
    faults.off()
    for method, template, answer in (("POST", f"{staff}/cancellations", cancelled),
                                     ("PATCH", f"{staff}/sessions/{{session_id}}", renamed),
                                     ("GET", f"{staff}/history", history)):
        assert (answer.status, answer.error_code) == (503, "temporarily_unavailable"), (template, answer.json)
        assert_matches_spec(method, template, 503, answer.json, answer.headers)
    after = receipt_of(guest, receipt)
    assert [(s["status"], s["participant_name"]) for s in after["sessions"]] == [
        (s["status"], s["participant_name"]) for s in receipt["sessions"]]
    assert after["refunds"] == []


def test_a_cancellation_whose_transaction_is_throttled_is_tried_again_not_refused(bought, faults: Any) -> None:
    world, guest, receipt = bought
    faults.throttle_next(3, operation="TransactWriteItems")  # cancelled for ThrottlingError: botocore won't retry
    answer = cancel(guest, receipt, [2])
    assert answer.status == 200, answer.json
    assert faults.injected["throttle"] == 3
    after = settle(world, guest, receipt)
    assert after["sessions"][2]["status"] == "cancelled" and after["refunds"][0]["status"] == "refunded"


# --- 7. No decision on an index that may lag ------------------------------------------------

def test_the_guests_transaction_list_lags_while_the_receipt_does_not(world: World, faults: Any) -> None:
    """What the switch makes happen: an index Query sees the table as it was a while ago."""
    venue = world.venue()
    guest = world.guest(venue)
    faults.set(FaultRates(index_lag_ms=60_000))
    receipt = world.purchase(guest, [world.slot(venue)])
    assert guest.api.get("/v1/me/transactions").json["transactions"] == []
    assert receipt_of(guest, receipt)["transaction_id"] == receipt["transaction_id"]
    faults.off()
    listed = guest.api.get("/v1/me/transactions").json["transactions"]
    assert [t["transaction_id"] for t in listed] == [receipt["transaction_id"]]


def test_a_purchase_for_a_guest_created_a_moment_ago_is_recorded(world: World, faults: Any) -> None:
    venue = world.venue()
    faults.set(FaultRates(index_lag_ms=60_000))
    guest = world.guest(venue, login=False)
    receipt = world.purchase(guest, [world.slot(venue)])
    assert receipt["transaction_id"] and faults.injected["index_lag"] == 0  # no index was asked


def test_an_email_to_a_guest_the_index_does_not_show_yet_waits_for_it_and_goes_once(world: World, faults: Any,
                                                                                    capsys: Any) -> None:
    """A guest created a moment ago is not in the guest-id index yet: the email about their first
    change is not failed for it, but waits (nothing written) and goes once the index has caught up."""
    from chalicelib.services import notifications as outbox

    settle_others_notices(world)
    venue = world.venue(allow_guest_modify=True)
    faults.set(FaultRates(index_lag_ms=60_000))
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200
    assert emails_to(world, guest) == []  # the stream's every retry met the lagging index
    assert [(n["status"], n["failure_code"]) for n in notifications(venue)] == [("queued", None)]
    waited = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "notification_guest_not_indexed" and line["guest_id"] == guest.guest_id
               for line in waited)

    faults.off()  # the index has caught up: the sweeper sends it, once
    assert outbox.resend_stale(now() + timedelta(minutes=6), world.stack.app_module.parts.mail) == {"sent": 1}
    assert [e["subject"] for e in emails_to(world, guest)] == [notifications(venue)[0]["subject"]]
    assert [n["status"] for n in notifications(venue)] == ["sent"]


def test_an_email_to_a_guest_no_index_shows_for_ten_minutes_is_failed_once(world: World, faults: Any) -> None:
    from chalicelib.services import notifications as outbox

    mail = world.stack.app_module.parts.mail
    venue = world.venue(allow_guest_modify=True)
    faults.set(FaultRates(index_lag_ms=60_000))
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    assert move(guest, made, world.slot(venue, start=now() + timedelta(days=4))).status == 200
    world.stack.deliver_all()
    [queued] = notifications(venue)
    with pytest.raises(outbox.RetryLater):
        outbox.deliver(venue.venue_id, queued["notification_id"], now() + timedelta(minutes=9), mail)
    assert outbox.deliver(venue.venue_id, queued["notification_id"], now() + timedelta(minutes=11), mail) == "failed"
    assert outbox.deliver(venue.venue_id, queued["notification_id"], now() + timedelta(minutes=12),
                          mail) == "already_settled"
    [listed] = notifications(venue)
    assert (listed["status"], listed["failure_code"]) == ("failed", "guest_unknown")
    faults.off()
    assert emails_to(world, guest) == []


def test_staff_find_a_guest_created_a_moment_ago_and_not_another_venues(world: World, faults: Any) -> None:
    venue, other = world.venue(), world.venue()
    faults.set(FaultRates(index_lag_ms=60_000))
    guest, stranger = world.guest(venue, login=False), world.guest(other, login=False)
    found = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/guests/{guest.guest_id}/transactions")
    assert found.status == 200 and found.json["transactions"] == []  # a new guest: nothing bought yet
    elsewhere = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/guests/{stranger.guest_id}/transactions")
    assert elsewhere.status == 404 and elsewhere.error_code == "not_found"


def test_a_guest_of_another_venue_is_still_not_found(world: World) -> None:
    venue, other = world.venue(), world.venue()
    stranger = world.guest(other, login=False)
    slot = world.slot(venue)
    answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
        "guest_id": stranger.guest_id, "payment_intent_id": world.payment_intent(2500), "currency": "usd",
        "sessions": [{"slot_id": slot["slot_id"], "participant_name": "Kid", "amount": 2500}]})
    assert answer.status == 404 and answer.error_code == "not_found"


def test_an_admin_retries_a_refund_that_failed_a_moment_ago(bought, faults: Any) -> None:
    world, guest, receipt = bought
    world.stack.deliver_all()  # earlier tests' refunds, so that the decline meets this one
    faults.set(FaultRates(index_lag_ms=60_000))
    world.stack.stripe.decline_next("charge_disputed")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "failed"
    retried = world.platform.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    assert retried.status == 202, retried.json
    faults.off()
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "refunded"
    other = world.venue()
    assert other.admin.post(f"/v1/admin/venues/{other.venue_id}/refunds/{refund_id}/retry", {}).status == 404


# --- SQS duplicates and the Lambda deadline --------------------------------------------------

def test_every_refund_message_delivered_twice_pays_once(bought, faults: Any) -> None:
    world, guest, receipt = bought
    faults.set(FaultRates(duplicates=1.0))
    refund_id = cancel(guest, receipt, [0, 2]).json["refund"]["refund_id"]
    after = settle(world, guest, receipt)
    world.stack.deliver_all()
    assert faults.injected["duplicate"] >= 1
    assert after["refunds"][0]["status"] == "refunded"
    [paid] = stripe_refunds_for(world, refund_id)
    assert paid["amount"] == 5000


def test_the_refund_worker_takes_no_message_it_cannot_finish_before_its_deadline(world: World) -> None:
    from chalicelib.services import refund_payments
    from infra.local.stack import lambda_context

    venue = world.venue(refund_on_cancel=True)
    guest = world.guest(venue)
    receipt = world.purchase(guest, [world.slot(venue, start=now() + timedelta(days=d)) for d in (3, 4, 5)])
    refund_ids = [cancel(guest, receipt, [i]).json["refund"]["refund_id"] for i in range(3)]
    # The Lambda has 2 s to spare beyond what one message needs, and its clock is this test's: 3 s
    # pass while the first refund is at Stripe, however fast or slow this machine is.
    spare = refund_payments.time_needed_ms() + 2000
    context = lambda_context("handle_refunds", spare)
    context.get_remaining_time_in_millis = lambda: spare - (3000 if refund_posts(world, refund_ids[0]) else 0)
    result = world.stack.app_module.handle_refunds(refunds_event(receipt, refund_ids), context)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [f"m-{r}" for r in refund_ids[1:]]
    assert [len(refund_posts(world, r)) for r in refund_ids] == [1, 0, 0]  # the others were not started
    after = settle(world, guest, receipt)  # their messages, still queued, are delivered with time to spare
    assert [r["status"] for r in after["refunds"]] == ["refunded"] * 3
    assert all(len(stripe_refunds_for(world, r)) == 1 for r in refund_ids)


def test_stripes_timeout_is_a_few_seconds_and_below_the_workers_lambda_timeout() -> None:
    from chalicelib.config import config
    from chalicelib.services import refund_payments
    from chalicelib.services.stripe_key import StripeKey
    chalice_config = Path(__file__).resolve().parents[2] / ".chalice" / "config.json"
    lambda_timeout_ms = json.loads(chalice_config.read_text())["lambda_timeout"] * 1000
    assert 1 <= config().stripe_timeout_seconds <= 5
    assert refund_payments.time_needed_ms() < lambda_timeout_ms
    assert StripeKey().gateway()._http_client._timeout == config().stripe_timeout_seconds


# --- 4 and 8. Our own Stripe key ------------------------------------------------------------

def test_our_stripe_key_refused_keeps_the_refund_pending_and_says_so(bought, capsys: Any) -> None:
    world, guest, receipt = bought
    world.stack.stripe.fail_next([401], path_prefix="/v1/refunds", method="POST")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    world.stack.deliver_all()
    after = receipt_of(guest, receipt)
    assert after["refunds"][0]["status"] == "pending" and after["sessions"][0]["refund_status"] == "pending"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [e["refund_id"] for e in logged if e.get("event") == "stripe_key_rejected"] == [refund_id]
    from chalicelib.services import refund_reconciler

    refund_reconciler.resend_stale(now() + timedelta(minutes=10), world.stack.app_module.parts.queues)  # the reconciler, once the key works again
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "refunded"
    assert len(stripe_refunds_for(world, refund_id)) == 1


def test_a_rotated_stripe_key_is_read_again_when_refused_and_otherwise_kept(bought, faults: Any,
                                                                            monkeypatch: Any) -> None:
    import boto3

    world, guest, receipt = bought
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name=f"stripe-{receipt['transaction_id']}", SecretString="sk_test_old")["ARN"]
    monkeypatch.delenv("STRIPE_API_KEY")
    monkeypatch.setenv("STRIPE_API_KEY_ARN", arn)
    reads = faults.requests["secretsmanager.GetSecretValue"]
    first = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "refunded"
    second = cancel(guest, receipt, [1]).json["refund"]["refund_id"]
    assert {r["status"] for r in settle(world, guest, receipt)["refunds"]} == {"refunded"}
    assert faults.requests["secretsmanager.GetSecretValue"] - reads == 1  # once, not per refund

    secrets.put_secret_value(SecretId=arn, SecretString="sk_test_new")  # rotated; the old key is revoked
    world.stack.stripe.fail_next([401], path_prefix="/v1/refunds", method="POST")
    third = cancel(guest, receipt, [2]).json["refund"]["refund_id"]
    world.stack.deliver_all()
    after = receipt_of(guest, receipt)
    assert {r["status"] for r in after["refunds"]} == {"refunded"}
    assert faults.requests["secretsmanager.GetSecretValue"] - reads == 2
    assert [r["status"] for r in refund_posts(world, third)] == [401, 200]
    assert all(len(stripe_refunds_for(world, r)) == 1 for r in (first, second, third))


# --- 5. Stripe forgets idempotency keys after 24 hours ---------------------------------------

def test_a_refund_pending_for_a_day_is_looked_up_at_stripe_before_it_is_created_again(bought) -> None:
    from chalicelib import queues
    from chalicelib.services import refund_payments

    world, guest, receipt = bought
    world.stack.stripe.drop_next(path_prefix="/v1/refunds", method="POST")  # paid, but the answer was lost
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    # One delivery: the lost answer outlasts the queue's visibility timeout here, so a second
    # round could already deliver the message again and settle it.
    world.stack.deliver_all(max_rounds=1)
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "pending"
    world.stack.stripe.forget_idempotent_results()  # 24 hours on, Stripe no longer knows the key
    message = queues.RefundMessage(transaction_id=receipt["transaction_id"], refund_id=refund_id)
    assert refund_payments.pay(message, now() + timedelta(hours=25), world.stack.app_module.parts.stripe) == "refunded"
    [paid] = stripe_refunds_for(world, refund_id)
    after = receipt_of(guest, receipt)
    assert after["refunds"][0]["status"] == "refunded" and after["refunds"][0]["amount"] == paid["amount"] == 2500
    assert len(refund_posts(world, refund_id)) == 1


# --- 6. Expired idempotency records ---------------------------------------------------------

def test_an_expired_idempotency_key_not_yet_deleted_by_ttl_counts_as_unused(bought) -> None:
    from chalicelib.storage.models import IdempotencyRecord

    _, guest, receipt = bought
    first = cancel(guest, receipt, [0], key="same-key")
    assert first.status == 200
    for record in IdempotencyRecord.scan(IdempotencyRecord.key.startswith(f"cancel#{guest.guest_id}#")):
        record.update(actions=[IdempotencyRecord.expires_at.set(now() - timedelta(minutes=1))])
    again = cancel(guest, receipt, [1], key="same-key")  # a day later, another request under the key
    assert again.status == 200, again.json
    assert again.json["cancelled_session_ids"] == [receipt["sessions"][1]["session_id"]]
    assert [s["status"] for s in receipt_of(guest, receipt)["sessions"]] == ["cancelled", "cancelled", "booked"]


# --- 9. Forged cursors ----------------------------------------------------------------------

def _cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def test_a_forged_cursor_with_empty_or_wrong_keys_is_a_400(world: World) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    for _ in range(2):
        world.purchase(guest, [world.slot(venue)])
    page = guest.api.get("/v1/me/transactions?limit=1").json
    assert guest.api.get(f"/v1/me/transactions?limit=1&cursor={page['next_cursor']}").status == 200
    forged = [
        {"transaction_id": {"S": ""}, "item": {"S": ""}, "guest_id": {"S": guest.guest_id}, "purchased_at": {"S": ""}},
        {"transaction_id": {"S": "t1"}, "item": {"S": "session#x"}, "guest_id": {"S": guest.guest_id},
         "purchased_at": {"S": "2030-01-01T00:00:00.000000+0000"}},
        {"transaction_id": {"S": "t1"}, "item": {"S": "transaction"}, "guest_id": {"S": guest.guest_id},
         "purchased_at": {"S": "yesterday"}},
    ]
    for key in forged:
        answer = guest.api.get(f"/v1/me/transactions?cursor={_cursor(key)}")
        assert answer.status == 400 and answer.error_code == "invalid_request", (key, answer.json)


def test_a_receipt_whose_read_dynamodb_keeps_throttling_is_a_503_with_retry_after(bought, faults: Any) -> None:
    _, guest, receipt = bought
    faults.throttle_next(20, operation="Query")  # more than botocore's own retries
    answer = guest.api.get(f"/v1/me/transactions/{receipt['transaction_id']}")
    faults.off()
    assert answer.status == 503 and answer.error_code == "temporarily_unavailable", answer.json
    assert int(answer.headers["retry-after"]) >= 1
    assert receipt_of(guest, receipt)["transaction_id"] == receipt["transaction_id"]
