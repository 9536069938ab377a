"""docs/benchmarks.md from the figures of one run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench import cost
from bench.capacity import Metered
from bench.closer import CloserRow
from bench.cold_start import MUST_NOT_LOAD, ImportTimes
from bench.latency import Timings
from bench.operations import Row


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _units(value: float) -> str:
    return f"{value:g}"


@dataclass
class Report:
    machine: dict[str, str]
    date: str
    command: str
    commit: str
    imports: tuple[ImportTimes, ImportTimes] | None = None
    heaviest: list[tuple[str, int]] = field(default_factory=list)
    operations: list[Row] = field(default_factory=list)
    read_path: dict[str, Any] = field(default_factory=dict)
    closer: list[CloserRow] = field(default_factory=list)
    latency: list[Timings] = field(default_factory=list)
    refund_latency: Timings | None = None
    emails: list[Row] = field(default_factory=list)
    elapsed: float = 0.0

    def _op(self, name: str) -> Metered | None:
        return next((row.metered for row in self.operations if row.name == name), None)

    def markdown(self) -> str:
        return "\n".join(self._header() + self._operations() + self._closer() + self._cold_start()
                         + self._latency() + self._cost() + self._emails()) + "\n"

    def _header(self) -> list[str]:
        m = self.machine
        return [
            "# Benchmarks",
            "",
            "Written by `make bench` (`python -m bench`); figures are recorded, never asserted. Call counts",
            "and request units depend only on the code; timings depend on the machine and its load.",
            "",
            f"- date: {self.date}, commit `{self.commit}`, command `{self.command}` (took {self.elapsed:.0f} s)",
            f"- machine: {m['nproc']} CPUs (`nproc`), {m['cpu']}, Python {m['python']}, {m['platform']}",
            f"- load average when it started: {m['load']} (other work shared the machine: timings are noisy)",
            "- stack: the embedded one (`infra/local/stack.py`): moto's DynamoDB and SQS server and the Stripe",
            "  stand-in in the same process, on loopback.",
            "",
        ]

    def _operations(self) -> list[str]:
        lines = [
            "## DynamoDB calls and request units per operation",
            "",
            "One request at a time, in-process through Chalice's test client (HTTP adds no DynamoDB call).",
            "**Request units are computed, not reported:** moto answers `ReturnConsumedCapacity` with",
            "fixed placeholders (1.0 per Query or write, 0.5 per GetItem, whatever the size), so `bench/capacity.py`",
            "computes them from the items before and after each call by DynamoDB's on-demand rules: reads 1 RRU",
            "per 4 KB (per item for GetItem/BatchGetItem, on the summed size for a Query), half for eventually",
            "consistent reads and every GSI read; writes 1 WRU per 1 KB of the larger of before/after;",
            "TransactWriteItems 2x per item; plus 1 WRU per GSI entry inserted, updated or removed (2 when its",
            "key changes). moto's own placeholder figure is shown for the record. Each refunded session also",
            "enters the `refund-id` index (sessions carry `refund_id` too): 1 WRU per refunded session.",
            "",
            "| operation | DynamoDB calls | which | items read | RRU | WRU | SQS sends | moto's placeholder |",
            "|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        for row in self.operations:
            m = row.metered
            if m is None:
                lines.append(f"| {row.name} | n/a (route missing) | | | | | | |")
                continue
            lines.append(f"| {row.name} | {m.calls} | {m.summary()} | {m.items_returned} | {_units(m.read_units)} | "
                         f"{_units(m.write_units)} | {m.sqs_sends} | {_units(m.moto_reported_units)} |")
        notes = [f"- {row.name}: {row.note}" for row in self.operations if row.note]
        return lines + [""] + notes + [""]

    def _closer(self) -> list[str]:
        lines = [
            "## The window closer as the table grows",
            "",
            "Each size holds that many sessions in the bookings table, every one with an open refund window (so",
            "in the sparse `open-refund-windows` index), of which 20 cross their deadline before the sweep.",
            "**Loading shortcut:** the filler sessions are copies of a real session item written straight into",
            "moto's in-process store (`bench/closer.py`), since 100,000 writes over its HTTP endpoint take most of",
            "an hour; the 20 crossing sessions are bought through the API, and the measured sweep",
            "(`refund_windows.close_due_windows`) goes through the real HTTP endpoint.",
            "",
            "| sessions in table | crossing | DynamoDB calls | items read | closed | RRU | WRU | sweep wall time* | filler load time |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in self.closer:
            m = row.metered
            lines.append(f"| {row.sessions_in_table:,} | {row.crossing} | {m.calls} | {m.items_returned} | {row.closed} | "
                         f"{_units(m.read_units)} | {_units(m.write_units)} | {row.sweep_seconds:.2f} s | "
                         f"{row.load_seconds:.1f} s |")
        if self.closer:
            reads = [r.metered.items_returned for r in self.closer]
            flat = "flat" if len(set(reads)) == 1 else "NOT flat"
            lines += ["", f"Items read: {', '.join(map(str, reads))}: **{flat}**. Calls: one Query per shard "
                          f"(`WINDOW_SHARDS`), one BatchGetItem for the venues, one conditional UpdateItem per "
                          f"crossing session."]
        lines += ["", "\\* the sweep's wall time grows with the table only because moto evaluates an index Query",
                  "by walking every item of the table; DynamoDB reads the index range.", ""]
        return lines

    def _cold_start(self) -> list[str]:
        lines = ["## Cold start", ""]
        if self.imports:
            boto3, app = self.imports
            ratio, cpu_ratio = app.wall_median / boto3.wall_median, app.cpu_median / boto3.cpu_median
            lines += [
                f"Each import timed with `time.perf_counter()` (wall) and `time.process_time()` (CPU) around it, "
                f"in a fresh interpreter, warm bytecode cache, {len(boto3.wall)} runs each, interleaved; medians:",
                "",
                "| import | wall median | CPU median | wall runs (ms) |",
                "|---|---:|---:|---|",
                f"| `import boto3` | {_ms(boto3.wall_median)} | {_ms(boto3.cpu_median)} | "
                f"{', '.join(f'{w * 1000:.0f}' for w in boto3.wall)} |",
                f"| `import app` | {_ms(app.wall_median)} | {_ms(app.cpu_median)} | "
                f"{', '.join(f'{w * 1000:.0f}' for w in app.wall)} |",
                "",
                f"**Ratio `import app` / `import boto3`: {ratio:.2f} (wall), {cpu_ratio:.2f} (CPU).** "
                "Target: at most 1.4, aim 1.3.",
                "",
                "`import app` does not import boto3 itself (PynamoDB needs botocore only; boto3 is imported lazily",
                "by the SQS sender and the secrets reader), so the comparison is botocore + PynamoDB + Chalice + our",
                "code against boto3 + botocore.",
                "",
                "Largest top-level packages under `import app` (`python -X importtime`, cumulative, one run):",
                "",
                "| package | ms |",
                "|---|---:|",
            ]
            lines += [f"| `{name}` | {us / 1000:.0f} |" for name, us in self.heaviest]
            lines.append("")
        if self.read_path:
            found = self.read_path
            verdict = "none of them" if not found["forbidden_loaded"] else ", ".join(found["forbidden_loaded"])
            lines += [
                "### Modules on the guest read path",
                "",
                "A fresh interpreter (pointed at the running embedded stack) runs `import app`, then serves one",
                f"receipt (`GET /v1/me/transactions/{{id}}`, answered {found['status']}) through Chalice's test client.",
                f"Of {', '.join(f'`{m}`' for m in MUST_NOT_LOAD)}, loaded: **{verdict}**. boto3 loaded: "
                f"{'yes' if found['boto3_loaded'] else 'no'}. `tests/unit/test_cold_start_imports.py` keeps the "
                "import-time half of this as a test.",
                "",
                f"Modules the request itself loaded beyond `import app` and `chalice.test`: "
                f"{len(found['loaded_by_request'])}"
                + (f" ({', '.join('`' + n + '`' for n in found['loaded_by_request'][:15])}"
                   f"{', ...' if len(found['loaded_by_request']) > 15 else ''})" if found["loaded_by_request"] else "")
                + ".",
                "",
                f"Top-level packages loaded in all: {', '.join('`' + t + '`' for t in found['top_level'] if not t.startswith('_'))}.",
                "",
            ]
        return lines

    def _latency(self) -> list[str]:
        lines = [
            "## Latency through the local stack (HTTP)",
            "",
            "16 concurrent clients, each a thread with its own `requests.Session`, its own guest and purchases,",
            "all starting together; every request goes over loopback HTTP to the local API Gateway front, the",
            "Chalice app, and moto's server (which applies one request at a time, like a single DynamoDB",
            "partition would not: these are figures for the emulator, not for AWS).",
            "",
            "| operation | requests | p50 | p95 | errors | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for t in self.latency + ([self.refund_latency] if self.refund_latency else []):
            if not t.seconds:
                lines.append(f"| {t.name} | 0 | n/a | n/a | {t.errors} | {t.note} |")
                continue
            lines.append(f"| {t.name} | {len(t.seconds)} | {_ms(t.p50)} | {_ms(t.p95)} | {t.errors} | {t.note} |")
        lines += ["", "cancel -> refunded: 200 cancellations of one session each (one refund each), timed from the",
                  "cancellation's answer until the receipt shows the refund `refunded`; the stack's queue pump",
                  "delivers batches of up to 10 and sleeps 0.2 s when the queues are empty; each refund calls",
                  "the Stripe stand-in over HTTP.", "",
                  "Writes are slow here because moto 5.2 deep-copies every table a TransactWriteItems touches, once",
                  "per item, before applying it (its rollback), under the embedded server's one-request-at-a-time",
                  "lock: the cost grows with the data in the table, which DynamoDB's does not.", ""]
        return lines

    def _cost(self) -> list[str]:
        receipt, quote = self._op("receipt (1 session)"), self._op("quote (1 session)")
        cancel1, cancel5 = self._op("cancel 1 session"), self._op("cancel 5 sessions")
        worker1 = self._op("refund worker, 1 message (1 session)")
        if not (receipt and quote and cancel1 and worker1):
            return ["## Cost model", "", "n/a: an operation it needs was not measured.", ""]
        models = [cost.per_thousand("1 session", [receipt, quote, cancel1], worker1)]
        worker5 = self._op("refund worker, 1 message (5 sessions)")
        if cancel5 and worker5:
            models.append(cost.per_thousand("5 sessions", [receipt, quote, cancel5], worker5))
        lines = [
            "## Cost model: dollars per 1,000 cancellations on AWS",
            "",
            f"Prices: {cost.PRICE_DATE}: API Gateway REST $3.50 per million requests; Lambda $0.20 per million",
            "requests and $0.0000166667 per GB-s (x86); DynamoDB on-demand $0.625 per million WRU and $0.125 per",
            "million RRU; SQS standard $0.40 per million requests. Region us-east-1.",
            "",
            "A cancellation is what a guest does in the portal: read the receipt, ask for the quote, cancel,",
            "and one refund worker run: `r = 3` API requests. DynamoDB units and SQS sends are the measured",
            "figures above; Lambda's billed durations cannot be measured here and are assumed as in",
            "docs/deploy.md: 512 MB, 0.2 s per API request, 0.6 s for the worker (mostly waiting on Stripe).",
            "SQS counts the send plus one receive and one delete per message (an upper bound; Lambda takes up",
            "to 10 messages a batch). The idle cost (schedules, long polls, secrets, alarms) is in docs/deploy.md.",
            "",
            "```",
            cost.FORMULA,
            "```",
            "",
            "| per 1,000 cancellations | " + " | ".join(f"units ({m.label})" for m in models) + " | "
            + " | ".join(f"$ ({m.label})" for m in models) + " |",
            "|---|" + "---:|" * (2 * len(models)),
        ]
        for i, line in enumerate(models[0].lines):
            units = " | ".join(f"{m.lines[i].units:,.0f} {m.lines[i].unit_name}" for m in models)
            dollars = " | ".join(f"${m.lines[i].dollars:.4f}" for m in models)
            lines.append(f"| {line.component} | {units} | {dollars} |")
        lines.append("| **total** | " + " | ".join("" for _ in models) + " | "
                     + " | ".join(f"**${m.total:.3f}**" for m in models) + " |")
        lines += ["", "Per cancellation: " + "; ".join(
            f"{m.label}: {_units(m.rru)} RRU, {_units(m.wru)} WRU, {m.sqs_requests} SQS requests" for m in models)
            + ".", ""]
        return lines


    def _emails(self) -> list[str]:
        from bench import emails

        return emails.markdown(self.emails) if self.emails else []
