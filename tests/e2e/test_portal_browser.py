"""The help-centre article, clicked through in a real browser against the whole local stack, word
for word where it names a control: the guest's name menu, "Transactions and Receipts", "View
Receipt", the "Edit Session" popup with "Edit" beside each session, "Save Changes", "Edit
Sessions", "Cancel Session(s)", "Confirm Cancellations", and the status beside each session.
Every page state is checked by axe-core; each story runs at desktop and at phone width.
SCREENSHOTS=1 saves docs/screenshots/*.png."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from infra.local.seed import JUMP, Demo, DemoApi, build_demo, purchase
from tests.e2e.conftest import PHONE, RunningStack, screenshot

pytestmark = pytest.mark.slow

REFUND_WAIT_MS = 30_000
RAW_ID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")  # a ULID: never shown to a guest

Axe = Callable[[Any, str], None]


# --- Story helpers: what a venue or a guest does, in a line each --------------------------------

@pytest.fixture(params=["desktop", "phone"])
def device(request: Any) -> Any:
    """The same story on a desktop and on a phone."""
    return request.getfixturevalue("page" if request.param == "desktop" else "phone")


def is_phone(page: Any) -> bool:
    return page.viewport_size["width"] <= PHONE["width"]


def demo_venue(stack: RunningStack, **settings: Any) -> Demo:
    """The `make run SEED=1` demo (both features on, 24 h cutoff), with settings changed if asked."""
    demo = build_demo(stack)
    if settings:
        put_settings(stack, demo, **settings)
    return demo


def admin_headers(demo: Demo) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.venue_key}"}


def put_settings(stack: RunningStack, demo: Demo, allow_guest_modify: bool = True, refund_on_cancel: bool = True,
                 refund_cutoff_hours: int = 24, **more: Any) -> dict[str, Any]:
    answer = requests.put(f"{stack.url}/v1/admin/venues/{demo.venue_id}/settings", timeout=10,
                          headers=admin_headers(demo),
                          json={"allow_guest_modify": allow_guest_modify, "refund_on_cancel": refund_on_cancel,
                                "refund_cutoff_hours": refund_cutoff_hours, **more})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def guest_token(stack: RunningStack, demo: Demo) -> str:
    login = requests.post(f"{stack.url}/v1/venues/{demo.venue_id}/login", timeout=10,
                          json={"email": demo.guest_email, "password": demo.guest_password})
    assert login.status_code == 200, login.text
    return str(login.json()["token"])


def receipt_via_api(stack: RunningStack, demo: Demo) -> dict[str, Any]:
    answer = requests.get(f"{stack.url}/v1/me/transactions/{demo.transaction_id}", timeout=10,
                          headers={"Authorization": f"Bearer {guest_token(stack, demo)}"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def session_id_of(stack: RunningStack, demo: Demo, participant: str) -> str:
    return next(s["session_id"] for s in receipt_via_api(stack, demo)["sessions"] if s["participant_name"] == participant)


def log_in(page: Any, stack: RunningStack, demo: Demo, axe: Axe | None = None, shots: str | None = None) -> None:
    page.goto(f"{stack.url}/?venue={demo.venue_id}")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator("#view-login")).to_contain_text("guest profile at Bounce Park (demo)")
    if axe:
        axe(page, "the login page")
    page.get_by_label("Email").fill(demo.guest_email)
    page.get_by_label("Password").fill(demo.guest_password)
    if shots:
        screenshot(page, f"{shots}login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Transactions and Receipts")).to_be_visible()


def via_name_menu(page: Any, axe: Axe | None = None) -> None:
    """Article step 2: the guest's name at the top right, then "Transactions and Receipts"."""
    page.get_by_role("button", name="Ada Lovelace").click()
    link = page.get_by_role("link", name="Transactions and Receipts", exact=True)
    expect(link).to_be_visible()
    if axe:
        axe(page, "the open name menu")
    link.click()
    expect(page.get_by_role("heading", name="Transactions and Receipts")).to_be_visible()


def open_receipt(page: Any) -> None:
    page.get_by_role("link", name="View Receipt").first.click()
    expect(page.get_by_role("heading", name=re.compile("^Receipt"))).to_be_visible()
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


def zone_abbreviation(demo: Demo, when: datetime | None = None) -> str:
    """What en-US calls the venue's zone at that moment: "GMT" or "GMT+1" for London."""
    offset = (when or datetime.now(UTC)).astimezone(ZoneInfo(demo.timezone)).utcoffset() or timedelta()
    hours = int(offset.total_seconds() // 3600)
    return "GMT" if hours == 0 else f"GMT{hours:+d}"


def open_edit_window(page: Any, participant: str, shot: str | None = None) -> Any:
    """Article steps 4 and 5: "Edit Session", then "Edit" beside the session."""
    page.get_by_role("button", name="Edit Session", exact=True).click()
    popup = page.get_by_role("dialog", name="Edit Session")
    expect(popup).to_be_visible()
    if shot:
        screenshot(page, shot)
    popup.locator(".edit-row", has_text=participant).get_by_role("button", name="Edit", exact=True).click()
    window = page.get_by_role("dialog", name="Change session")
    expect(window).to_be_visible()
    return window


def pick_day(window: Any, day: date) -> None:
    calendar = window.locator("#edit-calendar")
    for _ in range(3):
        if calendar.locator(f'button[data-date="{day.isoformat()}"]').count():
            break
        calendar.get_by_role("button", name="Next month").click()
    button = calendar.locator(f'button[data-date="{day.isoformat()}"]')
    expect(button).to_be_enabled()
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")


def start_cancelling(page: Any, *participants: str, axe: Axe | None = None) -> Any:
    """Article steps 6 and 7: "Edit Sessions", tick, "Cancel Session(s)"; returns the confirmation."""
    page.get_by_role("button", name="Edit Sessions", exact=True).click()
    for participant in participants:
        session_card(page, participant).get_by_label("Select to cancel").check()
    if axe:
        axe(page, "the receipt with sessions ticked to cancel")
    page.get_by_role("button", name="Cancel Session(s)").click()
    confirm = page.get_by_role("dialog", name="Cancel Session(s)")
    expect(confirm.locator("#cancel-total")).to_be_visible()
    return confirm


def refund_under_way(prefix: str, amount: str) -> re.Pattern[str]:
    """The message after a cancellation: the refund on its way, or already sent when the worker was quicker."""
    return re.compile(re.escape(prefix) + f"(A refund of {re.escape(amount)} is on its way"
                      f"|Your refund of {re.escape(amount)} has been sent)")


def focused_on(page: Any, element_id: str) -> None:
    """The document's focus is on that element (whether or not the browser window is in front)."""
    page.wait_for_function("(id) => document.activeElement && document.activeElement.id === id", arg=element_id)


def in_viewport(page: Any, selector: str) -> bool:
    return bool(page.evaluate("""(selector) => {
        const box = document.querySelector(selector).getBoundingClientRect();
        return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
    }""", selector))


# --- The article's path ---------------------------------------------------------------------------

def test_a_guest_follows_the_article_to_move_rename_and_cancel(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    page = device
    phone = is_phone(page)
    shots = "phone-" if phone else ""
    demo = demo_venue(live_stack)
    zone = ZoneInfo(demo.timezone)
    today = datetime.now(zone).date()

    log_in(page, live_stack, demo, axe, shots=None if phone else "01-")
    # Names, not ids: the venue's name in the header, nothing that looks like an id anywhere.
    expect(page.locator("#venue-label")).to_have_text("Bounce Park (demo)")
    via_name_menu(page, axe)
    card = page.locator(".transaction")
    expect(card).to_have_count(1)
    expect(card.locator("h2")).to_have_text("Open Jump 60 min")
    expect(card).to_contain_text(re.compile(r"Booking reference [2-9A-HJKMNP-TV-Z]{3}-[2-9A-HJKMNP-TV-Z]{3}"))
    expect(card).to_contain_text("3 sessions · Total £45.00")
    expect(card).to_contain_text("All booked")
    expect(card.locator(".when")).to_contain_text(zone_abbreviation(demo))
    assert not RAW_ID.search(page.locator("body").inner_text())
    axe(page, "Transactions and Receipts")
    screenshot(page, f"{shots}02-transactions" if not phone else "phone-transactions", full_page=True)

    open_receipt(page)
    reference = page.locator("#receipt-summary .reference").inner_text()
    expect(page.get_by_role("heading", name=f"Receipt {reference}")).to_be_visible()
    expect(page.locator("#receipt-summary")).to_contain_text("£45.00")
    expect(page.locator("#receipt-summary")).to_contain_text(f"London time ({zone_abbreviation(demo)})")
    assert not RAW_ID.search(page.locator("body").inner_text())
    # Sam's session starts in about three hours: inside the 24-hour rule, and the page says so.
    expect(session_card(page, "Sam")).to_contain_text("Cancelling now gives no refund: refunds end 24 hours before a session starts")
    expect(session_card(page, "Mia")).to_contain_text("for a refund.")
    axe(page, "the receipt")
    screenshot(page, "phone-receipt" if phone else "03-receipt", full_page=True)

    # Move Mia from day 3 at 10:00 to day 5 at 12:00 (venue time, whatever the browser's zone).
    expect(session_card(page, "Mia").locator(".when")).to_contain_text(day_text(today + timedelta(days=3)))
    window = open_edit_window(page, "Mia", shot="phone-edit-session-popup" if phone else "04-edit-session-popup")
    axe(page, "the edit window")
    target = slot_on(demo, 5, time(12))
    pick_day(window, today + timedelta(days=5))
    expect(window.locator(f"#slot-{target['slot_id']}")).to_be_enabled()
    window.locator(f"#slot-{target['slot_id']}").check()
    expect(window.locator("#edit-warning")).to_contain_text("You can still cancel for a refund until")
    screenshot(page, "phone-edit-session" if phone else "04-edit-session")
    window.get_by_role("button", name="Save Changes").click()
    expect(window).to_be_hidden()
    popup = page.get_by_role("dialog", name="Edit Session")
    expect(popup.get_by_role("status").first).to_contain_text("Your changes are saved")
    expect(popup.locator(".edit-row", has_text="Mia").get_by_role("button", name="Edit", exact=True)).to_be_focused()
    axe(page, "the Edit Session popup after saving")
    popup.get_by_role("button", name="Close").click()
    moved = session_card(page, "Mia").locator(".when")
    expect(moved).to_contain_text(day_text(today + timedelta(days=5)))
    expect(moved).to_contain_text("12:00")

    # Rename Leo's participant.
    window = open_edit_window(page, "Leo")
    window.get_by_label("Participant name").fill("Leo Smith")
    window.get_by_role("button", name="Save Changes").click()
    expect(window).to_be_hidden()
    page.get_by_role("dialog", name="Edit Session").get_by_role("button", name="Close").click()
    expect(session_card(page, "Leo Smith")).to_have_count(1)

    # Cancel Sam (inside the 24-hour cutoff: no refund) and Mia (refunded).
    confirm = start_cancelling(page, "Sam", "Mia", axe=axe)
    expect(confirm.locator("#cancel-total")).to_contain_text("Total refund: £15.00")
    expect(confirm.locator("li", has_text="Sam")).to_contain_text("No refund")
    expect(confirm.locator("li", has_text="Sam")).to_contain_text("Refunds end 24 hours before a session starts")
    expect(confirm.locator("li", has_text="Mia")).to_contain_text("Refund £15.00")
    expect(confirm).to_contain_text("Cancelling is final")
    expect(confirm).to_contain_text("5 to 10 business days")
    axe(page, "the cancel confirmation")
    screenshot(page, "phone-cancel-confirmation" if phone else "05-cancel-confirmation")
    confirm.get_by_role("button", name="Confirm Cancellations").dblclick()  # twice: still one cancellation
    expect(confirm).to_be_hidden()

    # The feedback is where the guest is looking, on a phone too, in a green box for good news.
    message = page.locator("#receipt-message")
    expect(message).to_contain_text(refund_under_way("Cancelled 2 sessions. ", "£15.00"))
    expect(message).to_be_focused()
    assert in_viewport(page, "#receipt-message")
    expect(message).to_have_class(re.compile("message-ok"))
    # The status beside each session (article step 8); pending turns refunded with no reload.
    for name in ("Sam", "Mia"):
        expect(session_card(page, name).locator(".badge-cancelled")).to_have_text("Cancelled")
    expect(session_card(page, "Sam").locator(".session-status")).to_contain_text("No refund")
    expect(session_card(page, "Mia").locator(".session-status")).to_contain_text("Refunded", timeout=REFUND_WAIT_MS)
    expect(message).to_contain_text("Your refund of £15.00 has been sent")
    expect(session_card(page, "Leo Smith").locator(".badge-booked")).to_have_text("Booked")
    axe(page, "the receipt after the refund")
    screenshot(page, "phone-receipt-refunded" if phone else "06-receipt-refunded", full_page=True)
    if phone:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the page scrolls sideways"

    via_name_menu(page)
    expect(page.locator(".transaction")).to_contain_text("2 of 3 cancelled")
    expect(page.locator(".transaction")).to_contain_text("Refunded")

    receipt = receipt_via_api(live_stack, demo)
    assert [r["amount"] for r in receipt["refunds"]] == [1500]
    by_name = {s["participant_name"]: s for s in receipt["sessions"]}
    assert by_name["Mia"]["slot_id"] == target["slot_id"]
    assert (by_name["Mia"]["status"], by_name["Mia"]["refund_status"]) == ("cancelled", "refunded")
    assert (by_name["Sam"]["status"], by_name["Sam"]["refund_status"]) == ("cancelled", "not_refunded")
    assert by_name["Leo Smith"]["status"] == "booked"

    page.get_by_role("button", name="Ada Lovelace").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('rebook.guest'))") == []


# --- Names, reasons and errors ---------------------------------------------------------------------

def test_an_unknown_venue_says_so(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    device.goto(f"{live_stack.url}/")
    expect(device.get_by_role("heading", name="Manage your bookings")).to_be_visible()
    axe(device, "the venue form")
    device.get_by_role("button", name="Continue").click()
    expect(device.get_by_label("Venue ID")).to_have_attribute("aria-invalid", "true")
    expect(device.locator("#venue-id-error")).to_have_text("Enter the venue ID from your booking confirmation.")
    device.goto(f"{live_stack.url}/?venue=01ARZ3NDEKTSV4RRFFQ69G5FAV")
    field = device.get_by_label("Venue ID")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(device.locator("#venue-id-error")).to_have_text(
        "We could not find a venue with that ID. Check the link or the ID in your booking confirmation.")
    expect(device.get_by_role("heading", name="Log in")).to_be_hidden()
    axe(device, "an unknown venue")


def test_reasons_when_the_venue_switches_editing_and_refunds_off(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    demo = demo_venue(live_stack, allow_guest_modify=False, refund_on_cancel=False)
    log_in(device, live_stack, demo)
    open_receipt(device)
    expect(device.get_by_role("button", name="Edit Session", exact=True)).to_have_count(0)
    expect(device.locator("#receipt-policy")).to_have_text(
        "Bounce Park (demo) does not let guests change or cancel sessions online. "
        "To change a booking, contact Bounce Park (demo).")
    expect(session_card(device, "Mia")).to_contain_text("does not let guests change sessions online: contact the venue")
    expect(device.locator("body")).not_to_contain_text("Cancelling now gives no refund")
    axe(device, "a receipt with editing and refunds off")

    put_settings(live_stack, demo, allow_guest_modify=False, refund_on_cancel=False)
    put_settings(live_stack, demo, allow_guest_modify=True, refund_on_cancel=False)
    device.wait_for_load_state("networkidle")
    device.reload()
    expect(session_card(device, "Mia")).to_contain_text(
        "Bounce Park (demo) does not give refunds for sessions cancelled online. You can still cancel, without a refund.")
    confirm = start_cancelling(device, "Mia")
    expect(confirm.locator("li", has_text="Mia")).to_contain_text("does not refund cancellations made online")
    expect(confirm.locator("#cancel-total")).to_contain_text("No refund is due")


def test_a_session_that_has_started_says_why_it_cannot_change(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    page = device
    demo = demo_venue(live_stack)
    admin = DemoApi(live_stack.url, demo.venue_key)
    base = f"/v1/admin/venues/{demo.venue_id}"
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    slot = admin.post(f"{base}/slots", {"product_id": JUMP.product_id, "product_name": JUMP.name,
                                        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                        "capacity": 5})
    purchase(live_stack, admin, base, demo.guest_id, demo.currency, [(slot, "Zoe", JUMP.amount)])
    page.wait_for_timeout(max(0, (start - datetime.now(UTC)).total_seconds() * 1000 + 500))
    log_in(page, live_stack, demo)
    page.get_by_role("link", name="View Receipt").first.click()  # the newest purchase
    expect(session_card(page, "Zoe")).to_contain_text(
        "This session has started, so it can no longer be changed online. If you need help, contact Bounce Park (demo).")
    expect(page.get_by_role("button", name="Edit Session", exact=True)).to_have_count(0)
    axe(page, "a receipt with a started session")


def test_a_move_into_the_no_refund_window_is_warned_before_saving(device: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    soon = next(s for s in demo.slots[JUMP.product_id]
                if datetime.fromisoformat(s["start"].replace("Z", "+00:00")) < datetime.now(UTC) + timedelta(hours=23)
                and s["remaining"] > 0)
    day = datetime.fromisoformat(soon["start"].replace("Z", "+00:00")).astimezone(ZoneInfo(demo.timezone)).date()
    log_in(device, live_stack, demo)
    open_receipt(device)
    window = open_edit_window(device, "Mia")
    pick_day(window, day)
    window.locator(f"#slot-{soon['slot_id']}").check()
    warning = window.locator("#edit-warning")
    expect(warning).to_contain_text("If you move to it, you can no longer get a refund if you cancel")
    expect(warning).to_have_class(re.compile("message-warn"))
    expect(window.get_by_role("button", name="Save Changes")).to_have_attribute("aria-describedby", "edit-warning")


def test_the_calendar_shows_which_days_have_free_slots(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    demo = demo_venue(live_stack)
    zone = ZoneInfo(demo.timezone)
    today = datetime.now(zone).date()
    # Day 6: every Open Jump slot bought out, so it has no free time.
    admin = DemoApi(live_stack.url, demo.venue_key)
    base = f"/v1/admin/venues/{demo.venue_id}"
    for start in JUMP.starts:
        slot = slot_on(demo, 6, start)
        purchase(live_stack, admin, base, demo.guest_id, demo.currency,
                 [(slot, f"Party {n}", JUMP.amount) for n in range(int(slot["remaining"]))])
    log_in(device, live_stack, demo)
    device.get_by_role("link", name="View Receipt").last.click()  # the purchase with Mia
    window = open_edit_window(device, "Mia")
    calendar = window.locator("#edit-calendar")
    full, free = today + timedelta(days=6), today + timedelta(days=5)
    for _ in range(2):
        if calendar.locator(f'button[data-date="{full.isoformat()}"]').count():
            break
        calendar.get_by_role("button", name="Next month").click()
    expect(calendar.locator(f'button[data-date="{full.isoformat()}"]')).to_be_disabled()
    expect(calendar.locator(f'button[data-date="{full.isoformat()}"]')).to_have_attribute("aria-label", re.compile("no free times$"))
    if calendar.locator(f'button[data-date="{free.isoformat()}"]').count():
        expect(calendar.locator(f'button[data-date="{free.isoformat()}"]')).to_be_enabled()
    axe(device, "the calendar")
    # Keyboard: the arrow keys move between free days.
    pick_day(window, free)
    window.locator(f'button[data-date="{free.isoformat()}"]').focus()
    device.keyboard.press("ArrowRight")
    focused = device.evaluate("document.activeElement.dataset.date")
    assert focused and focused > free.isoformat() and focused != full.isoformat()


def test_errors_are_sentences_for_guests_beside_the_control(device: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    device.goto(f"{live_stack.url}/?venue={demo.venue_id}")
    device.get_by_role("button", name="Log in").click()
    expect(device.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    device.get_by_label("Email").fill(demo.guest_email)
    device.get_by_label("Password").fill("not my password")
    device.get_by_role("button", name="Log in").click()
    expect(device.locator("#login-error")).to_have_text(
        "That email and password do not match a guest profile at Bounce Park (demo). Check both and try again.")

    device.get_by_label("Password").fill(demo.guest_password)
    device.get_by_role("button", name="Log in").click()
    open_receipt(device)
    window = open_edit_window(device, "Mia")
    target = slot_on(demo, 4, time(10))  # 10 of 12 places taken by the seed
    pick_day(window, datetime.fromisoformat(target["start"].replace("Z", "+00:00")).astimezone(ZoneInfo(demo.timezone)).date())
    window.locator(f"#slot-{target['slot_id']}").check()
    # Someone else takes the last places meanwhile.
    admin = DemoApi(live_stack.url, demo.venue_key)
    purchase(live_stack, admin, f"/v1/admin/venues/{demo.venue_id}", demo.guest_id, demo.currency,
             [(target, f"Late {n}", JUMP.amount) for n in range(2)])
    window.get_by_role("button", name="Save Changes").click()
    error = window.locator("#edit-slot-error")
    expect(error).to_have_text("Someone has just taken the last place in that time slot. Choose another time.")
    if is_phone(device):
        assert in_viewport(device, "#edit-slot-error") or device.evaluate(
            "document.querySelector('#edit-slot-error').getBoundingClientRect().height > 0")
    assert "no seat left" not in window.inner_text()


# --- Refunds that fail, and a login that expires ----------------------------------------------------

def test_a_failed_refund_is_not_good_news_and_the_page_follows_the_venues_retry(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    demo = demo_venue(live_stack)
    log_in(device, live_stack, demo)
    open_receipt(device)
    # This purchase's refund only: the stack is shared by every browser test of the run.
    live_stack.stripe_control("decline", code="charge_disputed", metadata={"transaction_id": demo.transaction_id})
    confirm = start_cancelling(device, "Leo")
    confirm.get_by_role("button", name="Confirm Cancellations").click()
    leo = session_card(device, "Leo")
    expect(leo.locator(".session-status")).to_contain_text("Refund failed", timeout=REFUND_WAIT_MS)
    message = device.locator("#receipt-message")
    expect(message).to_contain_text("did not go through yet")
    expect(message).to_have_class(re.compile("message-warn"))
    expect(message).not_to_have_class(re.compile("message-ok"))
    axe(device, "a receipt with a failed refund")

    refund_id = receipt_via_api(live_stack, demo)["refunds"][0]["refund_id"]
    retried = requests.post(f"{live_stack.url}/v1/admin/venues/{demo.venue_id}/refunds/{refund_id}/retry", json={},
                            headers=admin_headers(demo), timeout=10)
    assert retried.status_code == 202, retried.text
    # Nobody reloads: the page keeps asking while the refund is failed or pending.
    expect(leo.locator(".session-status")).to_contain_text("Refunded", timeout=REFUND_WAIT_MS)


def test_an_expired_login_says_so_and_returns_to_the_receipt(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    demo = demo_venue(live_stack)
    log_in(device, live_stack, demo)
    open_receipt(device)
    receipt_url = device.url
    device.wait_for_load_state("networkidle")
    # The token stops working (it expired, or was revoked): the next call answers 401.
    device.evaluate("""(venue) => {
        const key = `rebook.guest.${venue}`;
        const login = JSON.parse(sessionStorage.getItem(key));
        login.token = login.token.slice(0, -4) + "AAAA";
        sessionStorage.setItem(key, JSON.stringify(login));
    }""", demo.venue_id)
    device.reload()
    expect(device.get_by_role("heading", name="Log in")).to_be_visible()
    expect(device.locator("#login-notice")).to_have_text(re.compile("^Your login has expired"))
    axe(device, "the login page after an expired login")
    device.get_by_label("Email").fill(demo.guest_email)
    device.get_by_label("Password").fill(demo.guest_password)
    device.get_by_role("button", name="Log in").click()
    expect(device.get_by_role("heading", name=re.compile("^Receipt"))).to_be_visible()
    assert device.url == receipt_url
    expect(device.locator(".session")).to_have_count(3)
    device.wait_for_load_state("networkidle")  # reload only once nothing is in flight

    # The same when the stored login's time is up before any call.
    device.evaluate("""(venue) => {
        const key = `rebook.guest.${venue}`;
        const login = JSON.parse(sessionStorage.getItem(key));
        login.expires_at = "2000-01-01T00:00:00Z";
        sessionStorage.setItem(key, JSON.stringify(login));
    }""", demo.venue_id)
    device.reload()
    expect(device.locator("#login-notice")).to_have_text(re.compile("^Your login has expired"))


# --- Keyboard -----------------------------------------------------------------------------------------

def test_the_article_path_works_from_the_keyboard(page: Any, live_stack: RunningStack) -> None:
    demo = demo_venue(live_stack)
    log_in(page, live_stack, demo)
    page.locator("#account-button").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Transactions and Receipts", exact=True)).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#account-button")).to_be_focused()
    expect(page.locator("#account-menu")).to_be_hidden()
    page.get_by_role("link", name="View Receipt").first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Receipt"))).to_be_focused()
    # The receipt's sessions and buttons come with its answer, a moment after its heading: a
    # guest tabs through what is on the page (tabbing before it came went round the page without it).
    expect(page.get_by_role("button", name="Edit Session", exact=True)).to_be_visible()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Edit Session":
            break
    page.keyboard.press("Enter")
    popup = page.get_by_role("dialog", name="Edit Session")
    expect(popup).to_be_visible()
    edit = popup.locator(".edit-row", has_text="Mia").get_by_role("button", name="Edit", exact=True)
    edit.focus()
    page.keyboard.press("Enter")
    window = page.get_by_role("dialog", name="Change session")
    expect(window).to_be_visible()
    page.keyboard.press("Escape")
    expect(window).to_be_hidden()
    expect(edit).to_be_focused()
    page.keyboard.press("Escape")
    expect(popup).to_be_hidden()
    expect(page.get_by_role("button", name="Edit Session", exact=True)).to_be_focused()
    page.get_by_role("button", name="Edit Sessions", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Select to cancel").first).to_be_focused()
    page.get_by_role("button", name="Done").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Edit Sessions", exact=True)).to_be_focused()


# --- The admin page -----------------------------------------------------------------------------------

def guest_cancels(stack: RunningStack, demo: Demo, session_id: str) -> None:
    """The guest cancels one session of the demo purchase through the API."""
    cancelled = requests.post(f"{stack.url}/v1/me/transactions/{demo.transaction_id}/cancellations", timeout=10,
                              headers={"Authorization": f"Bearer {guest_token(stack, demo)}"},
                              json={"session_ids": [session_id]})
    assert cancelled.status_code == 200, cancelled.text


def connect_admin(page: Any, stack: RunningStack, demo: Demo) -> None:
    page.goto(f"{stack.url}/admin.html?venue={demo.venue_id}")
    expect(page.get_by_label("Venue ID")).to_have_value(demo.venue_id)
    page.get_by_label("Venue API key").fill(demo.venue_key)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", name="Configure")).to_be_visible()
    # Connecting ends by moving focus to the settings: wait for it, or it lands after the test's
    # own first steps on a slow machine.
    expect(page.locator("#settings-title")).to_be_focused()


def test_admin_connects_by_name_and_saves_settings_with_accessible_validation(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    demo = demo_venue(live_stack, allow_guest_modify=False, refund_on_cancel=False, refund_cutoff_hours=24)
    device.goto(f"{live_stack.url}/admin.html?venue={demo.venue_id}")
    axe(device, "the admin connect form")
    device.get_by_label("Venue API key").fill("rbk_not_a_real_key")
    device.get_by_role("button", name="Connect").click()
    expect(device.locator("#connect-error")).to_have_text(
        "This venue API key is not valid. Paste the key you were given for this venue.")
    device.get_by_label("Venue API key").fill(demo.venue_key)
    device.get_by_role("button", name="Connect").click()
    expect(device.locator("#connected-venue")).to_have_text("Bounce Park (demo)")
    expect(device.locator("#venue-summary")).to_contain_text("Bounce Park (demo)")
    assert not RAW_ID.search(device.locator("header").inner_text())
    axe(device, "the admin settings")

    allow = device.get_by_label("Allow Guest to Modify Sessions")
    refund = device.get_by_role("checkbox", name=re.compile("Issue refund upon cancellation, but no refund if within"))
    hours = device.get_by_label("X hours", exact=True)
    expect(allow).not_to_be_checked()
    expect(refund).not_to_be_checked()
    expect(hours).to_have_value("24")
    allow.check()
    refund.check()
    hours.fill("48")
    device.get_by_role("button", name="Save").click()
    expect(device.locator("#saved-version")).to_contain_text("Settings saved. Version 4")  # seeded 2, test set 3
    focused_on(device, "save")
    if not is_phone(device):
        screenshot(device, "07-admin-settings", full_page=True)
    saved = requests.get(f"{live_stack.url}/v1/admin/venues/{demo.venue_id}/settings", timeout=10,
                         headers=admin_headers(demo)).json()
    assert (saved["allow_guest_modify"], saved["refund_on_cancel"], saved["refund_cutoff_hours"]) == (True, True, 48)

    hours.fill("9000")
    device.get_by_role("button", name="Save").click()
    expect(hours).to_have_attribute("aria-invalid", "true")
    expect(hours).to_be_focused()
    expect(device.locator("#cutoff-error")).to_have_text("Enter X as whole hours from 0 to 8760.")
    assert "cutoff-error" in (hours.get_attribute("aria-describedby") or "")
    axe(device, "the admin settings with an invalid value")
    hours.fill("12")
    device.get_by_role("button", name="Save").click()
    expect(hours).not_to_have_attribute("aria-invalid", "true")
    expect(device.locator("#saved-version")).to_contain_text("Settings saved. Version 5")


def test_admin_sees_whose_refund_failed_and_why_and_the_list_follows_a_retry(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    demo = demo_venue(live_stack)
    mia = session_id_of(live_stack, demo, "Mia")
    # This purchase's refund only: the stack is shared by every browser test of the run.
    live_stack.stripe_control("decline", code="charge_disputed", metadata={"transaction_id": demo.transaction_id})
    guest_cancels(live_stack, demo, mia)

    connect_admin(device, live_stack, demo)
    failed_row = device.locator("#refunds tr[data-refund-status=failed]")
    for _ in range(60):  # the refund worker runs in the background; wait for its verdict
        if failed_row.count():
            break
        device.wait_for_timeout(500)
        device.get_by_role("button", name="Refresh").click()
    expect(failed_row).to_have_count(1)
    expect(failed_row).to_contain_text("Ada Lovelace")
    expect(failed_row).to_contain_text("Open Jump 60 min · Mia")
    expect(failed_row).to_contain_text("The guest's bank is disputing this payment")
    expect(failed_row).not_to_contain_text("charge_disputed")
    expect(failed_row).to_contain_text(zone_abbreviation(demo))
    assert not RAW_ID.search(device.locator("#refunds").inner_text())
    axe(device, "the admin refunds with a failed refund")
    if not is_phone(device):
        screenshot(device, "08-admin-failed-refund", full_page=True)

    failed_row.get_by_role("link", name=re.compile("^Receipt")).click()
    receipt = device.get_by_role("dialog", name=re.compile("^Receipt [2-9A-Z]{3}-"))
    expect(receipt).to_be_visible()
    expect(receipt).to_contain_text("Bought 3 sessions for £45.00 by the venue")
    expect(receipt).to_contain_text("Session cancelled, with a refund by the guest")
    axe(device, "the admin receipt")
    receipt.get_by_role("button", name="Close").click()

    failed_row.get_by_role("button", name=re.compile("^Retry")).click()
    expect(device.locator("#refunds-message")).to_contain_text("sent to Stripe again")
    # Nobody presses Refresh: the list follows the pending refund until Stripe has answered.
    expect(device.locator("#refunds tr[data-refund-status=refunded]")).to_have_count(1, timeout=REFUND_WAIT_MS)


def test_the_admin_receipt_shows_the_whole_history_the_newest_included(page: Any, live_stack: RunningStack) -> None:
    """The history comes a page at a time (100 events at most): a purchase changed a hundred times
    still shows its refund, the newest event, at the end of the receipt."""
    demo = demo_venue(live_stack, notify_guests=False)
    mia = session_id_of(live_stack, demo, "Mia")
    other = next(s["session_id"] for s in receipt_via_api(live_stack, demo)["sessions"] if s["session_id"] != mia)
    renames = f"{live_stack.url}/v1/admin/venues/{demo.venue_id}/transactions/{demo.transaction_id}/sessions/{other}"
    with requests.Session() as http:
        for n in range(100):
            renamed = http.patch(renames, headers=admin_headers(demo), timeout=10,
                                 json={"participant_name": f"Kid {n}", "reason": "the parent spelled it again"})
            assert renamed.status_code == 200, renamed.text
    guest_cancels(live_stack, demo, mia)

    connect_admin(page, live_stack, demo)
    refunded = page.locator("#refunds tr[data-refund-status=refunded]")
    expect(refunded).to_have_count(1, timeout=REFUND_WAIT_MS)
    refunded.get_by_role("link", name=re.compile("^Receipt")).click()
    history = page.get_by_role("dialog", name=re.compile("^Receipt")).locator("#receipt-dialog-history li")
    expect(history).to_have_count(103)  # bought, renamed 100 times, cancelled, refunded
    expect(history.first).to_contain_text("Bought 3 sessions")
    expect(history.nth(100)).to_contain_text("Participant changed from Kid 98 to Kid 99")
    expect(history.last).to_contain_text("Refund of £15.00 paid")


# --- Issue 13: the venue's cut-off and fees, as a guest and the admin see them ---------------------

def test_the_confirmation_shows_each_sessions_fee_and_refund(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    demo = demo_venue(live_stack, cancellation_fee_fixed=100, cancellation_fee_percent=10)
    log_in(device, live_stack, demo)
    open_receipt(device)
    confirm = start_cancelling(device, "Mia", "Sam")
    mia = confirm.locator("li", has_text="Mia")
    expect(mia).to_contain_text("Refund £12.50")  # 15.00 - 1.00 - 10 %
    expect(mia).to_contain_text("Paid £15.00, fee £2.50")
    expect(confirm.locator("li", has_text="Sam")).to_contain_text("No refund")
    expect(confirm.locator("#cancel-total")).to_contain_text("Total refund: £12.50 (after £2.50 in cancellation fees)")
    axe(device, "the confirmation with a fee")
    confirm.get_by_role("button", name="Confirm Cancellations").click()
    expect(confirm).to_be_hidden()
    expect(device.locator("#receipt-message")).to_contain_text(refund_under_way("", "£12.50"))


def test_a_changed_quote_is_shown_again_before_anything_is_cancelled(device: Any, live_stack: RunningStack) -> None:
    page = device
    demo = demo_venue(live_stack)
    log_in(page, live_stack, demo)
    open_receipt(page)
    confirm = start_cancelling(page, "Mia")
    expect(confirm.locator("#cancel-total")).to_contain_text("Total refund: £15.00")
    put_settings(live_stack, demo, cancellation_fee_percent=20)  # the venue adds a fee meanwhile
    confirm.get_by_role("button", name="Confirm Cancellations").click()
    expect(confirm.locator("#cancel-error")).to_contain_text("The refund has changed since this was shown")
    expect(confirm.locator("#cancel-total")).to_contain_text("Total refund: £12.00")
    assert receipt_via_api(live_stack, demo)["refunds"] == []  # nothing cancelled yet
    confirm.get_by_role("button", name="Confirm Cancellations").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#receipt-message")).to_contain_text(refund_under_way("", "£12.00"))


def test_after_the_edit_cutoff_the_page_says_since_when_and_whom_to_ask(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    demo = demo_venue(live_stack, modify_cutoff_hours=2000)
    log_in(device, live_stack, demo)
    open_receipt(device)
    expect(device.get_by_role("button", name="Edit Session", exact=True)).to_have_count(0)
    expect(session_card(device, "Mia")).to_contain_text(re.compile(
        r"Changes closed at .+, 2000 hours before the start\. To change it now, contact Bounce Park \(demo\)\."))
    expect(device.get_by_role("button", name="Edit Sessions", exact=True)).to_be_visible()  # cancelling still works
    axe(device, "a receipt past the edit cut-off")


def test_admin_sets_the_cutoff_fees_and_emails_with_help_and_validation(device: Any, live_stack: RunningStack, axe: Axe) -> None:
    page = device
    demo = demo_venue(live_stack)
    connect_admin(page, live_stack, demo)
    cutoff = page.get_by_label("Guests can change a session until this many hours before it")
    fixed = page.get_by_label(re.compile("^Fixed cancellation fee per session"))
    percent = page.get_by_label("Cancellation fee, percent of the session's price")
    emails = page.get_by_label("Email guests about changes, cancellations and refunds")
    expect(cutoff).to_have_value("0")
    expect(fixed).to_have_value("0.00")
    expect(percent).to_have_value("0")
    expect(emails).to_be_checked()
    for field in (cutoff, fixed, percent):
        assert field.get_attribute("aria-describedby"), "each field has its sentence of help"
    percent.fill("150")
    fixed.fill("2.5.0")
    page.get_by_role("button", name="Save").click()
    expect(fixed).to_have_attribute("aria-invalid", "true")
    expect(percent).to_have_attribute("aria-invalid", "true")
    expect(fixed).to_be_focused()
    expect(page.locator("#fee-percent-error")).to_have_text("Enter a whole percent from 0 to 100.")
    axe(page, "the admin settings with invalid fees")
    cutoff.fill("6")
    fixed.fill("2.50")
    percent.fill("10")
    emails.uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#saved-version")).to_contain_text("Settings saved.")
    focused_on(page, "save")
    saved = requests.get(f"{live_stack.url}/v1/admin/venues/{demo.venue_id}/settings", timeout=10,
                         headers=admin_headers(demo)).json()
    assert (saved["modify_cutoff_hours"], saved["cancellation_fee_fixed"], saved["cancellation_fee_percent"],
            saved["notify_guests"]) == (6, 250, 10, False)
    if not is_phone(page):
        screenshot(page, "07-admin-settings", full_page=True)
