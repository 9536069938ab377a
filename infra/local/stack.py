"""The whole product on one machine, no AWS account: `make run`.

One process: moto's server (DynamoDB with its streams, SQS and SES) on a loopback port, the
Stripe stand-in (unless STRIPE_API_BASE points elsewhere), the Chalice app behind a small HTTP
front that answers like API Gateway, a pump that feeds the app's queue and stream handlers
Lambda-shaped events, and a timer that runs its scheduled functions; with `api_processes` (as
`make run` starts it) the API and the pumps run in processes of their own. Every email sent
through moto's SES is printed as one line and listed at `GET /_local/emails`. Ctrl-C stops all of it.
"""
from __future__ import annotations

import copy
import json
import mimetypes
import os
import re
import secrets
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from infra.local.background import STOP_POLL_SECONDS
from infra.portal import portal_headers

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"
LOCAL_REGION = "us-east-1"
LOCAL_MAIL_FROM = "bookings@rebook.example"
_REFUSED = object()  # a request the front has already answered with an error


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class LocalStack:
    """Start with `start()`, stop with `stop()`; `url` is the API, `admin_key` the platform key."""

    port: int = 0
    stripe_port: int = 0
    schedule_seconds: float = 60.0
    visibility_timeout_seconds: int = 3
    max_receive_count: int = 5
    background: bool = True  # serve HTTP, pump queues and run schedules (tests drive them instead)
    api_processes: int = 0  # 0: the API is served from this process; n: from n processes of its own
    # Print a line for each email sent (`make run`); the bench does not: parsing every email for
    # its line took ~6% of this process's CPU on a cancellation, and the lines were noise there.
    print_emails: bool = True
    faults: Any = None  # FaultRates at start (None: LOCAL_FAULTS, else none); then the live FaultSwitch
    admin_key: str = ""
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    stripe_url: str = ""
    stripe: Any = None
    app_module: ModuleType | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _moto: Any = None
    _http: ThreadingHTTPServer | None = None
    _api_workers: list[Any] = field(default_factory=list)
    _pump_worker: Any = None  # the pumps' own process, when the API has processes of its own
    _port_claim: socket.socket | None = None
    _streams: list[tuple[StreamPosition, Callable[..., Any]]] = field(default_factory=list)
    _emails_printed: int = 0
    # Built once: a boto3 client costs ~15 ms to make, and the pump and deliver_all ran a dozen a
    # round (a fifth of a core while idle). Clients are thread-safe; queue URLs never change.
    _sqs_client: Any = None
    _queue_urls: dict[str, str] = field(default_factory=dict)
    _read_emails: list[tuple[Any, dict[str, Any] | None]] = field(default_factory=list)
    _emails_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> LocalStack:
        import logging

        from infra.local.embedded_aws import EmbeddedAws
        from infra.local.faults import FaultRates

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log would drown ours
        rates = self.faults if self.faults is not None else FaultRates.parse(os.environ.get("LOCAL_FAULTS", ""))
        self._moto = EmbeddedAws(faults=rates).start()
        self.faults = self._moto.faults
        self.admin_key = self.admin_key or os.environ.get("ADMIN_API_KEY") or f"rbk_platform_{secrets.token_urlsafe(24)}"
        env = {
            "AWS_ENDPOINT_URL": self._moto.url,
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": LOCAL_REGION, "AWS_REGION": LOCAL_REGION,
            "ADMIN_API_KEY": self.admin_key,
            "TOKEN_SECRET": os.environ.get("TOKEN_SECRET") or secrets.token_urlsafe(32),
            "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET") or f"whsec_{secrets.token_urlsafe(24)}",
            "MAIL_FROM": os.environ.get("MAIL_FROM") or LOCAL_MAIL_FROM,
        }
        if os.environ.get("STRIPE_API_BASE"):
            env["STRIPE_API_BASE"] = os.environ["STRIPE_API_BASE"]
            env["STRIPE_API_KEY"] = os.environ.get("STRIPE_API_KEY", "")
        else:
            from infra.local.stripe_standin import StripeStandIn

            self.stripe = StripeStandIn(port=self.stripe_port).start()
            env["STRIPE_API_BASE"] = self.stripe.url
            env["STRIPE_API_KEY"] = "sk_test_local_standin"
        self.stripe_url = env["STRIPE_API_BASE"]
        env.update(self.env)
        os.environ.update(env)
        self.env = env

        from chalicelib.config import QUEUES, config

        self._create_queues(QUEUES)
        os.environ["REFUND_QUEUE_URL"] = self.queue_url(config().queue_name("refunds"))
        os.environ["DEADLINE_QUEUE_URL"] = self.queue_url(config().queue_name("deadline-updates"))
        os.environ["SLOT_CLOSURE_QUEUE_URL"] = self.queue_url(config().queue_name("slot-closures"))
        config.cache_clear()

        from chalicelib.storage.models import create_tables

        create_tables()
        self._verify_mail_identity()
        import app as app_module  # after the environment is set: models read table names on import

        self.app_module = app_module
        self._streams = [(StreamPosition(arn), handler) for arn, handler in self._stream_sources()]
        if self.background:
            self._serve_http()
            self.start_pumps()
            self._spawn(self._run_schedules, "schedules")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._moto is not None:
            self._moto.new_work.set()  # the pumps, waiting for work, see the stop at once
            self._moto.new_records.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for worker in self._api_workers + ([self._pump_worker] if self._pump_worker is not None else []):
            worker.stdin.close()  # the worker leaves when its stdin closes
            try:
                worker.wait(timeout=5)
            except Exception:
                worker.kill()
                worker.wait()
        if self._port_claim is not None:
            self._port_claim.close()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.stripe is not None:
            self.stripe.stop()
        if self._moto is not None:
            self._moto.stop()

    # --- AWS resources ---------------------------------------------------------------------

    def _sqs(self) -> Any:
        if self._sqs_client is None:
            import boto3

            self._sqs_client = boto3.client("sqs")
        return self._sqs_client

    def _create_queues(self, logical_names: tuple[str, ...]) -> None:
        from chalicelib.config import config

        sqs = self._sqs()
        for logical in logical_names:
            name = config().queue_name(logical)
            dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sqs.create_queue(QueueName=name, Attributes={
                "VisibilityTimeout": str(self.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                             "maxReceiveCount": str(self.max_receive_count)}),
            })

    def queue_url(self, name: str) -> str:
        if name not in self._queue_urls:
            self._queue_urls[name] = str(self._sqs().get_queue_url(QueueName=name)["QueueUrl"])
        return self._queue_urls[name]

    def _verify_mail_identity(self) -> None:
        """moto's SES sends only from a verified identity, as SES does: verify MAIL_FROM's domain."""
        import boto3

        from chalicelib.config import config

        domain = config().mail_from.rpartition("@")[2]
        boto3.client("sesv2").create_email_identity(EmailIdentity=domain)

    # --- Emails ----------------------------------------------------------------------------

    def emails(self) -> list[dict[str, Any]]:
        """Every email moto's SES has accepted, oldest first, as `GET /_local/emails` lists them."""
        return [copy.deepcopy(email) for email in self._parsed_emails()]

    def _parsed_emails(self) -> list[dict[str, Any]]:
        """The parsed emails themselves, shared: callers only read them."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        sent = list(ses_backends[DEFAULT_ACCOUNT_ID][LOCAL_REGION].sent_messages)
        with self._emails_lock:  # each message parsed once: the list only grows (the pump asks after every batch)
            known = self._read_emails
            if len(known) > len(sent) or (known and known[-1][0] is not sent[len(known) - 1]):
                known.clear()
            known.extend((message, read_email(message.raw_data) if hasattr(message, "raw_data") else None)
                         for message in sent[len(known):])
            return [email for _, email in known if email is not None]

    def print_new_emails(self) -> None:
        # Not self.emails(): the stream pump asks after every batch, and copying every email sent
        # so far each time made its cost grow with the emails (5% of a move's CPU after a few
        # hundred, more on every one after).
        emails = self._parsed_emails()
        for sent in emails[self._emails_printed:]:
            links = [word for word in sent["text"].split() if word.startswith("http")]
            print(f"email to {', '.join(sent['to'])}: {sent['subject']!r}"
                  + (f" {links[-1]}" if links else ""), flush=True)
        self._emails_printed = len(emails)

    # --- HTTP ------------------------------------------------------------------------------

    def serve_http(self) -> str:
        """Serve the app over HTTP if it is not served yet (tests that need real concurrent
        requests); returns the URL."""
        if self._http is None and not self._api_workers:
            self._serve_http()
        return self.url

    def _serve_http(self) -> None:
        if self.api_processes > 0:
            return self._serve_http_in_processes()
        self._http = api_front(self.app_module, self.port, self.emails)  # type: ignore[arg-type]
        self.port = self._http.server_address[1]
        self._set_url()
        self._spawn(partial(self._http.serve_forever, poll_interval=STOP_POLL_SECONDS), "http")

    def _set_url(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"
        if not os.environ.get("PORTAL_URL"):  # links in emails open the portal this front serves
            from chalicelib.config import config

            os.environ["PORTAL_URL"] = self.url
            config.cache_clear()

    def _serve_http_in_processes(self) -> None:
        """The API served by `api_processes` processes of its own (infra/local/api_worker.py), as
        Lambda runs many copies of a function: one Python process holds one core at most, and
        this one already runs the embedded AWS, the pumps and the Stripe stand-in. They share one
        port (SO_REUSEPORT: the kernel spreads the connections); this process holds the port
        (bound, never listening) so that no one else takes it while they start. They reach AWS
        and Stripe over HTTP, as this process's front does, and read the local emails from
        here. Each keeps its own venue cache, as each warm Lambda does."""
        import logging
        import subprocess
        import sys

        from chalicelib.storage import venue_cache
        from infra.local import api_worker
        from infra.local.embedded_aws import freeze_what_survives_full_collections

        freeze_what_survives_full_collections()  # this process is now mostly the embedded AWS, for long
        claim = socket.socket()
        claim.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        claim.bind(("127.0.0.1", self.port))
        self._port_claim = claim
        self.port = claim.getsockname()[1]
        self._set_url()
        self._moto.local_routes[api_worker.EMAILS_PATH] = lambda: json.dumps({"emails": self.emails()}).encode()
        level = logging.getLogger("rebook").getEffectiveLevel()
        for n in range(self.api_processes):
            worker = subprocess.Popen(
                [sys.executable, "-m", "infra.local.api_worker", str(self.port), self._moto.url + api_worker.EMAILS_PATH,
                 str(venue_cache.MAX_AGE_SECONDS), str(level)],
                cwd=ROOT, env=dict(os.environ), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self._api_workers.append(worker)
            assert worker.stdout is not None
            ready = worker.stdout.readline()
            if ready.strip() != api_worker.READY:
                raise RuntimeError(f"API process {n} did not start: {ready!r}")
            self._spawn(partial(_forward_lines, worker.stdout), f"api-{n}-output")

    # --- Queues and schedules, as Lambda would run them ------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def queue_handlers(self) -> list[tuple[str, Callable[..., Any]]]:
        """(queue name, handler) for every `on_sqs_message` handler of the app."""
        app = self.app_module.app  # type: ignore[union-attr]
        return [(source.queue_arn.rsplit(":", 1)[-1], getattr(self.app_module, source.name))
                for source in app.event_sources if type(source).__name__ == "SQSEventConfig"]

    def _stream_sources(self) -> list[tuple[str, Callable[..., Any]]]:
        """(stream ARN, handler) for every `on_dynamodb_record` handler: each reads the stream of
        the table its ARN names."""
        import boto3

        app = self.app_module.app  # type: ignore[union-attr]
        dynamodb = boto3.client("dynamodb")
        sources = []
        for source in app.event_sources:
            if type(source).__name__ == "DynamoDBEventConfig":
                table = source.stream_arn.split(":table/", 1)[1].split("/", 1)[0]
                arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
                sources.append((arn, getattr(self.app_module, source.name)))
        return sources

    def stream_handlers(self) -> list[tuple[StreamPosition, Callable[..., Any]]]:
        """The stream positions and their handlers, to deliver from this process: not once the
        pump process has taken the streams over (a record would be delivered twice)."""
        if self._pump_worker is not None:
            raise RuntimeError("the table streams are delivered by the pump process now")
        return list(self._streams)

    def deliver_streams(self, max_rounds: int = 50) -> int:
        """Deliver every record now in the table streams to its handler; returns how many batches."""
        batches = 0
        for _ in range(max_rounds):
            delivered = [position.deliver(handler) for position, handler in self.stream_handlers()]
            if not any(delivered):
                break
            batches += sum(delivered)
        return batches

    def replay_streams(self) -> None:
        """Deliver every stream record again from the start, as a Lambda retry or a duplicate
        delivery would (tests of exactly-once)."""
        for position, _ in self._streams:
            position.replay()

    def scheduled_functions(self) -> list[Callable[..., Any]]:
        app = self.app_module.app  # type: ignore[union-attr]
        return [getattr(self.app_module, source.name)
                for source in app.event_sources if type(source).__name__ == "ScheduledEventConfig"]

    def deliver_all(self, max_rounds: int = 50, streams: bool = True) -> int:
        """Deliver every message now in the queues (and, unless `streams=False`, every record in
        the table streams) to its handler, as the pump would; returns how many batches were
        delivered. Messages a handler failed stay for their next delivery."""
        sqs = self._sqs()
        handlers = [(self.queue_url(name), name, handler) for name, handler in self.queue_handlers()]
        streams = self.stream_handlers() if streams else []
        batches = 0
        for _ in range(max_rounds):
            delivered = [deliver_batch(sqs, url, name, handler, timeout_ms=self.lambda_timeout_ms)
                         for url, name, handler in handlers]
            delivered += [position.deliver(handler) for position, handler in streams]
            if not any(delivered):
                break
            batches += sum(delivered)
        return batches

    def start_pumps(self) -> None:
        """The background delivery of queue messages and stream records, each on its own thread;
        in a process of their own when the API has processes of its own (`api_processes`)."""
        if self.api_processes > 0:
            return self._pump_in_a_process()
        self._spawn(self._pump_queues, "queue-pump")
        self._spawn(self._pump_streams, "stream-pump")

    def _pump_in_a_process(self) -> None:
        """The pumps, and so the queue and stream handlers they run, in a process of their own
        (infra/local/pump_worker.py), as Lambda runs them apart from DynamoDB: in this process
        they took a third of a move's CPU and two fifths of a cancellation's (the refund worker,
        the emails), on the one core this process's interpreter can use, which also serves every
        DynamoDB, SQS and Stripe call of every client. They start where this process's stream
        positions are (records already delivered are not delivered again); this process only
        prints the emails sent."""
        import logging
        import subprocess
        import sys

        from infra.local import pump_worker
        from infra.local.embedded_aws import WAIT_PATH

        positions = [[position.arn, *position.next_batch()] for position, _ in self._streams]
        level = logging.getLogger("rebook").getEffectiveLevel()
        worker = subprocess.Popen(
            [sys.executable, "-m", "infra.local.pump_worker", self._moto.url + WAIT_PATH, str(self.lambda_timeout_ms),
             json.dumps(positions), str(level)],
            # Its AWS calls on the embedded AWS's background port: the API's waiting calls go first.
            cwd=ROOT, env={**os.environ, "AWS_ENDPOINT_URL": self._moto.background_url},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._pump_worker = worker
        assert worker.stdout is not None
        ready = worker.stdout.readline()
        if ready.strip() != pump_worker.READY:
            raise RuntimeError(f"the pump process did not start: {ready!r}")
        self._spawn(partial(_forward_lines, worker.stdout), "pump-output")
        if self.print_emails:
            self._spawn(self._print_emails, "email-printer")

    def _print_emails(self) -> None:
        """Print each email sent, when the pumps run elsewhere: an email's handler writes its
        notice after sending it, and a table write wakes this."""
        new_records = self._moto.new_records
        while not self._stop.is_set():
            new_records.wait(1.0)
            new_records.clear()
            try:
                self.print_new_emails()
            except Exception as error:  # a line that cannot be printed must not stop the printing
                print(json.dumps({"level": "ERROR", "event": "local_email_print_error", "error": repr(error)}),
                      flush=True)

    def _pump_queues(self, new_work: Any = None) -> None:
        """Deliver the queues' messages as Lambda's SQS pollers would. The streams have their own
        pump (as each event source has its own poller): a refund never waits behind emails.
        `new_work` is woken by every message sent (this process's event, unless given)."""
        sqs = self._sqs()
        handlers = [(self.queue_url(name), name, handler) for name, handler in self.queue_handlers()]
        new_work = new_work if new_work is not None else self._moto.new_work
        while not self._stop.is_set():
            new_work.clear()  # before receiving: a message from here on wakes the wait below
            busy = False
            for url, name, handler in handlers:
                try:
                    busy |= deliver_batch(sqs, url, name, handler, timeout_ms=self.lambda_timeout_ms)
                except Exception as error:  # keep pumping; the handler's own logs say what failed
                    print(json.dumps({"level": "ERROR", "event": "local_pump_error", "queue": name,
                                      "error": repr(error)}), flush=True)
            if not busy:
                # A new message wakes it at once; a message whose visibility timeout ran out (a
                # retry) is picked up within a second. Idle, it costs next to nothing.
                new_work.wait(1.0)

    def _pump_streams(self, new_records: Any = None, print_emails: bool | None = None) -> None:
        """Deliver the table streams' records (the guests' emails) and print each email sent."""
        streams = self.stream_handlers()
        new_records = new_records if new_records is not None else self._moto.new_records
        print_emails = self.print_emails if print_emails is None else print_emails
        while not self._stop.is_set():
            new_records.clear()  # before reading: a write from here on wakes the wait below
            busy = False
            for position, handler in streams:
                try:
                    # A short batch read the stream to its end: what was written since wakes the wait.
                    busy |= position.deliver(handler) and not position.caught_up
                except Exception as error:
                    print(json.dumps({"level": "ERROR", "event": "local_pump_error", "stream": position.arn,
                                      "error": repr(error)}), flush=True)
            try:
                if print_emails:
                    self.print_new_emails()
            except Exception as error:  # a line that cannot be printed must not stop the pump
                print(json.dumps({"level": "ERROR", "event": "local_email_print_error", "error": repr(error)}),
                      flush=True)
            if not busy and new_records.wait(1.0) and not self._stop.is_set():
                # Woken by a write: the writes made with it (a notice and its change, an email's
                # claim then its sent mark) are read in one batch instead of one request each, as
                # Lambda's poller, reading a shard four times a second, reads them.
                time.sleep(STREAM_GATHER_SECONDS)

    @property
    def lambda_timeout_ms(self) -> int:
        return int(self.faults.rates.lambda_timeout_ms)

    def _run_schedules(self) -> None:
        while not self._stop.wait(self.schedule_seconds):
            self.run_schedules_once()

    def run_schedules_once(self) -> None:
        for function in self.scheduled_functions():
            try:
                function(scheduled_event(), lambda_context(getattr(function, "__name__", "schedule"),
                                                           self.lambda_timeout_ms))
            except Exception as error:
                print(json.dumps({"level": "ERROR", "event": "local_schedule_error", "error": repr(error)}), flush=True)


def api_front(app_module: ModuleType, port: int, local_emails: Callable[[], list[dict[str, Any]]],
              reuse_port: bool = False) -> ThreadingHTTPServer:
    """The local API Gateway in front of the app on 127.0.0.1:`port` (not yet serving)."""
    from chalice.config import Config
    from chalice.local import CustomLocalChalice, LocalChalice, LocalGateway

    app = app_module.app
    if not isinstance(app, LocalChalice):  # one current_request per thread, as in `chalice local`
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    gateway = LocalGateway(app, Config.create(chalice_stage="dev", lambda_timeout=60, lambda_memory_size=512))
    give_client_addresses(gateway, app)
    handler = type("Handler", (ApiGatewayFront,), {"gateway": gateway, "local_emails": staticmethod(local_emails)})

    class Front(ThreadingHTTPServer):
        request_queue_size = 128  # bursts of clients
        daemon_threads = True
        block_on_close = False  # idle keep-alive connections must not delay Ctrl-C

        def server_bind(self) -> None:
            if reuse_port:  # several API processes on one port (LocalStack.api_processes)
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

    return Front(("127.0.0.1", port), handler)


def _forward_lines(stream: Any) -> None:
    """An API process's output (its JSON log lines), printed as this process's own."""
    for line in stream:
        print(line, end="", flush=True)


# --- The caller's address, as API Gateway gives it ------------------------------------------

_caller = threading.local()


@contextmanager
def from_address(address: str) -> Iterator[None]:
    """Requests made in this thread inside the block come from `address` (tests of per-client
    throttling use it with the Chalice test client; the front sets each connection's peer)."""
    before = getattr(_caller, "address", None)
    _caller.address = address
    try:
        yield
    finally:
        _caller.address = before


def give_client_addresses(gateway: Any, app: Any) -> None:
    """API Gateway puts the caller's address in `requestContext.identity.sourceIp`; chalice's
    local gateway always says 127.0.0.1. This makes a gateway say the address of the thread's
    current caller (127.0.0.1 when none is set)."""
    from chalice.local import LambdaEventConverter, RouteMatcher

    class CallerAddressEvents(LambdaEventConverter):
        def create_lambda_event(self, method: str, path: str, headers: dict[str, str],
                                body: bytes | None = None) -> dict[str, Any]:
            event = super().create_lambda_event(method, path, headers, body)
            event["requestContext"]["identity"]["sourceIp"] = getattr(_caller, "address", None) or self.LOCAL_SOURCE_IP
            return event

    gateway.event_converter = CallerAddressEvents(RouteMatcher(list(app.routes)), app.api.binary_types)


def deliver_batch(sqs: Any, queue_url: str, queue_name: str, handler: Callable[..., Any], wait_seconds: int = 0,
                  timeout_ms: int = 60_000) -> bool:
    """Receive up to 10 messages, hand them to `handler` as Lambda would, and delete those it
    did not report as failed. Returns whether anything was received."""
    answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds,
                                 AttributeNames=["All"], MessageAttributeNames=["All"])
    messages = answer.get("Messages", [])
    if not messages:
        return False
    arn = f"arn:aws:sqs:{LOCAL_REGION}:000000000000:{queue_name}"
    event = {"Records": [sqs_record(message, arn) for message in messages]}
    try:
        result = handler(event, lambda_context(queue_name, timeout_ms))
    except Exception:
        return True  # the whole batch failed: every message comes back after its visibility timeout
    failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
    return True


# What each stream event source hands its function, as infra/stack.py's FilterCriteria says
# (eventName INSERT; tests/infra/test_stack.py pins them to each other): the
# sender's own status updates come back through the stream as MODIFY records, and Lambda drops
# them without invoking it. Delivering them cost the local pump an invocation of the handler for
# nothing, two for every email.
STREAM_EVENT_NAMES = frozenset({"INSERT"})
# How long the stream pump lets writes gather once one has woken it (see _pump_streams).
STREAM_GATHER_SECONDS = 0.05


@dataclass
class StreamPosition:
    """Where a stream's handler has got to, as Lambda keeps it for an event source mapping: a
    batch whose handler reports failures is delivered again from its first failed record;
    records the source's filter does not pass (STREAM_EVENT_NAMES) are passed over.

    It keeps a sequence number, and the shard iterator GetRecords gave with the last batch while
    batches keep succeeding (one request a batch instead of two); a failed batch, a replay or a
    new start takes a fresh iterator at the sequence number. An iterator stays valid because the
    embedded DynamoDB never replaces a stream: a failed transaction puts back only the items it
    named and cuts the stream back to its length (infra/local/moto_patches.py's `_Backup`); an
    iterator it does not know any more (a table deleted and made again) is replaced once."""

    arn: str
    max_retries: int = 10  # as infra/stack.py's STREAM_RETRY_ATTEMPTS: then Lambda moves past the record
    event_names: frozenset[str] = STREAM_EVENT_NAMES
    _next: tuple[str, str | None] = ("TRIM_HORIZON", None)  # where the next batch starts
    _next_iterator: str | None = None  # GetRecords' iterator for exactly `_next`, when it gave one
    _failures: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # one batch at a time, as Lambda per shard
    _client: Any = None
    _shard: str | None = None
    caught_up: bool = False  # the last batch read the stream to its end (it was short, and handled)

    def _streams(self) -> Any:
        if self._client is None:  # built once (see LocalStack._sqs_client); used under self._lock
            import boto3

            self._client = boto3.client("dynamodbstreams")
        return self._client

    def _iterator(self) -> str:
        streams = self._streams()
        if self._shard is None:  # a shard's id never changes, even when moto puts back a copy of its table
            self._shard = streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        shard = self._shard
        kind, sequence_number = self._next
        extra = {"SequenceNumber": sequence_number} if sequence_number else {}
        return str(streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard, ShardIteratorType=kind,
                                              **extra)["ShardIterator"])

    def _move_to(self, kind: str, sequence_number: str | None, iterator: str | None = None) -> None:
        self._next, self._next_iterator = (kind, sequence_number), iterator

    def replay(self) -> None:
        with self._lock:
            self._move_to("TRIM_HORIZON", None)

    def next_batch(self) -> tuple[str, str | None]:
        """Where the next batch starts (how another process's pump takes over from here)."""
        with self._lock:
            return self._next

    def start_at(self, kind: str, sequence_number: str | None) -> None:
        with self._lock:
            self._move_to(kind, sequence_number)

    def deliver(self, handler: Callable[..., Any], batch_size: int = 10) -> bool:
        """One batch to `handler`; returns whether there was anything to deliver."""
        with self._lock:
            return self._deliver(handler, batch_size)

    def _read(self, batch_size: int) -> tuple[list[dict[str, Any]], str | None]:
        streams = self._streams()
        if self._next_iterator is not None:
            try:
                answer = streams.get_records(ShardIterator=self._next_iterator, Limit=batch_size)
            except streams.exceptions.ClientError:  # an iterator the stream does not know: a fresh one
                self._next_iterator = None
        if self._next_iterator is None:
            answer = streams.get_records(ShardIterator=self._iterator(), Limit=batch_size)
        return answer.get("Records", []), answer.get("NextShardIterator")

    def _deliver(self, handler: Callable[..., Any], batch_size: int) -> bool:
        records, following = self._read(batch_size)
        self.caught_up = False
        if not records:
            self._next_iterator = following or self._next_iterator
            self.caught_up = True
            return False
        last = records[-1]["dynamodb"]["SequenceNumber"]
        passed = [record for record in records if record.get("eventName") in self.event_names]
        if not passed:  # nothing for the handler: Lambda moves past them without invoking it
            self._failures.clear()
            self._move_to("AFTER_SEQUENCE_NUMBER", last, following)
            self.caught_up = len(records) < batch_size
            return True
        event = {"Records": [stream_record(record, self.arn) for record in passed]}
        try:
            result = handler(event, lambda_context("stream"))
        except Exception:
            failed = [passed[0]["dynamodb"]["SequenceNumber"]]
        else:
            failed = [item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])]
        if not failed:
            self._failures.clear()
            self._move_to("AFTER_SEQUENCE_NUMBER", last, following)
            self.caught_up = len(records) < batch_size
            return True
        first = min(failed, key=int)
        self._failures[first] = self._failures.get(first, 0) + 1
        if self._failures[first] > self.max_retries:  # given up, as Lambda does: the record is skipped
            print(json.dumps({"level": "ERROR", "event": "local_stream_record_skipped", "stream": self.arn,
                              "sequence_number": first}), flush=True)
            self._failures.pop(first)
            self._move_to("AFTER_SEQUENCE_NUMBER", first)
        else:
            self._move_to("AT_SEQUENCE_NUMBER", first)
        return True


def stream_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A record as Lambda hands it over: times as epoch seconds, the stream's ARN attached."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    dynamodb["ApproximateCreationDateTime"] = created.timestamp() if hasattr(created, "timestamp") else created or time.time()
    return {**record, "dynamodb": dynamodb, "eventSourceARN": arn}


def read_email(raw: str) -> dict[str, Any]:
    """A raw MIME email as `GET /_local/emails` shows it."""
    from email import message_from_string, policy
    from email.utils import getaddresses, parsedate_to_datetime

    from chalicelib.times import format_utc

    parsed = message_from_string(raw, policy=policy.default)
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    date = parsed["Date"]
    return {"to": [address for _, address in getaddresses([str(parsed["To"] or "")]) if address],
            "from": str(parsed["From"] or ""), "subject": str(parsed["Subject"] or ""),
            "text": text.get_content() if text is not None else "", "html": html.get_content() if html is not None else "",
            "sent_at": format_utc(parsedate_to_datetime(str(date))) if date else None}


def sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": message.get("Attributes", {}), "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": arn,
        "awsRegion": LOCAL_REGION,
    }


def scheduled_event() -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "000000000000", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": LOCAL_REGION, "resources": [], "detail": {}}


def lambda_context(function_name: str, timeout_ms: int = 60_000) -> Any:
    """A context whose `get_remaining_time_in_millis()` counts down from `timeout_ms`, as Lambda's does."""
    from chalice.local import LambdaContext

    return LambdaContext(function_name=function_name, memory_size=512, max_runtime_ms=timeout_ms)


class ApiGatewayFront(BaseHTTPRequestHandler):
    """Turns HTTP requests into API Gateway events for the app, and answers what API Gateway
    answers itself (unknown routes, bodies too large, malformed requests) with the gateway
    responses infra/ configures in AWS, in the contract's error shape. GET paths outside /v1
    serve the reference portal from portal/."""

    gateway: Any
    local_emails: Callable[[], list[dict[str, Any]]]
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    timeout = 30  # a client that stops sending mid-request does not hold a thread for ever
    max_body_bytes = 1024 * 1024  # the app refuses far less; this only bounds what is read
    static_types = frozenset({".html", ".css", ".js", ".png", ".svg", ".ico", ".json"})

    def log_message(self, format: str, *args: Any) -> None:  # access logs would drown the JSON lines
        return

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Python's own answers to malformed requests (bad request line, huge headers, unknown
        methods), in the contract's shape; an unknown method is a 405, as API Gateway says."""
        self._gateway_error(405 if code == 501 else code)

    def _gateway_error(self, status: int, kind: str | None = None) -> None:
        from chalicelib.api.errors import GATEWAY_RESPONSES, error_body, generic_error
        from chalicelib.api.headers import API_ANSWER_HEADERS

        if kind:
            status, code, message = GATEWAY_RESPONSES[kind]
            body = error_body(code, message)
        else:
            body = generic_error(status)
        self.close_connection = True
        self._send(status, {"Content-Type": "application/json", "Connection": "close", **API_ANSWER_HEADERS},
                   json.dumps(body).encode())

    def _handle(self) -> None:
        from chalice.local import LocalGatewayException

        body = self._body()
        if body is _REFUSED:
            return None
        path = self.path
        if path.split("?", 1)[0] == "/_local/emails" and self.command in ("GET", "HEAD"):
            emails = json.dumps({"emails": self.local_emails()}).encode()
            return self._send(200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, emails)
        if not path.startswith("/v1/") and self.command in ("GET", "HEAD"):
            return self._static(path)
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        if body:
            headers["content-length"] = str(len(body))
        try:
            with from_address(self.client_address[0]):
                response = self.gateway.handle_request(method=self.command, path=path, headers=headers, body=body)
        except LocalGatewayException:
            return self._gateway_error(404, "MISSING_AUTHENTICATION_TOKEN")
        payload = response.get("body") or b""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self._send(response["statusCode"], response.get("headers") or {}, payload)

    def _body(self) -> bytes | object | None:
        """The request body, by Content-Length or chunked, or _REFUSED once the answer is sent.
        A request that frames its body two ways (or a length twice) is how a second request is
        smuggled inside the first: refused, and the connection closed, never guessed."""
        lengths = self.headers.get_all("content-length") or []
        codings = self.headers.get_all("transfer-encoding") or []
        if codings:
            if lengths or len(codings) != 1 or codings[0].strip().lower() != "chunked":
                self._gateway_error(400)
                return _REFUSED
            return self._chunked_body()
        if len(lengths) > 1 or (lengths and not re.fullmatch(r"[0-9]{1,12}", lengths[0].strip())):
            self._gateway_error(400)
            return _REFUSED
        length = int(lengths[0]) if lengths else 0
        if length > self.max_body_bytes:
            self._gateway_error(413, "REQUEST_TOO_LARGE")
            return _REFUSED
        return self.rfile.read(length) if length else None

    def _chunked_body(self) -> bytes | object:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            match = re.fullmatch(rb"([0-9A-Fa-f]{1,8})(;[^\r\n]*)?\r?\n", line)
            if not match:
                self._gateway_error(400)
                return _REFUSED
            size = int(match[1], 16)
            total += size
            if total > self.max_body_bytes:
                self._gateway_error(413, "REQUEST_TOO_LARGE")
                return _REFUSED
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                self._gateway_error(400)
                return _REFUSED
            chunks.append(chunk)
        for _ in range(100):  # trailer fields, ignored, up to the empty line
            if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                return b"".join(chunks) or None
        self._gateway_error(400)
        return _REFUSED

    def _static(self, path: str) -> None:
        relative = path.split("?", 1)[0].lstrip("/") or "index.html"
        try:
            target = (PORTAL / relative).resolve()
            if target.is_dir():
                target = target / "index.html"
            found = PORTAL.resolve() in target.parents and target.is_file() and target.suffix in self.static_types
        except (OSError, ValueError):  # a name over 255 bytes, a NUL: no such file
            found = False
        if not found:
            return self._gateway_error(404, "RESOURCE_NOT_FOUND")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, {"Content-Type": content_type, "Cache-Control": "no-store", **portal_headers("'self'")},
                   target.read_bytes())

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client left; nothing to tell it
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def main() -> None:
    port, stripe_port = int(os.environ.get("PORT", "8000")), int(os.environ.get("STRIPE_STANDIN_PORT", "12111"))
    for name, number in (("PORT", port), ("STRIPE_STANDIN_PORT", stripe_port)):
        if number and not port_is_free(number):
            raise SystemExit(f"port {number} is in use: choose another, e.g. `make run {name}={number + 1}`")
    stack = LocalStack(port=port, stripe_port=stripe_port,
                       schedule_seconds=float(os.environ.get("LOCAL_SCHEDULE_SECONDS", "60")),
                       api_processes=int(os.environ.get("LOCAL_API_PROCESSES", "0"))).start()
    print(f"rebook is running at {stack.url}", flush=True)
    print(f"  platform admin key: {stack.admin_key}", flush=True)
    print(f"  Stripe API base:    {stack.stripe_url}", flush=True)
    if stack.faults.rates.active:
        print(f"  AWS faults on:      {stack.faults.rates}", flush=True)
    if os.environ.get("SEED") == "1":
        from infra.local.seed import seed_demo

        for line in seed_demo(stack):
            print(f"  {line}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
