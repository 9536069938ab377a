"""`make bench`: measure rebook against the embedded stack and write docs/benchmarks.md.

Figures are printed and recorded, never asserted. Timings depend on the machine and its load;
call counts and request units do not.

`python -m bench --help` lists what can be run; `python -m bench latency` runs only the latency
part (16 HTTP clients against the local stack), prints its figures and writes nothing.
"""
from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report import Report
    from infra.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks.md"

os.environ.setdefault("TABLE_PREFIX", "rebook-bench")
os.environ.setdefault("ADMIN_API_KEY", "rbk_platform_bench_key")


def _machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _drain(stack: LocalStack, timeout: float = 600) -> None:
    """Wait until every queue holds nothing (the pumps running), so the next figures start from an
    idle stack."""
    from chalicelib.config import QUEUES, config

    sqs = stack._sqs()
    urls = [stack.queue_url(config().queue_name(name)) for name in QUEUES]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if all(int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"][name]) == 0
               for url in urls for name in names):
            return
        time.sleep(0.5)


def _fill(world: Any, stack: LocalStack, size: int, pumps_running: bool) -> None:
    """Fill the table to `size` sessions, then let the background finish what the filling queued
    before anything is timed: the filler venue's settings queue a re-projection of its sessions'
    deadlines, which (delivered once the pumps start) rewrote all 999 filler sessions during the
    1,000-session latency run."""
    from bench.closer import fill_sessions

    fill_sessions(world, size)
    if pumps_running:
        _drain(stack)
    else:
        stack.deliver_all()


# The API's own processes when the stack serves HTTP (LocalStack.api_processes), as `make run`
# serves it: 0 serves it from the stack's process, whose one core also runs the embedded AWS, the
# pumps and the Stripe stand-in (2 on this 2-CPU machine: receipt p50 52 -> 20 ms, move 352 -> 226 ms).
API_PROCESSES = int(os.environ.get("BENCH_API_PROCESSES", "2"))
LATENCY_SIZES = tuple(int(s) for s in os.environ.get("BENCH_LATENCY_SIZES", "1000,100000").split(","))


def _first_request(world: Any, guest: Any, venue: Any, bought: dict[str, Any]) -> Any:
    """Cold start as in AWS: the secrets exist only in Secrets Manager (the embedded one) and the
    fresh interpreter gets their ARNs."""
    import boto3

    from bench import cold_start

    names = ("TOKEN_SECRET", "ADMIN_API_KEY", "STRIPE_WEBHOOK_SECRET")
    secrets = boto3.client("secretsmanager")
    arns = {f"{name}_ARN": secrets.create_secret(Name=f"bench-{name}-{bought['transaction_id']}",
                                                 SecretString=os.environ[name])["ARN"] for name in names}
    return cold_start.time_first_request(arns, bought["transaction_id"], guest.api.credential or "",
                                         venue.venue_id, runs=int(os.environ.get("BENCH_IMPORT_RUNS", "7")),
                                         without=names)


USAGE = """usage: python -m bench [latency] [-h | --help]

  (no argument)  the whole bench (`make bench`, several minutes): DynamoDB calls and units per
                 operation, emails, a replayed day, cold start, the window closer as the table
                 grows, and the latency under 16 HTTP clients; writes docs/benchmarks.md.
  latency        only the latency under 16 HTTP clients (receipt, move, cancel, cancel to
                 `refunded`) at each of BENCH_LATENCY_SIZES sessions in the table; prints the
                 figures and the load average, writes nothing.
  -h, --help     this text.

Environment: BENCH_LATENCY_SIZES (default 1000,100000), BENCH_API_PROCESSES (2, as `make run`; 0: the
API served by the stack's own process), BENCH_REQUESTS_PER_CLIENT (12),
BENCH_REFUNDS (200), BENCH_CLOSER_SIZES (1000,10000,100000), BENCH_IMPORT_RUNS (7).
"""


def cli(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(USAGE, end="")
        return 0
    if not argv:
        main()
        return 0
    if argv == ["latency"]:
        latency_only()
        return 0
    print(USAGE, end="", file=sys.stderr)
    return 2


def latency_only() -> None:
    """The latency part of `make bench` alone, on a stack of its own."""
    from chalice.test import Client

    from bench import latency
    from bench.world import World, in_process
    from chalicelib.storage import venue_cache
    from infra.local.stack import LocalStack

    print(f"load average {_machine()['load']}, {os.cpu_count()} CPUs, commit {_git_head()}, "
          f"{API_PROCESSES} API process(es)", flush=True)
    venue_cache.MAX_AGE_SECONDS = 3600.0  # as in main(): warm-Lambda figures
    stack = LocalStack(background=False, schedule_seconds=3600, api_processes=API_PROCESSES,
                       print_emails=False).start()
    logging.getLogger("rebook").setLevel(logging.WARNING)
    rpc, refunds = int(os.environ.get("BENCH_REQUESTS_PER_CLIENT", "12")), int(os.environ.get("BENCH_REFUNDS", "200"))
    assert stack.app_module is not None
    try:
        with Client(stack.app_module.app) as client:
            world = World(in_process(client), stack.admin_key, stack.stripe_url)
            for n, size in enumerate(LATENCY_SIZES):
                _fill(world, stack, size, pumps_running=n > 0)
                print(f"latency over HTTP, 16 clients, {size:,} sessions in the table ...", flush=True)
                if n == 0:
                    stack.serve_http()
                    stack.start_pumps()
                latency.measure_in_child(stack.url, stack.admin_key, stack.stripe_url, rpc, refunds,
                                         settle=lambda: _drain(stack))
                _drain(stack)
                print(f"  load average {_machine()['load']}", flush=True)
    finally:
        stack.stop()


def main() -> None:
    from bench import cold_start
    from bench.report import Report

    sizes = tuple(int(s) for s in os.environ.get("BENCH_CLOSER_SIZES", "1000,10000,100000").split(","))
    report = Report(machine=_machine(), date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    command="make bench", commit=_git_head())
    started = time.perf_counter()

    print("cold start: import app vs import boto3 (fresh interpreters, interleaved) ...", flush=True)
    report.imports = cold_start.time_imports(runs=int(os.environ.get("BENCH_IMPORT_RUNS", "7")))
    report.heaviest = cold_start.heaviest_imports()
    boto3, app = report.imports
    print(f"  boto3 {boto3.wall_median * 1000:.0f} ms, app {app.wall_median * 1000:.0f} ms, "
          f"ratio {app.wall_median / boto3.wall_median:.2f} (cpu ratio {app.cpu_median / boto3.cpu_median:.2f})",
          flush=True)

    from chalicelib.storage import venue_cache
    from infra.local.stack import LocalStack

    # Warm-Lambda figures: every request within the venue cache's lifetime of the last read,
    # however long the measuring between them takes.
    venue_cache.MAX_AGE_SECONDS = 3600.0
    stack = LocalStack(background=False, schedule_seconds=3600, api_processes=API_PROCESSES,
                       print_emails=False).start()
    logging.getLogger("rebook").setLevel(logging.WARNING)  # the app's JSON lines would drown the figures
    try:
        _measure(stack, report, sizes)
    finally:
        stack.stop()
    report.elapsed = time.perf_counter() - started
    OUT.write_text(report.markdown())
    print(f"wrote {OUT.relative_to(ROOT)} in {report.elapsed:.0f} s", flush=True)


def _measure(stack: LocalStack, report: Report, sizes: tuple[int, ...]) -> None:
    from chalice.test import Client

    from bench import cold_start, latency
    from bench.capacity import Meter, app_clients
    from bench.closer import measure_closer
    from bench.operations import measure_operations
    from bench.world import World, in_process
    from chalicelib.services import refund_windows
    from chalicelib.times import utc_now

    app = stack.app_module.app
    with Client(app) as client:
        world = World(in_process(client), stack.admin_key, stack.stripe_url)
        meter = Meter(*app_clients())
        print("DynamoDB calls per operation ...", flush=True)
        report.operations = measure_operations(
            world, meter, deliver_all=lambda: stack.deliver_all(streams=False),  # emails: measured below
            close_sweep=lambda: refund_windows.close_due_windows(utc_now()))
        for row in report.operations:
            m = row.metered
            print(f"  {row.name}: " + (f"{m.calls} calls ({m.summary()}), {m.read_units:g} RRU, "
                                       f"{m.write_units:g} WRU" if m else "n/a (route missing)"), flush=True)

        print("emails: the outbox item and the sender ...", flush=True)
        from bench.emails import measure_emails

        report.emails = measure_emails(world, meter, deliver_streams=stack.deliver_streams)
        for row in report.emails:
            m = row.metered
            print(f"  {row.name}: {m.calls} calls ({m.summary()}), {m.read_units:g} RRU, {m.write_units:g} WRU"
                  if m else f"  {row.name}: n/a", flush=True)

        print("a scaled-down day, replayed ...", flush=True)
        from bench import day

        report.day = day.replay(world, meter, stack.deliver_all)
        print("  " + "\n  ".join(day.markdown(report.day)[-2:]), flush=True)

        print("guest read path: modules loaded by import app + one receipt ...", flush=True)
        venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
        guest = world.guest(venue)
        bought = world.purchase(guest, [world.slot(venue, capacity=1000)])
        report.read_path = cold_start.guest_read_path({}, bought["transaction_id"],
                                                      guest.api.credential or "")
        print(f"  receipt status {report.read_path['status']}; forbidden modules loaded: "
              f"{report.read_path['forbidden_loaded'] or 'none'}", flush=True)

        print("cold start: import app + first receipt, secrets by ARN, vs import boto3 + the same calls ...",
              flush=True)
        report.first_request = _first_request(world, guest, venue, bought)
        first_boto3, first_app, _ = report.first_request
        print(f"  boto3 {first_boto3.wall_median * 1000:.0f} ms, app {first_app.wall_median * 1000:.0f} ms, "
              f"ratio {first_app.wall_median / first_boto3.wall_median:.2f}", flush=True)

        _fill(world, stack, LATENCY_SIZES[0], pumps_running=False)
        report.latency_sizes.append(LATENCY_SIZES[0])
        print(f"latency over HTTP, 16 clients, {LATENCY_SIZES[0]:,} sessions in the table ...", flush=True)
        # From here on the stack serves HTTP and pumps its queues and streams (it started without
        # them so the counts above saw no background work).
        stack.serve_http()
        stack.start_pumps()
        rpc, refunds = int(os.environ.get("BENCH_REQUESTS_PER_CLIENT", "12")), int(os.environ.get("BENCH_REFUNDS", "200"))
        report.latency, report.refund_latency = latency.measure_in_child(
            stack.url, stack.admin_key, stack.stripe_url, rpc, refunds, settle=lambda: _drain(stack))
        print("waiting for the refund queue to drain ...", flush=True)
        _drain(stack)

        print(f"window closer as the table grows {sizes} ...", flush=True)
        report.closer = measure_closer(world, meter, sizes)

        _fill(world, stack, LATENCY_SIZES[1], pumps_running=True)
        print(f"latency over HTTP again, {LATENCY_SIZES[1]:,} sessions in the table ...", flush=True)
        report.latency_sizes.append(LATENCY_SIZES[1])
        report.latency_large, report.refund_latency_large = latency.measure_in_child(
            stack.url, stack.admin_key, stack.stripe_url, rpc, refunds, settle=lambda: _drain(stack))
        _drain(stack)

        meter.close()


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
