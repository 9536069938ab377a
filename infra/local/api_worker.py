"""One process serving the local stack's API (`LocalStack(api_processes=n)` starts n of them).

It imports the app with the environment its parent set up (the embedded AWS's URL, the queues,
the secrets, the Stripe stand-in) and serves it through the same local API Gateway front, on the
parent's port (SO_REUSEPORT). It reaches DynamoDB, SQS and Stripe over HTTP as the parent's own
front does; `GET /_local/emails` it asks the parent for. It prints READY once it listens, then
only the app's log lines, and leaves when its standard input closes (the parent stopped or died).

    python -m infra.local.api_worker PORT EMAILS_URL VENUE_CACHE_SECONDS LOG_LEVEL
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any
from urllib.request import urlopen

READY = "api worker ready"
EMAILS_PATH = "/_local/emails"


def _leave_with_parent() -> None:
    sys.stdin.read()  # returns at EOF: the parent closed the pipe, or is gone
    os._exit(0)


def freeze_what_start_up_made() -> None:
    """Collect once, then move what start-up made (the app, boto3's and botocore's service models,
    PynamoDB's models: most of the heap) out of the collector's sight (`gc.freeze()`), so that
    the full collections that come every few thousand requests walk only what came since instead
    of pausing every request of this process for the whole heap. Frozen objects are still freed
    by reference counting; start-up's are kept for the process's life anyway."""
    import gc

    gc.collect()
    gc.freeze()


def main(argv: list[str]) -> None:
    import logging

    from infra.local.background import STOP_POLL_SECONDS
    from infra.local.stack import api_front

    port, emails_url, cache_seconds, level = int(argv[0]), argv[1], float(argv[2]), int(argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops this
    from chalicelib.storage import venue_cache

    venue_cache.MAX_AGE_SECONDS = cache_seconds
    import app as app_module

    logging.getLogger("rebook").setLevel(level)

    def local_emails() -> list[dict[str, Any]]:
        with urlopen(emails_url, timeout=30) as answer:
            emails: list[dict[str, Any]] = json.loads(answer.read())["emails"]
            return emails

    server = api_front(app_module, port, local_emails, reuse_port=True)
    freeze_what_start_up_made()
    threading.Thread(target=_leave_with_parent, name="parent-watch", daemon=True).start()
    print(READY, flush=True)
    server.serve_forever(poll_interval=STOP_POLL_SECONDS)


if __name__ == "__main__":
    main(sys.argv[1:])
