"""Counting DynamoDB calls in tests with the benchmarks' meter (bench/capacity.py, one meter for
both): what an operation costs, asserted as counts (never as timings)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.capacity import Meter, Metered, app_clients


@contextmanager
def count_dynamodb_calls() -> Iterator[Metered]:
    """`calls.operations` lists the DynamoDB operations made inside, in order."""
    meter = Meter(*app_clients())
    try:
        with meter.measure() as metered:
            yield metered
    finally:
        meter.close()
