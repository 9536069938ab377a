"""A scaled-down day of traffic replayed against the local stack, and its extrapolation to peak.

A day at one venue, scaled down: a morning of ordinary purchases spread over the day's slots, a
rush of purchases into one popular slot (a holiday session released at once), moves out of and
into it, cancellations (each with its refund paid by the worker) and receipts. Every request goes
through the app (Chalice's test client) against the embedded DynamoDB, metered item by item
(`bench/capacity.py`). What is recorded: request units per kind of request, and the writes each
item received (the slot seat counters are the hottest).

The extrapolation (docs/scale.md) scales the measured units per request to 1,000 venues and
100,000 bookings an hour at peak; it assumes the mix below, which is stated, not measured.
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from bench import cost
from bench.capacity import Meter
from bench.world import World, now

# The mix per 100 purchases (one purchase = one booking of 1 to 3 sessions).
PURCHASES = 100
RUSH_SHARE = 0.4  # of the purchases, into the one popular slot, back to back
MOVES = 15
CANCELLATIONS = 15
RECEIPTS = 200  # guests look at their receipts more than they change them

# The peak the model is for (issue 16).
VENUES = 1_000
PEAK_BOOKINGS_PER_HOUR = 100_000
PER_ITEM_WCU_PER_SECOND = 1_000  # DynamoDB's limit for one item (and one partition)
TRANSACTION_WRU_PER_KB = 2


@dataclass
class Kind:
    name: str
    count: int = 0
    rru: float = 0.0
    wru: float = 0.0
    calls: int = 0

    def per_request(self) -> tuple[float, float, float]:
        n = max(self.count, 1)
        return self.rru / n, self.wru / n, self.calls / n


@dataclass
class Day:
    kinds: dict[str, Kind] = field(default_factory=dict)
    item_writes: Counter[str] = field(default_factory=Counter)  # item label -> WRU it took
    rush_slot_writes: int = 0  # transactional writes the popular slot's counter took in the rush
    rush_purchases: int = 0
    sessions_booked: int = 0


def replay(world: World, meter: Meter, deliver_all: Callable[[], int], seed: int = 16) -> Day:
    rng = random.Random(seed)
    day = Day()
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    start = now() + timedelta(days=2)
    slots = [world.slot(venue, start=start + timedelta(hours=h), capacity=500) for h in range(8)]
    popular = world.slot(venue, start=start + timedelta(days=1), capacity=500)
    guests = [world.guest(venue) for _ in range(12)]
    bought: list[tuple[Any, dict[str, Any]]] = []

    def measured(kind: str, action: Callable[[], Any]) -> Any:
        with meter.measure() as metered:
            result = action()
        found = day.kinds.setdefault(kind, Kind(kind))
        found.count += 1
        found.rru += metered.read_units
        found.wru += metered.write_units
        found.calls += metered.calls
        for _table, label, units, indexes, key in metered.written:
            day.item_writes[f"{label} {key}" if label.startswith("slots")
                            else label] += units + sum(indexes.values())
        return result

    rush = int(PURCHASES * RUSH_SHARE)
    for i in range(PURCHASES):
        guest = rng.choice(guests)
        in_rush = i >= PURCHASES - rush
        size = rng.choice((1, 1, 2, 3))
        chosen = [popular] * size if in_rush else [rng.choice(slots) for _ in range(size)]
        made = measured("purchase", partial(world.purchase, guest, chosen))
        day.sessions_booked += size
        if in_rush:
            day.rush_purchases += 1
            day.rush_slot_writes += 1
        bought.append((guest, made))
    for _ in range(MOVES):
        guest, made = rng.choice(bought)
        session = made["sessions"][0]
        target = rng.choice([*slots, popular])
        if target["slot_id"] == session["slot_id"]:
            continue
        path = f"/v1/me/transactions/{made['transaction_id']}/sessions/{session['session_id']}"
        answer = measured("move", partial(guest.api.answer, "PATCH", path, {"slot_id": target["slot_id"]},
                                                            expect=None))
        if isinstance(answer, dict) and "slot_id" in answer:
            session["slot_id"] = answer["slot_id"]
    cancelled = rng.sample(bought, CANCELLATIONS)
    for guest, made in cancelled:
        ids = [s["session_id"] for s in made["sessions"]]
        measured("cancellation", partial(
            guest.api.answer, "POST", f"/v1/me/transactions/{made['transaction_id']}/cancellations", {"session_ids": ids}))
    measured("refund worker (all cancellations' refunds)", deliver_all)
    for _ in range(RECEIPTS):
        guest, made = rng.choice(bought)
        measured("receipt", partial(guest.api.answer, "GET", f"/v1/me/transactions/{made['transaction_id']}"))
    return day


def peak(day: Day) -> dict[str, float]:
    """Units a second and dollars an hour at the peak, from the day's units per request."""
    bookings_per_second = PEAK_BOOKINGS_PER_HOUR / 3600
    per_purchase = dict(zip(("rru", "wru", "calls"), day.kinds["purchase"].per_request(), strict=True))
    scale = {"purchase": 1.0, "move": MOVES / PURCHASES, "cancellation": CANCELLATIONS / PURCHASES,
             "receipt": RECEIPTS / PURCHASES}
    wru = rru = api = 0.0
    for name, ratio in scale.items():
        kind = day.kinds.get(name)
        if kind is None:
            continue
        r, w, _ = kind.per_request()
        wru += ratio * w
        rru += ratio * r
        api += ratio
    worker = day.kinds.get("refund worker (all cancellations' refunds)")
    if worker is not None:
        wru += worker.wru / PURCHASES
        rru += worker.rru / PURCHASES
    per_hour = PEAK_BOOKINGS_PER_HOUR
    dollars = (per_hour * wru * cost.DYNAMODB_WRU_PER_M / 1e6 + per_hour * rru * cost.DYNAMODB_RRU_PER_M / 1e6
               + per_hour * api * cost.API_GATEWAY_PER_M / 1e6
               + per_hour * (api + CANCELLATIONS / PURCHASES) * cost.LAMBDA_REQUEST_PER_M / 1e6
               + per_hour * (api * cost.API_SECONDS + CANCELLATIONS / PURCHASES * cost.WORKER_SECONDS)
               * cost.MEMORY_GB * cost.LAMBDA_GB_SECOND)
    return {"bookings_per_second": bookings_per_second, "wru_per_booking": wru, "rru_per_booking": rru,
            "api_per_booking": api, "wcu_per_second": bookings_per_second * wru,
            "rcu_per_second": bookings_per_second * rru, "dollars_per_peak_hour": dollars,
            "purchase_wru": per_purchase["wru"]}


def markdown(day: Day) -> list[str]:
    figures = peak(day)
    lines = [
        "## A scaled-down day, replayed (for docs/scale.md)",
        "",
        f"One venue: {PURCHASES} purchases ({int(PURCHASES * RUSH_SHARE)} of them back to back into one popular "
        f"slot), {MOVES} moves, {CANCELLATIONS} cancellations with their refunds, {RECEIPTS} receipts "
        f"(`bench/day.py`); {day.sessions_booked} sessions booked. Units per request, measured:",
        "",
        "| request | count | DynamoDB calls each | RRU each | WRU each |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in day.kinds.values():
        r, w, c = kind.per_request()
        lines.append(f"| {kind.name} | {kind.count} | {c:.2f} | {r:.2f} | {w:.2f} |")
    popular = [(item, units) for item, units in day.item_writes.most_common() if item.startswith("slots")]
    lines += ["", "Write units by item (bookings, history and idempotency items are all different items, summed by",
              "kind; slots one by one: the popular slot's seat counter is the one hot item):", "",
              "| item | WRU |", "|---|---:|"]
    lines += [f"| {item} (all of them) | {units:g} |" for item, units in day.item_writes.most_common()
              if not item.startswith("slots")]
    lines += [f"| slot seat counter, the hottest (the popular slot) | {popular[0][1]:g} |"] if popular else []
    lines += [f"| slot seat counter, the next hottest | {popular[1][1]:g} |"] if len(popular) > 1 else []
    lines += [
        "",
        f"Extrapolated to {PEAK_BOOKINGS_PER_HOUR:,} bookings an hour ({figures['bookings_per_second']:.1f} a "
        f"second) with this mix: {figures['wru_per_booking']:.1f} WRU and {figures['rru_per_booking']:.1f} RRU "
        f"per booking, so **{figures['wcu_per_second']:,.0f} write units a second** and "
        f"{figures['rcu_per_second']:,.0f} read units a second across the tables, "
        f"**${figures['dollars_per_peak_hour']:.2f} per peak hour** (DynamoDB, API Gateway, Lambda; SQS and "
        "Stripe's fees aside). docs/scale.md works through the hot items.",
        "",
    ]
    return lines
