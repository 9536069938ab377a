"""Schemathesis, driven by docs/openapi.yaml, against the whole local stack over HTTP.

The stack is the e2e session's `live_stack`: `python -m infra.local.stack` in its own process, as
`make run` runs it, so its embedded DynamoDB and queues never mix with the integration tests'. Every operation the app has gets a bounded number of generated requests (valid and
invalid), with a venue, the platform key and a guest token, and every answer must be: no 5xx,
a documented status with the documented schema and content type, and every 4xx in the
contract's error shape."""
from __future__ import annotations

import collections
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
PRODUCT_ID = "fuzz-jump"

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.slow


@dataclass
class LiveApi:
    """The running stack and what the fuzzer needs to get past authentication."""

    url: str
    admin_key: str
    stripe_url: str
    output: collections.deque[str]
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
        return "\n".join(list(self.output)[-lines:])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed(live: LiveApi) -> None:
    """A venue with both switches on, slots, a guest with a token and, once the purchase route
    exists, a purchase: so generated requests reach past 404s into the real handlers."""
    venue = live.call("POST", "/v1/admin/venues", {"name": "Fuzz Park", "timezone": "Europe/London",
                                                   "currency": "usd"})
    live.venue_id = venue["venue_id"]
    admin = f"/v1/admin/venues/{live.venue_id}"
    live.call("PUT", f"{admin}/settings", {"allow_guest_modify": True, "refund_on_cancel": True,
                                           "refund_cutoff_hours": 24})
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
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
def live_api(live_stack: RunningStack) -> LiveApi:
    import app

    routes = {(method.upper(), path) for path, entries in app.app.routes.items() for method in entries}
    live = LiveApi(url=live_stack.url, admin_key=live_stack.admin_key, stripe_url=live_stack.stripe_url,
                   output=live_stack.output, routes=routes)
    _seed(live)
    return live


@pytest.fixture(scope="session")
def api_schema() -> Any:
    config = schemathesis.Config.from_dict({"generation": {"no-shrink": True, "database": "none"}})
    return schemathesis.openapi.from_path(SPEC_PATH, config=config)


def _documented_cases() -> list[tuple[str, str, GenerationMode]]:
    """Every documented operation with valid inputs, and with invalid ones where it has inputs a
    client chooses (a body or a query string; path ids are fixed to the seeded resources)."""
    import yaml

    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    paths, shared = spec["paths"], spec["components"]["parameters"]

    def location(parameter: dict[str, Any]) -> str:
        if "$ref" in parameter:
            parameter = shared[parameter["$ref"].rsplit("/", 1)[-1]]
        return str(parameter["in"])

    cases = []
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            chosen = "requestBody" in operation or any(location(p) == "query"
                                                       for p in operation.get("parameters", []))
            if chosen:
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


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
@pytest.mark.parametrize("method, path, mode", _documented_cases(),
                         ids=lambda x: x.value if isinstance(x, GenerationMode) else x)
def test_every_operation_keeps_the_contract_under_generated_requests(
        live_api: LiveApi, api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    assert (method, path) in live_api.routes, "documented in docs/openapi.yaml but not in app.py"
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
        pytest.fail("the spec leaves nothing to generate for this operation in this mode")
    except Exception:
        print(f"--- the stack's log, last lines ---\n{live_api.log_tail()}")
        raise
