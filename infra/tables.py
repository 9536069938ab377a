"""The DynamoDB tables the code expects, read from the PynamoDB models so the stack cannot drift.

A `TableSpec` is plain data: the stack turns it into CloudFormation, the tests compare it with
both the models and the synthesised template.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

KEY_TYPES = ("HASH", "RANGE")


@dataclass(frozen=True)
class IndexSpec:
    name: str
    hash_key: str
    range_key: str | None
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    logical: str  # the name without the stage prefix: "bookings"
    hash_key: str
    range_key: str | None
    attribute_types: tuple[tuple[str, str], ...]  # (name, "S" | "N" | "B"), sorted by name
    global_indexes: tuple[IndexSpec, ...]
    local_indexes: tuple[IndexSpec, ...]
    ttl_attribute: str | None
    stream_view_type: str | None = None  # NEW_IMAGE etc. when a function reads the table's changes

    def attribute_type(self, name: str) -> str:
        return dict(self.attribute_types)[name]

    def table_name(self, prefix: str) -> str:
        return f"{prefix}-{self.logical}"


def _keys(key_schema: list[dict[str, str]]) -> tuple[str, str | None]:
    by_type = {entry["KeyType"]: entry["AttributeName"] for entry in key_schema}
    unknown = set(by_type) - set(KEY_TYPES)
    if unknown or "HASH" not in by_type:
        raise ValueError(f"unexpected key schema {key_schema}")
    return by_type["HASH"], by_type.get("RANGE")


def _index(raw: dict[str, Any]) -> IndexSpec:
    hash_key, range_key = _keys(raw["key_schema"])
    projection = raw["projection"]
    return IndexSpec(name=raw["index_name"], hash_key=hash_key, range_key=range_key,
                     projection=projection["ProjectionType"],
                     non_key_attributes=tuple(projection.get("NonKeyAttributes", ())))


def table_spec(model: Any, prefix: str) -> TableSpec:
    """The spec of one PynamoDB model class whose table is named `<prefix>-<logical>`."""
    table_name: str = model.Meta.table_name
    if not table_name.startswith(f"{prefix}-"):
        raise ValueError(f"{model.__name__}.Meta.table_name {table_name!r} does not start with {prefix!r}-")
    schema = model._get_schema()
    hash_key, range_key = _keys(schema["key_schema"])
    attribute_types = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    for index in schema["global_secondary_indexes"] + schema["local_secondary_indexes"]:
        attribute_types.update({a["AttributeName"]: a["AttributeType"] for a in index["attribute_definitions"]})
    ttl = model._ttl_attribute()
    return TableSpec(
        logical=table_name[len(prefix) + 1:],
        hash_key=hash_key,
        range_key=range_key,
        attribute_types=tuple(sorted(attribute_types.items())),
        global_indexes=tuple(sorted((_index(i) for i in schema["global_secondary_indexes"]), key=lambda i: i.name)),
        local_indexes=tuple(sorted((_index(i) for i in schema["local_secondary_indexes"]), key=lambda i: i.name)),
        ttl_attribute=ttl.attr_name if ttl is not None else None,
        stream_view_type=getattr(model.Meta, "stream_view_type", None),
    )


def table_specs() -> tuple[TableSpec, ...]:
    """Every table of `chalicelib.storage.models.ALL_MODELS`, independent of the stage the models
    were imported for (their names carry the prefix of whatever configuration was loaded)."""
    from chalicelib.config import config
    from chalicelib.storage.models import ALL_MODELS

    return tuple(table_spec(model, config().table_prefix) for model in ALL_MODELS)


def holding_back(specs: Iterable[TableSpec], index_names: Iterable[str]) -> tuple[TableSpec, ...]:
    """`specs` without the named global indexes. CloudFormation creates at most one global index per
    table in one stack update, so a release that adds two to one table (the second round added
    `venue-refund-list` and `slot-sessions` to the bookings table) is deployed twice: first holding
    one back, then with all of them (docs/deploy.md, "Upgrading from the first round")."""
    specs, names = tuple(specs), set(index_names)
    unknown = names - {index.name for spec in specs for index in spec.global_indexes}
    if unknown:
        raise ValueError(f"no global index named {', '.join(sorted(unknown))}")
    return tuple(replace(spec, global_indexes=tuple(i for i in spec.global_indexes if i.name not in names))
                 for spec in specs)
