"""Counting DynamoDB calls in tests with the benchmarks' meter (bench/capacity.py, one meter for
both): what an operation costs, asserted as counts (never as timings)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.capacity import Meter, Metered, app_clients


@contextmanager
def count_dynamodb_calls(*more_clients: Any) -> Iterator[Metered]:
    """`calls.operations` lists the DynamoDB operations made inside, in order, on the app's clients
    and on `more_clients` (a model outside the app's, as the upgrade's locators)."""
    clients, sqs_clients = app_clients()
    meter = Meter(clients + [c for c in more_clients if all(c is not known for known in clients)], sqs_clients)
    try:
        with meter.measure() as metered:
            yield metered
    finally:
        meter.close()
