"""The stored projection of a session's refund window, and the sparse index entry behind it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import rules
from chalicelib.storage.models import SessionRecord
from chalicelib.storage.shards import window_shard


def projected_window(settings: rules.VenueSettings, session_id: str, start: datetime,
                     now: datetime, forfeited: bool = False) -> dict[str, Any]:
    """The stored fields of the window: deadline, open/closed, and the index shard while open."""
    deadline = rules.refund_deadline(settings, start, forfeited)
    is_open = rules.refund_window(settings, start, now, forfeited) == "open"
    return {"refund_deadline": deadline, "refund_window": "open" if is_open else "closed",
            "window_shard": window_shard(session_id) if is_open else None}


def window_actions(projection: dict[str, Any]) -> list[Any]:
    """PynamoDB update actions that store `projection` on a session."""
    actions = [SessionRecord.refund_window.set(projection["refund_window"])]
    for name in ("refund_deadline", "window_shard"):
        attribute = getattr(SessionRecord, name)
        value = projection[name]
        actions.append(attribute.remove() if value is None else attribute.set(value))
    return actions
