"""Venues, guests, slots and purchases for the benchmarks, made through the product's own API,
either in-process (Chalice's test client) or over HTTP (the local stack's front)."""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

Send = Callable[[str, str, dict[str, str], bytes | None], tuple[int, Any]]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def in_process(client: Any) -> Send:
    def send(method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, Any]:
        answer = getattr(client.http, method.lower())(path, headers=headers, body=body)
        return answer.status_code, json.loads(answer.body) if answer.body else None
    return send


def over_http(base_url: str, session: requests.Session | None = None) -> Send:
    http = session or requests.Session()

    def send(method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, Any]:
        answer = http.request(method, base_url + path, headers=headers, data=body, timeout=60)
        return answer.status_code, answer.json() if answer.content else None
    return send


class ApiError(AssertionError):
    pass


@dataclass
class Api:
    send: Send
    credential: str | None = None

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             expect: int | None = 200) -> Any:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.credential:
            all_headers["Authorization"] = f"Bearer {self.credential}"
        status, answer = self.send(method, path, all_headers, None if body is None else json.dumps(body).encode())
        if expect is not None and status != expect:
            raise ApiError(f"{method} {path}: {status} {answer}")
        return answer

    def with_send(self, send: Send) -> Api:
        return Api(send, self.credential)


@dataclass
class Venue:
    venue_id: str
    admin: Api


@dataclass
class Guest:
    venue: Venue
    guest_id: str
    email: str
    password: str
    api: Api


class World:
    def __init__(self, send: Send, admin_key: str, stripe_url: str) -> None:
        self.send = send
        self.platform = Api(send, admin_key)
        self.stripe_url = stripe_url

    def venue(self, allow_guest_modify: bool = True, refund_on_cancel: bool = True, cutoff_hours: int = 24) -> Venue:
        venue_id = self.platform.call("POST", "/v1/admin/venues", {
            "name": "Bench Park", "timezone": "Europe/London", "currency": "usd"}, expect=201)["venue_id"]
        key = self.platform.call("POST", f"/v1/admin/venues/{venue_id}/api-keys", {}, expect=201)["api_key"]
        venue = Venue(venue_id, Api(self.send, key))
        venue.admin.call("PUT", f"/v1/admin/venues/{venue_id}/settings", {
            "allow_guest_modify": allow_guest_modify, "refund_on_cancel": refund_on_cancel,
            "refund_cutoff_hours": cutoff_hours})
        return venue

    def slot(self, venue: Venue, start: datetime | None = None, capacity: int = 1000,
             product_id: str = "jump-60") -> dict[str, Any]:
        start = start or now() + timedelta(days=3)
        return venue.admin.call("POST", f"/v1/admin/venues/{venue.venue_id}/slots", {
            "product_id": product_id, "product_name": "Open Jump 60 min", "start": iso(start),
            "end": iso(start + timedelta(hours=1)), "capacity": capacity}, expect=201)

    def guest(self, venue: Venue) -> Guest:
        email, password = f"guest-{secrets.token_hex(6)}@example.com", "correct horse battery"
        created = venue.admin.call("POST", f"/v1/admin/venues/{venue.venue_id}/guests",
                                   {"email": email, "password": password, "name": "Ada Guest"}, expect=201)
        guest = Guest(venue, created["guest_id"], email, password, Api(self.send))
        guest.api.credential = self.login(guest)["token"]
        return guest

    def login(self, guest: Guest) -> Any:
        return Api(guest.api.send).call("POST", f"/v1/venues/{guest.venue.venue_id}/login",
                                        {"email": guest.email, "password": guest.password})

    def payment_intent(self, amount: int) -> str:
        answer = requests.post(f"{self.stripe_url}/v1/payment_intents",
                               data={"amount": amount, "currency": "usd", "confirm": "true",
                                     "payment_method": "pm_card_visa"},
                               headers={"Authorization": "Bearer sk_test_local_standin"}, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["id"])

    def purchase(self, guest: Guest, slots: list[dict[str, Any]], amount: int = 2500) -> dict[str, Any]:
        venue = guest.venue
        return venue.admin.call("POST", f"/v1/admin/venues/{venue.venue_id}/transactions", {
            "guest_id": guest.guest_id, "payment_intent_id": self.payment_intent(amount * len(slots)),
            "currency": "usd",
            "sessions": [{"slot_id": s["slot_id"], "participant_name": f"Kid {i + 1}", "amount": amount}
                         for i, s in enumerate(slots)]}, expect=201)
