"""Password guessing is throttled per (email, client address), with a looser ceiling per email
that slows a spread-out attack but never locks the guest out; and password hashing has a cap on
how many run at once, so a burst of logins cannot exhaust a Lambda's memory."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from infra.local.stack import from_address
from tests.conftest import Api, Guest, Response, World

HOME = "198.51.100.7"
HOTEL = "192.0.2.44"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch) -> None:
    """argon2id at its lowest cost here: what is under test is who gets in, not the hash."""
    from argon2 import PasswordHasher

    from chalicelib import auth

    monkeypatch.setattr(auth, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def login(world: World, guest: Guest, address: str, password: str | None = None) -> Response:
    with from_address(address):
        return Api(world.client, None).post(f"/v1/venues/{guest.venue.venue_id}/login",
                                            {"email": guest.email, "password": password or guest.password})


def test_guesses_from_one_address_lock_out_that_address_and_not_the_guest(world: World) -> None:
    from chalicelib.config import config

    venue = world.venue()
    guest = world.guest(venue, login=False)
    limit = config().login_max_failures
    answers = [login(world, guest, "203.0.113.66", f"guess-{n}") for n in range(limit + 5)]
    assert [a.status for a in answers] == [401] * limit + [429] * 5
    assert 0 < int(answers[-1].headers["retry-after"]) <= config().login_lockout_seconds
    assert login(world, guest, "203.0.113.66").status == 429  # the right password does not help the guesser
    mine = login(world, guest, HOME)
    assert mine.status == 200 and mine.json["guest"]["guest_id"] == guest.guest_id
    assert guest.api.get("/v1/me/transactions").status == 401 and Api(world.client, mine.json["token"]).get(
        "/v1/me/transactions").status == 200


def test_a_spread_out_attack_slows_new_addresses_but_never_locks_out_the_guest(world: World) -> None:
    from chalicelib.config import config

    venue = world.venue()
    guest = world.guest(venue, login=False)
    assert login(world, guest, HOME).status == 200  # the guest's own address, known from now on
    ceiling = config().login_email_max_failures
    spread = [login(world, guest, f"203.0.{n // 200}.{n % 200 + 1}", f"guess-{n}") for n in range(ceiling)]
    assert {a.status for a in spread} == {401}
    # Past the ceiling a new address gets one try per window, not several.
    first, second = (login(world, guest, "203.0.113.200", f"again-{n}") for n in range(2))
    assert (first.status, second.status) == (401, 429)
    assert second.error_code == "too_many_attempts" and int(second.headers["retry-after"]) > 0
    # The guest at home still has the usual tries, and gets in.
    assert [login(world, guest, HOME, "typo-1").status, login(world, guest, HOME, "typo-2").status] == [401, 401]
    assert login(world, guest, HOME).status == 200
    # And from a new address, the right password at the first try gets in too.
    assert login(world, guest, HOTEL).status == 200


def test_an_unknown_email_under_attack_answers_exactly_like_a_known_one(world: World) -> None:
    from chalicelib.config import config

    venue = world.venue()
    guest = world.guest(venue, login=False)
    ceiling = config().login_email_max_failures
    answers: dict[str, list[tuple[int, Any]]] = {}
    for email in (guest.email, "nobody-here@example.com"):
        ghost = Guest(venue, "", email, "whatever", Api(world.client, None))
        for n in range(ceiling):
            assert login(world, ghost, f"203.0.{n // 200}.{n % 200 + 1}", f"guess-{n}").status == 401
        seen = [login(world, ghost, "203.0.113.250", f"again-{n}") for n in range(3)]
        answers[email] = [(a.status, a.error_code) for a in seen]
    assert answers[guest.email] == answers["nobody-here@example.com"] == [
        (401, "invalid_credentials"), (429, "too_many_attempts"), (429, "too_many_attempts")]


def guesses_at_once(guest: Guest, count: int, address: str | None = None) -> list[str]:
    """`count` wrong passwords for the guest at once, from `address`: each one's outcome, "ok" or
    the error's code. Straight to the service: the Chalice test client shares one current request
    between threads."""
    from chalicelib.errors import RebookError
    from chalicelib.services import guests
    from tests.conftest import now

    outcomes: list[str] = []
    barrier = threading.Barrier(count)

    def guess(n: int) -> None:
        barrier.wait()
        try:
            guests.login(guest.venue.venue_id, guest.email, f"guess-{n}", now(), address)
            outcomes.append("ok")
        except RebookError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == count, outcomes  # every guess answered
    return outcomes


def test_parallel_guesses_from_one_address_cannot_outrun_its_limit(world: World) -> None:
    from chalicelib.config import config

    venue = world.venue()
    guest = world.guest(venue, login=False)
    outcomes = guesses_at_once(guest, 20, "203.0.113.9")
    assert outcomes.count("invalid_credentials") <= config().login_max_failures and "ok" not in outcomes
    assert outcomes.count("too_many_attempts") >= 20 - config().login_max_failures
    assert login(world, guest, HOME).status == 200


def test_password_checks_beyond_the_per_process_cap_are_a_quick_429(world: World, monkeypatch) -> None:
    """A burst of logins with new emails: at most the cap of argon2id runs (64 MiB each) at once;
    the next login is told to come back (429 `too_many_requests`, Retry-After) instead of waiting
    for memory, and logins work again once the burst is over."""
    from argon2 import PasswordHasher

    from chalicelib import auth
    from chalicelib.config import config
    from chalicelib.errors import RebookError
    from chalicelib.services import guests
    from tests.conftest import now

    cap = config().password_hash_concurrency
    release, lock = threading.Event(), threading.Lock()
    running, most = [0], [0]

    class HeldHasher(PasswordHasher):
        """argon2id that finishes only when the test says so, counting how many run at once."""

        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            try:
                release.wait(10)
                return super().verify(hash, password)
            finally:
                with lock:
                    running[0] -= 1

    venue = world.venue()
    guest = world.guest(venue, login=False)
    monkeypatch.setattr(auth, "_hasher", lambda: HeldHasher(time_cost=1, memory_cost=1024, parallelism=1))
    outcomes: list[str] = []

    def new_email(n: int) -> None:
        try:
            guests.login(venue.venue_id, f"burst-{n}@example.com", "whatever", now(), f"203.0.113.{n + 1}")
        except RebookError as error:
            outcomes.append(error.code)

    burst = [threading.Thread(target=new_email, args=(n,)) for n in range(cap)]
    for thread in burst:
        thread.start()
    while running[0] < cap and not release.wait(0.01):  # until every slot is taken
        pass
    refused = login(world, guest, HOME)
    release.set()
    for thread in burst:
        thread.join()
    assert (refused.status, refused.error_code) == (429, "too_many_requests"), refused.raw
    assert refused.headers["retry-after"] == "1" and set(refused.json) == {"error"}
    assert most[0] == cap and outcomes == ["invalid_credentials"] * cap
    assert login(world, guest, HOME).status == 200  # and once the burst is over, the guest gets in


def test_a_login_dynamodb_keeps_throttling_is_a_503_with_retry_after_and_the_guest_gets_in_after(
        world: World, faults: Any) -> None:
    from tests.integration.test_openapi import assert_matches_spec

    guest = world.guest(world.venue(), login=False)
    faults.throttle_next(10, operation="UpdateItem")  # more than botocore retries: the attempt cannot be counted
    refused = login(world, guest, HOME)
    faults.off()
    assert refused.status == 503 and refused.error_code == "temporarily_unavailable"
    assert int(refused.headers["retry-after"]) >= 1
    assert_matches_spec("POST", "/v1/venues/{venue_id}/login", 503, refused.json, refused.headers)
    assert login(world, guest, HOME).status == 200
