"""One all-or-nothing DynamoDB write (TransactWriteItems) whose items carry labels, so that when
a condition fails the caller learns which item failed (a full slot, a session already cancelled).

On AWS a transaction is also cancelled when another one holds one of its items (a
`TransactionConflict`: every purchase, move and cancellation updates its slot's seat counter, a hot
item) or when it is throttled. Neither says anything about the guest's request: the write is tried
again here, with jittered backoff, and when the tries run out the caller gets
`TemporarilyUnavailable` (503, nothing changed), never a business refusal. botocore has already
retried throttles (standard mode, 4 attempts) before a commit sees one; it never retries conflicts.
"""
from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.errors import TemporarilyUnavailable

MAX_ITEMS = 100  # DynamoDB's limit for one TransactWriteItems
ATTEMPTS = 6  # at 20% conflicts, all six lose once in 15,000 commits
BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 0.4
# botocore may have slept up to 7 s on throttles inside one attempt (full jitter: 1 + 2 + 4 s): no
# new attempt once throttled attempts have taken this long, so the answer comes well inside the
# API's 15 s Lambda timeout. Attempts lost to a conflict are quick and limited by ATTEMPTS alone.
THROTTLED_BUDGET_SECONDS = 4.0
RETRY_AFTER_SECONDS = 1
# What DynamoDB answers when it is busy rather than when the request is wrong (as botocore counts them).
THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                            "TransactionInProgressException", "Throttling", "ThrottlingError"})


def connection() -> Connection:
    """The connection (and botocore client) the bookings table already has, reused so a
    transaction does not build a new client."""
    from chalicelib.storage.models import BookingItem

    return BookingItem._get_connection().connection


class AtomicWriteFailed(Exception):
    """The write changed nothing because the conditions of the items labelled `failed` did not hold."""

    def __init__(self, failed: list[str], conflict: bool = False) -> None:
        super().__init__(f"atomic write cancelled: {failed or 'conflict'}")
        self.failed = failed
        self.conflict = conflict


class _Contended(Exception):
    """DynamoDB was busy (a conflicting transaction, throttling): the same write may go through later."""

    def __init__(self, throttled: bool) -> None:
        super().__init__("throttled" if throttled else "conflict")
        self.throttled = throttled


def error_code(error: BaseException) -> str | None:
    """The AWS error code behind a PynamoDB or botocore exception, if any."""
    for candidate in (error, getattr(error, "cause", None)):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


def backoff(attempt: int) -> float:
    """Full jitter: concurrent writers that lost to each other do not come back in step."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt))


@dataclass
class AtomicWrite:
    # PynamoDB sends condition checks, then puts, then updates: labels are kept in that order.
    _checks: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    _puts: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    _updates: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def check(self, label: str, model_cls: type[Model], hash_key: Any, range_key: Any, condition: Any) -> None:
        self._checks.append((label, (model_cls, hash_key, range_key), {"condition": condition}))

    def put(self, label: str, model: Model, condition: Any = None) -> None:
        self._puts.append((label, (model,), {"condition": condition}))

    def update(self, label: str, model: Model, actions: list[Any], condition: Any = None) -> None:
        self._updates.append((label, (model, actions), {"condition": condition}))

    def __len__(self) -> int:
        return len(self._checks) + len(self._puts) + len(self._updates)

    def commit(self) -> None:
        """Apply every item or none; raises AtomicWriteFailed when a condition does not hold, and
        TemporarilyUnavailable when DynamoDB stayed busy through every try."""
        if len(self) > MAX_ITEMS:
            raise ValueError(f"an atomic write holds at most {MAX_ITEMS} items, not {len(self)}")
        throttled_seconds = 0.0
        for attempt in range(ATTEMPTS):
            started = time.monotonic()
            try:
                self._commit_once()
                return
            except _Contended as busy:
                if busy.throttled:
                    throttled_seconds += time.monotonic() - started
                if attempt + 1 == ATTEMPTS or throttled_seconds > THROTTLED_BUDGET_SECONDS:
                    break
            time.sleep(backoff(attempt))
        raise TemporarilyUnavailable("the data is busy; nothing was changed, try again shortly", RETRY_AFTER_SECONDS)

    def _commit_once(self) -> None:
        labels = [label for label, _, _ in self._checks + self._puts + self._updates]
        try:
            # One token per attempt: botocore resends the same token when it retries after a
            # timeout, so DynamoDB applies an attempt that had already succeeded only once. A
            # cancelled attempt changed nothing, so the next one takes a new token.
            token = uuid.uuid4().hex
            with TransactWrite(connection=connection(), client_request_token=token) as transaction:
                for _, args, kwargs in self._checks:
                    transaction.condition_check(*args, **kwargs)
                for _, args, kwargs in self._puts:
                    transaction.save(*args, **kwargs)
                for _, args, kwargs in self._updates:
                    transaction.update(*args, **kwargs)
        except TransactWriteError as error:
            reasons = error.cancellation_reasons or []
            failed = [labels[i] for i, reason in enumerate(reasons)
                      if reason is not None and reason.code == "ConditionalCheckFailed"]
            if failed:
                raise AtomicWriteFailed(failed) from None
            # Not `error.cause_response_code`: it raises AttributeError when the cause carries no
            # response (a read timeout, a dropped connection), hiding the real error.
            code = error_code(error)
            busy = {reason.code for reason in reasons if reason is not None} & (THROTTLE_CODES | {"TransactionConflict"})
            if busy or code in THROTTLE_CODES:
                raise _Contended(throttled=bool(busy & THROTTLE_CODES) or code in THROTTLE_CODES) from None
            raise
