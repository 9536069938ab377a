"""Upgrading from the first round: data written exactly as the first round's code wrote it (no
purchase summary, no refund_venue_id, no locators), what a guest and an admin notice about it on
the second round's code, and `python -m infra.upgrade` bringing it up to date, once."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from infra import upgrade
from tests.conftest import Guest, Venue, World, now
from tests.integration.test_cancellations import settle, stripe_refunds_for

# --- Data as the first round wrote it (its code at 2db5e68, attribute for attribute) ----------

def first_round_venue(world: World) -> Venue:
    from chalicelib.storage.models import VenueRecord

    venue = world.venue(refund_on_cancel=True, allow_guest_modify=True, cutoff_hours=24)
    VenueRecord(venue.venue_id).update(actions=[
        VenueRecord.modify_cutoff_hours.remove(), VenueRecord.cancellation_fee_fixed.remove(),
        VenueRecord.cancellation_fee_percent.remove(), VenueRecord.notify_guests.remove(),
        VenueRecord.token_generations.remove(), VenueRecord.stripe_account.remove()])
    return venue


def first_round_guest(world: World, venue: Venue) -> Guest:
    """A guest record with the first round's attributes only, and no locator."""
    import secrets

    from chalicelib import auth
    from chalicelib.ids import new_id
    from chalicelib.storage.models import GuestRecord
    from tests.conftest import Api

    email, password = f"old-{secrets.token_hex(4)}@example.com", "correct horse battery"
    guest = GuestRecord(venue_id=venue.venue_id, email=email, guest_id=new_id(), name="Olga Oldtimer",
                        password_hash=auth.hash_password(password), created_at=now())
    guest.save()
    guest.update(actions=[GuestRecord.credential_generation.remove()])
    api = Api(world.client, None)
    login = api.post(f"/v1/venues/{venue.venue_id}/login", {"email": email, "password": password})
    assert login.status == 200, login.json
    api.credential = login.json["token"]
    return Guest(venue, guest.guest_id, email, password, api)


def first_round_purchase(world: World, guest: Guest, slots: list[dict[str, Any]], amount: int = 2500,
                         refund: str | None = None) -> str:
    """A purchase header without summary, guest name or Stripe account, its sessions, its seats
    taken; with `refund` ("failed" or "pending"), its first session cancelled and its refund in that
    state as the first round left it: no refund_venue_id, no guest_id, no locator."""
    from chalicelib.ids import new_id
    from chalicelib.storage.models import (
        IdempotencyRecord,
        RefundRecord,
        SessionRecord,
        SlotRecord,
        TransactionRecord,
        VenueRecord,
    )
    from chalicelib.storage.shards import refund_shard
    from chalicelib.storage.windows import projected_window

    venue_id, at = guest.venue.venue_id, now() - timedelta(days=30)
    settings = VenueRecord.get(venue_id).settings()
    intent = world.payment_intent(amount * len(slots), guest.venue.currency)
    transaction_id = new_id()
    TransactionRecord(transaction_id=transaction_id, item="transaction", venue_id=venue_id, guest_id=guest.guest_id,
                      purchased_at=at, currency=guest.venue.currency, total=amount * len(slots),
                      payment_intent_id=intent, session_count=len(slots)).save()
    IdempotencyRecord(key=f"payment_intent#{intent}", request_hash=transaction_id,
                      response={"transaction_id": transaction_id}).save()
    sessions = []
    for number, slot in enumerate(slots, start=1):
        record = SlotRecord.get(venue_id, slot["slot_id"])
        session_id = new_id()
        session = SessionRecord(
            transaction_id=transaction_id, item=f"session#{session_id}", venue_id=venue_id, session_id=session_id,
            slot_id=record.slot_id, product_id=record.product_id, product_name=record.product_name,
            start=record.start, end=record.end, participant_name=f"Kid {number}", amount=amount, status="booked",
            refund_status="none", session_venue_id=venue_id, **projected_window(settings, session_id, record.start, at))
        session.save()
        sessions.append(session)
        record.update(actions=[SlotRecord.remaining.add(-1), SlotRecord.booked.add(1)])
    if refund is not None:
        refund_id, first = new_id(), sessions[0]
        first.update(actions=[SessionRecord.status.set("cancelled"), SessionRecord.refund_status.set(refund),
                              SessionRecord.refund_id.set(refund_id), SessionRecord.cancelled_at.set(at),
                              SessionRecord.window_shard.remove(), SessionRecord.refund_window.set("closed")])
        SlotRecord(venue_id, first.slot_id).update(actions=[SlotRecord.remaining.add(1), SlotRecord.booked.add(-1)])
        RefundRecord(transaction_id=transaction_id, item=f"refund#{refund_id}", venue_id=venue_id,
                     refund_id=refund_id, refund_key=refund_id, amount=amount, currency=guest.venue.currency,
                     status=refund, session_ids=[first.session_id], payment_intent_id=intent, created_at=at,
                     updated_at=at, venue_status=f"{venue_id}#{refund}", key_generation=1,
                     pending_shard=refund_shard(refund_id) if refund == "pending" else None,
                     **({"failure_code": "card_declined", "failure_message": "Your card was declined."}
                        if refund == "failed" else {})).save()
    return transaction_id


def slots_ahead(world: World, venue: Venue, count: int) -> list[dict[str, Any]]:
    return [world.slot(venue, start=now() + timedelta(days=3 + d), product_name=f"Trampoline Day {d + 1}")
            for d in range(count)]


def run_upgrade(venue: Venue, dry_run: bool = False) -> dict[str, dict[str, Any]]:
    """`python -m infra.upgrade --venue ...` in this process (the same tables), its JSON lines by
    step. One venue's: the tables hold every earlier test's data too."""
    lines: list[dict[str, Any]] = []
    upgrade.upgrade(dry_run=dry_run, venue_id=venue.venue_id, out=lines.append)
    assert all(json.loads(json.dumps(line)) == line for line in lines)  # each is one JSON line
    return {line.get("step", "done"): line for line in lines if line["event"] != "upgrade_progress"}


def listed(guest: Guest, transaction_id: str) -> dict[str, Any]:
    answer = guest.api.get("/v1/me/transactions")
    assert answer.status == 200, answer.json
    return next(t for t in answer.json["transactions"] if t["transaction_id"] == transaction_id)


def receipt_of(guest: Guest, transaction_id: str) -> dict[str, Any]:
    answer = guest.api.get(f"/v1/me/transactions/{transaction_id}")
    assert answer.status == 200, answer.json
    return dict(answer.json)


def admin_refunds(venue: Venue) -> list[dict[str, Any]]:
    answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/refunds")
    assert answer.status == 200, answer.json
    return list(answer.json["refunds"])


def stored(transaction_id: str) -> list[dict[str, Any]]:
    from chalicelib.storage.models import BookingItem

    return sorted((item.serialize() for item in BookingItem.query(transaction_id, consistent_read=True)),
                  key=lambda raw: raw["item"]["S"])


# --- Stories ------------------------------------------------------------------------------------

def test_a_first_round_purchase_is_named_and_cancellable_once_upgraded(world: World) -> None:
    venue = first_round_venue(world)
    guest = first_round_guest(world, venue)
    transaction_id = first_round_purchase(world, guest, slots_ahead(world, venue, 2))
    receipt = receipt_of(guest, transaction_id)
    first = receipt["sessions"][0]["session_id"]

    # Before: the guest's list cannot say what was bought or when, and cancelling fails, changing nothing.
    before = listed(guest, transaction_id)
    assert before["products"] == [] and before["first_session_start"] is None
    cancel = f"/v1/me/transactions/{transaction_id}/cancellations"
    refused = guest.api.post(cancel, {"session_ids": [first]})
    assert refused.status >= 400
    assert receipt_of(guest, transaction_id) == receipt
    world.stack.deliver_all()
    assert [r for r in world.stack.stripe.refunds() if r["payment_intent"] == receipt["payment_intent_id"]] == []

    counts = run_upgrade(venue)
    assert counts["guest_locators"]["written"] == 1
    assert counts["purchase_summaries"]["written"] == 1

    after = listed(guest, transaction_id)
    assert after["products"] == ["Trampoline Day 1", "Trampoline Day 2"]
    assert after["first_session_start"] == receipt["sessions"][0]["start"]
    assert after["booked_count"] == 2 and after["refund_status"] == "none"
    done = guest.api.post(cancel, {"session_ids": [first]})
    assert done.status == 200, done.json
    assert done.json["refund"]["amount"] == 2500
    settled = settle(world, guest, {"transaction_id": transaction_id})
    assert [r["status"] for r in settled["refunds"]] == ["refunded"]
    [paid] = stripe_refunds_for(world, done.json["refund"]["refund_id"])
    assert paid["amount"] == 2500 and paid["payment_intent"] == receipt["payment_intent_id"]
    assert listed(guest, transaction_id)["refund_status"] == "refunded"
    assert listed(guest, transaction_id)["cancelled_count"] == 1


def test_a_first_round_failed_refund_is_listed_for_the_admin_and_retried_once_upgraded(world: World) -> None:
    venue = first_round_venue(world)
    guest = first_round_guest(world, venue)
    transaction_id = first_round_purchase(world, guest, slots_ahead(world, venue, 2), refund="failed")
    [refund] = receipt_of(guest, transaction_id)["refunds"]
    assert refund["status"] == "failed"
    retry = f"/v1/admin/venues/{venue.venue_id}/refunds/{refund['refund_id']}/retry"

    # Before: the admin's list of refunds does not show it, and a retry fails, changing nothing.
    assert admin_refunds(venue) == []
    assert venue.admin.post(retry, {}).status >= 400
    assert receipt_of(guest, transaction_id)["refunds"] == [refund]

    counts = run_upgrade(venue)
    assert counts["refunds"]["written"] == 1 and counts["refund_locators"]["written"] == 1

    [shown] = admin_refunds(venue)
    assert shown["refund_id"] == refund["refund_id"] and shown["status"] == "failed"
    assert shown["guest"] == {"guest_id": guest.guest_id, "name": "Olga Oldtimer", "email": guest.email}
    assert [s["product_name"] for s in shown["sessions"]] == ["Trampoline Day 1"]
    retried = venue.admin.post(retry, {})
    assert retried.status == 202, retried.json
    settled = settle(world, guest, {"transaction_id": transaction_id})
    assert [r["status"] for r in settled["refunds"]] == ["refunded"]
    [paid] = stripe_refunds_for(world, refund["refund_id"])
    assert paid["amount"] == 2500
    assert [r["status"] for r in admin_refunds(venue)] == ["refunded"]
    assert listed(guest, transaction_id)["refund_status"] == "refunded"


def test_a_first_round_refund_id_is_found_by_its_own_venue_only_before_and_after_the_upgrade(
        world: World) -> None:
    """Before the upgrade the refund-id index finds a first-round refund, after it its locator:
    either way another venue's key naming it gets the 404 of a refund that does not exist."""
    venue, other = first_round_venue(world), world.venue()
    guest = first_round_guest(world, venue)
    transaction_id = first_round_purchase(world, guest, slots_ahead(world, venue, 1), refund="failed")
    [refund] = receipt_of(guest, transaction_id)["refunds"]

    def retried_by(admin: Any, venue_id: str) -> Any:
        return admin.post(f"/v1/admin/venues/{venue_id}/refunds/{refund['refund_id']}/retry", {})

    for upgraded in (False, True):
        if upgraded:
            run_upgrade(venue)
        for answer in (retried_by(other.admin, other.venue_id), retried_by(world.platform, other.venue_id)):
            assert (answer.status, answer.error_code) == (404, "not_found"), (upgraded, answer.json)
        assert receipt_of(guest, transaction_id)["refunds"] == [refund]
    assert retried_by(venue.admin, venue.venue_id).status == 202


def test_a_first_round_guest_gets_a_locator_and_new_purchases_for_them_record(world: World) -> None:
    from chalicelib.storage.models import Locator

    venue = first_round_venue(world)
    guest = first_round_guest(world, venue)
    assert Locator.find(f"guest#{guest.guest_id}") is None
    run_upgrade(venue)
    locator = Locator.find(f"guest#{guest.guest_id}")
    assert locator is not None and (locator.venue_id, locator.email) == (venue.venue_id, guest.email)
    bought = world.purchase(guest, slots_ahead(world, venue, 1))
    assert listed(guest, bought["transaction_id"])["products"] == ["Trampoline Day 1"]


def test_a_dry_run_counts_and_writes_nothing(world: World) -> None:
    from chalicelib.storage.models import Locator

    venue = first_round_venue(world)
    guest = first_round_guest(world, venue)
    transaction_id = first_round_purchase(world, guest, slots_ahead(world, venue, 2), refund="failed")
    before = stored(transaction_id)
    counts = run_upgrade(venue, dry_run=True)
    assert {step: line["missing"] for step, line in counts.items() if step != "done"} == {
        "guest_locators": 1, "purchase_summaries": 1, "refunds": 1, "refund_locators": 1}
    assert all(line["written"] == 0 for line in counts.values())
    assert stored(transaction_id) == before and Locator.find(f"guest#{guest.guest_id}") is None
    assert admin_refunds(venue) == []


def test_upgrading_twice_changes_nothing_the_second_time_and_leaves_new_data_alone(world: World) -> None:
    from chalicelib.storage.models import Locator

    venue = first_round_venue(world)
    old_guest = first_round_guest(world, venue)
    old = first_round_purchase(world, old_guest, slots_ahead(world, venue, 2), refund="failed")
    new_guest = world.guest(venue)
    new = world.purchase(new_guest, slots_ahead(world, venue, 2))
    cancelled = new_guest.api.post(f"/v1/me/transactions/{new['transaction_id']}/cancellations",
                                   {"session_ids": [new["sessions"][0]["session_id"]]})
    assert cancelled.status == 200, cancelled.json
    world.stack.deliver_all()
    new_items = stored(new["transaction_id"])
    new_locator = Locator.find(f"guest#{new_guest.guest_id}").serialize()  # type: ignore[union-attr]
    new_refund_id = cancelled.json["refund"]["refund_id"]
    assert new_refund_id.startswith(f"{new['transaction_id']}-")  # it names its purchase: no locator

    first = run_upgrade(venue)
    assert first["done"]["written"] == 4  # the old guest's locator, purchase, refund, refund locator
    upgraded = stored(old)
    second = run_upgrade(venue)
    assert second["done"] == {**second["done"], "missing": 0, "written": 0, "already": 0}
    assert stored(old) == upgraded
    assert stored(new["transaction_id"]) == new_items
    assert Locator.find(f"guest#{new_guest.guest_id}").serialize() == new_locator  # type: ignore[union-attr]
    assert Locator.find(f"refund#{new_refund_id}") is None


def test_the_command_prints_json_lines(world: World, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    venue = first_round_venue(world)
    first_round_guest(world, venue)
    monkeypatch.setattr(upgrade, "PROGRESS_EVERY", 1)  # a line per page, as every 10,000 items
    assert upgrade.main(["--dry-run", "--venue", venue.venue_id]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"event": "upgrade_progress", "step": "guest_locators", "dry_run": True, "seen": 1, "missing": 1,
            "written": 0, "already": 0} in printed
    lines = [line for line in printed if line["event"] in ("upgrade_step", "upgrade_done")]  # not the app's logs
    assert [line.get("step") for line in lines] == [
        "guest_locators", "purchase_summaries", "refunds", "refund_locators", None]
    assert lines[0]["missing"] == 1 and lines[-1] == {
        "event": "upgrade_done", "dry_run": True, "venue_id": venue.venue_id, "missing": 1, "written": 0,
        "already": 0}


def test_closing_a_slot_cancels_and_refunds_first_round_purchases_once_upgraded(world: World) -> None:
    from tests.integration.test_slot_closures import close, finish, stripe_refunds_of

    venue = first_round_venue(world)
    old_guest = first_round_guest(world, venue)
    heated, other = slots_ahead(world, venue, 2)
    old = first_round_purchase(world, old_guest, [heated, other], amount=1500)
    new = world.purchase(world.guest(venue), [heated], amount=2000)
    run_upgrade(venue)

    job = close(venue, heated, refund="full")
    assert job.status == 202, job.json
    done = finish(world, venue, job.json["job_id"])

    assert (done["sessions_cancelled"], done["refunds_created"]) == (2, 2)
    sessions = {s["slot_id"]: (s["status"], s["refund_status"]) for s in receipt_of(old_guest, old)["sessions"]}
    assert sessions == {heated["slot_id"]: ("cancelled", "refunded"), other["slot_id"]: ("booked", "none")}
    assert sorted(r["amount"] for r in stripe_refunds_of(world, {old, new["transaction_id"]})) == [1500, 2000]
    assert listed(old_guest, old)["cancelled_count"] == 1


def test_a_first_round_refund_pending_at_the_deploy_is_paid_once_and_recorded_after_the_upgrade(
        world: World) -> None:
    queues = world.stack.app_module.parts.queues
    venue = first_round_venue(world)
    guest = first_round_guest(world, venue)
    transaction_id = first_round_purchase(world, guest, slots_ahead(world, venue, 2), refund="pending")
    [refund] = receipt_of(guest, transaction_id)["refunds"]

    # Before: the worker pays it at Stripe but cannot record that; the message comes back.
    queues.send_refund(transaction_id, refund["refund_id"])
    world.stack.deliver_all()
    assert [r["status"] for r in receipt_of(guest, transaction_id)["refunds"]] == ["pending"]
    assert len(stripe_refunds_for(world, refund["refund_id"])) == 1

    run_upgrade(venue)
    settled = settle(world, guest, {"transaction_id": transaction_id})

    assert [r["status"] for r in settled["refunds"]] == ["refunded"]
    [paid] = stripe_refunds_for(world, refund["refund_id"])
    assert paid["amount"] == 2500
    assert listed(guest, transaction_id)["refund_status"] == "refunded"


def test_the_upgrade_costs_a_few_calls_per_first_round_item_and_a_rerun_only_reads(world: World) -> None:
    from collections import Counter

    from chalicelib.storage.models import Locator
    from tests.dynamodb_calls import count_dynamodb_calls

    venue = first_round_venue(world)
    guest = first_round_guest(world, venue)
    first_round_purchase(world, guest, slots_ahead(world, venue, 2), refund="failed")
    # The locators' model has a client of its own, which the shared counter does not hook.
    locators = Locator._get_connection().connection.client

    def calls_of_upgrade() -> Counter[str]:
        with count_dynamodb_calls(locators) as calls:
            run_upgrade(venue)
        return Counter(op for op in calls.operations if op != "Scan")  # Scan pages grow with the table

    # The guests' Query and a locator look-up per page of guests and of refunds; then per guest a
    # locator; per purchase its Query and one update; per refund its purchase, its locator, one update.
    assert calls_of_upgrade() == {"Query": 2, "BatchGetItem": 2, "PutItem": 2, "UpdateItem": 2, "GetItem": 1}
    assert calls_of_upgrade() == {"Query": 1, "BatchGetItem": 2}
