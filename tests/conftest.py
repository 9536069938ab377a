"""Fixtures: one embedded stack (moto's DynamoDB and SQS, the Stripe stand-in) per test run, the
Chalice test client on the real app, and a `world` that builds venues, guests and purchases in
one line each. Every test makes its own venue, so tests never see each other's data."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

os.environ.setdefault("TABLE_PREFIX", "rebook-test")
os.environ.setdefault("ADMIN_API_KEY", "rbk_platform_test_key")
os.environ.setdefault("TOKEN_SECRET", "test-token-secret-not-for-production")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_secret")

from infra.local.stack import LocalStack, give_client_addresses

ADMIN_KEY = os.environ["ADMIN_API_KEY"]


# Under `pytest -n N --dist loadgroup` (make test), tests are spread one by one over N worker
# processes, each with its own embedded stack; tests sharing a costly fixture stay on one worker:
# the e2e stack in a child process with its browser (every file using `live_stack`: one stack and
# one Chromium per run, not one per worker), a module's own stack, the CDK synthesis.
_ONE_WORKER = {f"tests/e2e/{name}.py": "live-stack" for name in (
    "test_fuzz_api", "test_portal_browser", "test_staff_browser", "test_reset_browser", "test_readme")}
_ONE_WORKER_PER_FILE = ("tests/e2e/", "tests/infra/", "tests/integration/test_payments_gateway.py",
                        "tests/unit/test_moto_patches.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = _ONE_WORKER.get(path) or (path if path.startswith(_ONE_WORKER_PER_FILE) else None)
        if path.startswith("tests/infra/"):  # two syntheses: the stages, and a venue's own portal
            group = "cdk-venue-portal" if "venue_portal" in getattr(item, "fixturenames", ()) else "cdk-stages"
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """argon2id at its lowest cost in this process: the real cost is ~0.4 s of CPU per guest
    (a hash and a login), a third of the suite's time, and what tests check is who gets in, not
    the hash's cost. tests/unit/test_password_hashing.py checks the production parameters in a
    fresh interpreter; the browser tests' stack, a child process, does the same (tests/cheap_hashes.py)."""
    from chalicelib import auth
    from tests.cheap_hashes import cheap_hasher

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", cheap_hasher)
        patch.setattr(auth, "_DUMMY_PASSWORD_HASH", None)
        yield


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    import gc

    local = LocalStack(background=False, visibility_timeout_seconds=1).start()
    # What is loaded by now (moto, botocore's service models, the app) lives until the end: the
    # cyclic collector need not walk it again, and runs a tenth as often over what tests make.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    yield local
    local.stop()


@pytest.fixture
def faults(stack: LocalStack) -> Iterator[Any]:
    """The fault switch where requests reach moto (infra/local/faults.py): `faults.set(FaultRates(...))`,
    `faults.conflict_next(n)`, ...; off again after the test."""
    stack.faults.off()
    yield stack.faults
    stack.faults.off()


@pytest.fixture(scope="session")
def client(stack: LocalStack) -> Any:
    from chalice.test import Client

    with Client(stack.app_module.app) as test_client:  # type: ignore[union-attr]
        # Requests carry a caller's address as API Gateway's do (127.0.0.1 unless a test uses
        # infra.local.stack.from_address); chalice keeps the test client's gateway private.
        give_client_addresses(test_client.http._local_gateway, stack.app_module.app)  # type: ignore[union-attr]
        yield test_client


@pytest.fixture(scope="session")
def http_api(stack: LocalStack) -> str:
    """The same app served over real HTTP (threads, sockets), for concurrency tests."""
    return stack.serve_http()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Api:
    """JSON over the Chalice test client, with a bearer credential."""

    def __init__(self, client: Any, credential: str | None) -> None:
        self._client = client
        self.credential = credential

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | str | None = None) -> Response:
        all_headers = {"Content-Type": "application/json"}
        if self.credential:
            all_headers["Authorization"] = f"Bearer {self.credential}"
        all_headers.update(headers or {})
        payload = raw if raw is not None else (None if body is None else _json(body))
        answer = getattr(self._client.http, method.lower())(path, headers=all_headers, body=payload)
        return Response(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.body)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("POST", path, body if body is not None else {}, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("PATCH", path, body, **kwargs)


def _json(body: Any) -> str:
    import json

    return json.dumps(body)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        import json

        return json.loads(self.raw) if self.raw else None

    @property
    def error_code(self) -> str | None:
        body = self.json
        return body["error"]["code"] if isinstance(body, dict) and "error" in body else None


@dataclass
class Venue:
    venue_id: str
    key: str
    timezone: str
    currency: str
    admin: Api


@dataclass
class Guest:
    venue: Venue
    guest_id: str
    email: str
    password: str
    api: Api


@dataclass
class World:
    client: Any
    stack: LocalStack
    platform: Api = field(init=False)

    def __post_init__(self) -> None:
        self.platform = Api(self.client, ADMIN_KEY)

    def venue(self, allow_guest_modify: bool = False, refund_on_cancel: bool = False, cutoff_hours: int = 24,
              timezone_name: str = "Europe/London", currency: str = "usd") -> Venue:
        created = self.platform.post("/v1/admin/venues", {"name": "Bounce Park", "timezone": timezone_name,
                                                           "currency": currency})
        assert created.status == 201, created.json
        venue_id = created.json["venue_id"]
        key = self.platform.post(f"/v1/admin/venues/{venue_id}/api-keys", {}).json["api_key"]
        admin = Api(self.client, key)
        venue = Venue(venue_id, key, timezone_name, currency, admin)
        if allow_guest_modify or refund_on_cancel or cutoff_hours != 24:
            self.settings(venue, allow_guest_modify, refund_on_cancel, cutoff_hours)
        return venue

    def settings(self, venue: Venue, allow_guest_modify: bool, refund_on_cancel: bool, cutoff_hours: int) -> dict[str, Any]:
        saved = venue.admin.put(f"/v1/admin/venues/{venue.venue_id}/settings", {
            "allow_guest_modify": allow_guest_modify, "refund_on_cancel": refund_on_cancel,
            "refund_cutoff_hours": cutoff_hours})
        assert saved.status == 200, saved.json
        return saved.json

    def slot(self, venue: Venue, start: datetime | None = None, hours: float = 1, capacity: int = 10,
             product_id: str = "jump-60", product_name: str = "Open Jump 60 min") -> dict[str, Any]:
        start = start or now() + timedelta(days=3)
        created = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/slots", {
            "product_id": product_id, "product_name": product_name, "start": iso(start),
            "end": iso(start + timedelta(hours=hours)), "capacity": capacity})
        assert created.status == 201, created.json
        return created.json

    def guest(self, venue: Venue, email: str | None = None, password: str = "correct horse battery",
              login: bool = True) -> Guest:
        import secrets

        email = email or f"guest-{secrets.token_hex(4)}@example.com"
        created = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests",
                                   {"email": email, "password": password, "name": "Ada Guest"})
        assert created.status == 201, created.json
        guest = Guest(venue, created.json["guest_id"], email, password, Api(self.client, None))
        if login:
            answer = guest.api.post(f"/v1/venues/{venue.venue_id}/login", {"email": email, "password": password})
            assert answer.status == 200, answer.json
            guest.api.credential = answer.json["token"]
        return guest

    def payment_intent(self, amount: int, currency: str = "usd") -> str:
        import requests

        answer = requests.post(f"{self.stack.stripe_url}/v1/payment_intents",
                               data={"amount": amount, "currency": currency, "confirm": "true",
                                     "payment_method": "pm_card_visa"},
                               headers={"Authorization": "Bearer sk_test_local_standin"}, timeout=10)
        answer.raise_for_status()
        return str(answer.json()["id"])

    def purchase(self, guest: Guest, slots: list[dict[str, Any]], amount: int = 2500,
                 names: list[str] | None = None) -> dict[str, Any]:
        venue = guest.venue
        total = amount * len(slots)
        created = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
            "guest_id": guest.guest_id, "payment_intent_id": self.payment_intent(total, venue.currency),
            "currency": venue.currency,
            "sessions": [{"slot_id": s["slot_id"], "participant_name": (names or [])[i] if names else f"Kid {i + 1}",
                          "amount": amount} for i, s in enumerate(slots)]})
        assert created.status == 201, created.json
        return created.json


@pytest.fixture
def world(client: Any, stack: LocalStack) -> World:
    return World(client, stack)


@pytest.fixture
def bought(world: World) -> tuple[World, Guest, dict[str, Any]]:
    """A guest with three sessions, 25.00 each, 3 to 5 days ahead, at a venue with both switches on
    that refunds up to 24 hours before a session."""
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    slots = [world.slot(venue, start=now() + timedelta(days=3 + d)) for d in range(3)]
    bought = world.purchase(guest, slots, amount=2500)
    # Messages other tests left queued (in whatever order the workers ran them) are handled now,
    # so the Stripe faults a story sets up meet its own refund, not someone else's.
    world.stack.deliver_all()
    return world, guest, bought
