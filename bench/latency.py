"""Latency through the local stack over HTTP: receipt, move and cancel under 16 concurrent clients
(a thread and a requests.Session each), and the time from a cancellation's answer to its receipt
saying `refunded`, with the stack's background pump delivering the refund messages."""
from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from bench.world import Api, Guest, World, over_http

CLIENTS = 16


@dataclass
class Timings:
    name: str
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    note: str = ""

    def pct(self, p: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        return self.pct(95)


def _run_clients(work: list[Callable[[Api], tuple[list[float], int]]], api_of: list[Api], warm: str) -> tuple[list[float], int]:
    """Run each client's `work` on its own thread and Session, all starting together once every
    client has its connection open (an untimed GET of `warm`), so the figures are requests, not
    16 simultaneous TCP handshakes."""
    barrier = threading.Barrier(len(work))
    results: list[float] = []
    errors = 0
    lock = threading.Lock()

    def client(i: int) -> None:
        nonlocal errors
        session = requests.Session()
        api = api_of[i].with_send(over_http(_BASE[0], session))
        for _ in range(5):  # the local front's listen backlog is small: a handshake may be refused
            try:
                api.answer("GET", warm, expect=None)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        barrier.wait()
        found, failed = work[i](api)
        with lock:
            results.extend(found)
            errors += failed

    with ThreadPoolExecutor(len(work)) as pool:
        list(pool.map(client, range(len(work))))
    return results, errors


def _timed_each(calls: list[Callable[[], Any]]) -> tuple[list[float], int]:
    """Time each call; a failed one (an error status or a dropped connection) is counted, not timed."""
    seconds, failed = [], 0
    for call in calls:
        t0 = time.perf_counter()
        try:
            call()
        except Exception as error:  # reported with the figures
            failed += 1
            print(f"  request failed: {error!r}"[:200], flush=True)
            continue
        seconds.append(time.perf_counter() - t0)
    return seconds, failed


_BASE: list[str] = [""]


def measure_latency(world: World, base_url: str, requests_per_client: int = 25) -> list[Timings]:
    _BASE[0] = base_url
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    slot_a, slot_b = world.slot(venue, capacity=10_000), world.slot(venue, capacity=10_000)
    guests: list[Guest] = [world.guest(venue) for _ in range(CLIENTS)]
    singles = [world.purchase(g, [slot_a]) for g in guests]
    bulk = [world.purchase(g, [slot_a] * requests_per_client) for g in guests]
    apis = [g.api for g in guests]
    timings = []

    def receipts(i: int) -> Callable[[Api], tuple[list[float], int]]:
        path = f"/v1/me/transactions/{singles[i]['transaction_id']}"
        return lambda api: _timed_each([lambda: api.answer("GET", path)] * requests_per_client)

    def moves(i: int) -> Callable[[Api], tuple[list[float], int]]:
        tx, sid = singles[i]["transaction_id"], singles[i]["sessions"][0]["session_id"]
        path = f"/v1/me/transactions/{tx}/sessions/{sid}"
        targets = [slot_b["slot_id"], slot_a["slot_id"]]
        return lambda api: _timed_each([lambda n=n: api.answer("PATCH", path, {"slot_id": targets[n % 2]})
                                        for n in range(requests_per_client)])

    def cancels(i: int) -> Callable[[Api], tuple[list[float], int]]:
        tx = bulk[i]["transaction_id"]
        path = f"/v1/me/transactions/{tx}/cancellations"
        return lambda api: _timed_each([lambda sid=s["session_id"]: api.answer("POST", path, {"session_ids": [sid]})
                                        for s in bulk[i]["sessions"]])

    for name, work, note in (("receipt", receipts, ""), ("move (PATCH slot_id)", moves, ""),
                             ("cancel 1 session", cancels, "each queues a refund the pump pays meanwhile")):
        probe = _probe_route(apis[0], singles[0]) if name.startswith("move") else True
        if not probe:
            timings.append(Timings(name, note="n/a (route missing)"))
            continue
        seconds, errors = _run_clients([work(i) for i in range(CLIENTS)], apis, warm="/v1/me/transactions?limit=1")
        timings.append(Timings(name, seconds, errors, note))
        print(f"  {name}: n={len(seconds)} p50={timings[-1].p50 * 1000:.0f} ms "
              f"p95={timings[-1].p95 * 1000:.0f} ms errors={errors}", flush=True)
    return timings


def _probe_route(api: Api, purchase: dict[str, Any]) -> bool:
    tx, sid = purchase["transaction_id"], purchase["sessions"][0]["session_id"]
    answer = api.answer("PATCH", f"/v1/me/transactions/{tx}/sessions/{sid}", {"participant_name": "Kid 1"},
                      expect=None)
    return not (isinstance(answer, dict) and answer.get("error", {}).get("message") == "no such route")


def measure_refund_latency(world: World, base_url: str, refunds: int = 200, in_flight: int = 8,
                           per_purchase: int = 10, poll_seconds: float = 0.25) -> Timings:
    """Cancel `refunds` sessions one request each (so one refund each), `in_flight` at a time, and
    time from the cancellation's answer to the moment the refund was recorded `refunded` (its
    `updated_at` in the venue's refund list, on the same machine's clock).

    Each client waits for its refund (polling the guest's receipt every `poll_seconds`) before it
    cancels again, so at most `in_flight` refunds are on their way. The time is read from the
    record, not from the poll that saw it: polling every 50 ms to time it (as this did before)
    made 8 pollers ask for 160 receipts a second, most of a core of the stack being measured."""
    venue = world.venue(allow_guest_modify=False, refund_on_cancel=True, cutoff_hours=24)
    slot = world.slot(venue, capacity=10_000)
    guest = world.guest(venue)
    jobs: list[tuple[str, str]] = []
    for _ in range(refunds // per_purchase):
        bought = world.purchase(guest, [slot] * per_purchase)
        jobs += [(bought["transaction_id"], s["session_id"]) for s in bought["sessions"]]
    result = Timings("cancel -> refunded", note=f"{in_flight} cancellations in flight; time to the refund's "
                                                f"recorded `refunded` (receipt polled every {poll_seconds * 1000:.0f} ms)")
    answered: dict[str, float] = {}  # refund id -> epoch seconds of the cancellation's answer
    lock = threading.Lock()
    local = threading.local()

    def one(job: tuple[str, str]) -> None:
        try:
            follow(job)
        except Exception as error:  # counted with the figures
            print(f"  refund job failed: {error!r}"[:200], flush=True)
            with lock:
                result.errors += 1

    def follow(job: tuple[str, str]) -> None:
        if not hasattr(local, "api"):
            local.api = guest.api.with_send(over_http(base_url, requests.Session()))
        api, (tx, sid) = local.api, job
        answer = api.answer("POST", f"/v1/me/transactions/{tx}/cancellations", {"session_ids": [sid]})
        refund_id = answer["refund"]["refund_id"]
        with lock:
            answered[refund_id] = time.time()
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            receipt = api.answer("GET", f"/v1/me/transactions/{tx}")
            status = next((r["status"] for r in receipt["refunds"] if r["refund_id"] == refund_id), None)
            if status in ("refunded", "failed"):
                if status == "failed":
                    with lock:
                        result.errors += 1
                return
            time.sleep(poll_seconds)
        with lock:
            result.errors += 1

    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(one, jobs))
    for refund in _refunded(venue.admin.with_send(over_http(base_url)), venue.venue_id):
        if refund["refund_id"] in answered:
            settled = datetime.fromisoformat(refund["updated_at"].replace("Z", "+00:00")).timestamp()
            result.seconds.append(max(0.0, settled - answered[refund["refund_id"]]))
    print(f"  cancel -> refunded: n={len(result.seconds)} p50={result.p50 * 1000:.0f} ms "
          f"p95={result.p95 * 1000:.0f} ms failed/timed out={result.errors}", flush=True)
    return result


def _refunded(admin: Api, venue_id: str) -> list[dict[str, Any]]:
    """Every `refunded` refund of the venue, from its admin's refund list (all pages)."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = admin.answer("GET", f"/v1/admin/venues/{venue_id}/refunds?status=refunded&limit=100"
                                   + (f"&cursor={quote(cursor)}" if cursor else ""))
        found += page["refunds"]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return found


def measure_in_child(base_url: str, admin_key: str, stripe_url: str, requests_per_client: int,
                     refunds: int, settle: Callable[[], None] | None = None) -> tuple[list[Timings], Timings]:
    """Both measurements from a separate process, as real clients would be: 16 client threads in
    the stack's own interpreter would take its CPU (and GIL) from the stack they measure.

    `settle` runs between the two (in this process): the cancellations of the first measurement
    each queue a refund (192 with the defaults), and a refund timed while the pump still works
    through them waits behind all of them. That was the p95 of ~30 s to `refunded`: the first
    cancellations in flight waited ~40 s behind the backlog, the rest took ~2 s."""
    request = ("from bench import latency\n"
               "from bench.world import World, over_http\n"
               "url, key, stripe, rpc, refunds = sys.argv[1:6]\n"
               "world = World(over_http(url), key, stripe)\n")
    first = _child(request + "found = latency.measure_latency(world, url, requests_per_client=int(rpc))\n",
                   base_url, admin_key, stripe_url, requests_per_client, refunds)
    if settle is not None:
        settle()
    second = _child(request + "found = [latency.measure_refund_latency(world, url, refunds=int(refunds))]\n",
                    base_url, admin_key, stripe_url, requests_per_client, refunds)
    return first, second[0]


def _child(code: str, base_url: str, admin_key: str, stripe_url: str, requests_per_client: int,
           refunds: int) -> list[Timings]:
    import json
    import subprocess
    import sys
    from pathlib import Path

    code = "import json, sys\n" + code + "print(json.dumps([t.__dict__ for t in found]))\n"
    root = Path(__file__).resolve().parents[1]
    child = subprocess.run([sys.executable, "-c", code, base_url, admin_key, stripe_url, str(requests_per_client),
                            str(refunds)], cwd=root, stdout=subprocess.PIPE, text=True, check=True)
    lines = child.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line, flush=True)
    return [Timings(**t) for t in json.loads(lines[-1])]
