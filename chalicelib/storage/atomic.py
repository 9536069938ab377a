"""One all-or-nothing DynamoDB write (TransactWriteItems) whose items carry labels, so that when
a condition fails the caller learns which item failed (a full slot, a session already cancelled)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

MAX_ITEMS = 100  # DynamoDB's limit for one TransactWriteItems


def connection() -> Connection:
    """The connection (and botocore client) the bookings table already has, reused so a
    transaction does not build a new client."""
    from chalicelib.storage.models import BookingItem

    return BookingItem._get_connection().connection


class AtomicWriteFailed(Exception):
    """The write changed nothing. `failed` lists the labels whose condition did not hold;
    empty when DynamoDB refused for another reason (a conflicting concurrent transaction)."""

    def __init__(self, failed: list[str], conflict: bool) -> None:
        super().__init__(f"atomic write cancelled: {failed or 'conflict'}")
        self.failed = failed
        self.conflict = conflict


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
        if len(self) > MAX_ITEMS:
            raise ValueError(f"an atomic write holds at most {MAX_ITEMS} items, not {len(self)}")
        labels = [label for label, _, _ in self._checks + self._puts + self._updates]
        try:
            # One token per commit: botocore resends the same token when it retries after a
            # timeout, so DynamoDB applies a commit that had already succeeded only once.
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
            conflict = any(reason is not None and reason.code == "TransactionConflict" for reason in reasons)
            # Not `error.cause_response_code`: it raises AttributeError when the cause carries no
            # response (a read timeout, a dropped connection), hiding the real error.
            code = (getattr(error.cause, "response", None) or {}).get("Error", {}).get("Code")
            if not failed and not conflict and code != "TransactionCanceledException":
                raise
            raise AtomicWriteFailed(failed, conflict or not failed) from None
