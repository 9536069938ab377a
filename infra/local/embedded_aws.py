"""DynamoDB and SQS on one loopback port, from moto's server, with each request applied whole.

moto's threaded server runs requests side by side with no lock around its backends, so two
conditional TransactWriteItems can interleave their checks and writes: both "succeed", which
real DynamoDB never allows. Serialising requests restores DynamoDB's per-request atomicity
(and SQS's), which the product's exactly-once guarantees are tested against. Each request passes
the fault switch (infra/local/faults.py), which can make it answer as a busy AWS would.

Under that lock, moto's TransactWriteItems backs up only the items a transaction names instead of
deep-copying whole tables, and a Query reads only its key (infra/local/moto_patches.py), so a
call costs the same whatever the table holds.

The pump process (the refund worker, the emails) calls a second port, `background_url`: at the
lock, its requests let the API's waiting requests go first, for at most BACKGROUND_YIELD_SECONDS
each (`_ForegroundFirst`), so a burst of refunds does not queue in front of the guests' requests.
Every request still takes the one lock, whole.

moto's app is served here by a small HTTP/1.1 server that keeps connections open, instead of
werkzeug's development server, which closes every connection after one answer: each DynamoDB call
then paid a TCP handshake and a new server thread.
"""
from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote

from infra.local.background import BackgroundServer
from infra.local.faults import FaultRates, FaultSwitch

# Requests that give the local pumps work: a queue message (the queue pump), or a table write
# whose stream record the stream pump delivers.
_QUEUE_WORK = ("AmazonSQS.SendMessage",)
_STREAM_WORK = ("DynamoDB_20120810.PutItem", "DynamoDB_20120810.UpdateItem", "DynamoDB_20120810.DeleteItem",
                "DynamoDB_20120810.BatchWriteItem", "DynamoDB_20120810.TransactWriteItems")


class WorkCount:
    """How many times work has arrived, for a pump in another process: it asks over HTTP
    (WAIT_PATH) to be answered once the count moves past the one it last saw, or after a timeout.
    A count, unlike an event, loses no wake-up between the pump's two waits."""

    def __init__(self) -> None:
        self._count = 0
        self._moved = threading.Condition()

    def add(self) -> None:
        with self._moved:
            self._count += 1
            self._moved.notify_all()

    def wait_past(self, seen: int, timeout: float) -> int:
        with self._moved:
            self._moved.wait_for(lambda: self._count != seen, timeout)
            return self._count


# GET WAIT_PATH?kind=queues|streams&seen=N answers {"count": M} once M != N (or after a second).
WAIT_PATH = "/_local/wait-for-work"
WAIT_SECONDS = 1.0


# The longest a background request (the pump process's: the refund worker, the emails) waits for the
# API's requests queued before it to go first. It then takes its turn with them.
BACKGROUND_YIELD_SECONDS = 0.25
BACKGROUND_ENVIRON_KEY = "rebook.local.background"  # set by the background port's handler


class _ForegroundFirst:
    """Which request takes the lock next, when the pump process's requests (on the background
    port) meet the API's: an API request goes first, a background one waits while any API request
    is waiting for the lock, for at most BACKGROUND_YIELD_SECONDS. On AWS the refund worker and the
    emails run on Lambdas of their own, beside DynamoDB's other clients; here they share one lock
    with the guests, and a burst of refunds (a dozen calls each) queued in front of the guests'
    requests made each of those wait behind it. Each request is still applied whole, one at a time:
    only the order in which waiting requests take the lock changes."""

    def __init__(self) -> None:
        self._count_lock = threading.Lock()
        self._waiting = 0  # API requests waiting for the lock
        self._none_waiting = threading.Event()
        self._none_waiting.set()

    def arrive(self) -> None:
        with self._count_lock:
            self._waiting += 1
            self._none_waiting.clear()

    def leave(self) -> None:
        """The API request took the lock (or gave up on it)."""
        with self._count_lock:
            self._waiting -= 1
            if self._waiting == 0:
                self._none_waiting.set()

    def let_foreground_go_first(self) -> None:
        self._none_waiting.wait(BACKGROUND_YIELD_SECONDS)


class _OneRequestAtATime:
    def __init__(self, app: Callable[..., Iterable[bytes]], faults: FaultSwitch, new_work: threading.Event,
                 new_records: threading.Event, counts: dict[str, WorkCount],
                 local_routes: dict[str, Callable[[], bytes]]) -> None:
        self._app = app
        self._local_routes = local_routes
        self._faults = faults
        self._lock = threading.Lock()
        self._turns = _ForegroundFirst()
        self._new_work, self._new_records = new_work, new_records
        self._counts = counts

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        local = self._local_routes.get(path)
        if local is not None or path == WAIT_PATH:  # the local stack's own answers (no AWS service has such a path)
            body = local() if local is not None else self._wait_for_work(environ.get("QUERY_STRING", ""))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        self._faults.wait_if_held(environ)  # outside the lock: the other requests go on meanwhile
        if environ.get(BACKGROUND_ENVIRON_KEY):
            self._turns.let_foreground_go_first()
            with self._lock:  # the body is produced inside the lock
                body = self._faults.handle(environ, start_response, self._app)
        else:
            self._turns.arrive()
            try:
                self._lock.acquire()
            finally:
                self._turns.leave()
            try:
                body = self._faults.handle(environ, start_response, self._app)
            finally:
                self._lock.release()
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(_QUEUE_WORK):
            self._new_work.set()
            self._counts["queues"].add()
        elif target.startswith(_STREAM_WORK):
            self._new_records.set()
            self._counts["streams"].add()
        return body

    def _wait_for_work(self, query: str) -> bytes:
        asked = parse_qs(query)
        count = self._counts[asked["kind"][0]].wait_past(int(asked["seen"][0]), WAIT_SECONDS)
        return json.dumps({"count": count}).encode()


class _WsgiHandler(BaseHTTPRequestHandler):
    """One WSGI call per request on a kept-alive connection. Bodies are read whole by their
    Content-Length (the AWS SDKs send no chunked bodies to DynamoDB, SQS or Secrets Manager)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no delayed-ACK stall
    app: Callable[..., list[bytes]]
    background = False  # the background port's handler: its requests let the API's go first

    def log_message(self, format: str, *args: Any) -> None:  # moto's access log would drown ours
        return

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # the client left (a pump process stopped mid-wait)
            self.close_connection = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:  # the client left mid-request (a pump process stopped): nothing to do
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query, "SERVER_NAME": str(host), "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.background:
            environ[BACKGROUND_ENVIRON_KEY] = True
        for name in set(self.headers.keys()):
            if "_" in name:  # as werkzeug: an underscored header must not pass for a dashed one
                continue
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = ",".join(self.headers.get_all(name) or [])
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer[:] = [status, headers]
            return lambda data: None  # moto returns its bodies; it never calls write()

        payload = b"".join(self.app(environ, start_response))
        status, headers = answer
        self.send_response(int(status[:3]), status[4:])
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client left (a pump process stopped mid-wait)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


def _remember_backends(dispatcher: Any) -> None:
    """moto's dispatcher finds each request's service by listing moto's package folder and
    stat-ing every entry, then trying its URL patterns one by one: twice a request, ~6% of the
    embedded server's time. The answer depends only on the host it is given, so keep it (what
    this relies on is pinned by tests/unit/test_moto_patches.py)."""
    find = dispatcher.get_backend_for_host
    found: dict[str | None, Any] = {}

    def remembered(host: str | None) -> Any:
        if host not in found:
            found[host] = find(host)
        return found[host]

    dispatcher.get_backend_for_host = remembered


def _remember_action_names() -> None:
    """moto's `BaseResponse.call_action` lists its handler class's functions (`inspect.getmembers`,
    sorting ~200 members) on every request, to see whether the action is one of them: ~4% of a
    receipt's time in the embedded server. A class's functions do not change while the stack runs,
    so keep the list per class (pinned by tests/unit/test_moto_patches.py)."""
    import moto.core.responses as responses

    if getattr(responses.method_names_from_class, "remembered", False):
        return
    find = responses.method_names_from_class
    found: dict[type, list[str]] = {}

    def remembered(clazz: Any) -> list[str]:
        if clazz not in found:
            found[clazz] = find(clazz)
        return found[clazz]

    remembered.remembered = True  # type: ignore[attr-defined]
    responses.method_names_from_class = remembered


def freeze_what_survives_full_collections() -> None:
    """After each full garbage collection, move what survived it out of the collector's sight
    (`gc.freeze()`), in a process that holds the embedded AWS for long.

    moto keeps every item, queue message and stream record (it never trims a stream) as Python
    objects, so the heap only grows, and a full collection walks all of it while the one request
    in the lock waits: 218 ms once every ~30 moves with 1,000 sessions (7 ms a move, more than a
    quarter of this process's CPU for it), growing with the data. Frozen, each object is walked
    by one full collection and never again; reference counting still frees what is dropped. What
    it gives up: a reference cycle that becomes garbage after it was frozen is never collected
    (moto's state is long-lived: such cycles are a deleted table and its stream), which is why
    only processes that hold the embedded AWS for long ask for it: the stack's, when the API has
    processes of its own, and each test worker's. Idempotent."""
    import gc

    if _freeze_after_full_collections in gc.callbacks:
        return
    gc.callbacks.append(_freeze_after_full_collections)
    gc.collect()  # what start-up made (imported modules, service models, tables): walked once, then frozen


def _freeze_after_full_collections(phase: str, info: dict[str, Any]) -> None:
    import gc

    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


class EmbeddedAws:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, faults: FaultRates | None = None) -> None:
        self._host, self._port = host, port
        self.faults = FaultSwitch(faults)
        self._server: BackgroundServer | None = None
        self._background_server: BackgroundServer | None = None
        # Set after every SQS send (`new_work`) and every table write (`new_records`, a stream
        # record): the local pumps wait on them instead of polling, as Lambda's pollers would pick
        # a message or a record up at once (moto's own long poll would sleep holding the lock above).
        self.new_work = threading.Event()
        self.new_records = threading.Event()
        # The same two, counted, for pumps in a process of their own (infra/local/pump_worker.py).
        self.work_counts = {"queues": WorkCount(), "streams": WorkCount()}
        # Paths this server answers itself, outside moto: the local stack's emails for its API
        # processes (infra/local/api_worker.py).
        self.local_routes: dict[str, Callable[[], bytes]] = {}

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return self._server.url

    def start(self) -> EmbeddedAws:
        from moto.moto_server import werkzeug_app
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from infra.local import moto_patches

        moto_patches.install()
        # No CORS headers (moto's MOTO_DISABLE_GLOBAL_CORS, read when each service's app is made):
        # only SDKs call this server, never a browser, and flask-cors looked at every answer
        # (~2% of this server's time).
        werkzeug_app.DISABLE_GLOBAL_CORS = True
        dispatcher = DomainDispatcherApplication(create_backend_app)
        _remember_backends(dispatcher)
        _remember_action_names()
        app = _OneRequestAtATime(dispatcher, self.faults, self.new_work, self.new_records, self.work_counts,
                                 self.local_routes)
        handler = type("Handler", (_WsgiHandler,), {"app": staticmethod(app)})
        self._server = BackgroundServer("embedded-aws", self._host, self._port, handler, stop_timeout=10)
        background = type("BackgroundHandler", (_WsgiHandler,), {"app": staticmethod(app), "background": True})
        self._background_server = BackgroundServer("embedded-aws-background", self._host, 0, background,
                                                   stop_timeout=10)
        return self

    @property
    def background_url(self) -> str:
        """The same AWS, for background work (the pump process): its requests let the API's
        requests waiting for the lock go first (`_ForegroundFirst`)."""
        assert self._background_server is not None, "start() first"
        return self._background_server.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._background_server is not None:
            self._background_server.stop()
