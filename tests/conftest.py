"""Fixtures: one embedded stack (moto's DynamoDB and SQS, the Stripe stand-in) per test run, the
Chalice test client on the real app, and a `world` that builds venues, guests and purchases in
one line each. Every test makes its own venue, so tests never see each other's data."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

os.environ.setdefault("TABLE_PREFIX", "rebook-test")
os.environ.setdefault("ADMIN_API_KEY", "rbk_platform_test_key")
os.environ.setdefault("TOKEN_SECRET", "test-token-secret-not-for-production")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_secret")

import bench.world
from bench.world import Guest, Response, Venue, in_process, iso, now
from infra.local.stack import LocalStack, give_client_addresses

__all__ = ["ADMIN_KEY", "Api", "Guest", "Response", "Venue", "World", "iso", "now"]  # what tests import

ADMIN_KEY = os.environ["ADMIN_API_KEY"]


# Under `pytest -n N --dist loadgroup` (make test), tests are spread one by one over N worker
# processes, each with its own embedded stack; tests sharing a costly fixture stay on one worker:
# a module's own stack, the CDK synthesis (both stages and a venue's own portal, which one test
# compares with dev: all of tests/infra/ on one worker). The browser tests are not grouped: their
# stack and Chromium start on each worker at its first browser test (4 s of CPU), and one worker
# alone took longer over them than the whole run should.
# The upgrade's Scan reads every item the worker's tables hold: its tests, as a group, are handed
# out among the first (xdist hands out the largest groups first), before other tests have filled
# the tables (after the closure of a 1,000-session slot, 70 s of CPU instead of 10 s).
_ONE_WORKER_PER_FILE = ("tests/e2e/test_local_stack.py", "tests/integration/test_payments_gateway.py",
                        "tests/unit/test_moto_patches.py", "tests/integration/test_upgrade.py")


def xdist_group(nodeid: str) -> str | None:
    """The worker group of a test, from its id alone (None: any worker)."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/infra/"):
        return "cdk"
    return path if path.startswith(_ONE_WORKER_PER_FILE) else None


# The order tests are handed out in (after the groups above, which go first): xdist hands out
# single tests in collection order, and the two closures of hundreds of sessions and the thousand
# wrong passwords (20-35 s each) came last, so one worker ran them alone while the others had
# finished (a full run: 20 s after the others). Files whose tests leave thousands of items in the
# worker's tables come after the other integration tests: moto derives an index from all of a
# table's items on every Query, and with the 10,020 sessions of the window sweep's story a request
# that reads an index cost ~15 ms of CPU instead of ~5 ms, for every later test on that worker
# (measured). The browser and fuzz tests, which use a stack of their own, come next: each worker's
# browser stack polls its queues and streams while it lives (~3% of a core), so it starts late;
# the unit tests, the shortest, end the run.
_FIRST = ("tests/integration/test_slot_closures.py", "tests/integration/test_abuse.py")
_LATER = (("tests/integration/test_refund_windows.py", "tests/integration/test_paging.py"), ("tests/e2e/",),
          ("tests/unit/",))


def run_order(nodeid: str) -> int:
    """Where a test goes in the order above (0 first; stable within each)."""
    if nodeid.startswith(_FIRST):
        return 0
    for rank, prefixes in enumerate(_LATER, start=2):
        if nodeid.startswith(prefixes):
            return rank
    return 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: run_order(item.nodeid))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's loadgroup, with the groups above. xdist 3.8 carries an `xdist_group` mark from the
    worker to the scheduler by renaming the test's id, which pytest 9.2 ignores (its ids are
    structured now): the marks were silently dropped and every group was split over the workers,
    each synthesising the CDK stacks and starting a stack and a Chromium of its own
    (pytest-dev/pytest-xdist#1386). The scheduler runs in the controlling process and sees
    every test id, so the groups are decided there."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Groups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid) or super()._split_scope(nodeid)

    return Groups(config, log)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """argon2id at its lowest cost in this process: the real cost is ~0.4 s of CPU per guest
    (a hash and a login), a third of the suite's time, and what tests check is who gets in, not
    the hash's cost. tests/unit/test_password_hashing.py checks the production parameters in a
    fresh interpreter; the browser tests' stack, a child process, does the same (tests/cheap_hashes.py)."""
    from chalicelib import auth
    from tests.cheap_hashes import cheap_hasher

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", cheap_hasher)
        yield


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    import gc

    from infra.local.embedded_aws import freeze_what_survives_full_collections

    local = LocalStack(background=False, visibility_timeout_seconds=1).start()
    # What is loaded by now (moto, botocore's service models, the app) and what survives each full
    # collection after (mostly the tables' items, kept by moto until the end) lives until the end:
    # the cyclic collector need not walk it again, and runs a tenth as often over what tests make.
    # Measured on the closure, window-sweep and paging files: 16% less CPU, the same peak memory.
    freeze_what_survives_full_collections()
    gc.set_threshold(10_000, 10, 10)
    yield local
    local.stop()


@pytest.fixture
def faults(stack: LocalStack) -> Iterator[Any]:
    """The fault switch where requests reach moto (infra/local/faults.py): `faults.set(FaultRates(...))`,
    `faults.conflict_next(n)`, ...; off again after the test."""
    stack.faults.off()
    yield stack.faults
    stack.faults.off()


@pytest.fixture(scope="session")
def client(stack: LocalStack) -> Any:
    from chalice.test import Client

    with Client(stack.app_module.app) as test_client:  # type: ignore[union-attr]
        # Requests carry a caller's address as API Gateway's do (127.0.0.1 unless a test uses
        # infra.local.stack.from_address); chalice keeps the test client's gateway private.
        give_client_addresses(test_client.http._local_gateway, stack.app_module.app)  # type: ignore[union-attr]
        yield test_client


@pytest.fixture(scope="session")
def http_api(stack: LocalStack) -> str:
    """The same app served over real HTTP (threads, sockets), for concurrency tests."""
    return stack.serve_http()


# A slot that starts in a few seconds, for stories about sessions that have started: far enough
# ahead that a slow machine still buys into it before it starts, and waited out to the second.
SOON = timedelta(seconds=5)


def sleep_until_started(slot: dict[str, Any]) -> None:
    start = datetime.fromisoformat(slot["start"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.05)


class Api(bench.world.Api):
    """bench/world.py's JSON requests, on the Chalice test client."""

    def __init__(self, client: Any, credential: str | None) -> None:
        super().__init__(in_process(client), credential)


class World(bench.world.World):
    """bench/world.py's world builder on the Chalice test client, with the embedded stack at hand
    (`world.stack.deliver_all()`, `world.stack.stripe`)."""

    def __init__(self, client: Any, stack: LocalStack) -> None:
        super().__init__(in_process(client), ADMIN_KEY, stack.stripe_url)
        self.client = client
        self.stack = stack
        # Where each table stream's handler stood as the test began (see replay_streams).
        self._stream_marks = [(position, position.next_batch()) for position, _ in stack.stream_handlers()]

    def replay_streams(self) -> None:
        """Deliver the table streams again from where they stood as this test began: its own
        records come twice, as a Lambda retry or a duplicate delivery hands them. Not from the
        stream's start (`stack.replay_streams`), which hands every earlier test's records on this
        worker again: hundreds of deliveries, and past deliver_all's 50 batches of 10 the test's own
        records were not reached at all (a failed run of tests/integration in one process)."""
        for position, (kind, sequence_number) in self._stream_marks:
            position.start_at(kind, sequence_number)


@pytest.fixture
def world(client: Any, stack: LocalStack) -> World:
    return World(client, stack)


@pytest.fixture
def bought(world: World) -> tuple[World, Guest, dict[str, Any]]:
    """A guest with three sessions, 25.00 each, 3 to 5 days ahead, at a venue with both switches on
    that refunds up to 24 hours before a session."""
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    slots = [world.slot(venue, start=now() + timedelta(days=3 + d)) for d in range(3)]
    bought = world.purchase(guest, slots, amount=2500)
    # Messages other tests left queued (in whatever order the workers ran them) are handled now,
    # so the Stripe faults a story sets up meet its own refund, not someone else's.
    world.stack.deliver_all()
    return world, guest, bought
