"""Several items from several tables in one round trip (BatchGetItem), for requests that know
every key they need before reading anything."""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any, Sequence

from pynamodb.models import Model

from chalicelib.errors import TemporarilyUnavailable
from chalicelib.storage.atomic import connection

MAX_KEYS = 100  # DynamoDB's limit for one BatchGetItem
_ATTEMPTS = 5


@dataclass(frozen=True)
class Key:
    model: type[Model]
    hash_key: Any
    range_key: Any = None

    @property
    def table(self) -> str:
        return str(self.model.Meta.table_name)

    def serialized(self) -> dict[str, dict[str, Any]]:
        key: dict[str, dict[str, Any]] = {}
        for attribute, value in ((self.model._hash_key_attribute(), self.hash_key),
                                 (self.model._range_key_attribute(), self.range_key)):
            if attribute is not None:
                key[attribute.attr_name] = {attribute.attr_type: attribute.serialize(value)}
        return key


def _identity(table: str, key: dict[str, Any]) -> str:
    return json.dumps([table, key], sort_keys=True)


def read_together(keys: Sequence[Key], consistent: bool = True) -> list[Model | None]:
    """The item under each key, in the order asked, None where there is none.

    Keys DynamoDB leaves unprocessed (throttling) are asked again a few times; if they still
    are not read, the caller gets TemporarilyUnavailable rather than a silently missing item."""
    if len(keys) > MAX_KEYS:
        raise ValueError(f"one read holds at most {MAX_KEYS} keys, not {len(keys)}")
    by_identity = {_identity(k.table, k.serialized()): k for k in keys}
    key_names = {k.table: [a.attr_name for a in (k.model._hash_key_attribute(), k.model._range_key_attribute()) if a]
                 for k in keys}
    pending: dict[str, Any] = {}
    for identity, key in by_identity.items():
        pending.setdefault(key.table, {"Keys": [], "ConsistentRead": consistent})["Keys"].append(key.serialized())
    found: dict[str, Model] = {}
    client = connection().client
    for attempt in range(_ATTEMPTS):
        answer = client.batch_get_item(RequestItems=pending)
        for table, items in answer.get("Responses", {}).items():
            for item in items:
                identity = _identity(table, {name: item[name] for name in key_names[table]})
                found[identity] = by_identity[identity].model.from_raw_data(item)
        pending = answer.get("UnprocessedKeys") or {}
        if not pending:
            break
        time.sleep(random.uniform(0, 0.05 * 2 ** attempt))
    else:
        raise TemporarilyUnavailable("the data could not be read in time; try again")
    return [found.get(_identity(k.table, k.serialized())) for k in keys]
