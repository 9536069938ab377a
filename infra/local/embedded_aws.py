"""DynamoDB and SQS on one loopback port, from moto's server, with each request applied whole.

moto's threaded server runs requests side by side with no lock around its backends, so two
conditional TransactWriteItems can interleave their checks and writes: both "succeed", which
real DynamoDB never allows. Serialising requests restores DynamoDB's per-request atomicity
(and SQS's), which the product's exactly-once guarantees are tested against. Each request passes
the fault switch (infra/local/faults.py), which can make it answer as a busy AWS would.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from werkzeug.serving import BaseWSGIServer, make_server

from infra.local.faults import FaultRates, FaultSwitch


class _OneRequestAtATime:
    def __init__(self, app: Callable[..., Iterable[bytes]], faults: FaultSwitch) -> None:
        self._app = app
        self._faults = faults
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:  # the body is produced inside the lock
            return self._faults.handle(environ, start_response, self._app)


class EmbeddedAws:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, faults: FaultRates | None = None) -> None:
        self._host, self._port = host, port
        self.faults = FaultSwitch(faults)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self._host}:{self._server.server_address[1]}"

    def start(self) -> EmbeddedAws:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app), self.faults)
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
