"""Venues, guests, slots and purchases made through the product's own API, one line each: the one
world builder of the benchmarks and the tests (tests/conftest.py puts it on the Chalice test client
as the `world` fixture). It runs either in-process (Chalice's test client) or over HTTP (the local
stack's front)."""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    @property
    def error_code(self) -> str | None:
        body = self.json
        return body["error"]["code"] if isinstance(body, dict) and "error" in body else None


# One request: method, path, headers, body -> the answer.
Send = Callable[[str, str, dict[str, str], bytes | str | None], Response]


def in_process(client: Any) -> Send:
    """Requests through Chalice's test client (`chalice.test.Client`)."""
    def send(method: str, path: str, headers: dict[str, str], body: bytes | str | None) -> Response:
        answer = getattr(client.http, method.lower())(path, headers=headers, body=body)
        return Response(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.body)
    return send


def over_http(base_url: str, session: requests.Session | None = None) -> Send:
    http = session or requests.Session()

    def send(method: str, path: str, headers: dict[str, str], body: bytes | str | None) -> Response:
        answer = http.request(method, base_url + path, headers=headers, data=body, timeout=60)
        return Response(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content)
    return send


class ApiError(AssertionError):
    pass


class Api:
    """JSON requests with a bearer credential: `call` and its verbs give the whole answer, `answer`
    only its body once the status is the one expected."""

    def __init__(self, send: Send, credential: str | None = None) -> None:
        self.send = send
        self.credential = credential

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | str | None = None) -> Response:
        all_headers = {"Content-Type": "application/json"}
        if self.credential:
            all_headers["Authorization"] = f"Bearer {self.credential}"
        all_headers.update(headers or {})
        payload = raw if raw is not None else (None if body is None else json.dumps(body))
        return self.send(method, path, all_headers, payload)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("POST", path, body if body is not None else {}, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.call("PATCH", path, body, **kwargs)

    def answer(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
               expect: int | None = 200) -> Any:
        """The answer's JSON; ApiError unless its status is `expect` (None: any status)."""
        answer = self.call(method, path, body, headers)
        if expect is not None and answer.status != expect:
            raise ApiError(f"{method} {path}: {answer.status} {answer.json}")
        return answer.json

    def with_send(self, send: Send) -> Api:
        return Api(send, self.credential)


@dataclass
class Venue:
    venue_id: str
    key: str
    timezone: str
    currency: str
    admin: Api

    def day_of(self, slot: dict[str, Any]) -> str:
        """The venue's own date of a slot, as the slot lists take it (not the UTC date)."""
        start = datetime.fromisoformat(slot["start"].replace("Z", "+00:00"))
        return start.astimezone(ZoneInfo(self.timezone)).date().isoformat()


@dataclass
class Guest:
    venue: Venue
    guest_id: str
    email: str
    password: str
    api: Api


class World:
    """Every call made as a venue's store or the platform would, each checked for its status."""

    def __init__(self, send: Send, admin_key: str, stripe_url: str) -> None:
        self.send = send
        self.platform = Api(send, admin_key)
        self.stripe_url = stripe_url

    def venue(self, allow_guest_modify: bool = False, refund_on_cancel: bool = False, cutoff_hours: int = 24,
              timezone_name: str = "Europe/London", currency: str = "usd") -> Venue:
        venue_id = self.platform.answer("POST", "/v1/admin/venues", {
            "name": "Bounce Park", "timezone": timezone_name, "currency": currency}, expect=201)["venue_id"]
        key = self.platform.answer("POST", f"/v1/admin/venues/{venue_id}/api-keys", {}, expect=201)["api_key"]
        venue = Venue(venue_id, key, timezone_name, currency, Api(self.send, key))
        if allow_guest_modify or refund_on_cancel or cutoff_hours != 24:
            self.settings(venue, allow_guest_modify, refund_on_cancel, cutoff_hours)
        return venue

    def settings(self, venue: Venue, allow_guest_modify: bool, refund_on_cancel: bool,
                 cutoff_hours: int) -> dict[str, Any]:
        saved: dict[str, Any] = venue.admin.answer("PUT", f"/v1/admin/venues/{venue.venue_id}/settings", {
            "allow_guest_modify": allow_guest_modify, "refund_on_cancel": refund_on_cancel,
            "refund_cutoff_hours": cutoff_hours})
        return saved

    def slot(self, venue: Venue, start: datetime | None = None, hours: float = 1, capacity: int = 10,
             product_id: str = "jump-60", product_name: str = "Open Jump 60 min") -> dict[str, Any]:
        start = start or now() + timedelta(days=3)
        created: dict[str, Any] = venue.admin.answer("POST", f"/v1/admin/venues/{venue.venue_id}/slots", {
            "product_id": product_id, "product_name": product_name, "start": iso(start),
            "end": iso(start + timedelta(hours=hours)), "capacity": capacity}, expect=201)
        return created

    def guest(self, venue: Venue, email: str | None = None, password: str = "correct horse battery",
              login: bool = True) -> Guest:
        email = email or f"guest-{secrets.token_hex(6)}@example.com"
        created = venue.admin.answer("POST", f"/v1/admin/venues/{venue.venue_id}/guests",
                                     {"email": email, "password": password, "name": "Ada Guest"}, expect=201)
        guest = Guest(venue, created["guest_id"], email, password, Api(self.send))
        if login:
            guest.api.credential = self.login(guest)
        return guest

    def login(self, guest: Guest) -> str:
        """The guest's token from a fresh login."""
        return str(Api(guest.api.send).answer("POST", f"/v1/venues/{guest.venue.venue_id}/login",
                                              {"email": guest.email, "password": guest.password})["token"])

    def payment_intent(self, amount: int, currency: str = "usd") -> str:
        answer = requests.post(f"{self.stripe_url}/v1/payment_intents",
                               data={"amount": amount, "currency": currency, "confirm": "true",
                                     "payment_method": "pm_card_visa"},
                               headers={"Authorization": "Bearer sk_test_local_standin"}, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["id"])

    def purchase(self, guest: Guest, slots: list[dict[str, Any]], amount: int = 2500,
                 names: list[str] | None = None) -> dict[str, Any]:
        venue = guest.venue
        made: dict[str, Any] = venue.admin.answer("POST", f"/v1/admin/venues/{venue.venue_id}/transactions", {
            "guest_id": guest.guest_id, "payment_intent_id": self.payment_intent(amount * len(slots), venue.currency),
            "currency": venue.currency,
            "sessions": [{"slot_id": s["slot_id"], "participant_name": names[i] if names else f"Kid {i + 1}",
                          "amount": amount} for i, s in enumerate(slots)]}, expect=201)
        return made


def crowded_slot(world: World, stripe: Any, venue: Venue, transactions: int, sessions: int,
                 amount: int = 500) -> tuple[dict[str, Any], dict[str, int]]:
    """A slot holding `sessions` booked sessions across `transactions` purchases of one guest, five
    days ahead. LOADING SHORTCUT: the purchases are written straight into storage (BatchWriteItem),
    since recording thousands through the API would take many minutes; each gets its own payment
    intent at the Stripe stand-in (`stripe`, infra/local/stripe_standin.py), and its header its
    session summary, as every recorded purchase's does. Returns the slot and each transaction's
    number of sessions in it."""
    from chalicelib.ids import new_id
    from chalicelib.storage import summaries
    from chalicelib.storage.models import BookingItem, SessionRecord, SlotRecord, TransactionRecord

    guest = world.guest(venue, login=False)
    start = now() + timedelta(days=5)
    slot = world.slot(venue, capacity=sessions, start=start)
    counts = {new_id(): sessions // transactions + (1 if n < sessions % transactions else 0)
              for n in range(transactions)}
    with BookingItem.batch_write() as batch:
        for transaction_id, count in counts.items():
            intent = stripe.create_payment_intent(amount * count, "usd")
            booked = []
            for n in range(count):
                session_id = new_id()
                booked.append(SessionRecord(
                    transaction_id=transaction_id, item=f"session#{session_id}", venue_id=venue.venue_id,
                    session_id=session_id, slot_id=slot["slot_id"], product_id="jump-60",
                    product_name="Open Jump 60 min", start=start, end=start + timedelta(hours=1),
                    participant_name=f"Kid {n}", amount=amount, status="booked", refund_status="none",
                    session_venue_id=venue.venue_id, refund_window="closed"))
            # Each cancellation updates the header's summary in the same write.
            batch.save(TransactionRecord(
                transaction_id=transaction_id, item="transaction", venue_id=venue.venue_id, guest_id=guest.guest_id,
                purchased_at=now(), currency="usd", total=amount * count, payment_intent_id=intent["id"],
                session_count=count, summary=summaries.of_sessions(booked)))
            for session in booked:
                batch.save(session)
    SlotRecord(venue.venue_id, slot["slot_id"]).update(actions=[SlotRecord.booked.set(sessions),
                                                               SlotRecord.remaining.set(0)])
    return slot, counts
