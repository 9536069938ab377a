"""The help-centre article, clicked through in a real browser against the whole local stack: the
admin switches the features on, a guest moves, renames and cancels sessions and watches the refund
arrive, and the portal stays usable at phone width. SCREENSHOTS=1 saves docs/screenshots/*.png."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from infra.local.seed import JUMP, Demo, build_demo
from tests.e2e.conftest import RunningStack, screenshot

pytestmark = pytest.mark.slow

REFUND_WAIT_MS = 30_000


# --- Story helpers: what a venue or a guest does, in a line each --------------------------------

def demo_venue(stack: RunningStack, **settings: Any) -> Demo:
    """The `make run SEED=1` demo (both features on, 24 h cutoff), with settings changed if asked."""
    demo = build_demo(stack)
    if settings:
        put_settings(stack, demo, **settings)
    return demo


def put_settings(stack: RunningStack, demo: Demo, allow_guest_modify: bool, refund_on_cancel: bool,
                 refund_cutoff_hours: int = 24) -> None:
    answer = requests.put(f"{stack.url}/v1/admin/venues/{demo.venue_id}/settings", timeout=10,
                          headers={"Authorization": f"Bearer {demo.venue_key}"},
                          json={"allow_guest_modify": allow_guest_modify, "refund_on_cancel": refund_on_cancel,
                                "refund_cutoff_hours": refund_cutoff_hours})
    assert answer.status_code == 200, answer.text


def receipt_via_api(stack: RunningStack, demo: Demo) -> dict[str, Any]:
    login = requests.post(f"{stack.url}/v1/venues/{demo.venue_id}/login", timeout=10,
                          json={"email": demo.guest_email, "password": demo.guest_password}).json()
    answer = requests.get(f"{stack.url}/v1/me/transactions/{demo.transaction_id}", timeout=10,
                          headers={"Authorization": f"Bearer {login['token']}"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def log_in(page: Any, stack: RunningStack, demo: Demo, shots: str | None = None) -> None:
    page.goto(f"{stack.url}/?venue={demo.venue_id}")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Email").fill(demo.guest_email)
    page.get_by_label("Password").fill(demo.guest_password)
    if shots:
        screenshot(page, f"{shots}login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Transactions and Receipts")).to_be_visible()


def open_receipt(page: Any) -> None:
    page.get_by_role("link", name="View Receipt").first.click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.locator(".session")).to_have_count(3)


def session_card(page: Any, participant: str) -> Any:
    return page.locator(".session").filter(has=page.locator("dd", has_text=re.compile(f"^{participant}$")))


def slot_on(demo: Demo, day_offset: int, start: time) -> dict[str, Any]:
    zone = ZoneInfo(demo.timezone)
    today = datetime.now(zone).date()
    wanted = datetime.combine(today + timedelta(days=day_offset), start, tzinfo=zone)
    return next(s for s in demo.slots[JUMP.product_id]
                if datetime.fromisoformat(s["start"].replace("Z", "+00:00")) == wanted)


def day_text(day: date) -> str:
    """How the portal (en-US) writes a date: "Thu, Dec 3, 2026"."""
    return f"{day:%a}, {day:%b} {day.day}, {day.year}"


# --- The admin page -------------------------------------------------------------------------------

def test_admin_switches_both_features_on_and_saves_a_new_version(page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack, allow_guest_modify=False, refund_on_cancel=False, refund_cutoff_hours=24)
    page.goto(f"{live_stack.url}/admin.html?venue={demo.venue_id}")
    expect(page.get_by_label("Venue ID")).to_have_value(demo.venue_id)
    page.get_by_label("Venue API key").fill("rbk_not_a_real_key")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("alert")).not_to_be_empty()  # the API's own message, e.g. a bad key
    page.get_by_label("Venue API key").fill(demo.venue_key)
    page.get_by_role("button", name="Connect").click()

    allow = page.get_by_label("Allow Guest to Modify Sessions")
    refund = page.get_by_role("checkbox", name=re.compile("Issue refund upon cancellation, but no refund if within"))
    hours = page.get_by_label("X hours", exact=True)
    expect(allow).not_to_be_checked()
    expect(refund).not_to_be_checked()
    expect(hours).to_have_value("24")
    allow.check()
    refund.check()
    hours.fill("48")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    expect(page.locator("#saved-version")).to_contain_text("Version 4")  # seeded 2, test set 3, now 4
    screenshot(page, "07-admin-settings", full_page=True)

    saved = requests.get(f"{live_stack.url}/v1/admin/venues/{demo.venue_id}/settings", timeout=10,
                         headers={"Authorization": f"Bearer {demo.venue_key}"}).json()
    assert (saved["allow_guest_modify"], saved["refund_on_cancel"], saved["refund_cutoff_hours"]) == (True, True, 48)

    hours.fill("9000")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("0 to 8760")


def test_admin_retries_a_failed_refund(page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    session = next(s for s in receipt_via_api(live_stack, demo)["sessions"] if s["participant_name"] == "Mia")
    live_stack.stripe_control("decline", code="charge_disputed")
    login = requests.post(f"{live_stack.url}/v1/venues/{demo.venue_id}/login", timeout=10,
                          json={"email": demo.guest_email, "password": demo.guest_password}).json()
    cancelled = requests.post(f"{live_stack.url}/v1/me/transactions/{demo.transaction_id}/cancellations", timeout=10,
                              headers={"Authorization": f"Bearer {login['token']}"},
                              json={"session_ids": [session["session_id"]]})
    assert cancelled.status_code == 200, cancelled.text

    page.goto(f"{live_stack.url}/admin.html?venue={demo.venue_id}")
    page.get_by_label("Venue API key").fill(demo.venue_key)
    page.get_by_role("button", name="Connect").click()
    page.get_by_label("Status").select_option("failed")
    failed_row = page.locator("#refunds tr[data-refund-status=failed]")
    for _ in range(60):  # the refund worker runs in the background; wait for its verdict
        if failed_row.count():
            break
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Refresh").click()
    expect(failed_row).to_have_count(1)
    screenshot(page, "08-admin-failed-refund", full_page=True)
    failed_row.get_by_role("button", name=re.compile("Retry")).click()
    expect(page.get_by_role("status")).to_contain_text("Refund retried")
    page.get_by_label("Status").select_option("")
    refunded = page.locator("#refunds tr[data-refund-status=refunded]")
    for _ in range(60):
        if refunded.count():
            break
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Refresh").click()
    expect(refunded).to_have_count(1)


# --- The guest portal -----------------------------------------------------------------------------

def test_guest_moves_renames_and_cancels_two_sessions_and_sees_the_refund(page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    zone = ZoneInfo(demo.timezone)
    today = datetime.now(zone).date()

    # A wrong password shows the API's own message.
    page.goto(f"{live_stack.url}/?venue={demo.venue_id}")
    page.get_by_label("Email").fill(demo.guest_email)
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).not_to_be_empty()

    log_in(page, live_stack, demo, shots="01-")
    expect(page.locator(".transaction")).to_have_count(1)
    expect(page.locator(".transaction")).to_contain_text("3 sessions · Total £45.00")
    screenshot(page, "02-transactions", full_page=True)
    open_receipt(page)
    expect(page.locator("#receipt-summary")).to_contain_text("£45.00")
    screenshot(page, "03-receipt", full_page=True)

    # Move Mia from day 3 at 10:00 to day 5 at 12:00 (venue time, whatever the browser's zone).
    mia = session_card(page, "Mia")
    expect(mia.locator(".when")).to_contain_text(day_text(today + timedelta(days=3)))
    mia.get_by_role("button", name="Edit Session").click()
    dialog = page.get_by_role("dialog", name="Edit Session")
    expect(dialog).to_be_visible()
    full = slot_on(demo, 3, time(14))
    expect(dialog.locator(f"#slot-{full['slot_id']}")).to_be_disabled()
    expect(dialog.locator(".slot", has=page.locator(f"#slot-{full['slot_id']}"))).to_contain_text("Full")
    target = slot_on(demo, 5, time(12))
    dialog.get_by_label("Date").fill((today + timedelta(days=5)).isoformat())
    expect(dialog.locator(f"#slot-{target['slot_id']}")).to_be_enabled()
    dialog.locator(f"#slot-{target['slot_id']}").check()
    screenshot(page, "04-edit-session")
    dialog.get_by_role("button", name="Save Changes").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status")).to_have_text("Your changes are saved.")
    moved = session_card(page, "Mia").locator(".when")
    expect(moved).to_contain_text(day_text(today + timedelta(days=5)))
    expect(moved).to_contain_text("12:00")

    # Rename Leo's participant.
    session_card(page, "Leo").get_by_role("button", name="Edit Session").click()
    dialog.get_by_label("Participant name").fill("Leo Smith")
    dialog.get_by_role("button", name="Save Changes").click()
    expect(dialog).to_be_hidden()
    expect(session_card(page, "Leo Smith")).to_have_count(1)

    # Cancel Sam (inside the 24-hour cutoff: no refund) and Mia (refunded).
    session_card(page, "Sam").get_by_label("Select to cancel").check()
    session_card(page, "Mia").get_by_label("Select to cancel").check()
    page.get_by_role("button", name="Cancel Session(s)").click()
    confirm = page.get_by_role("dialog", name="Cancel Session(s)")
    expect(confirm.locator("#cancel-total")).to_contain_text("Total refund: £15.00")
    expect(confirm.locator("li", has_text="Sam")).to_contain_text("No refund")
    expect(confirm.locator("li", has_text="Mia")).to_contain_text("Refund £15.00")
    screenshot(page, "05-cancel-confirmation")
    confirm.get_by_role("button", name="Confirm Cancellations").dblclick()  # twice: still one cancellation
    expect(confirm).to_be_hidden()

    for name in ("Sam", "Mia"):
        expect(session_card(page, name).locator(".badge-cancelled")).to_have_text("Cancelled")
    expect(session_card(page, "Sam").locator(".facts")).to_contain_text("Not refunded")
    # Pending becomes refunded by itself: the page polls, nobody reloads.
    expect(session_card(page, "Mia").locator(".facts")).to_contain_text("Refunded", timeout=REFUND_WAIT_MS)
    expect(page.get_by_role("status")).to_contain_text("Your refund of £15.00 has been sent")
    expect(session_card(page, "Leo Smith").locator(".badge-booked")).to_have_text("Booked")
    screenshot(page, "06-receipt-refunded", full_page=True)

    receipt = receipt_via_api(live_stack, demo)
    assert [r["amount"] for r in receipt["refunds"]] == [1500]
    by_name = {s["participant_name"]: s for s in receipt["sessions"]}
    assert by_name["Mia"]["slot_id"] == target["slot_id"]
    assert (by_name["Mia"]["status"], by_name["Mia"]["refund_status"]) == ("cancelled", "refunded")
    assert (by_name["Sam"]["status"], by_name["Sam"]["refund_status"]) == ("cancelled", "not_refunded")
    assert by_name["Leo Smith"]["status"] == "booked"

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('rebook.guest'))") == []


def test_with_editing_switched_off_there_is_no_edit_button(page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack, allow_guest_modify=False, refund_on_cancel=True)
    log_in(page, live_stack, demo)
    open_receipt(page)
    expect(page.get_by_role("button", name="Edit Session")).to_have_count(0)
    expect(page.get_by_label("Select to cancel")).to_have_count(3)  # cancelling with refunds is still on


def test_a_guest_can_do_it_all_on_a_phone(phone: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    log_in(phone, live_stack, demo)
    open_receipt(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375, "the receipt scrolls sideways"
    screenshot(phone, "phone-receipt", full_page=True)

    session_card(phone, "Mia").get_by_role("button", name="Edit Session").click()
    dialog = phone.get_by_role("dialog", name="Edit Session")
    expect(dialog.locator(".slot").first).to_be_visible()
    screenshot(phone, "phone-edit-session")
    dialog.get_by_role("button", name="Close").click()

    session_card(phone, "Leo").get_by_label("Select to cancel").tap()
    phone.get_by_role("button", name="Cancel Session(s)").tap()
    confirm = phone.get_by_role("dialog", name="Cancel Session(s)")
    expect(confirm.locator("#cancel-total")).to_contain_text("Total refund: £15.00")
    screenshot(phone, "phone-cancel-confirmation")
    confirm.get_by_role("button", name="Confirm Cancellations").tap()
    expect(session_card(phone, "Leo").locator(".facts")).to_contain_text("Refunded", timeout=REFUND_WAIT_MS)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375


def test_the_receipt_works_from_the_keyboard(page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    log_in(page, live_stack, demo)
    page.keyboard.press("Tab")  # from the focused heading to the first "View Receipt"
    for _ in range(10):
        if page.evaluate("document.activeElement.textContent") == "View Receipt":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Receipt")).to_be_focused()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Edit Session":
            break
    edit_button_id = page.evaluate("document.activeElement.id")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Edit Session")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator(f"#{edit_button_id}")).to_be_focused()
