"""Opaque, time-ordered identifiers (ULIDs)."""
from __future__ import annotations


def new_id() -> str:
    # Imported on first use: python-ulid brings typing_extensions, and read-only requests
    # (receipts, lists) never make an id, so their cold starts skip both.
    from ulid import ULID

    return str(ULID())
