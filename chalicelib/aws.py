"""AWS clients from botocore alone, all sharing one data loader.

botocore parses its endpoint rules and a service's model (JSON of hundreds of KB) once per
session; PynamoDB makes a session for every model's connection, so a cold Lambda serving one
receipt parsed them twice, and once more for the Secrets Manager client: about 0.1 s each. Here
every session shares the first one's loader, whose cache is a plain dict (a race at worst loads a
file twice). Sessions themselves stay one per connection and thread, as PynamoDB keeps them,
since botocore sessions are not thread-safe.

boto3 is not needed for any of it: a guest's request never imports it.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

import botocore.session

_lock = threading.Lock()
_loader: Any = None


def new_session(env_vars: dict[str, Any] | None = None) -> botocore.session.Session:
    """botocore's `get_session`, whose place it takes in PynamoDB, with the shared loader."""
    global _loader
    session = botocore.session.get_session(env_vars)
    with _lock:
        if _loader is None:
            _loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _loader)
    return session


@functools.cache
def client(service: str) -> Any:
    """A client of `service`, built once per container (clients are thread-safe)."""
    return new_session().create_client(service)


def share_with_pynamodb() -> None:
    """PynamoDB's connections make their botocore sessions with `new_session`."""
    import pynamodb.connection.base

    # The name is botocore's, imported into PynamoDB's module: replaced there, where it is called.
    pynamodb.connection.base.get_session = new_session  # type: ignore[attr-defined]
