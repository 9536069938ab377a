"""The pump process's wake-ups (infra/local/pump_worker.py's RemoteWork against the embedded
AWS's count of new work): work that arrives while a pump is busy wakes its next wait at once,
an idle wait ends after a second, and a stack that cannot answer never stops a pump."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from infra.local.embedded_aws import WAIT_PATH, EmbeddedAws
from infra.local.pump_worker import RemoteWork


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedAws]:
    started = EmbeddedAws().start()
    yield started
    started.stop()


def test_work_that_came_while_the_pump_was_busy_wakes_its_next_wait_at_once(server: EmbeddedAws) -> None:
    wake = RemoteWork(server.url + WAIT_PATH, "queues")
    assert wake.wait(1.0)  # the first wait: whatever is already there
    server.work_counts["queues"].add()  # a message sent while the pump delivers
    began = time.monotonic()
    assert wake.wait(1.0) and time.monotonic() - began < 0.5
    began = time.monotonic()
    assert not wake.wait(1.0)  # nothing new: an idle second
    assert 0.8 < time.monotonic() - began < 5


def test_a_wait_ends_when_work_comes_and_other_kinds_do_not_wake_it(server: EmbeddedAws) -> None:
    wake = RemoteWork(server.url + WAIT_PATH, "streams")
    wake.wait(1.0)
    timer = threading.Timer(0.3, server.work_counts["queues"].add)  # another pump's kind of work
    timer.start()
    began = time.monotonic()
    assert not wake.wait(1.0) and time.monotonic() - began > 0.8
    threading.Timer(0.2, server.work_counts["streams"].add).start()
    began = time.monotonic()
    assert wake.wait(1.0) and time.monotonic() - began < 0.8


def test_a_stack_that_does_not_answer_never_stops_a_pump() -> None:
    wake = RemoteWork("http://127.0.0.1:9/nothing-listens", "queues")
    began = time.monotonic()
    assert wake.wait(0.2)  # it looks for work anyway after the wait
    assert time.monotonic() - began >= 0.2
