"""A slot's closure at 1,000 and 10,000 sessions: DynamoDB calls and request units, SQS messages,
the time on the local stack, and the dollars on AWS. `python -m bench.closure` (also run by
`make bench`) prints the figures and writes docs/closure-benchmarks.md. Figures, never assertions.

LOADING SHORTCUT: the slot's sessions (3 or 4 to a purchase, as families buy) are written straight
through the storage layer (BatchWriteItem, bench/world.py's `crowded_slot`), because recording
thousands of purchases through the API would take most of an hour; each purchase gets its own
payment intent at the Stripe stand-in.
The closure itself goes through the real route, the real queue and the real worker, and so do the
refunds it makes.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "closure-benchmarks.md"

os.environ.setdefault("TABLE_PREFIX", "rebook-bench-closure")
os.environ.setdefault("ADMIN_API_KEY", "rbk_platform_bench_key")

# AWS list prices (us-east-1, on demand), as bench/cost.py uses them.
DYNAMODB_WRU_PER_M = 0.625
DYNAMODB_RRU_PER_M = 0.125
SQS_PER_M = 0.40
LAMBDA_REQUEST_PER_M = 0.20
LAMBDA_GB_SECOND = 0.0000166667
MEMORY_GB = 0.5
PIECE_SECONDS = 2.0  # assumed billed duration of one piece (about 35 transaction writes) on Lambda


@dataclass
class ClosureRow:
    sessions: int
    transactions: int
    pieces: int
    calls: dict[str, int]
    rru: float
    wru: float
    sqs_sends: int
    seconds: float

    @property
    def sqs_requests(self) -> int:
        """Sends measured, plus a receive and a delete by Lambda's poller per piece message (refund
        messages are received and deleted ten to a batch)."""
        refund_batches = -(-self.transactions // 10)
        return self.sqs_sends + 2 * self.pieces + 2 * refund_batches

    @property
    def dollars(self) -> float:
        # The API request, the pieces, and the refund worker's batches of ten.
        lambda_runs = 1 + self.pieces + -(-self.transactions // 10)
        return (self.wru * DYNAMODB_WRU_PER_M + self.rru * DYNAMODB_RRU_PER_M + self.sqs_requests * SQS_PER_M
                + lambda_runs * LAMBDA_REQUEST_PER_M) / 1e6 + lambda_runs * MEMORY_GB * PIECE_SECONDS * LAMBDA_GB_SECOND


def _dead_letters(stack: Any) -> int:
    """Messages in the closure queue's dead-letter queue: a piece that failed every delivery."""
    from chalicelib.config import config

    sqs = stack._sqs()
    url = stack.queue_url(config().queue_name("slot-closures") + "-dlq")
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(found["ApproximateNumberOfMessages"])


def measure(stack: Any, world: Any, meter: Any, sessions: int) -> ClosureRow:
    from bench.world import crowded_slot
    from chalicelib import queues
    from chalicelib.storage.models import JobRecord

    venue = world.venue()
    # 3 or 4 sessions to a purchase, as families buy.
    slot, counts = crowded_slot(world, stack.stripe, venue, transactions=-(-sessions * 3 // 10), sessions=sessions)
    transactions = len(counts)
    sends = {"n": 0}

    def count(**_: Any) -> None:
        sends["n"] += 1

    sqs = queues.SqsQueues().sqs()
    for event in ("before-call.sqs.SendMessage", "before-call.sqs.SendMessageBatch"):
        sqs.meta.events.register(event, count, unique_id=f"bench-closure-{event}")
    started = time.perf_counter()
    with meter.measure() as metered:
        answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/slots/{slot['slot_id']}/closure",
                                  {"reason": "bench: the heater broke", "refund": "full"})
        job_id = answer.json["job_id"]
        # Until the job is done and every refund it queued is paid (pieces waiting for the one
        # before come back after the queue's visibility timeout).
        deadline = time.monotonic() + float(os.environ.get("BENCH_CLOSURE_TIMEOUT", "1800"))
        while stack.deliver_all() or JobRecord.get(job_id, consistent_read=True).status != "done":
            if time.monotonic() > deadline or _dead_letters(stack):
                raise RuntimeError(f"the closure of {sessions:,} sessions did not finish: a piece failed or "
                                   "it took too long (the handlers' JSON lines say why)")
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    for event in ("before-call.sqs.SendMessage", "before-call.sqs.SendMessageBatch"):
        sqs.meta.events.unregister(event, unique_id=f"bench-closure-{event}")
    job = JobRecord.get(job_id, consistent_read=True)
    calls: dict[str, int] = {}
    for op in metered.operations:
        calls[op] = calls.get(op, 0) + 1
    return ClosureRow(sessions=sessions, transactions=transactions, pieces=int(job.pieces_done), calls=calls,
                      rru=metered.read_units, wru=metered.write_units, sqs_sends=sends["n"], seconds=seconds)


def markdown(rows: list[ClosureRow]) -> str:
    lines = [
        "# Closing a slot: what it costs",
        "",
        "`python -m bench.closure` (run by `make bench`). The closure request, every piece of its job",
        "and every refund it makes (one per purchase, paid at the Stripe stand-in), through the real",
        "route, queues and workers on the local stack. Figures, never assertions: the time depends on",
        "the machine and its load, the calls and units do not.",
        "",
        "| sessions | purchases | pieces | DynamoDB calls | RRU | WRU | SQS requests | local time | AWS dollars |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        calls = ", ".join(f"{n} {op}" for op, n in sorted(row.calls.items()))
        lines.append(f"| {row.sessions:,} | {row.transactions:,} | {row.pieces} | {sum(row.calls.values()):,} "
                     f"({calls}) | {row.rru:,.1f} | {row.wru:,.0f} | {row.sqs_requests:,} | {row.seconds:,.1f} s "
                     f"| ${row.dollars:.4f} |")
    lines += [
        "",
        "Dollars: WRU x $0.625/1M + RRU x $0.125/1M + SQS requests x $0.40/1M (sends measured; a receive",
        f"and a delete per piece and per ten refunds) + Lambda requests x $0.20/1M + {MEMORY_GB} GB x",
        f"{PIECE_SECONDS} s per run (assumed) x $0.0000166667. Writes dominate: each purchase's sessions,",
        "seats, refund, history events and the job's counters in one transaction (twice the units).",
        "",
    ]
    return "\n".join(lines)


USAGE = """usage: python -m bench.closure [-h | --help]

  Closes a slot of each of BENCH_CLOSURE_SIZES sessions (default 1000,10000; the 10,000 takes
  about a quarter of an hour on 2 CPUs) through the local stack, pays every refund, and writes
  docs/closure-benchmarks.md. BENCH_CLOSURE_TIMEOUT (1800 s) bounds each closure.
"""


def main(argv: list[str] | None = None) -> None:
    import logging

    args = sys.argv[1:] if argv is None else argv
    if args:
        print(USAGE, end="", file=sys.stdout if args[0] in ("-h", "--help") else sys.stderr)
        raise SystemExit(0 if args[0] in ("-h", "--help") else 2)

    from chalice.test import Client

    from bench.capacity import Meter, app_clients
    from bench.world import World, in_process
    from infra.local.stack import LocalStack

    sizes = [int(s) for s in os.environ.get("BENCH_CLOSURE_SIZES", "1000,10000").split(",")]
    stack = LocalStack(background=False, schedule_seconds=3600).start()
    logging.getLogger("rebook").setLevel(logging.WARNING)
    rows = []
    try:
        with Client(stack.app_module.app) as client:
            world = World(in_process(client), stack.admin_key, stack.stripe_url)
            meter = Meter(*app_clients())
            for size in sizes:
                print(f"closing a slot of {size:,} sessions ...", flush=True)
                row = measure(stack, world, meter, size)
                print(f"  {sum(row.calls.values()):,} calls, {row.rru:,.1f} RRU, {row.wru:,.0f} WRU, "
                      f"{row.sqs_requests:,} SQS requests, {row.seconds:,.1f} s, ${row.dollars:.4f}", flush=True)
                rows.append(row)
            meter.close()
    finally:
        stack.stop()
    OUT.write_text(markdown(rows))
    print(f"wrote {OUT.relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
