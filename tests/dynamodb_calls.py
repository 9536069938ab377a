"""Counting DynamoDB calls with botocore's event hooks: what an operation costs, asserted as
counts (never as timings)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DynamoDBCalls:
    operations: list[str] = field(default_factory=list)
    items_returned: int = 0
    items_evaluated: int = 0
    capacity_units: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _before(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.operations.append(model.name)

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.items_returned += int(parsed.get("Count", 0))
            if "Item" in parsed:
                self.items_returned += 1
            self.items_returned += sum(len(v) for v in parsed.get("Responses", {}).values()) \
                if isinstance(parsed.get("Responses"), dict) else 0
            self.items_evaluated += int(parsed.get("ScannedCount", 0))
            consumed = parsed.get("ConsumedCapacity")
            for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
                self.capacity_units += float(entry.get("CapacityUnits", 0))

    @property
    def count(self) -> int:
        return len(self.operations)


def _clients() -> list[Any]:
    from chalicelib.storage.atomic import connection
    from chalicelib.storage.models import ALL_MODELS

    clients = {id(c): c for c in [m._get_connection().connection.client for m in ALL_MODELS]
               + [connection().client]}
    return list(clients.values())


@contextmanager
def count_dynamodb_calls() -> Iterator[DynamoDBCalls]:
    calls = DynamoDBCalls()
    clients = _clients()
    for client in clients:
        client.meta.events.register("before-call.dynamodb", calls._before, unique_id=f"count-{id(calls)}-b")
        client.meta.events.register("after-call.dynamodb", calls._after, unique_id=f"count-{id(calls)}-a")
    try:
        yield calls
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb", unique_id=f"count-{id(calls)}-b")
            client.meta.events.unregister("after-call.dynamodb", unique_id=f"count-{id(calls)}-a")
