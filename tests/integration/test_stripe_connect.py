"""Each venue's own Stripe account (Stripe Connect): set by the platform key, recorded on every
purchase, and named on every Stripe call about that purchase — the payment check, the refund, the
admin retry's look-up and the reconciler's re-sends — through the Stripe stand-in, which keeps
each account's objects and idempotency keys apart as Stripe does."""
from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Guest, Venue, World, now
from tests.integration.test_cancellations import cancel, receipt_of, settle
from tests.integration.test_openapi import assert_matches_spec


def new_account() -> str:
    return f"acct_1{secrets.token_hex(8)}"


def connected_venue(world: World, account: str | None = None) -> tuple[Venue, str]:
    """A venue that refunds up to 24 hours before a session, taking payments into its own account."""
    account = account or new_account()
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    answer = world.platform.patch(f"/v1/admin/venues/{venue.venue_id}", {"stripe_account": account})
    assert answer.status == 200, answer.json
    return venue, account


def paid_on(world: World, amount: int, account: str | None, currency: str = "usd") -> str:
    return world.stack.stripe.create_payment_intent(amount, currency, account=account)["id"]


def record(world: World, guest: Guest, slot: dict[str, Any], payment_intent_id: str, amount: int = 2500) -> Any:
    venue = guest.venue
    return venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
        "guest_id": guest.guest_id, "payment_intent_id": payment_intent_id, "currency": venue.currency,
        "sessions": [{"slot_id": slot["slot_id"], "participant_name": "Kid", "amount": amount}]})


def stripe_calls_about(world: World, payment_intent_id: str) -> list[dict[str, Any]]:
    """Every request the stand-in received about this payment: its look-up, refunds and refund lists."""
    return [r for r in world.stack.stripe.requests()
            if r["path"].endswith(payment_intent_id) or r["params"].get("payment_intent") == payment_intent_id]


def remaining(venue: Venue, slot: dict[str, Any]) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    day = datetime.fromisoformat(slot["start"].replace("Z", "+00:00")).astimezone(ZoneInfo(venue.timezone)).date()
    listed = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id={slot['product_id']}&date={day}")
    return next(s["remaining"] for s in listed.json["slots"] if s["slot_id"] == slot["slot_id"])


def refunds_on(world: World, account: str | None, refund_id: str) -> list[dict[str, Any]]:
    return [r for r in world.stack.stripe.refunds(account=account) if r["metadata"].get("refund_id") == refund_id]


# --- The venue's account ----------------------------------------------------------------------

def test_the_platform_key_sets_and_changes_a_venues_stripe_account(world: World) -> None:
    account = new_account()
    created = world.platform.post("/v1/admin/venues", {"name": "Bounce Park", "timezone": "Europe/London",
                                                       "currency": "usd", "stripe_account": account})
    assert created.status == 201 and created.json["stripe_account"] == account
    assert_matches_spec("POST", "/v1/admin/venues", 201, created.json)
    path = f"/v1/admin/venues/{created.json['venue_id']}"

    moved = world.platform.patch(path, {"stripe_account": "acct_1Other"})
    assert moved.status == 200 and moved.json["stripe_account"] == "acct_1Other"
    assert_matches_spec("PATCH", "/v1/admin/venues/{venue_id}", 200, moved.json)
    assert world.platform.get(path).json["stripe_account"] == "acct_1Other"

    back = world.platform.patch(path, {"stripe_account": None})
    assert back.status == 200 and back.json["stripe_account"] is None
    assert world.platform.get(path).json["stripe_account"] is None


def test_a_new_venue_takes_payments_on_the_platforms_account(world: World) -> None:
    venue = world.venue()
    assert world.platform.get(f"/v1/admin/venues/{venue.venue_id}").json["stripe_account"] is None


def test_a_venue_key_cannot_set_a_stripe_account(world: World) -> None:
    venue, account = connected_venue(world)
    other = world.venue()
    for key_of, target in ((venue, venue), (other, venue)):
        answer = key_of.admin.patch(f"/v1/admin/venues/{target.venue_id}", {"stripe_account": "acct_1Thief"})
        assert answer.status == 403 and answer.error_code == "forbidden"
    assert world.platform.get(f"/v1/admin/venues/{venue.venue_id}").json["stripe_account"] == account
    created = venue.admin.post("/v1/admin/venues", {"name": "Mine", "timezone": "Europe/London", "currency": "usd",
                                                    "stripe_account": "acct_1Thief"})
    assert created.status == 403


@pytest.mark.parametrize("bad", ["acct_", "acct_1a-b", "acct_1é", "pi_3Pabc", "ACCT_1abc", "acct_1abc ", 5, True,
                                 {"id": "acct_1abc"}, "acct_" + "a" * 251])
def test_a_stripe_account_that_is_not_one_is_refused_and_changes_nothing(world: World, bad: Any) -> None:
    venue, account = connected_venue(world)
    path = f"/v1/admin/venues/{venue.venue_id}"

    answer = world.platform.patch(path, {"stripe_account": bad})
    created = world.platform.post("/v1/admin/venues", {"name": "X", "timezone": "Europe/London", "currency": "usd",
                                                       "stripe_account": bad})

    for refused in (answer, created):
        assert refused.status == 400 and refused.error_code == "invalid_request"
        assert list(refused.json["error"]["details"]["fields"]) == ["stripe_account"]
    assert world.platform.get(path).json["stripe_account"] == account


def test_the_account_change_needs_its_field_and_nothing_else(world: World) -> None:
    venue, account = connected_venue(world)
    path = f"/v1/admin/venues/{venue.venue_id}"
    for body, field in (({}, "stripe_account"), ({"stripe_account": "acct_1x", "name": "Renamed"}, "name")):
        answer = world.platform.patch(path, body)
        assert answer.status == 400 and field in answer.json["error"]["details"]["fields"]
    assert world.platform.patch("/v1/admin/venues/no-such-venue", {"stripe_account": None}).status == 404
    assert world.platform.get(path).json["stripe_account"] == account


# --- Paid and refunded on the venue's account -------------------------------------------------

def test_a_venue_on_its_own_account_is_paid_and_refunded_on_that_account_only(world: World) -> None:
    venue, account = connected_venue(world)
    guest = world.guest(venue)
    payment = paid_on(world, 2500, account)
    receipt = record(world, guest, world.slot(venue), payment)
    assert receipt.status == 201, receipt.json

    refund_id = cancel(guest, receipt.json, [0]).json["refund"]["refund_id"]
    after = settle(world, guest, receipt.json)

    assert after["refunds"][0]["status"] == "refunded" and after["sessions"][0]["refund_status"] == "refunded"
    [paid] = refunds_on(world, account, refund_id)
    assert (paid["amount"], paid["payment_intent"]) == (2500, payment)
    assert refunds_on(world, None, refund_id) == []
    calls = stripe_calls_about(world, payment)
    assert [(c["method"], c["account"]) for c in calls] == [("GET", account), ("POST", account)]


def test_a_payment_intent_of_another_account_is_refused_and_takes_no_seat(world: World) -> None:
    venue, account = connected_venue(world)
    platform_venue = world.venue()
    guest, platform_guest = world.guest(venue), world.guest(platform_venue)
    slot, platform_slot = world.slot(venue, capacity=1), world.slot(platform_venue, capacity=1)

    refusals = [record(world, guest, slot, paid_on(world, 2500, None)),
                record(world, guest, slot, paid_on(world, 2500, new_account())),
                record(world, platform_guest, platform_slot, paid_on(world, 2500, account))]

    for refused in refusals:
        assert refused.status == 422 and refused.error_code == "payment_not_accepted", refused.json
        assert_matches_spec("POST", "/v1/admin/venues/{venue_id}/transactions", 422, refused.json)
    assert remaining(venue, slot) == 1 and remaining(platform_venue, platform_slot) == 1
    assert record(world, guest, slot, paid_on(world, 2500, account)).status == 201


def test_refunds_go_to_the_account_each_purchase_was_paid_on_after_the_venue_changes_account(world: World) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue)
    before = record(world, guest, world.slot(venue), paid_on(world, 2500, None)).json
    account = new_account()
    assert world.platform.patch(f"/v1/admin/venues/{venue.venue_id}", {"stripe_account": account}).status == 200
    after = record(world, guest, world.slot(venue), paid_on(world, 2500, account)).json

    refund_before = cancel(guest, before, [0]).json["refund"]["refund_id"]
    refund_after = cancel(guest, after, [0]).json["refund"]["refund_id"]
    settle(world, guest, before), settle(world, guest, after)

    assert receipt_of(guest, before)["refunds"][0]["status"] == "refunded"
    assert receipt_of(guest, after)["refunds"][0]["status"] == "refunded"
    assert len(refunds_on(world, None, refund_before)) == 1 and refunds_on(world, account, refund_before) == []
    assert len(refunds_on(world, account, refund_after)) == 1 and refunds_on(world, None, refund_after) == []


def test_an_admin_retry_looks_the_refund_up_on_the_purchases_account_and_pays_once(world: World) -> None:
    """Stripe paid, its answer was lost, and the queue gave up: the refund shows failed. The admin's
    retry must find the payment's refund on the venue's account, not pay it a second time there."""
    from tests.integration.test_refund_faults import run_handler

    venue, account = connected_venue(world)
    guest = world.guest(venue)
    payment = paid_on(world, 7500, account)
    receipt = record(world, guest, world.slot(venue), payment, amount=7500).json
    world.stack.deliver_all()  # refunds other tests left queued first: the fault below is for this one
    world.stack.stripe.drop_next(path_prefix="/v1/refunds", method="POST")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    world.stack.deliver_all()  # Stripe pays; the answer is lost
    run_handler(world, "handle_refund_dead_letters", "d-1", receipt, refund_id)
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "failed"

    retried = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/refunds/{refund_id}/retry", {})

    assert retried.status == 202 and retried.json["status"] == "refunded"
    settle(world, guest, receipt)
    [paid] = refunds_on(world, account, refund_id)
    assert retried.json["stripe_refund_id"] == paid["id"]
    look_ups = [c for c in stripe_calls_about(world, payment) if c["method"] == "GET" and c["path"] == "/v1/refunds"]
    assert [c["account"] for c in look_ups] == [account]


def test_an_admin_retry_of_a_declined_refund_pays_on_the_purchases_account(world: World) -> None:
    venue, account = connected_venue(world)
    guest = world.guest(venue)
    payment = paid_on(world, 2500, account)
    receipt = record(world, guest, world.slot(venue), payment).json
    world.stack.deliver_all()  # refunds other tests left queued first: the decline below is for this one
    world.stack.stripe.decline_next("charge_disputed")
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "failed"

    assert venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/refunds/{refund_id}/retry", {}).status == 202
    after = settle(world, guest, receipt)

    assert after["refunds"][0]["status"] == "refunded"
    assert len(refunds_on(world, account, refund_id)) == 1
    assert {c["account"] for c in stripe_calls_about(world, payment)} == {account}


def test_the_reconciler_resends_a_lost_refund_that_is_paid_on_the_purchases_account(world: World, monkeypatch) -> None:
    from chalicelib.config import config
    from chalicelib.services import refund_reconciler

    venue, account = connected_venue(world)
    guest = world.guest(venue)
    receipt = record(world, guest, world.slot(venue), paid_on(world, 2500, account)).json
    monkeypatch.setenv("REFUND_QUEUE_URL", config().refund_queue_url + "-missing")
    config.cache_clear()
    try:
        refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    finally:
        monkeypatch.undo()
        config.cache_clear()
    world.stack.deliver_all()
    assert receipt_of(guest, receipt)["refunds"][0]["status"] == "pending"  # nothing was queued

    assert refund_reconciler.resend_stale(now() + timedelta(minutes=10), world.stack.app_module.parts.queues) >= 1
    after = settle(world, guest, receipt)

    assert after["refunds"][0]["status"] == "refunded"
    assert len(refunds_on(world, account, refund_id)) == 1 and refunds_on(world, None, refund_id) == []


# --- Connect webhooks -------------------------------------------------------------------------

def refunded_on_account(world: World) -> tuple[Guest, dict[str, Any], str, str, dict[str, Any]]:
    """A connected venue's refund, paid on its account and then failed by the card's bank there:
    (guest, receipt, account, refund id, the failed Stripe refund as the event carries it)."""
    venue, account = connected_venue(world)
    guest = world.guest(venue)
    receipt = record(world, guest, world.slot(venue), paid_on(world, 2500, account)).json
    refund_id = cancel(guest, receipt, [0]).json["refund"]["refund_id"]
    assert settle(world, guest, receipt)["refunds"][0]["status"] == "refunded"
    [paid] = refunds_on(world, account, refund_id)
    return guest, receipt, account, refund_id, world.stack.stripe.fail_refund(paid["id"])


def test_a_connect_webhook_is_applied_to_the_refund_of_the_venue_on_that_account(world: World) -> None:
    from tests.integration.test_stripe_webhooks import deliver, stripe_event

    guest, receipt, account, refund_id, failed = refunded_on_account(world)

    assert deliver(world, stripe_event(failed, "refund.failed", f"evt_c_{refund_id}", account=account)) == "failed"

    after = receipt_of(guest, receipt)
    assert after["refunds"][0]["status"] == "failed" and after["sessions"][0]["refund_status"] == "failed"


def test_a_webhook_from_an_unknown_or_another_account_is_acknowledged_and_ignored(world: World) -> None:
    from tests.integration.test_stripe_webhooks import deliver, stripe_event

    guest, receipt, _account, refund_id, failed = refunded_on_account(world)
    _, another_account = connected_venue(world)  # a venue we know, on an account not this purchase's

    for n, sender in enumerate((new_account(), another_account, None)):
        event = stripe_event(failed, "refund.failed", f"evt_other_{n}_{refund_id}", account=sender)
        assert deliver(world, event) == "ignored"

    after = receipt_of(guest, receipt)
    assert after["refunds"][0]["status"] == "refunded" and after["sessions"][0]["refund_status"] == "refunded"


def test_the_demo_seed_has_a_venue_on_the_platforms_account_and_one_on_a_connected_account(
        world: World, http_api: str) -> None:
    import re

    from infra.local.seed import CONNECTED_ACCOUNT, GUEST_PASSWORD, seed_demo
    from tests.conftest import Api

    printed = "\n".join(seed_demo(world.stack))

    venue_ids = re.findall(r"Demo venue (\S+) ", printed)
    assert [world.platform.get(f"/v1/admin/venues/{v}").json["stripe_account"] for v in venue_ids] == \
        [None, CONNECTED_ACCOUNT]
    assert f"payments on its own connected Stripe account {CONNECTED_ACCOUNT}" in printed
    for venue_id, account in zip(venue_ids, (None, CONNECTED_ACCOUNT), strict=True):
        guest = Api(world.client, None)
        token = guest.post(f"/v1/venues/{venue_id}/login", {"email": "ada@example.com", "password": GUEST_PASSWORD})
        guest.credential = token.json["token"]
        [bought] = guest.get("/v1/me/transactions").json["transactions"]
        receipt = guest.get(f"/v1/me/transactions/{bought['transaction_id']}").json
        assert world.stack.stripe.account_of(receipt["payment_intent_id"]) == account
