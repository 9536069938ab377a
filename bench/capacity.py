"""DynamoDB calls and request units of an operation, metered at the botocore client.

moto answers `ReturnConsumedCapacity` with fixed placeholders (1.0 for any Query or write, 0.5 for
a GetItem, whatever the item size), so the units here are computed instead, from the items as the
embedded DynamoDB holds them just before and just after each call, by DynamoDB's on-demand rules:

- reads: one read request unit (RRU) per 4 KB, per item for GetItem/BatchGetItem, and on the
  summed size of the items read for a Query; eventually consistent reads (and every GSI read)
  cost half; a read that finds nothing still costs the minimum;
- writes: one write request unit (WRU) per 1 KB of the larger of the item before and after;
  a failed condition still costs the write;
- transactions: twice the units of each item written (and each ConditionCheck, counted as a
  write: the conservative reading);
- every global secondary index the write touches: one write of the projected entry for an
  insert, an update of projected attributes, or a removal, and two when the index key changes.

Inspecting the emulator's items is a measuring aid only; every metered call is a real request
to the embedded DynamoDB's HTTP endpoint.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

READ_UNIT = 4096
WRITE_UNIT = 1024
_WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem"}


@dataclass
class Metered:
    operations: list[str] = field(default_factory=list)
    items_returned: int = 0
    items_evaluated: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    moto_reported_units: float = 0.0  # what moto put in ConsumedCapacity, for the record only
    sqs_sends: int = 0
    # One entry per item written: (table, what the item is, WRU of the item, {index: WRU}, its key).
    written: list[tuple[str, str, int, dict[str, int], str]] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.operations)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for op in self.operations:
            counts[op] = counts.get(op, 0) + 1
        return ", ".join(f"{n}x {op}" if n > 1 else op for op, n in counts.items()) or "none"


# --- item sizes, by DynamoDB's documented rules --------------------------------------------

def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "")
    if "e" in digits.lower():
        digits = format(Decimal(text).normalize(), "f").lstrip("-").replace(".", "")
    digits = digits.strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner) if isinstance(inner, (bytes, bytearray)) else math.ceil(len(inner) * 3 / 4)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in inner.items())
    return 0


def item_size(attributes: dict[str, Any] | None) -> int:
    if not attributes:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in attributes.items())


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return units if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


# --- the emulator's view of items (a measuring aid) ----------------------------------------

class _Emulator:
    def table(self, name: str) -> Any:
        # Looked up every time: moto replaces a table object when it rolls a transaction back.
        from moto.dynamodb.models import dynamodb_backends

        for regions in dynamodb_backends.values():
            for backend in regions.values():
                if name in backend.tables:
                    return backend.tables[name]
        return None

    def item(self, table_name: str, key: dict[str, Any]) -> Any:
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = self.table(table_name)
        if table is None:
            return None
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        try:
            return table.get_item(hash_value, range_value)
        except Exception:
            return None

    def key_of(self, table_name: str, item: dict[str, Any]) -> dict[str, Any]:
        table = self.table(table_name)
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        return {n: item[n] for n in names}


def _attrs(moto_item: Any) -> dict[str, Any] | None:
    """A copy of the item's attributes: moto updates its items in place, so a reference taken
    before a write would already show the write."""
    return moto_item.to_json()["Attributes"] if moto_item is not None else None


def _projected(table: Any, index: Any, item: dict[str, Any]) -> dict[str, Any]:
    projection = index.projection or {}
    kind = projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return item
    keep = set(index.schema_key_attrs) | {table.hash_key_attr, table.range_key_attr}
    if kind == "INCLUDE":
        keep |= set(projection.get("NonKeyAttributes", []))
    return {name: value for name, value in item.items() if name in keep}


def _gsi_writes(table: Any, before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    """Write units the table's global secondary indexes consume for one item changing."""
    return sum(_gsi_writes_by_index(table, before, after).values())


def _gsi_writes_by_index(table: Any, before: dict[str, Any] | None,
                         after: dict[str, Any] | None) -> dict[str, int]:
    found: dict[str, int] = {}
    for index in getattr(table, "global_indexes", []) or []:
        total = 0
        keys = index.schema_key_attrs
        was = before is not None and all(k in before for k in keys)
        now = after is not None and all(k in after for k in keys)
        if not was and not now:
            continue
        old = _projected(table, index, before) if was and before is not None else {}
        new = _projected(table, index, after) if now and after is not None else {}
        if was and now:
            if any(old[k] != new[k] for k in keys):
                total += write_units(item_size(old)) + write_units(item_size(new))  # delete, then put
            elif old != new:
                total += write_units(max(item_size(old), item_size(new)))
        else:
            total += write_units(item_size(old or new))
        if total:
            found[index.name] = total
    return found


def item_label(table_name: str, key: dict[str, Any]) -> str:
    """What an item is, in the venue's words: the table's logical name and, in the bookings
    table, the kind of item ("bookings: session")."""
    logical = table_name.rsplit("-", 1)[-1]
    item = key.get("item", {}).get("S", "")
    return f"{logical}: {item.split('#', 1)[0]}" if item else logical


# --- the meter -----------------------------------------------------------------------------

class Meter:
    """Registers on botocore clients; `measure()` yields a Metered for the calls inside it, made
    on the calling thread or on HTTP-serving threads (never the local stack's queue pump)."""

    def __init__(self, clients: list[Any], sqs_clients: list[Any]) -> None:
        self._clients, self._sqs_clients = clients, sqs_clients
        self._emulator = _Emulator()
        self._current: Metered | None = None
        self._pending: dict[int, list[tuple[str, dict[str, Any], Any]]] = {}
        self._lock = threading.Lock()
        self._id = f"meter-{id(self)}"  # meters may overlap (a test's inside another's)
        for client in clients:
            # before-parameter-build carries the API parameters; before-call only the serialised body
            client.meta.events.register("before-parameter-build.dynamodb", self._before, unique_id=f"{self._id}-b")
            client.meta.events.register("after-call.dynamodb", self._after, unique_id=f"{self._id}-a")
        for client in sqs_clients:
            client.meta.events.register("before-call.sqs.SendMessage", self._send, unique_id=f"{self._id}-sqs")

    def close(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-parameter-build.dynamodb", unique_id=f"{self._id}-b")
            client.meta.events.unregister("after-call.dynamodb", unique_id=f"{self._id}-a")
        for client in self._sqs_clients:
            client.meta.events.unregister("before-call.sqs.SendMessage", unique_id=f"{self._id}-sqs")

    @contextmanager
    def measure(self) -> Iterator[Metered]:
        metered = Metered()
        self._current = metered
        try:
            yield metered
        finally:
            self._current = None

    def _active(self) -> Metered | None:
        if self._current is None or threading.current_thread().name in ("queue-pump", "schedules"):
            return None
        return self._current

    def _send(self, **_: Any) -> None:
        metered = self._active()
        if metered is not None:
            with self._lock:
                metered.sqs_sends += 1

    def _writes_of(self, op: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
        """(table, key, is_condition_check) of every item a write request touches."""
        if op in _WRITE_OPS:
            key = params.get("Key") or self._emulator.key_of(params["TableName"], params["Item"])
            return [(params["TableName"], key, False)]
        if op == "TransactWriteItems":
            found = []
            for action in params["TransactItems"]:
                (kind, body), = action.items()
                key = body.get("Key") or self._emulator.key_of(body["TableName"], body["Item"])
                found.append((body["TableName"], key, kind == "ConditionCheck"))
            return found
        if op == "BatchWriteItem":
            found = []
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    body = request.get("PutRequest") or request.get("DeleteRequest")
                    key = body.get("Key") or self._emulator.key_of(table, body["Item"])
                    found.append((table, key, False))
            return found
        return []

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        metered = self._active()
        if metered is None:
            return
        with self._lock:
            metered.operations.append(model.name)
        writes = self._writes_of(model.name, params)
        snapshot = [(t, k, c, _attrs(self._emulator.item(t, k))) for t, k, c in writes]
        with self._lock:
            self._pending.setdefault(threading.get_ident(), []).append((model.name, params, snapshot))

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        metered = self._active()
        if metered is None:
            return
        with self._lock:
            stack = self._pending.get(threading.get_ident()) or []
            op, params, snapshot = stack.pop() if stack else (model.name, {}, [])
        failed = "Error" in parsed
        read = write = 0.0
        if op == "GetItem":
            read = read_units(item_size(parsed.get("Item")), bool(params.get("ConsistentRead")))
        elif op == "BatchGetItem":
            for table, request in params.get("RequestItems", {}).items():
                consistent = bool(request.get("ConsistentRead"))
                returned = {self._key_text(self._emulator.key_of(table, i)): i
                            for i in parsed.get("Responses", {}).get(table, [])}
                for key in request["Keys"]:
                    read += read_units(item_size(returned.get(self._key_text(key))), consistent)
        elif op in ("Query", "Scan"):
            size = sum(item_size(i) for i in parsed.get("Items", []))
            consistent = bool(params.get("ConsistentRead")) and not params.get("IndexName")
            read = read_units(size, consistent)
        elif snapshot:
            factor = 2 if op == "TransactWriteItems" else 1
            for table_name, key, _check, before in snapshot:
                after = before if failed else _attrs(self._emulator.item(table_name, key))
                size = max(item_size(before), item_size(after))
                units = factor * write_units(size)
                indexes = {} if failed else _gsi_writes_by_index(self._emulator.table(table_name), before, after)
                write += units + sum(indexes.values())
                with self._lock:
                    metered.written.append((table_name, item_label(table_name, key), units, indexes,
                                            self._key_text(key)))
        consumed = parsed.get("ConsumedCapacity")
        with self._lock:
            metered.read_units += read
            metered.write_units += write
            metered.items_returned += int(parsed.get("Count", 0)) + (1 if "Item" in parsed else 0)
            responses = parsed.get("Responses")
            if isinstance(responses, dict):
                metered.items_returned += sum(len(v) for v in responses.values())
            metered.items_evaluated += int(parsed.get("ScannedCount", 0))
            for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
                metered.moto_reported_units += float(entry.get("CapacityUnits", 0))

    @staticmethod
    def _key_text(key: dict[str, Any]) -> str:
        return repr(sorted((k, repr(v)) for k, v in key.items()))


def app_clients() -> tuple[list[Any], list[Any]]:
    """The botocore clients the app uses: every model's DynamoDB client and the SQS sender."""
    from chalicelib import queues
    from chalicelib.storage.atomic import connection
    from chalicelib.storage.models import ALL_MODELS

    clients = {id(c): c for c in [m._get_connection().connection.client for m in ALL_MODELS]
               + [connection().client]}
    return list(clients.values()), [queues.SqsQueues().sqs()]
