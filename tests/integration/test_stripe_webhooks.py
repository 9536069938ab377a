"""Stripe's webhook events about our refunds, as Stripe really sends them: each applied once (by
event id), only to the Stripe refund our refund's current attempt made, never turning a settled
refund back with an older event; a signed event of the wrong shape is a 400 that changes nothing."""
from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.conftest import World
from tests.integration.test_cancellations import cancel, receipt_of, settle, signed, stripe_refunds_for, webhook
from tests.integration.test_openapi import assert_matches_spec


def stripe_event(refund: dict[str, Any], kind: str, event_id: str, account: str | None = None) -> dict[str, Any]:
    """The event Stripe sends about `refund` (as the stand-in holds it), from `account` if connected."""
    event: dict[str, Any] = {"id": event_id, "object": "event", "type": kind, "created": int(time.time()),
                             "livemode": False, "data": {"object": refund}}
    if account is not None:
        event["account"] = account
    return event


def deliver(world: World, event: dict[str, Any]) -> Any:
    body, signature = signed(event, os.environ["STRIPE_WEBHOOK_SECRET"])
    answer = webhook(world, body, signature)
    assert answer.status == 200, answer.json
    assert_matches_spec("POST", "/v1/webhooks/stripe", 200, answer.json)
    return answer.json["outcome"]


def admin_refund(world: World, receipt: dict[str, Any], refund_id: str) -> dict[str, Any]:
    listed = world.platform.get(f"/v1/admin/venues/{receipt['venue_id']}/refunds").json["refunds"]
    return next(r for r in listed if r["refund_id"] == refund_id)


def history_actions(world: World, receipt: dict[str, Any]) -> list[str]:
    path = f"/v1/admin/venues/{receipt['venue_id']}/transactions/{receipt['transaction_id']}/history"
    return [e["action"] for e in world.platform.get(path).json["events"]]


def failed_then_paid_again(bought: Any) -> tuple[World, Any, dict[str, Any], str, dict[str, Any], dict[str, Any]]:
    """A refund paid at Stripe (re_A) that the card's bank later fails; the admin's retry pays it
    again (re_B). Returns the success event Stripe sent about re_A before it failed, and its
    failure event, both already delivered once."""
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    settle(world, guest, receipt)
    [first] = stripe_refunds_for(world, refund_id)
    succeeded = stripe_event(first, "refund.updated", f"evt_ok_{refund_id}")
    assert deliver(world, succeeded) == "unchanged"  # the worker had recorded it already
    failed = stripe_event(world.stack.stripe.fail_refund(first["id"]), "refund.failed", f"evt_fail_{refund_id}")
    assert deliver(world, failed) == "failed"
    retried = world.platform.post(f"/v1/admin/venues/{receipt['venue_id']}/refunds/{refund_id}/retry", {})
    assert retried.status == 202 and retried.json["status"] == "pending"
    return world, guest, receipt, refund_id, succeeded, failed


def test_an_old_refund_failed_event_delivered_again_after_the_retry_paid_leaves_the_refund_refunded(bought) -> None:
    world, guest, receipt, refund_id, _, failed = failed_then_paid_again(bought)
    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "refunded"
    paid_again = [r for r in stripe_refunds_for(world, refund_id) if r["status"] == "succeeded"]

    assert deliver(world, failed) == "duplicate"
    assert deliver(world, {**failed, "id": "evt_same_failure_as_refund_updated", "type": "refund.updated"}) == "ignored"

    after = receipt_of(guest, receipt)
    assert after["refunds"][0]["status"] == "refunded" and after["sessions"][0]["refund_status"] == "refunded"
    assert [paid_again[0]["id"]] == [admin_refund(world, receipt, refund_id)["stripe_refund_id"]]
    assert history_actions(world, receipt).count("refund_failed") == 1


def test_an_old_success_event_of_the_failed_attempt_does_not_settle_the_retried_refund(bought) -> None:
    """The retried refund is pending again; Stripe re-delivers its earlier news that re_A had
    succeeded. Believing it would show `refunded` and stop the worker: the guest would never be paid."""
    world, guest, receipt, refund_id, succeeded, _ = failed_then_paid_again(bought)

    assert deliver(world, {**succeeded, "id": f"evt_redelivered_{refund_id}"}) == "ignored"
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "pending"

    after = settle(world, guest, receipt)
    assert after["refunds"][0]["status"] == "refunded"
    statuses = sorted(r["status"] for r in stripe_refunds_for(world, refund_id))
    assert statuses == ["failed", "succeeded"]  # the guest got the money back, once


def test_a_success_event_of_the_retried_attempt_is_applied_before_the_worker_records_it(bought) -> None:
    world, guest, receipt, refund_id, _, _ = failed_then_paid_again(bought)
    world.stack.stripe.drop_next()  # Stripe pays the retry; the worker does not hear of it
    world.stack.deliver_all()
    [again] = [r for r in stripe_refunds_for(world, refund_id) if r["status"] == "succeeded"]

    assert deliver(world, stripe_event(again, "refund.created", f"evt_again_{refund_id}")) == "refunded"

    assert admin_refund(world, receipt, refund_id)["stripe_refund_id"] == again["id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "refunded"
    assert len(stripe_refunds_for(world, refund_id)) == 2


def test_the_same_event_delivered_twice_at_once_is_applied_once(bought) -> None:
    from concurrent.futures import ThreadPoolExecutor

    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    settle(world, guest, receipt)
    [paid] = stripe_refunds_for(world, refund_id)
    failed = stripe_event(world.stack.stripe.fail_refund(paid["id"]), "refund.failed", f"evt_twice_{refund_id}")
    body, signature = signed(failed, os.environ["STRIPE_WEBHOOK_SECRET"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(lambda _: webhook(world, body, signature).json["outcome"], range(2)))

    # The one that comes second finds the event applied, or (if it read before the first wrote)
    # the refund already failed: either way it changes nothing.
    assert outcomes.count("failed") == 1 and set(outcomes) - {"failed"} <= {"duplicate", "unchanged"}
    assert history_actions(world, receipt).count("refund_failed") == 1


MALFORMED = [
    ("data is a string", lambda e: {**e, "data": "refund"}, "data"),
    ("data.object is a string", lambda e: {**e, "data": {"object": "re_1"}}, "data"),
    ("metadata is a string", lambda e: {**e, "data": {"object": {**e["data"]["object"], "metadata": "r1"}}},
     "data.object.metadata"),
    ("the refund id is a number", lambda e: {**e, "data": {"object": {**e["data"]["object"], "id": 7}}},
     "data.object.id"),
    ("the status is an object", lambda e: {**e, "data": {"object": {**e["data"]["object"], "status": {}}}},
     "data.object.status"),
    ("no event id", lambda e: {k: v for k, v in e.items() if k != "id"}, "id"),
    ("the type is a list", lambda e: {**e, "type": ["refund.failed"]}, "type"),
    ("the account is a number", lambda e: {**e, "account": 12}, "account"),
    ("an event we do not handle with data a string", lambda e: {**e, "type": "charge.succeeded", "data": "x"},
     "data"),
]


@pytest.mark.parametrize("change, field", [(m[1], m[2]) for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_signed_event_of_the_wrong_shape_is_refused_and_changes_nothing(bought, change: Any, field: str) -> None:
    world, guest, receipt = bought
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    settle(world, guest, receipt)
    [paid] = stripe_refunds_for(world, refund_id)
    event = change(stripe_event(world.stack.stripe.fail_refund(paid["id"]), "refund.failed", f"evt_bad_{refund_id}"))
    body, signature = signed(event, os.environ["STRIPE_WEBHOOK_SECRET"])

    answer = webhook(world, body, signature)

    assert answer.status == 400 and answer.error_code == "invalid_request"
    assert_matches_spec("POST", "/v1/webhooks/stripe", 400, answer.json)
    assert list(answer.json["error"]["details"]["fields"]) == [field]
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "refunded"
