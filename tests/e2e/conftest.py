"""Browser fixtures: the whole local stack serving HTTP in this process (as `make run` does, with a
one-second schedule), Debian's Chromium driven by Playwright, and pages at desktop and phone size.

Chromium is not downloaded: install it with `apt-get install -y chromium`. Without it these tests
fail (they never skip), so a CI without a browser cannot pass by testing nothing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from infra.local.stack import ROOT, LocalStack

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
# The browser sits in another time zone than the demo venue (Europe/London), so a time shown in
# the browser's zone instead of the venue's would be caught.
BROWSER_ZONE = "America/New_York"


@pytest.fixture(scope="session")
def live_stack() -> Iterator[LocalStack]:
    stack = LocalStack(port=0, schedule_seconds=1).start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium` "
                    "(or set CHROMIUM_PATH). The browser tests do not skip.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _page(browser: Any, viewport: dict[str, int], **options: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=viewport, locale="en-US", timezone_id=BROWSER_ZONE, **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    page.on("request", lambda request: errors.append(f"other origin: {request.url}")
            if not request.url.startswith(("http://127.0.0.1", "data:")) else None)
    yield page
    context.close()
    assert errors == [], errors


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from _page(browser, DESKTOP)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    yield from _page(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    """Save docs/screenshots/<name>.png when SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled")
