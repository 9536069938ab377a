"""The window closer's reads as the table grows: 1,000, 10,000 and 100,000 sessions, of which 20
cross their refund deadline. The figure must stay flat.

LOADING SHORTCUT: the filler sessions (all but the 20 that cross) are written straight into the
embedded DynamoDB's in-process store (moto's backend), because 100,000 writes through its HTTP
endpoint would take most of an hour. They are copies of a real session item made by the API, with
new keys and an open refund window whose deadline is weeks away, so every one of them sits in the
sparse index the closer reads (the worst case for it). The 20 crossing sessions are bought through
the API, and the sweep that is measured goes through the real HTTP endpoint.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bench.capacity import Meter, Metered
from bench.world import World, now

CROSSING = 20


@dataclass
class CloserRow:
    sessions_in_table: int
    crossing: int
    metered: Metered
    items_read: int
    closed: int
    sweep_seconds: float
    load_seconds: float


def _bookings_table() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib.storage.models import BookingItem

    name = BookingItem.Meta.table_name
    for regions in dynamodb_backends.values():
        for backend in regions.values():
            if name in backend.tables:
                return backend.tables[name]
    raise RuntimeError(f"the embedded DynamoDB has no table {name}")


def _session_count(table: Any) -> int:
    return sum(1 for by_range in table.items.values() for key in by_range if str(key.value).startswith("session#"))


def _load_filler(table: Any, template: dict[str, Any], count: int, base: datetime, serial: int) -> None:
    """`count` open sessions with far deadlines, 10 to a transaction, straight into moto's store."""
    from chalicelib.storage.models import SessionRecord
    from chalicelib.storage.shards import window_shard

    for i in range(count):
        n = serial + i
        session_id = f"FILLER{n:020d}"
        deadline = base + timedelta(days=10, minutes=n % 40_000)
        item = dict(template)
        item.update({
            "transaction_id": {"S": f"FILLERTX{n // 10:018d}"},
            "item": {"S": f"session#{session_id}"},
            "session_id": {"S": session_id},
            "window_shard": {"N": str(window_shard(session_id))},
            "refund_deadline": {"S": SessionRecord.refund_deadline.serialize(deadline)},
            "start": {"S": SessionRecord.start.serialize(deadline + timedelta(hours=24))},
            "end": {"S": SessionRecord.end.serialize(deadline + timedelta(hours=25))},
        })
        table.put_item(item)


def fill_sessions(world: World, size: int) -> float:
    """Fill the bookings table up to `size` sessions (the loading shortcut above, from one
    session bought through the API as the template); returns the seconds it took."""
    table = _bookings_table()
    missing = size - _session_count(table)
    if missing <= 0:
        return 0.0
    venue = world.venue(allow_guest_modify=False, refund_on_cancel=True, cutoff_hours=1)
    bought = world.purchase(world.guest(venue), [world.slot(venue, capacity=1000)])
    template = table.get_item(*_keys(bought["transaction_id"], f"session#{bought['sessions'][0]['session_id']}")
                              ).to_json()["Attributes"]
    t0 = time.perf_counter()
    _load_filler(table, template, missing - 1, now(), 10_000_000)
    return time.perf_counter() - t0


def measure_closer(world: World, meter: Meter, sizes: tuple[int, ...] = (1_000, 10_000, 100_000)) -> list[CloserRow]:
    from chalicelib.services import refund_windows

    table = _bookings_table()
    # Cutoff 1 hour. Round k's 20 sessions start 3 + k hours from now, so their open windows cross
    # their deadlines 2 + k hours from now, and round k's sweep runs as of 2.5 + k hours from now:
    # it finds its own 20 (earlier rounds' are closed).
    venue = world.venue(allow_guest_modify=False, refund_on_cancel=True, cutoff_hours=1)
    guest = world.guest(venue)
    started = now()
    rounds = []
    for k in range(len(sizes)):
        slot = world.slot(venue, start=started + timedelta(hours=3 + k), capacity=CROSSING)
        rounds.append(world.purchase(guest, [slot] * CROSSING))
    first = rounds[0]
    template = table.get_item(*_keys(first["transaction_id"], f"session#{first['sessions'][0]['session_id']}")
                              ).to_json()["Attributes"]
    serial, rows = 0, []
    for k, size in enumerate(sizes):
        table = _bookings_table()
        missing = size - _session_count(table)
        t0 = time.perf_counter()
        if missing > 0:
            _load_filler(table, template, missing, started, serial)
            serial += missing
        load_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        with meter.measure() as metered:
            result = refund_windows.close_due_windows(started + timedelta(hours=2 + k, minutes=30))
        rows.append(CloserRow(sessions_in_table=_session_count(table), crossing=CROSSING, metered=metered,
                              items_read=result.items_read, closed=result.closed,
                              sweep_seconds=time.perf_counter() - t0, load_seconds=load_seconds))
        print(f"  closer: {rows[-1].sessions_in_table:>7} sessions, {metered.calls} calls, "
              f"{metered.items_returned} items read, {result.closed} closed, "
              f"{metered.read_units:g} RRU, {metered.write_units:g} WRU", flush=True)
    return rows


def _keys(transaction_id: str, item: str) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    return DynamoType({"S": transaction_id}), DynamoType({"S": item})
