"""The demo `make run SEED=1` prints: a venue with both guest features on, two weeks of slots (some
nearly full, one full), a guest and a paid purchase of three sessions, one inside the refund cutoff;
one such venue takes payments on the platform's Stripe account, a second on its own connected
account (Stripe Connect), so its payments and refunds live on that account in the stand-in.

Everything is made through the public HTTP API and the Stripe stand-in, as a venue's store would.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import requests

STRIPE_TEST_KEY = "sk_test_local_standin"
GUEST_PASSWORD = "bounce-demo-2024"
# The second demo venue's own Stripe account; any `acct_` id works with the stand-in.
CONNECTED_ACCOUNT = "acct_1RebookDemoVenue"


class Stack(Protocol):
    url: str
    admin_key: str
    stripe_url: str


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    minutes: int
    capacity: int
    amount: int
    starts: tuple[time, ...]


JUMP = Product("jump-60", "Open Jump 60 min", 60, 12, 1500, (time(10), time(12), time(14), time(16)))
TODDLERS = Product("toddler-45", "Toddler Time 45 min", 45, 6, 900, (time(9, 30),))


@dataclass
class Demo:
    venue_id: str
    venue_key: str
    timezone: str
    currency: str
    guest_email: str
    guest_password: str
    guest_id: str
    transaction_id: str
    stripe_account: str | None = None
    sessions: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by product id, in start order


class DemoApi:
    """JSON over HTTP with one bearer credential; any refusal stops the seed with its message."""

    def __init__(self, base: str, credential: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {credential}", "Content-Type": "application/json"})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._answer(self.http.post(self.base + path, json=body, timeout=30))

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._answer(self.http.put(self.base + path, json=body, timeout=30))

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(f"{response.request.method} {response.request.path_url} answered "
                               f"{response.status_code}: {response.text}")
        return response.json()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def paid_intent(stack: Stack, amount: int, currency: str, stripe_account: str | None = None) -> str:
    """A guest's payment, made on the venue's connected account when it has one (as its store would)."""
    headers = {"Authorization": f"Bearer {STRIPE_TEST_KEY}"}
    if stripe_account:
        headers["Stripe-Account"] = stripe_account
    answer = requests.post(f"{stack.stripe_url}/v1/payment_intents", timeout=30,
                           data={"amount": amount, "currency": currency, "confirm": "true",
                                 "payment_method": "pm_card_visa"},
                           headers=headers)
    answer.raise_for_status()
    return str(answer.json()["id"])


def build_demo(stack: Stack, *, name: str = "Bounce Park (demo)", timezone_name: str = "Europe/London",
               currency: str = "gbp", guest_email: str | None = None, now: datetime | None = None,
               stripe_account: str | None = None) -> Demo:
    """Make the demo venue and its data; returns what a person (or a browser test) needs to log in."""
    platform = DemoApi(stack.url, stack.admin_key)
    venue = platform.post("/v1/admin/venues", {"name": name, "timezone": timezone_name, "currency": currency,
                                                "stripe_account": stripe_account})
    venue_id = venue["venue_id"]
    key = platform.post(f"/v1/admin/venues/{venue_id}/api-keys", {})["api_key"]
    admin = DemoApi(stack.url, key)
    base = f"/v1/admin/venues/{venue_id}"
    admin.put(f"{base}/settings", {"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 24})

    zone = ZoneInfo(timezone_name)
    now = now or datetime.now(UTC)
    today = now.astimezone(zone).date()
    starts = [(product, datetime.combine(today + timedelta(days=n), start, tzinfo=zone))
              for product in (JUMP, TODDLERS) for n in range(14) for start in product.starts]
    with ThreadPoolExecutor(max_workers=8) as pool:  # seventy-odd slots; the stack serves in parallel
        made = list(pool.map(lambda planned: make_slot(admin, base, *planned),
                             [(product, start) for product, start in starts if start > now + timedelta(hours=1)]))
    slots: dict[str, list[dict[str, Any]]] = {product.product_id: [] for product in (JUMP, TODDLERS)}
    for slot in made:
        slots[slot["product_id"]].append(slot)
    # A session that starts in about three hours: inside the 24-hour cutoff, so no refund.
    soon = (now + timedelta(hours=3)).replace(minute=45, second=0, microsecond=0)  # off the :00/:30 grid
    soon_slot = make_slot(admin, base, JUMP, soon)

    email = guest_email or "ada@example.com"
    guest = admin.post(f"{base}/guests", {"email": email, "password": GUEST_PASSWORD, "name": "Ada Lovelace"})
    party = admin.post(f"{base}/guests", {"email": f"party-{venue_id.lower()}@example.com",
                                          "password": GUEST_PASSWORD, "name": "Birthday Party"})

    def on(day_offset: int, start: time, product: Product = JUMP) -> dict[str, Any]:
        wanted = datetime.combine(today + timedelta(days=day_offset), start, tzinfo=zone)
        return next(s for s in slots[product.product_id] if s["start"] == iso(wanted))

    # Fill some slots so the edit dialog shows seats running out, and one full slot it cannot choose.
    for slot, seats in ((on(3, time(12)), 11), (on(3, time(14)), JUMP.capacity), (on(4, time(10)), 10),
                        (on(5, time(16)), 11), (on(2, time(9, 30), TODDLERS), TODDLERS.capacity - 1)):
        amount = JUMP.amount if slot["product_id"] == JUMP.product_id else TODDLERS.amount
        purchase(stack, admin, base, party["guest_id"], currency,
                 [(slot, f"Party guest {n + 1}", amount) for n in range(seats)], stripe_account)

    receipt = purchase(stack, admin, base, guest["guest_id"], currency, [
        (soon_slot, "Sam", JUMP.amount), (on(3, time(10)), "Mia", JUMP.amount), (on(4, time(14)), "Leo", JUMP.amount)],
        stripe_account)
    for product_slots in slots.values():
        product_slots.sort(key=lambda s: s["start"])
    return Demo(venue_id=venue_id, venue_key=key, timezone=timezone_name, currency=currency, guest_email=email,
                guest_password=GUEST_PASSWORD, guest_id=guest["guest_id"], transaction_id=receipt["transaction_id"],
                stripe_account=stripe_account, sessions=receipt["sessions"], slots=slots)


def make_slot(admin: DemoApi, base: str, product: Product, start: datetime) -> dict[str, Any]:
    return admin.post(f"{base}/slots", {
        "product_id": product.product_id, "product_name": product.name, "start": iso(start),
        "end": iso(start + timedelta(minutes=product.minutes)), "capacity": product.capacity})


def purchase(stack: Stack, admin: DemoApi, base: str, guest_id: str, currency: str,
             sessions: list[tuple[dict[str, Any], str, int]], stripe_account: str | None = None) -> Any:
    total = sum(amount for _, _, amount in sessions)
    return admin.post(f"{base}/transactions", {
        "guest_id": guest_id, "payment_intent_id": paid_intent(stack, total, currency, stripe_account),
        "currency": currency,
        "sessions": [{"slot_id": slot["slot_id"], "participant_name": name, "amount": amount}
                     for slot, name, amount in sessions]})


def seed_demo(stack: Stack) -> list[str]:
    lines: list[str] = []
    for demo in (build_demo(stack),
                 build_demo(stack, name="Bounce Park Riverside (demo, own Stripe account)",
                            stripe_account=CONNECTED_ACCOUNT)):
        account = (f"its own connected Stripe account {demo.stripe_account}" if demo.stripe_account
                   else "the platform's Stripe account")
        lines += [
            "",
            f"Demo venue {demo.venue_id} ({demo.timezone}, {demo.currency.upper()}), guest editing and refunds on, "
            f"24 h cutoff, payments on {account}:",
            f"  guest portal:   {stack.url}/?venue={demo.venue_id}",
            f"  guest email:    {demo.guest_email}",
            f"  guest password: {demo.guest_password}",
            f"  admin page:     {stack.url}/admin.html?venue={demo.venue_id}",
            f"  venue API key:  {demo.venue_key}",
        ]
    return [
        *lines,
        "Each guest has one purchase of three sessions; the first starts within 24 hours, so cancelling it refunds "
        "nothing.",
        "",
    ]
