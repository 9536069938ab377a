"""An HTTP server served from a daemon thread, as the embedded AWS and the Stripe stand-in run."""
from __future__ import annotations

import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# How often a server's loop looks for a stop: each of the stack's servers took up to half a second
# (the default) to stop, one after another, at the end of every test worker and every Ctrl-C.
STOP_POLL_SECONDS = 0.1


class BackgroundServer:
    """`ThreadingHTTPServer` on (host, port) in a thread of its own; port 0 picks a free port."""

    def __init__(self, name: str, host: str, port: int, handler: type[BaseHTTPRequestHandler],
                 stop_timeout: float) -> None:
        self._host = host
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # kept-alive idle connections must not hold stop()
        self._stop_timeout = stop_timeout
        self._thread = threading.Thread(target=partial(self.server.serve_forever, poll_interval=STOP_POLL_SECONDS),
                                        name=name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=self._stop_timeout)
