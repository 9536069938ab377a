"""What AWS does and moto does not, injected where requests reach moto's server.

moto applies one request at a time (see embedded_aws) and answers index reads at once, so on it a
transaction never conflicts, nothing is throttled, an index never lags its table and SQS never
delivers a message twice. The switch makes those happen, at chosen rates, from one seeded random
source: `TransactionCanceledException` with a `TransactionConflict` reason, throttling
(`ProvisionedThroughputExceededException`, `ThrottlingException`, a transaction's `ThrottlingError`),
global-index Queries answered as the table was `index_lag_ms` ago, and SQS messages delivered a
second time (same MessageId, another receipt handle) on a later receive. It also holds the Lambda
timeout the local stack gives the queue handlers' contexts, and can hold one request before it
reaches moto while the others go on, so that a test sets two workers' steps in the order it names.

botocore retries throttles on its own (PynamoDB's clients: standard mode, 4 attempts, full jitter
up to 1, 2, 4 s), so a throttle rate is mostly absorbed before our code sees it, at the price of
that wait; conflicts are never retried by botocore. `make run` reads `LOCAL_FAULTS`, e.g.
`LOCAL_FAULTS="conflicts=0.2,throttles=0.05,index_lag_ms=500,duplicates=0.1,seed=7"`.
"""
from __future__ import annotations

import copy
import io
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from infra.local.stripe_standin import Hold

_DYNAMODB = "DynamoDB_20120810"
_SQS = "AmazonSQS"
_DATA_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                              "BatchWriteItem", "TransactWriteItems", "TransactGetItems"})
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_DUPLICATE_HANDLE = "rebook-duplicate-"
WsgiApp = Callable[..., Iterable[bytes]]


@dataclass(frozen=True)
class FaultRates:
    conflicts: float = 0.0  # share of TransactWriteItems cancelled for a TransactionConflict
    throttles: float = 0.0  # share of DynamoDB data requests throttled
    index_lag_ms: int = 0  # global-index Queries see the table as it was this long ago
    duplicates: float = 0.0  # share of received SQS messages delivered once more, later
    lambda_timeout_ms: int = 60_000  # what the queue handlers' contexts count down from
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> FaultRates:
        """`conflicts=0.2,throttles=0.05,index_lag_ms=500,duplicates=0.1,seed=7` (any subset)."""
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in types:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(types)}")
            values[name] = float(value) if types[name] in ("float", float) else int(value)
        return replace(cls(), **values)

    @property
    def active(self) -> bool:
        return bool(self.conflicts or self.throttles or self.index_lag_ms or self.duplicates)


@dataclass
class _Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


class FaultSwitch:
    """Owned by the embedded AWS; every method but the setters runs inside its request lock."""

    def __init__(self, rates: FaultRates | None = None) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # every request, by "service.Operation"
        self._set(rates or FaultRates())

    # --- control (tests, `make run`) ------------------------------------------------------

    def set(self, rates: FaultRates) -> None:
        with self._lock:
            self._set(rates)

    def off(self) -> None:
        self.set(FaultRates())

    def conflict_next(self, count: int) -> None:
        """The next `count` transactions are cancelled for a conflict, whatever the rates."""
        with self._lock:
            self._forced["conflict"] += count

    def throttle_next(self, count: int, operation: str = "") -> None:
        """The next `count` DynamoDB data requests (of `operation`, if given) are throttled, whatever
        the rates. A TransactWriteItems named so is throttled the way only transactions are: cancelled
        with a `ThrottlingError` reason, which botocore does not retry."""
        with self._lock:
            self._forced[f"throttle{operation}"] += count

    def hold_next(self, operation: str, limit_seconds: float = 60) -> Hold:
        """The next DynamoDB request of `operation` (e.g. "Query") waits before it reaches moto,
        outside the one-request-at-a-time lock so that every other request goes on, until
        `release()` (or `limit_seconds`, so a failed test never hangs)."""
        hold = Hold()
        with self._lock:
            self._holds.append((operation, hold, limit_seconds))
        return hold

    def wait_if_held(self, environ: dict[str, Any]) -> None:
        """Called for every request before the lock: a request `hold_next` named waits here."""
        if not self._holds:
            return
        service, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        with self._lock:
            held = next((h for h in self._holds if service == _DYNAMODB and h[0] == operation), None)
            if held is None:
                return
            self._holds.remove(held)
        _, hold, limit_seconds = held
        hold.reached.set()
        hold.released.wait(limit_seconds)

    def _set(self, rates: FaultRates) -> None:
        self.rates = rates
        self.injected: Counter[str] = Counter()  # what was injected since the rates were set, by kind
        self._random = random.Random(rates.seed)
        self._forced: Counter[str] = Counter()
        self._writes: dict[tuple[str, str], list[tuple[float, Any]]] = {}  # (table, key) -> [(when, image before)]
        self._duplicates: dict[str, list[dict[str, Any]]] = {}  # queue URL path -> messages to deliver again
        self._holds: list[tuple[str, Hold, float]] = []  # (operation, hold, limit seconds), first armed first

    def _chance(self, rate: float, forced: str | None = None) -> bool:
        with self._lock:
            if forced and self._forced[forced] > 0:
                self._forced[forced] -= 1
                return True
            return rate > 0 and self._random.random() < rate

    # --- the boundary ---------------------------------------------------------------------

    def handle(self, environ: dict[str, Any], start_response: Callable[..., Any], app: WsgiApp) -> list[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, operation = target.partition(".")
        self.requests[f"{service.split('_')[0]}.{operation}" if operation else "other"] += 1
        waiting = any(self._forced.values()) or any(self._duplicates.values())
        if service not in (_DYNAMODB, _SQS) or not (self.rates.active or waiting):
            return list(app(environ, start_response))
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        request = json.loads(body or b"{}")
        if service == _DYNAMODB:
            answer = self._dynamodb(operation, request, environ, body, app)
        else:
            answer = self._sqs(operation, request, environ, body, app)
        headers = [(k, v) for k, v in answer.headers if k.lower() != "content-length"]
        start_response(answer.status, [*headers, ("Content-Length", str(len(answer.body)))])
        return [answer.body]

    def _dynamodb(self, operation: str, request: dict[str, Any], environ: dict[str, Any], body: bytes,
                  app: WsgiApp) -> _Answer:
        targeted = self._chance(0, f"throttle{operation}")
        if operation in _DATA_OPERATIONS and (targeted or self._chance(self.rates.throttles, "throttle")):
            self.injected["throttle"] += 1
            return _throttled(operation, request, self._random, as_cancellation=targeted)
        if operation == "TransactWriteItems" and self._chance(self.rates.conflicts, "conflict"):
            self.injected["conflict"] += 1
            return _conflict(request, self._random)
        lag = self.rates.index_lag_ms / 1000
        if not lag:
            return _call(app, environ, body)
        region = _region(environ)
        if operation in _WRITES:
            before = self._images(region, _written_keys(operation, request))
            answer = _call(app, environ, body)
            if answer.status.startswith("200"):
                self._remember(before, lag)
            return answer
        if operation == "Query" and request.get("IndexName"):
            return self._lagging(region, request["TableName"], lag, lambda: _call(app, environ, body))
        return _call(app, environ, body)

    # --- index lag: the writes of the last `lag` seconds are not in the index yet ------------

    def _images(self, region: str, keys: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, Any]]:
        found = []
        for table_name, key in keys:
            table = _table(region, table_name)
            if table is not None:
                key = {name: key[name] for name in (table.hash_key_attr, table.range_key_attr) if name}
                found.append((table_name, _key_id(key), copy.deepcopy(_item(table, key))))
        return found

    def _remember(self, images: list[tuple[str, str, Any]], lag: float) -> None:
        now = time.monotonic()
        if len(self._writes) > 10_000:  # a long `make run`: forget what every index has caught up with
            self._writes = {key: history for key, history in self._writes.items() if history[-1][0] > now - lag}
        for table_name, key_id, image in images:
            history = self._writes.setdefault((table_name, key_id), [])
            history[:] = [entry for entry in history if entry[0] > now - lag]
            history.append((now, image))

    def _lagging(self, region: str, table_name: str, lag: float, query: Callable[[], _Answer]) -> _Answer:
        """Answer the index Query from the table as it was `lag` ago: every item written since is
        put back as it was before its first write in that time (or taken out), for this one
        request, and restored right after. Requests are serialised, so no other request sees it."""
        table = _table(region, table_name)
        horizon = time.monotonic() - lag
        recent = [(json.loads(key_id), history) for (name, key_id), history in self._writes.items()
                  if name == table_name and history[-1][0] > horizon]
        if table is None or not recent:
            return query()
        self.injected["index_lag"] += 1
        restore = []
        try:
            for key, history in recent:
                then = next(image for when, image in history if when > horizon)
                restore.append((key, _swap(table, key, then)))
            return query()
        finally:
            for key, current in reversed(restore):
                _swap(table, key, current)

    # --- SQS: duplicate deliveries -----------------------------------------------------------

    def _sqs(self, operation: str, request: dict[str, Any], environ: dict[str, Any], body: bytes,
             app: WsgiApp) -> _Answer:
        queue = str(request.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        if operation == "ReceiveMessage":
            answer = _call(app, environ, body)
            if not answer.status.startswith("200"):
                return answer
            received = answer.json()
            messages = received.get("Messages", [])
            later = [m for m in messages if self._chance(self.rates.duplicates)]
            room = max(0, int(request.get("MaxNumberOfMessages", 1)) - len(messages))
            waiting = self._duplicates.get(queue, [])
            again, self._duplicates[queue] = waiting[:room], waiting[room:]
            self._duplicates[queue] += [{**m, "ReceiptHandle": f"{_DUPLICATE_HANDLE}{uuid.uuid4().hex}"} for m in later]
            self.injected["duplicate"] += len(again)
            if not again:
                return answer
            received["Messages"] = messages + again
            return replace(answer, body=json.dumps(received).encode())
        if operation == "DeleteMessage" and str(request.get("ReceiptHandle", "")).startswith(_DUPLICATE_HANDLE):
            return _json_answer({})
        if operation == "DeleteMessageBatch":
            entries = request.get("Entries", [])
            ours = [e for e in entries if str(e.get("ReceiptHandle", "")).startswith(_DUPLICATE_HANDLE)]
            if ours:
                rest = [e for e in entries if e not in ours]
                done = _json_answer({"Successful": [], "Failed": []})
                if rest:
                    forwarded = json.dumps({**request, "Entries": rest}).encode()
                    done = _call(app, {**environ, "CONTENT_LENGTH": str(len(forwarded))}, forwarded)
                answered = done.json()
                answered["Successful"] = answered.get("Successful", []) + [{"Id": e["Id"]} for e in ours]
                return replace(done, body=json.dumps(answered).encode())
        return _call(app, environ, body)


def _call(app: WsgiApp, environ: dict[str, Any], body: bytes) -> _Answer:
    environ = {**environ, "wsgi.input": io.BytesIO(body)}
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
        started["status"], started["headers"] = status, list(headers)
        return lambda data: None

    payload = b"".join(app(environ, start_response))
    return _Answer(started["status"], started["headers"], payload)


def _json_answer(body: dict[str, Any], status: str = "200 OK", content_type: str = "application/x-amz-json-1.0",
                 ) -> _Answer:
    return _Answer(status, [("Content-Type", content_type), ("x-amzn-RequestId", uuid.uuid4().hex)],
                   json.dumps(body).encode())


def _throttled(operation: str, request: dict[str, Any], chance: random.Random, as_cancellation: bool) -> _Answer:
    kinds = ["ProvisionedThroughputExceededException", "ThrottlingException"]
    if operation == "TransactWriteItems":
        kinds.append("TransactionCanceledException")
    kind = "TransactionCanceledException" if as_cancellation and operation == "TransactWriteItems" else \
        chance.choice(kinds)
    if kind == "TransactionCanceledException":
        return _cancelled(request, chance, "ThrottlingError", "Throughput exceeds the current capacity for one or "
                                                              "more global secondary indexes.")
    prefix = "com.amazon.coral.availability" if kind == "ThrottlingException" else "com.amazonaws.dynamodb.v20120810"
    return _json_answer({"__type": f"{prefix}#{kind}", "message": "Rate of requests exceeds the allowed throughput."},
                        status="400 Bad Request")


def _conflict(request: dict[str, Any], chance: random.Random) -> _Answer:
    return _cancelled(request, chance, "TransactionConflict", "Transaction is ongoing for the item")


def _cancelled(request: dict[str, Any], chance: random.Random, code: str, message: str) -> _Answer:
    count = len(request.get("TransactItems", [])) or 1
    hit = chance.randrange(count)
    reasons = [{"Code": code, "Message": message} if i == hit else {"Code": "None"} for i in range(count)]
    summary = ", ".join(r["Code"] for r in reasons)
    return _json_answer({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{summary}]",
        "CancellationReasons": reasons}, status="400 Bad Request")


# --- moto's tables, read and swapped in place (inside the request lock) ---------------------

def _region(environ: dict[str, Any]) -> str:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    scope = authorization.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"


def _table(region: str, name: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables.get(name)


def _written_keys(operation: str, request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, key or whole item) of every item a write request may change."""
    if operation == "PutItem":
        return [(request["TableName"], request["Item"])]
    if operation in ("UpdateItem", "DeleteItem"):
        return [(request["TableName"], request["Key"])]
    if operation == "TransactWriteItems":
        found = []
        for entry in request.get("TransactItems", []):
            for kind, field_name in (("Put", "Item"), ("Update", "Key"), ("Delete", "Key")):
                if kind in entry:
                    found.append((entry[kind]["TableName"], entry[kind][field_name]))
        return found
    found = []
    for table_name, entries in request.get("RequestItems", {}).items():
        for entry in entries:
            if "PutRequest" in entry:
                found.append((table_name, entry["PutRequest"]["Item"]))
            elif "DeleteRequest" in entry:
                found.append((table_name, entry["DeleteRequest"]["Key"]))
    return found


def _key_parts(table: Any, item: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_value = DynamoType(item[table.hash_key_attr])
    range_value = DynamoType(item[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _key_id(item: dict[str, Any]) -> str:
    return json.dumps(item, sort_keys=True)


def _item(table: Any, item: dict[str, Any]) -> Any:
    hash_value, range_value = _key_parts(table, item)
    if range_value is None:
        return table.items.get(hash_value)
    return table.items.get(hash_value, {}).get(range_value)


def _swap(table: Any, item: dict[str, Any], image: Any) -> Any:
    """Put `image` (None: no item) under the item's key; returns what was there."""
    hash_value, range_value = _key_parts(table, item)
    if range_value is None:
        current = table.items.pop(hash_value, None)
        if image is not None:
            table.items[hash_value] = image
        return current
    bucket = table.items.get(hash_value, {})
    current = bucket.pop(range_value, None)
    if image is not None:
        bucket[range_value] = image
    if bucket:
        table.items[hash_value] = bucket
    else:
        table.items.pop(hash_value, None)
    return current
