"""The local stack started exactly as `make run` starts it, called over HTTP like a person would
with curl, and stopped with Ctrl-C."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def running() -> Iterator[dict[str, Any]]:
    yield from _started({})


def _started(extra_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    # Port 0: the stack takes free ports itself and prints them. A port picked here and bound by
    # the child seconds later could be taken meanwhile by any other process on a shared machine.
    env = {k: v for k, v in os.environ.items()
           if k not in ("ADMIN_API_KEY", "TABLE_PREFIX", "AWS_ENDPOINT_URL", "STRIPE_API_BASE")}
    env.update({"PORT": "0", "STRIPE_STANDIN_PORT": "0", "LOCAL_SCHEDULE_SECONDS": "1", "PYTHONUNBUFFERED": "1",
                **extra_env})
    process = subprocess.Popen([sys.executable, "-m", "infra.local.stack"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        lines.append(line)
        for key, pattern in (("url", r"rebook is running at (http://127\.0\.0\.1:\d+)$"),
                             ("admin_key", r"platform admin key:\s+(\S+)"),
                             ("stripe", r"Stripe API base:\s+(http://127\.0\.0\.1:\d+)$")):
            if match := re.search(pattern, line.strip()):
                printed[key] = match.group(1)
        if "Press Ctrl-C" in line:
            break
    assert printed.keys() == {"url", "admin_key", "stripe"}, "".join(lines)
    # Read what it prints until it ends: a pipe nobody reads fills (64 KB, or one 4 KB page once the
    # machine's pipes exceed the user's soft limit), the stack's next print blocks its thread, and
    # Ctrl-C then waited on that thread (both Ctrl-C tests timed out in full runs, never alone).
    threading.Thread(target=lambda: lines.extend(process.stdout or ()), name="stack-output", daemon=True).start()
    yield {**printed, "process": process, "lines": lines}
    if process.poll() is None:
        process.kill()


def call(base: str, method: str, path: str, key: str | None = None, body: Any = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> requests.Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if key:
        all_headers["Authorization"] = f"Bearer {key}"
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return requests.request(method, base + path, data=data, headers=all_headers, timeout=30)


def test_it_prints_the_url_and_the_admin_key(running: dict[str, Any]) -> None:
    printed = "".join(running["lines"])
    assert f"rebook is running at {running['url']}" in printed
    assert running["admin_key"].startswith("rbk_")


def test_a_person_can_create_a_venue_mint_a_key_and_save_settings_over_http(running: dict[str, Any]) -> None:
    base, admin = running["url"], running["admin_key"]
    venue = call(base, "POST", "/v1/admin/venues", admin, {"name": "Splash", "timezone": "Europe/Paris",
                                                           "currency": "eur"})
    assert venue.status_code == 201
    venue_id = venue.json()["venue_id"]
    key = call(base, "POST", f"/v1/admin/venues/{venue_id}/api-keys", admin, {}).json()["api_key"]
    saved = call(base, "PUT", f"/v1/admin/venues/{venue_id}/settings", key,
                 {"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 12})
    assert saved.status_code == 200
    read = call(base, "GET", f"/v1/admin/venues/{venue_id}/settings", key).json()
    assert read["refund_cutoff_hours"] == 12 and read["allow_guest_modify"] is True


def test_a_cancellation_is_refunded_by_the_background_worker(running: dict[str, Any]) -> None:
    _cancel_and_see_it_refunded(running)


def _cancel_and_see_it_refunded(running: dict[str, Any]) -> None:
    base, admin = running["url"], running["admin_key"]
    venue_id = call(base, "POST", "/v1/admin/venues", admin, {"name": "Jump", "timezone": "UTC",
                                                              "currency": "usd"}).json()["venue_id"]
    call(base, "PUT", f"/v1/admin/venues/{venue_id}/settings", admin,
         {"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 1})
    slot = call(base, "POST", f"/v1/admin/venues/{venue_id}/slots", admin, {
        "product_id": "jump", "product_name": "Jump", "start": "2031-01-01T10:00:00Z",
        "end": "2031-01-01T11:00:00Z", "capacity": 5}).json()
    guest = call(base, "POST", f"/v1/admin/venues/{venue_id}/guests", admin,
                 {"email": "e2e@example.com", "password": "long enough", "name": "E"}).json()
    intent = requests.post(f"{running['stripe']}/v1/payment_intents", auth=("sk_test_local", ""), timeout=10,
                           data={"amount": 1500, "currency": "usd", "confirm": "true"}).json()
    receipt = call(base, "POST", f"/v1/admin/venues/{venue_id}/transactions", admin, {
        "guest_id": guest["guest_id"], "payment_intent_id": intent["id"], "currency": "usd",
        "sessions": [{"slot_id": slot["slot_id"], "participant_name": "Kid", "amount": 1500}]}).json()
    token = call(base, "POST", f"/v1/venues/{venue_id}/login", None,
                 {"email": "e2e@example.com", "password": "long enough"}).json()["token"]
    path = f"/v1/me/transactions/{receipt['transaction_id']}"
    cancelled = call(base, "POST", f"{path}/cancellations", token,
                     {"session_ids": [receipt["sessions"][0]["session_id"]]})
    assert cancelled.json()["refund"]["status"] == "pending"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        refunds = call(base, "GET", path, token).json()["refunds"]
        if refunds[0]["status"] != "pending":
            break
        time.sleep(0.3)
    assert refunds[0]["status"] == "refunded"
    paid = requests.get(f"{running['stripe']}/_standin/refunds", timeout=10).json()
    assert [r["amount"] for r in paid if r["payment_intent"] == intent["id"]] == [1500]


@pytest.mark.parametrize("method, path, raw, status, code", [
    ("GET", "/v1/nowhere", None, 404, "not_found"),
    ("POST", "/v1/admin/venues", b"{oops", 401, "unauthorized"),
    ("DELETE", "/v1/admin/venues", None, 405, "method_not_allowed"),
    ("GET", "/v1/me/transactions", None, 401, "unauthorized"),
])
def test_bad_requests_get_the_contract_error_shape(running: dict[str, Any], method: str, path: str,
                                                   raw: bytes | None, status: int, code: str) -> None:
    answer = call(running["url"], method, path, raw=raw)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]


def raw_exchange(base: str, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send bytes no HTTP client would, and read the status and JSON body of the answer."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


@pytest.mark.parametrize("request_bytes, status, code", [
    (b"GET /nope.html HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"),
    (b"GET /README.md HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"),
    (b"POST /v1/admin/venues HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "invalid_request"),
    (b"POST /v1/admin/venues HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{}", 413,
     "payload_too_large"),
    (b"FOO /v1/admin/venues HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
    (b"GET / too many words HTTP/1.1\r\n\r\n", 400, "invalid_request"),
])
def test_requests_malformed_below_the_api_still_get_the_contract_error_shape(
        running: dict[str, Any], request_bytes: bytes, status: int, code: str) -> None:
    answered, body = raw_exchange(running["url"], request_bytes)
    assert (answered, body["error"]["code"]) == (status, code)


def test_malformed_json_over_http_is_a_400(running: dict[str, Any]) -> None:
    answer = call(running["url"], "POST", "/v1/admin/venues", running["admin_key"], raw=b"{oops")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request"


def stopped(running: dict[str, Any]) -> int | None:
    """The stack's exit status after Ctrl-C; if it is still running after 30 s, fail with what it
    printed last (the Ctrl-C tests timed out in full runs of the suite, never alone)."""
    process: subprocess.Popen[str] = running["process"]
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:  # whether the signal reached it: pending, blocked or ignored (Linux)
            status = [line for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
                      if line.startswith(("Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"))]
        except OSError:
            status = []
        pytest.fail("the stack did not stop within 30 s of Ctrl-C; its signal state: " + ", ".join(status)
                    + "\nit printed last:\n" + "".join(running["lines"][-40:]), pytrace=False)


def test_ctrl_c_stops_everything(running: dict[str, Any]) -> None:
    process: subprocess.Popen[str] = running["process"]
    process.send_signal(signal.SIGINT)
    assert stopped(running) == 0
    for port_url in (running["url"], running["stripe"]):
        with pytest.raises(requests.ConnectionError):
            requests.get(port_url + "/", timeout=2)


def test_the_api_served_by_processes_of_its_own_buys_cancels_refunds_mails_and_stops_with_ctrl_c() -> None:
    """`make run LOCAL_API_PROCESSES=2`: the API answers from two processes on the one port, the
    pumps' own process pays the refund and sends the email, both show through any connection, the
    stack prints the email, and Ctrl-C stops the API and pump processes too."""
    started = _started({"LOCAL_API_PROCESSES": "2"})
    running = next(started)
    _cancel_and_see_it_refunded(running)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the cancellation's email, sent by the pumps' process
        answers = [requests.get(running["url"] + "/_local/emails", timeout=10) for _ in range(8)]
        if all(any("e2e@example.com" in e["to"] for e in a.json()["emails"]) for a in answers):
            break
        time.sleep(0.3)
    assert all(a.status_code == 200 and any("e2e@example.com" in e["to"] for e in a.json()["emails"])
               for a in answers)
    process: subprocess.Popen[str] = running["process"]
    children = _children(process.pid)
    assert len(children) == 3  # two API processes and the pumps', which yield the CPU to the API's
    [pumps] = [pid for pid in children if b"infra.local.pump_worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert os.getpriority(os.PRIO_PROCESS, pumps) > os.getpriority(os.PRIO_PROCESS, process.pid)
    process.send_signal(signal.SIGINT)
    assert stopped(running) == 0
    email_line = re.compile(r"^email to e2e@example\.com: '1 session cancelled", re.MULTILINE)
    deadline = time.monotonic() + 5  # the output reader catches up with what it printed before it left
    while not email_line.search("".join(running["lines"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert email_line.search("".join(running["lines"])), "".join(running["lines"][-40:])
    with pytest.raises(requests.ConnectionError):  # no API process is left listening
        requests.get(running["url"] + "/", timeout=2)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)]
    started.close()


def _children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0].lower()
    except (OSError, IndexError):
        return "gone"
