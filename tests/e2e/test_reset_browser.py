"""A guest who forgot a password gets back in from the email, in a real browser against the whole
local stack: "Forgot your password?" on the login form, the emailed link (read where the local
stack lists what SES sent), a new password, and the receipt. And an invited guest's first login."""
from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from infra.local.seed import build_demo
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a brand new passphrase"


def emailed_link(stack: RunningStack, to: str, kind: str = "reset.html", wait_seconds: float = 30) -> str:
    """The newest link in the text part of an email to `to`, once the stack's sender has sent it."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        emails = requests.get(f"{stack.url}/_local/emails", timeout=10).json()["emails"]
        links = [m.group(0) for e in emails if e["to"] == [to] for m in [re.search(rf"http\S+{kind}\S+", e["text"])] if m]
        if links:
            return links[-1]
        time.sleep(0.3)
    raise AssertionError(f"no email with a link reached {to}")


def printed_lines(stack: RunningStack, prefix: str, wait_seconds: float = 10) -> list[str]:
    """What the stack printed starting with `prefix` (its console line per email follows the send)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        found = [line for line in list(stack.output) if line.startswith(prefix)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_guest_resets_a_forgotten_password_from_the_email_and_sees_the_receipt(page: Any, live_stack: RunningStack) -> None:
    email = f"forgetful-{int(time.time() * 1000)}@example.com"
    demo = build_demo(live_stack, guest_email=email)

    page.goto(f"{live_stack.url}/?venue={demo.venue_id}")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("status")).to_contain_text("a link is on its way")

    link = emailed_link(live_stack, email)
    assert printed_lines(live_stack, f"email to {email}: ") == [
        f"email to {email}: 'Reset your password for Bounce Park (demo)' {link}"]
    assert link.startswith(f"{live_stack.url}/reset.html?venue={demo.venue_id}&token=")
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert "token=" not in page.url  # read, then taken out of the address bar and history
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill("not the same at all")
    page.get_by_role("button", name="Save password and log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not the same")
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save password and log in").click()

    expect(page.get_by_role("heading", name="Transactions and Receipts")).to_be_visible()
    page.get_by_role("link", name="View Receipt").first.click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.locator(".session")).to_have_count(3)

    # The link worked once: opening it again says so and offers a new one.
    page.goto(link)
    page.get_by_label("New password", exact=True).fill("another passphrase")
    page.get_by_label("Repeat the new password").fill("another passphrase")
    page.get_by_role("button", name="Save password and log in").click()
    expect(page.get_by_role("alert")).to_contain_text("has been used, has expired")
    login = requests.post(f"{live_stack.url}/v1/venues/{demo.venue_id}/login", timeout=10,
                          json={"email": email, "password": NEW_PASSWORD})
    assert login.status_code == 200


def test_an_invited_guest_chooses_a_password_from_the_invitation(page: Any, live_stack: RunningStack) -> None:
    demo = build_demo(live_stack, guest_email=f"host-{int(time.time() * 1000)}@example.com")
    email = f"invited-{int(time.time() * 1000)}@example.com"
    created = requests.post(f"{live_stack.url}/v1/admin/venues/{demo.venue_id}/guests", timeout=10,
                            headers={"Authorization": f"Bearer {demo.venue_key}"}, json={"email": email, "name": "Ines"})
    assert created.status_code == 201, created.text

    page.goto(emailed_link(live_stack, email))
    expect(page.get_by_role("heading", name="Welcome: choose your password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save password and log in").click()
    expect(page.get_by_role("heading", name="Transactions and Receipts")).to_be_visible()
    expect(page.get_by_text("You have no purchases yet.")).to_be_visible()


def test_the_admin_page_lists_a_guests_emails_without_their_links(page: Any, live_stack: RunningStack) -> None:
    email = f"listed-{int(time.time() * 1000)}@example.com"
    demo = build_demo(live_stack, guest_email=email)
    requests.post(f"{live_stack.url}/v1/venues/{demo.venue_id}/password-reset", json={"email": email}, timeout=10)
    link = emailed_link(live_stack, email)

    page.goto(f"{live_stack.url}/admin.html?venue={demo.venue_id}")
    page.get_by_label("Venue API key").fill(demo.venue_key)
    page.get_by_role("button", name="Connect").click()
    # Connected once the venue's refunds are shown (the page keeps the key from then on).
    expect(page.locator("#refunds-table:visible, #refunds-empty:visible")).to_have_count(1)
    page.get_by_label("Guest ID").fill(demo.guest_id)
    page.get_by_role("button", name="Show emails").click()

    rows = page.locator("#emails tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Password reset")
    expect(rows.first).to_contain_text(email)
    expect(rows.first).to_contain_text("sent")
    assert link.split("token=")[1].split("&")[0] not in page.content()
