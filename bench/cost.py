"""Dollars per 1,000 cancellations on AWS, from the measured DynamoDB request units and SQS sends
and the public us-east-1 list prices (the same prices docs/deploy.md uses)."""
from __future__ import annotations

from dataclasses import dataclass

from bench.capacity import Metered

PRICE_DATE = "us-east-1 list prices, before free tiers, as published since DynamoDB's on-demand price cut of November 2024"
API_GATEWAY_PER_M = 3.50  # REST API, first 333M requests a month
LAMBDA_REQUEST_PER_M = 0.20
LAMBDA_GB_SECOND = 0.0000166667  # x86
DYNAMODB_WRU_PER_M = 0.625
DYNAMODB_RRU_PER_M = 0.125
SQS_PER_M = 0.40  # standard queue, per 64 KB request

# Not measurable on one machine: Lambda's billed duration. Assumed as in docs/deploy.md.
MEMORY_GB = 0.5
API_SECONDS = 0.2
WORKER_SECONDS = 0.6


@dataclass
class CostLine:
    component: str
    units: float
    unit_name: str
    dollars: float


@dataclass
class CancellationCost:
    label: str
    api_requests: int
    lambda_invocations: int
    gb_seconds: float
    rru: float
    wru: float
    sqs_requests: int
    lines: list[CostLine]

    @property
    def total(self) -> float:
        return sum(line.dollars for line in self.lines)


def per_thousand(label: str, api_steps: list[Metered], worker: Metered) -> CancellationCost:
    """One cancellation = the guest's API requests (`api_steps`) plus one refund worker run.
    SQS: the sends measured, plus one ReceiveMessage and one DeleteMessageBatch by Lambda's poller
    per message (an upper bound: the poller takes up to 10 messages a batch)."""
    n = 1000
    r = len(api_steps)
    rru = sum(m.read_units for m in api_steps) + worker.read_units
    wru = sum(m.write_units for m in api_steps) + worker.write_units
    sends = sum(m.sqs_sends for m in api_steps) + worker.sqs_sends
    q = sends + 2 * sends
    gb_s = MEMORY_GB * (r * API_SECONDS + WORKER_SECONDS)
    lines = [
        CostLine("API Gateway (REST)", n * r, "requests", n * r * API_GATEWAY_PER_M / 1e6),
        CostLine("Lambda requests", n * (r + 1), "invocations", n * (r + 1) * LAMBDA_REQUEST_PER_M / 1e6),
        CostLine("Lambda compute", n * gb_s, "GB-s", n * gb_s * LAMBDA_GB_SECOND),
        CostLine("DynamoDB writes", n * wru, "WRU", n * wru * DYNAMODB_WRU_PER_M / 1e6),
        CostLine("DynamoDB reads", n * rru, "RRU", n * rru * DYNAMODB_RRU_PER_M / 1e6),
        CostLine("SQS", n * q, "requests", n * q * SQS_PER_M / 1e6),
    ]
    return CancellationCost(label, r, r + 1, gb_s, rru, wru, q, lines)


FORMULA = """\
cost(n) = n x [ r x $3.50/1M                                  API Gateway REST requests
              + (r + 1) x $0.20/1M                            Lambda requests (r API + 1 refund worker)
              + 0.5 GB x (r x 0.2 s + 0.6 s) x $0.0000166667  Lambda compute (assumed durations)
              + WRU x $0.625/1M + RRU x $0.125/1M             DynamoDB on-demand (measured units)
              + q x $0.40/1M ]                                SQS: send + receive + delete per refund"""
