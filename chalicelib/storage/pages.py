"""Lists that page: one Query per page, and a cursor that continues it.

A cursor is the key of the last item shown, signed together with the list it belongs to (its
scope: which venue, which transaction, which filter), so a client can hand back only a cursor we
gave out for that same list; anything else is 400. One item more than asked is read, so a page
that ends the list says so (`next_cursor` null) instead of leading to an empty page.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pynamodb.models import Model

from chalicelib.config import secret
from chalicelib.errors import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
_MAC_CHARS = 22  # 16 bytes of HMAC-SHA256, base64url without padding

ItemT = TypeVar("ItemT", bound=Model)
# (start key or None, how many items) -> the items, in list order
PageQuery = Callable[[dict[str, Any] | None, int], Iterable[ItemT]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _mac(scope: str, payload: str) -> str:
    key = hashlib.sha256(b"rebook-cursor:" + secret("TOKEN_SECRET").encode()).digest()
    return _b64(hmac.new(key, f"{scope}\n{payload}".encode(), hashlib.sha256).digest()[:16])


def encode_cursor(key: dict[str, Any], scope: str) -> str:
    payload = _b64(json.dumps(key, sort_keys=True, separators=(",", ":")).encode())
    return _mac(scope, payload) + payload


def invalid_cursor() -> InvalidRequest:
    return InvalidRequest("the cursor is not valid", {"fields": {"cursor": "use next_cursor as given"}})


def decode_cursor(cursor: str, scope: str, key_names: Sequence[str]) -> dict[str, Any]:
    """The start key a cursor stands for, or 400 if we did not give it out for this list."""
    bad = invalid_cursor()
    mac, payload = cursor[:_MAC_CHARS], cursor[_MAC_CHARS:]
    if not payload or not hmac.compare_digest(mac, _mac(scope, payload)):
        raise bad
    try:
        key = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        raise bad from None
    if not isinstance(key, dict) or set(key) != set(key_names):
        raise bad
    return key


def item_key(item: Model, key_names: Sequence[str]) -> dict[str, Any]:
    """The item's key as DynamoDB gives it in LastEvaluatedKey: the table's keys and the index's."""
    serialized = item.serialize(null_check=False)  # an index entry holds only some attributes
    return {name: serialized[name] for name in key_names}


def page(query: PageQuery[ItemT], limit: int, cursor: str | None, scope: str,
         key_names: Sequence[str]) -> tuple[list[ItemT], str | None]:
    """One page of `limit` items and the cursor of the next page (None on the last one)."""
    start = decode_cursor(cursor, scope, key_names) if cursor else None
    found = list(query(start, limit + 1))
    if len(found) <= limit:
        return found, None
    shown = found[:limit]
    return shown, encode_cursor(item_key(shown[-1], key_names), scope)
