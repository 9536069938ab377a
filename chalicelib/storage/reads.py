"""Several items from several tables in one round trip (BatchGetItem), for requests that know
every key they need before reading anything."""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.models import Model

from chalicelib.errors import TemporarilyUnavailable
from chalicelib.storage.atomic import backoff, connection

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
        for attribute in _key_attributes(self.model):
            value = self.hash_key if attribute.is_hash_key else self.range_key
            key[attribute.attr_name] = {attribute.attr_type: attribute.serialize(value)}
        return key


def _key_attributes(model: type[Model]) -> list[Attribute[Any]]:
    """The model's hash key attribute, then its range key attribute if it has one."""
    attributes = model.get_attributes().values()
    return [a for a in attributes if a.is_hash_key] + [a for a in attributes if a.is_range_key]


def _identity(table: str, key: dict[str, Any]) -> str:
    return json.dumps([table, key], sort_keys=True)


def read_together(keys: Sequence[Key], consistent: bool = True) -> list[Model | None]:
    """The item under each key, in the order asked, None where there is none.

    Keys DynamoDB leaves unprocessed (throttling) are asked again a few times; if they still
    are not read, the caller gets TemporarilyUnavailable rather than a silently missing item."""
    if len(keys) > MAX_KEYS:
        raise ValueError(f"one read holds at most {MAX_KEYS} keys, not {len(keys)}")
    by_identity = {_identity(k.table, k.serialized()): k for k in keys}
    key_names = {k.table: [a.attr_name for a in _key_attributes(k.model)] for k in keys}
    pending: dict[str, Any] = {}
    for key in by_identity.values():
        pending.setdefault(key.table, {"Keys": [], "ConsistentRead": consistent})["Keys"].append(key.serialized())
    found: dict[str, Model] = {}
    client = connection().client
    for attempt in range(_ATTEMPTS):
        # PynamoDB types its client as botocore's base client; the DynamoDB operations are made at run time.
        answer = client.batch_get_item(RequestItems=pending)  # type: ignore[attr-defined]
        for table, items in answer.get("Responses", {}).items():
            for item in items:
                identity = _identity(table, {name: item[name] for name in key_names[table]})
                found[identity] = by_identity[identity].model.from_raw_data(item)
        pending = answer.get("UnprocessedKeys") or {}
        if not pending:
            break
        time.sleep(backoff(attempt))
    else:
        raise TemporarilyUnavailable("the data could not be read in time; try again")
    return [found.get(_identity(k.table, k.serialized())) for k in keys]


def read_many(keys: Sequence[Key], consistent: bool = True) -> list[Model | None]:
    """`read_together` for any number of keys: one BatchGetItem per hundred."""
    found: list[Model | None] = []
    for start in range(0, len(keys), MAX_KEYS):
        found += read_together(keys[start:start + MAX_KEYS], consistent)
    return found
