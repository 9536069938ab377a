"""The front desk on the admin page, in a real browser against the whole local stack: staff find a
guest, open a receipt, rename, move and cancel for them with a reason and a refund choice (the
amount shown before confirming), close a slot and watch the job finish, and page through refunds.
SCREENSHOTS=1 saves docs/screenshots/*.png."""
from __future__ import annotations

import re
from datetime import time
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from infra.local.seed import TODDLERS, paid_intent
from tests.e2e.conftest import RunningStack, screenshot
from tests.e2e.test_portal_browser import demo_venue, receipt_via_api, slot_on

pytestmark = pytest.mark.slow


def connect(page: Any, stack: RunningStack, demo: Any, *, wait_until_finished: bool = True) -> None:
    page.goto(f"{stack.url}/admin.html?venue={demo.venue_id}")
    page.get_by_label("Venue API key").fill(demo.venue_key)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", name="Front desk")).to_be_visible()
    if wait_until_finished:
        expect(page.locator("#settings-title")).to_be_focused()  # connecting has finished


def test_staff_find_a_guest_rename_move_and_cancel_with_the_refund_shown_first(
        page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack, allow_guest_modify=False, refund_on_cancel=True, refund_cutoff_hours=24)
    # The front desk works as soon as it is shown, while the rest of the page is still loading
    # (the refunds list held back here; on a slow machine it once answered "send Authorization").
    held: list[Any] = []
    refunds_list = re.compile(r"/refunds\?")

    def hold(route: Any) -> None:
        held.append(route)

    page.route(refunds_list, hold)
    connect(page, live_stack, demo, wait_until_finished=False)
    page.get_by_label("Guest email").fill(demo.guest_email.upper())
    page.get_by_role("button", name="Find guest").click()
    expect(page.locator("#guest-found")).to_have_text(f"Ada Lovelace ({demo.guest_email})")
    assert held, "the refunds list was not held back"
    for route in held:
        route.continue_()
    page.unroute(refunds_list)
    expect(page.locator("#settings-title")).to_be_focused()  # connecting has finished
    page.get_by_role("button", name=re.compile("^Open receipt")).first.click()
    expect(page.locator(".staff-session")).to_have_count(3)
    screenshot(page, "09-front-desk-receipt", full_page=True)

    mia = page.locator(".staff-session").filter(has_text="Mia")
    mia.get_by_role("button", name="Move or rename Mia").click()
    page.get_by_label("Participant name").fill("Mila")
    page.get_by_label("Move to a slot on").fill(slot_on(demo, 3, time(16))["start"][:10])
    page.get_by_role("button", name="Find slots that day").click()
    page.get_by_label("Slot", exact=True).select_option(slot_on(demo, 3, time(16))["slot_id"])
    page.get_by_role("button", name="Save change").click()
    expect(page.locator("#error")).to_contain_text("Say why")  # a reason is required
    page.get_by_label("Reason for the change").fill("Guest phoned: the 4 pm slot suits them better")
    page.get_by_role("button", name="Save change").click()
    expect(page.get_by_role("status").first).to_have_text("The session is changed.")
    expect(page.locator(".staff-session").filter(has_text="Mila")).to_have_count(1)
    moved = next(s for s in receipt_via_api(live_stack, demo)["sessions"] if s["participant_name"] == "Mila")
    assert moved["slot_id"] == slot_on(demo, 3, time(16))["slot_id"]

    # Cancel Sam (inside the 24-hour cutoff): by the venue's rule nothing, in full the whole amount.
    page.locator(".staff-session").filter(has_text="Sam").get_by_role("checkbox").check()
    page.get_by_label("Reason for cancelling").fill("Child is sick")
    page.get_by_role("button", name="Review cancellation").click()
    expect(page.locator("#cancel-quote")).to_contain_text("£0.00 back")
    page.get_by_label("In full", exact=True).check()
    expect(page.get_by_role("button", name="Confirm cancellation")).to_be_hidden()
    page.get_by_role("button", name="Review cancellation").click()
    expect(page.locator("#cancel-quote")).to_contain_text("£15.00 back")
    screenshot(page, "10-front-desk-cancel", full_page=True)
    page.get_by_role("button", name="Confirm cancellation").click()
    expect(page.get_by_role("status").first).to_contain_text("A refund of £15.00 is on its way")
    sam = next(s for s in receipt_via_api(live_stack, demo)["sessions"] if s["participant_name"] == "Sam")
    assert sam["status"] == "cancelled"
    history = requests.get(f"{live_stack.url}/v1/admin/venues/{demo.venue_id}/transactions/{demo.transaction_id}"
                           "/history", headers={"Authorization": f"Bearer {demo.venue_key}"}, timeout=10).json()
    assert [e["reason"] for e in history["events"] if e["reason"]] == [
        "Guest phoned: the 4 pm slot suits them better", "Child is sick"]


def test_staff_close_a_slot_and_watch_the_job_finish(page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    party_slot = slot_on(demo, 3, time(12))  # eleven party guests in one purchase
    connect(page, live_stack, demo)
    page.get_by_label("Product ID").fill("jump-60")
    page.get_by_label("Date", exact=True).fill(party_slot["start"][:10])
    page.get_by_role("button", name="Show slots").click()
    row = page.locator(f"#slot-rows tr[data-slot-id='{party_slot['slot_id']}']")
    expect(row).to_contain_text("11 of 12")
    row.get_by_role("button", name=re.compile("^Close the slot")).click()
    expect(page.locator("#slot-close-what")).to_contain_text("11 booked sessions will be cancelled")
    page.get_by_label("Reason for closing").fill("The heater broke")
    page.get_by_role("button", name="Close slot and cancel its sessions").click()
    expect(row).to_have_attribute("data-status", "closed")
    expect(page.locator("#job-progress")).to_have_text(
        "Slot closed: 11 sessions cancelled, 1 refund on their way.", timeout=30_000)
    screenshot(page, "11-close-slot", full_page=True)
    bought = requests.post(f"{live_stack.url}/v1/admin/venues/{demo.venue_id}/transactions", timeout=10,
                           headers={"Authorization": f"Bearer {demo.venue_key}"},
                           json={"guest_id": demo.guest_id, "payment_intent_id": paid_intent(live_stack, 1500, "gbp"),
                                 "currency": "gbp", "sessions": [{"slot_id": party_slot["slot_id"],
                                                                  "participant_name": "Late", "amount": 1500}]})
    assert bought.status_code == 409 and bought.json()["error"]["code"] == "slot_closed"


def test_staff_page_through_the_refunds(page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    admin = {"Authorization": f"Bearer {demo.venue_key}"}
    base = f"{live_stack.url}/v1/admin/venues/{demo.venue_id}"
    day = slot_on(demo, 6, time(10))
    slot = requests.post(f"{base}/slots", headers=admin, timeout=10, json={
        "product_id": TODDLERS.product_id, "product_name": TODDLERS.name, "capacity": 30,
        "start": day["start"], "end": day["end"]}).json()
    made = requests.post(f"{base}/transactions", headers=admin, timeout=10, json={
        "guest_id": demo.guest_id, "payment_intent_id": paid_intent(live_stack, 22 * 900, "gbp"), "currency": "gbp",
        "sessions": [{"slot_id": slot["slot_id"], "participant_name": f"Kid {n}", "amount": 900} for n in range(22)]})
    assert made.status_code == 201, made.text
    for session in made.json()["sessions"]:  # 22 refunds, one per request
        answer = requests.post(f"{base}/transactions/{made.json()['transaction_id']}/cancellations", headers=admin,
                               timeout=10, json={"session_ids": [session["session_id"]], "refund": "full",
                                                 "reason": "class cancelled"})
        assert answer.status_code == 200, answer.text
    connect(page, live_stack, demo)
    expect(page.locator("#refunds tr")).to_have_count(20)
    page.get_by_role("button", name="More refunds").click()
    expect(page.locator("#refunds tr")).to_have_count(22)
    expect(page.get_by_role("button", name="More refunds")).to_be_hidden()
    ids = page.locator("#refunds tr").evaluate_all("rows => rows.map(r => r.dataset.refundId)")
    assert len(set(ids)) == 22
