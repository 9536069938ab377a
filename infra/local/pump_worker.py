"""The local stack's pumps in a process of their own (`LocalStack.start_pumps()` starts it when
the API has processes of its own): the queue handlers (the refund worker, the deadline and
closure updates) and the stream handlers (the guests' emails) run here, as Lambda runs them apart
from DynamoDB, reaching the embedded AWS and the Stripe stand-in over HTTP.

It waits for work on the embedded AWS's WAIT_PATH instead of polling, starts the streams where
the parent's positions were, prints READY once it runs, then only the handlers' log lines, and
leaves when its standard input closes (the parent stopped or died).

    python -m infra.local.pump_worker WAIT_URL LAMBDA_TIMEOUT_MS POSITIONS_JSON LOG_LEVEL
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from functools import partial
from urllib.request import urlopen

READY = "pump worker ready"
NICENESS = 5


class RemoteWork:
    """The parent's `new_work` / `new_records` event as the pumps use it (clear, then wait), from
    another process: each wait returns once the parent's count of that work has moved past the
    one the last wait saw, so work that came while the pump was busy wakes it at once."""

    def __init__(self, wait_url: str, kind: str) -> None:
        self._url, self._kind = wait_url, kind
        self._seen = -1  # the first wait returns at once

    def clear(self) -> None:
        return None  # the count the last wait saw is the mark

    def wait(self, timeout: float) -> bool:
        try:
            with urlopen(f"{self._url}?kind={self._kind}&seen={self._seen}", timeout=timeout + 30) as answer:
                count = int(json.loads(answer.read())["count"])
        except Exception:  # the stack is stopping, busy or answered oddly: wait, then look for work anyway
            time.sleep(timeout)
            return True
        moved, self._seen = count != self._seen, count
        return moved


def _leave_with_parent() -> None:
    sys.stdin.read()  # returns at EOF: the parent closed the pipe, or is gone
    os._exit(0)


def main(argv: list[str]) -> None:
    import logging

    from infra.local.api_worker import freeze_what_start_up_made
    from infra.local.faults import FaultRates, FaultSwitch
    from infra.local.stack import LocalStack, StreamPosition

    wait_url, timeout_ms, positions, level = argv[0], int(argv[1]), json.loads(argv[2]), int(argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops this
    # Behind the API processes for the CPU: on AWS these handlers run on Lambdas of their own and
    # take nothing from the API's; on one machine a burst of emails would otherwise slow every
    # request while it lasts (what the queues are there to absorb).
    os.nice(NICENESS)
    import app as app_module

    logging.getLogger("rebook").setLevel(level)
    # Not started: only its handler lookups and pump loops are used, against the parent's AWS.
    stack = LocalStack(background=False, faults=FaultSwitch(FaultRates(lambda_timeout_ms=timeout_ms)))
    stack.app_module = app_module
    handlers = dict(stack._stream_sources())
    stack._streams = []
    for arn, kind, sequence_number in positions:
        position = StreamPosition(arn)
        position.start_at(kind, sequence_number)
        stack._streams.append((position, handlers[arn]))
    freeze_what_start_up_made()  # as an API process: full collections walk only what came since
    threading.Thread(target=_leave_with_parent, name="parent-watch", daemon=True).start()
    queues = threading.Thread(target=partial(stack._pump_queues, RemoteWork(wait_url, "queues")),
                              name="queue-pump", daemon=True)
    streams = threading.Thread(target=partial(stack._pump_streams, RemoteWork(wait_url, "streams"), False),
                               name="stream-pump", daemon=True)
    queues.start()
    streams.start()
    print(READY, flush=True)
    while queues.is_alive() and streams.is_alive():
        time.sleep(1.0)
    print(json.dumps({"level": "ERROR", "event": "local_pump_stopped", "queues": queues.is_alive(),
                      "streams": streams.is_alive()}), flush=True)  # said aloud, never a silent stop
    os._exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
