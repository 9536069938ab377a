"""DynamoDB calls and request units of each guest operation, one request at a time, in-process
through Chalice's test client (the calls are the same as over HTTP; the front adds none)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.capacity import Meter, Metered
from bench.world import Api, ApiError, World


@dataclass
class Row:
    name: str
    metered: Metered | None  # None: the route is not there (yet)
    note: str = ""


def _edit(api: Api, transaction_id: str, session_id: str, body: dict[str, Any]) -> Any:
    """PATCH a session; None if this build has no edit route (a 404 from the gateway)."""
    path = f"/v1/me/transactions/{transaction_id}/sessions/{session_id}"
    try:
        answered = api.patch(path, body)
    except Exception as error:  # Chalice's test client raises on a route it does not know
        if "route" in str(error).lower() or "Missing Authentication Token" in str(error):
            return None
        raise
    status, answer = answered.status, answered.json
    if status in (403, 404, 405) and (answer or {}).get("error", {}).get("message") in (
            "no such route", "Missing Authentication Token", None):
        return None
    if status != 200:
        raise ApiError(f"PATCH {path}: {status} {answer}")
    return answer


def measure_operations(world: World, meter: Meter, deliver_all: Callable[[], int],
                       close_sweep: Callable[[], Any]) -> list[Row]:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    slot_a, slot_b = world.slot(venue, capacity=1000), world.slot(venue, capacity=1000)
    guest = world.guest(venue)
    one = world.purchase(guest, [slot_a])
    five = world.purchase(guest, [slot_a] * 5)
    thirty = world.purchase(guest, [slot_a] * 30)
    keyed = world.purchase(guest, [slot_a])
    edited = world.purchase(guest, [slot_a])
    deliver_all()  # the settings change queued a deadline re-projection: out of the way first
    api = guest.api
    rows: list[Row] = []

    def row(name: str, action: Callable[[], Any], note: str = "") -> Any:
        with meter.measure() as metered:
            result = action()
        rows.append(Row(name, metered if result is not None else None, note))
        return result

    def sid(purchase: dict[str, Any], i: int = 0) -> str:
        return str(purchase["sessions"][i]["session_id"])

    tx = "/v1/me/transactions"
    row("login", lambda: world.login(guest), "argon2 verify; a throttle record is read first")
    row("receipt (1 session)", lambda: api.answer("GET", f"{tx}/{one['transaction_id']}"))
    row("receipt (30 sessions)", lambda: api.answer("GET", f"{tx}/{thirty['transaction_id']}"))
    row("transaction list (5 transactions)", lambda: api.answer("GET", tx))
    row("move (PATCH slot_id)", lambda: _edit(api, edited["transaction_id"], sid(edited), {"slot_id": slot_b["slot_id"]}))
    row("rename (PATCH participant_name)",
        lambda: _edit(api, edited["transaction_id"], sid(edited), {"participant_name": "Grace Hopper"}))
    row("quote (1 session)", lambda: api.answer("POST", f"{tx}/{one['transaction_id']}/cancellation-quote",
                                              {"session_ids": [sid(one)]}))
    row("cancel 1 session", lambda: api.answer("POST", f"{tx}/{one['transaction_id']}/cancellations",
                                             {"session_ids": [sid(one)]}))
    row("refund worker, 1 message (1 session)", lambda: deliver_all() or None,
        "plus one Stripe call; SQS receive/delete are Lambda's poller")
    row("cancel 1 session with Idempotency-Key",
        lambda: api.answer("POST", f"{tx}/{keyed['transaction_id']}/cancellations", {"session_ids": [sid(keyed)]},
                         headers={"Idempotency-Key": "bench-1"}))
    deliver_all()
    row("cancel 5 sessions", lambda: api.answer("POST", f"{tx}/{five['transaction_id']}/cancellations",
                                              {"session_ids": [sid(five, i) for i in range(5)]}))
    row("refund worker, 1 message (5 sessions)", lambda: deliver_all() or None)
    row("cancel 30 sessions", lambda: api.answer("POST", f"{tx}/{thirty['transaction_id']}/cancellations",
                                               {"session_ids": [sid(thirty, i) for i in range(30)]}))
    row("refund worker, 1 message (30 sessions)", lambda: deliver_all() or None)
    row("closer sweep, nothing due", close_sweep, "one Query per shard")
    return rows
