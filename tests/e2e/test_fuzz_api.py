"""Schemathesis, driven by docs/openapi.yaml, against the whole local stack over HTTP.

The stack runs as `make run` runs it (`python -m infra.local.stack`), in its own process, so its
embedded DynamoDB, queues and environment never mix with the in-process stack of the integration
tests. Every operation the app has gets a bounded number of generated requests (valid and
invalid), with a venue, the platform key and a guest token, and every answer must be: no 5xx,
a documented status with the documented schema and content type, and every 4xx in the
contract's error shape."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
# The environment as the person running the tests gave it, before any in-process stack changes it.
CALLER_ENV = dict(os.environ)
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
STARTUP_SECONDS = 60
PRODUCT_ID = "fuzz-jump"

pytestmark = pytest.mark.slow


@dataclass
class LiveApi:
    """The running stack and what the fuzzer needs to get past authentication."""

    url: str
    admin_key: str
    stripe_url: str
    log: Path
    routes: set[tuple[str, str]]
    venue_id: str = ""
    guest_token: str = ""
    ids: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None, credential: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {credential or self.admin_key}"}
        answer = requests.request(method, self.url + path, json=body, headers=headers, timeout=30)
        assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
        return answer.json()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stack_env(port: int, admin_key: str) -> dict[str, str]:
    env = {k: v for k, v in CALLER_ENV.items()
           if k not in ("AWS_ENDPOINT_URL", "REFUND_QUEUE_URL", "DEADLINE_QUEUE_URL")}
    env.update({"PORT": str(port), "ADMIN_API_KEY": admin_key, "TABLE_PREFIX": "rebook-fuzz",
                "TOKEN_SECRET": secrets.token_urlsafe(32), "PYTHONUNBUFFERED": "1"})
    return env


def _app_routes(env: dict[str, str]) -> set[tuple[str, str]]:
    """The app's routes, read by importing app.py in a separate process (it needs no AWS)."""
    script = ("import json, app; print(json.dumps(sorted([m, p] for p, e in app.app.routes.items() "
              "for m in e)))")
    output = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    return {(method.upper(), path) for method, path in json.loads(output.strip().splitlines()[-1])}


def _wait_until_up(process: subprocess.Popen, log: Path) -> tuple[str, str]:
    deadline = time.monotonic() + STARTUP_SECONDS
    url = stripe_url = ""
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("rebook is running at "):
                url = line.rsplit(" ", 1)[-1]
            elif "Stripe API base:" in line:
                stripe_url = line.rsplit(" ", 1)[-1]
        if url:
            return url, stripe_url
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"the local stack did not start:\n{log.read_text(errors='replace')[-4000:]}")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed(live: LiveApi) -> None:
    """A venue with both switches on, slots, a guest with a token and, once the purchase route
    exists, a purchase: so generated requests reach past 404s into the real handlers."""
    venue = live.call("POST", "/v1/admin/venues", {"name": "Fuzz Park", "timezone": "Europe/London",
                                                   "currency": "usd"})
    live.venue_id = venue["venue_id"]
    admin = f"/v1/admin/venues/{live.venue_id}"
    live.call("PUT", f"{admin}/settings", {"allow_guest_modify": True, "refund_on_cancel": True,
                                           "refund_cutoff_hours": 24})
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)
    slots = [live.call("POST", f"{admin}/slots", {
        "product_id": PRODUCT_ID, "product_name": "Fuzz Jump", "start": _iso(start + timedelta(hours=i)),
        "end": _iso(start + timedelta(hours=i + 1)), "capacity": 50}) for i in range(3)]
    email, password = f"fuzz-{secrets.token_hex(4)}@example.com", "correct horse battery"
    guest = live.call("POST", f"{admin}/guests", {"email": email, "password": password, "name": "Fuzz Guest"})
    login = requests.post(f"{live.url}/v1/venues/{live.venue_id}/login",
                          json={"email": email, "password": password}, timeout=30)
    assert login.status_code == 200, login.text
    live.guest_token = login.json()["token"]
    live.ids.update({"venue_id": live.venue_id, "product_id": PRODUCT_ID})
    if ("POST", "/v1/admin/venues/{venue_id}/transactions") in live.routes:
        intent = requests.post(f"{live.stripe_url}/v1/payment_intents", data={
            "amount": 2500 * len(slots), "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa"},
            headers={"Authorization": "Bearer sk_test_local_standin"}, timeout=30)
        intent.raise_for_status()
        receipt = live.call("POST", f"{admin}/transactions", {
            "guest_id": guest["guest_id"], "payment_intent_id": intent.json()["id"], "currency": "usd",
            "sessions": [{"slot_id": s["slot_id"], "participant_name": f"Kid {i}", "amount": 2500}
                         for i, s in enumerate(slots)]})
        live.ids.update({"transaction_id": receipt["transaction_id"],
                         "session_id": receipt["sessions"][0]["session_id"]})


@pytest.fixture(scope="session")
def live_api() -> Iterator[LiveApi]:
    port, admin_key = _free_port(), f"rbk_platform_{secrets.token_urlsafe(24)}"
    env = _stack_env(port, admin_key)
    routes = _app_routes(env)
    log = Path(tempfile.mkstemp(prefix="rebook-fuzz-", suffix=".log")[1])
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "infra.local.stack"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        url, stripe_url = _wait_until_up(process, log)
        live = LiveApi(url=url, admin_key=admin_key, stripe_url=stripe_url, log=log, routes=routes)
        _seed(live)
        yield live
    finally:
        process.send_signal(signal.SIGTERM)  # the stack stops its threads, moto and the stand-in
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def api_schema() -> Any:
    config = schemathesis.Config.from_dict({"generation": {"no-shrink": True, "database": "none"}})
    return schemathesis.openapi.from_path(SPEC_PATH, config=config)


def _documented_operations() -> list[tuple[str, str]]:
    import yaml

    paths = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item
            if method in ("get", "put", "post", "patch", "delete")]


class ContractErrorShape(Failure):
    """A 4xx/5xx answer without the contract's `{"error": {"code", "message"}}` body."""

    kind_title = "Error answer not in the contract's shape"

    def __init__(self, *, operation: str, status: int, body: str) -> None:
        super().__init__(operation=operation, message=f"{status} answered with: {body[:500]}")


def contract_error_shape(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
        error = body["error"]
        valid = (set(body) == {"error"} and isinstance(error.get("code"), str) and
                 isinstance(error.get("message"), str) and error["message"] and
                 set(error) <= {"code", "message", "details"} and
                 isinstance(error.get("details", {}), dict))
    except (ValueError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid:
        raise ContractErrorShape(operation=case.operation.label, status=response.status_code,
                                 body=response.content.decode("utf-8", "replace"))
    return True


# No 5xx; documented statuses, content types, headers and schemas; a request the spec calls invalid
# gets a 4xx (`negative_data_rejection`); every error in the contract's shape.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, contract_error_shape]


def _credential(live: LiveApi, operation: Any) -> str | None:
    security = operation.definition.raw.get("security")
    schemes = {name for requirement in (security or []) for name in requirement}
    if "adminKey" in schemes:
        return live.admin_key  # the platform key: every admin route, including venue creation
    if "guestToken" in schemes:
        return live.guest_token
    return None


# schemathesis.pytest.from_fixture (the lazy loader) fails under pytest 9 ("'Function' object has
# no attribute '_nodeid'"), so the cases come from each operation's Hypothesis strategy instead.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("method, path", _documented_operations(), ids=lambda x: x)
def test_every_operation_keeps_the_contract_under_generated_requests(
        live_api: LiveApi, api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    if (method, path) not in live_api.routes:
        pytest.skip("not in app.py yet")
    operation = api_schema[path][method]
    fixed_path = {p.name: live_api.ids[p.name] for p in operation.path_parameters if p.name in live_api.ids}
    credential = _credential(live_api, operation)
    headers = {"Authorization": f"Bearer {credential}"} if credential else None
    query = ({"product_id": PRODUCT_ID} if mode is GenerationMode.POSITIVE and
             any(p.name == "product_id" for p in operation.query) else None)
    strategy = operation.as_strategy(mode, path_parameters=fixed_path or None, headers=headers, query=query)

    @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=False,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck), print_blob=True)
    @hypothesis.given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=live_api.url, checks=CHECKS, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1

    seen: dict[int, int] = {}
    try:
        run()
        print(f"{method} {path} {mode.value}: statuses {sorted(seen.items())}")
    except hypothesis.errors.Unsatisfiable:
        pytest.skip("nothing to generate in this mode (every parameter is fixed)")
    except Exception:
        print(f"--- the stack's log, last lines ---\n{live_api.log_tail()}")
        raise
