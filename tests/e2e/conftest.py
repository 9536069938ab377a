"""Browser fixtures: the whole local stack as `make run` starts it (with cheap password hashes),
Debian's Chromium driven by Playwright, and pages at desktop and phone size.

The stack runs in its own process: its queue pump and schedules work in the background, and in
this process they would share boto3 clients with the integration tests (which drive queues by
hand and count DynamoDB calls). Its own tables, queues and Stripe stand-in die with it.

Chromium is not downloaded: Debian's headless shell is used (`apt-get install -y chromium-headless-shell`,
as .ci/run does), else Debian's Chromium. Without either these tests fail (they never skip), so a CI
without a browser cannot pass by testing nothing.
"""
from __future__ import annotations

import collections
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.stack import ROOT

# Chromium's headless shell: the same Blink and V8 as the browser, without the desktop browser's
# layers, and what Playwright itself runs for headless tests. Measured on the 38 browser tests
# (one process): 68 s of Chromium CPU with Debian's full browser in its headless mode, 35 s with the
# shell; the whole run's CPU is what make test's time is made of on 2 cores.
HEADLESS_SHELL = "/usr/lib/chromium/chromium-headless-shell"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or (HEADLESS_SHELL if Path(HEADLESS_SHELL).is_file() else "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
# The browser sits in another time zone than the demo venue (Europe/London), so a time shown in
# the browser's zone instead of the venue's would be caught.
BROWSER_ZONE = "America/New_York"


STARTUP_SECONDS = 90


@dataclass
class RunningStack:
    """`python -m infra.local.stack` in a child process; what it printed tells where it listens."""

    url: str
    admin_key: str
    stripe_url: str
    process: subprocess.Popen[str]
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))

    def stripe_control(self, action: str, **arguments: Any) -> None:
        """Steer the Stripe stand-in, e.g. `stripe_control("decline", metadata={"transaction_id": t})`
        fails the next refund of that purchase."""
        answer = requests.post(f"{self.stripe_url}/_standin/{action}", json=arguments, timeout=10)
        answer.raise_for_status()


@pytest.fixture(scope="session")
def live_stack() -> Iterator[RunningStack]:
    # Not what this worker's own embedded stack put in its environment (tests/conftest.py): with
    # its PORTAL_URL the emails' links pointed at the worker's API, not this stack's (the reset and
    # invitation stories failed whenever a test on the worker had served HTTP before), and with
    # its STRIPE_API_BASE this stack paid through the worker's stand-in, not one of its own.
    env = {name: value for name, value in os.environ.items() if name not in ("PORTAL_URL", "STRIPE_API_BASE")}
    # The scheduled functions every minute, as `make run`: they act on refunds and notices stale for
    # minutes and on windows the API already computes at read time, so no test here waits on them;
    # every second they cost the stack about 3% of a core for the rest of the worker's session.
    env.update({"PORT": "0", "STRIPE_STANDIN_PORT": "0", "LOCAL_SCHEDULE_SECONDS": "60", "TABLE_PREFIX": "rebook-e2e",
                "PYTHONUNBUFFERED": "1", "SEED": ""})
    # `python -m infra.local.stack` with cheap password hashes (tests/cheap_hashes.py): every demo
    # guest and login here would otherwise cost ~0.45 s of CPU.
    process = subprocess.Popen([sys.executable, "-m", "tests.cheap_hashes"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()
    output: collections.deque[str] = collections.deque(maxlen=200)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, name="stack-output", daemon=True).start()
    printed: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_SECONDS
    while "ready" not in printed:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            process.kill()
            pytest.fail("the local stack did not start:\n" + "\n".join(output), pytrace=False)
        for key, pattern in (("url", r"rebook is running at (\S+)"), ("admin_key", r"platform admin key:\s+(\S+)"),
                             ("stripe_url", r"Stripe API base:\s+(\S+)"), ("ready", r"(Press Ctrl-C)")):
            if match := re.search(pattern, line):
                printed[key] = match.group(1)
    stack = RunningStack(printed["url"], printed["admin_key"], printed["stripe_url"], process, output)
    yield stack
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium-headless-shell` "
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


# axe-core from npm, installed at test time into a cache folder (never from a CDN): the pages are
# checked in the browser exactly as a guest gets them.
AXE_CORE_VERSION = "4.14.1"
AXE_CACHE = ROOT / ".cache" / "axe"
AXE_SCRIPT = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@pytest.fixture(scope="session")
def axe_source() -> str:
    import fcntl

    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    # Test workers start at once: one installs while the others wait, instead of reading a half
    # installed package.
    with (AXE_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _installed_axe()


def _installed_axe() -> str:
    if not AXE_SCRIPT.is_file() or f'"version": "{AXE_CORE_VERSION}"' not in (
            AXE_SCRIPT.parent / "package.json").read_text():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is missing: the accessibility checks install axe-core with it", pytrace=False)
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--prefix", str(AXE_CACHE), "--no-save", "--no-audit", "--no-fund",
                        "--loglevel=error", f"axe-core@{AXE_CORE_VERSION}"], check=True, timeout=300)
    return AXE_SCRIPT.read_text()


@pytest.fixture
def axe(axe_source: str) -> Any:
    """`axe(page, "what the page shows")`: run axe-core over the page as it is now, fail on any violation."""

    def check(page: Any, state: str) -> None:
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(axe_source)
        violations = page.evaluate("""async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return result.violations.map((v) => ({rule: v.id, impact: v.impact, help: v.help,
                                                   nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
        }""", AXE_TAGS)
        assert violations == [], f"axe-core found accessibility violations on {state}: {violations}"

    return check


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    """Save docs/screenshots/<name>.png when SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled")
