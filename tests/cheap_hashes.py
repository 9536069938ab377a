"""argon2id at its lowest cost, for tests: what they check is who gets in, not the hash's cost
(~0.45 s of CPU per hash or login at the product's parameters, which
tests/unit/test_password_hashing.py checks in a fresh interpreter).

`python -m tests.cheap_hashes` is `python -m infra.local.stack` with this hasher (and the test
workers' collector settings): the stack the browser tests start (tests/e2e/conftest.py), where
every demo guest and every login would otherwise pay the full cost. tests/e2e/test_local_stack.py
still starts the stack exactly as `make run`."""
from __future__ import annotations

from typing import Any


def cheap_hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def main() -> None:
    import gc

    from chalicelib import auth
    from infra.local import stack

    gc.set_threshold(10_000, 10, 10)  # as the test workers (tests/conftest.py): a tenth of the collections
    auth._hasher = cheap_hasher  # type: ignore[assignment]
    stack.main()


if __name__ == "__main__":
    main()
