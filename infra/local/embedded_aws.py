"""DynamoDB and SQS on one loopback port, from moto's server, with each request applied whole.

moto's threaded server runs requests side by side with no lock around its backends, so two
conditional TransactWriteItems can interleave their checks and writes: both "succeed", which
real DynamoDB never allows. Serialising requests restores DynamoDB's per-request atomicity
(and SQS's), which the product's exactly-once guarantees are tested against.

Under that lock, moto's TransactWriteItems backs up only the items a transaction names instead of
deep-copying whole tables (infra/local/moto_patches.py), so a write costs the same whatever
the table holds.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from werkzeug.serving import BaseWSGIServer, make_server


class _OneRequestAtATime:
    def __init__(self, app: Callable[..., Iterable[bytes]], messages_sent: threading.Event) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._messages_sent = messages_sent

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            body = list(self._app(environ, start_response))  # the body is produced inside the lock
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS.SendMessage"):
            self._messages_sent.set()
        return body


class _RequestHandler:
    """moto's request handler with Nagle's algorithm off: werkzeug writes an answer's headers and
    body separately, and on a kept-alive connection the body would wait for the client's delayed
    ACK of the headers (40 ms on Linux) on every call."""

    @staticmethod
    def make() -> type:
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        return type("RequestHandler", (MotoRequestHandler,), {"disable_nagle_algorithm": True})


class EmbeddedAws:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # Set after every SQS send: the local queue pump waits on it instead of polling, as Lambda's
        # poller, long-polling, would pick a message up at once (moto's own long poll would sleep
        # holding the lock above).
        self.messages_sent = threading.Event()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self._host}:{self._server.server_address[1]}"

    def start(self) -> EmbeddedAws:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from infra.local import moto_patches

        moto_patches.install()
        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app), self.messages_sent)
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=_RequestHandler.make())
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
