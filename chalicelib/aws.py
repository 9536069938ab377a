"""AWS clients from botocore alone, all sharing one data loader.

botocore parses its endpoint rules and a service's model (JSON of hundreds of KB) once per
session; PynamoDB makes a session for every model's connection, so a cold Lambda serving one
receipt parsed them twice, and once more for the Secrets Manager client: about 0.1 s each. Here
every session shares the first one's loader, whose cache is a plain dict (a race at worst loads a
file twice). Sessions themselves stay one per connection and thread, as PynamoDB keeps them,
since botocore sessions are not thread-safe.

boto3 is not needed for any of it: a guest's request never imports it.

Their DynamoDB answers are read by `ItemParser`: botocore's JSON parser walks every attribute
value of every item against the model (ten lookups a value), half of a 12-session receipt's
client CPU; `ItemParser` gives the same result for what DynamoDB sends, in one pass. It builds on
botocore's private parser methods, so it is used only with the botocore it was checked against
(`CHECKED_BOTOCORE`, requirements.txt's pin): under any other botocore (a Lambda runtime's own, an
upgrade) every answer goes through botocore's parser, slower and certainly right.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, cast

import botocore
import botocore.session
from botocore.parsers import JSONParser, ResponseParserFactory

# The botocore whose private parser methods ItemParser overrides and calls (`_handle_structure`,
# `_handle_map`, `_blob_parser`, the factory's `_defaults`), as tests/unit/test_item_parser.py
# compares the two parsers on. Raise it with requirements.txt's pin, once those tests pass on it.
CHECKED_BOTOCORE = "1.44.8"

_lock = threading.Lock()
_loader: Any = None


def new_session(env_vars: dict[str, Any] | None = None) -> botocore.session.Session:
    """botocore's `get_session`, whose place it takes in PynamoDB, with the shared loader."""
    global _loader
    session = botocore.session.get_session(env_vars)
    session.register_component("response_parser_factory", _ParserFactory())
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


# DynamoDB's AttributeValue, as botocore models it (dynamodb and dynamodbstreams alike): exactly
# one of these keys in each value DynamoDB sends.
_ATTRIBUTE_VALUE_MEMBERS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
_AS_SENT = frozenset({"S", "N", "NULL", "BOOL"})


class ItemParser(JSONParser):
    """botocore's parser of the JSON protocol, reading DynamoDB's attribute values in one pass.

    botocore parses each value as a structure of ten members: a lookup per member, a recursion
    per nested value. A value as DynamoDB sends it (one key) comes out here exactly as there:
    strings, numbers (as text), booleans and nulls as sent, sets and lists copied, binaries
    decoded, maps and lists value by value. Anything else (no key, two keys, an unknown one)
    goes through botocore's own code, and so does every other shape and every error answer:
    the outcome never differs, only its cost (pinned by tests/unit/test_item_parser.py)."""

    @staticmethod
    def _is_attribute_value(shape: Any) -> bool:
        return bool(shape.name == "AttributeValue" and shape.type_name == "structure"
                    and tuple(shape.members) == _ATTRIBUTE_VALUE_MEMBERS and not shape.is_tagged_union)

    def _handle_structure(self, shape: Any, value: Any) -> Any:
        if self._is_attribute_value(shape):
            return self._attribute_value(shape, value)
        return self._botocore()._handle_structure(shape, value)

    def _handle_map(self, shape: Any, value: Any) -> Any:
        if shape.key.type_name == "string" and self._is_attribute_value(shape.value):
            value_shape = shape.value
            return {key: self._attribute_value(value_shape, item) for key, item in value.items()}
        return self._botocore()._handle_map(shape, value)

    def _botocore(self) -> Any:
        """botocore's own handlers (untyped in its stubs)."""
        return super()

    def _attribute_value(self, shape: Any, value: Any) -> Any:
        blob = cast(Any, self)._blob_parser
        if type(value) is dict and len(value) == 1:
            ((kind, content),) = value.items()
            if content is not None:
                if kind in _AS_SENT:
                    return {kind: content}
                if kind == "M" and type(content) is dict:
                    return {kind: {key: self._attribute_value(shape, item) for key, item in content.items()}}
                if type(content) is list:
                    if kind == "L":
                        return {kind: [None if item is None else self._attribute_value(shape, item)
                                       for item in content]}
                    if kind in ("SS", "NS"):
                        return {kind: list(content)}
                    if kind == "BS":
                        return {kind: [None if item is None else blob(item) for item in content]}
                if kind == "B":
                    return {kind: blob(content)}
        return self._botocore()._handle_structure(shape, value)


def item_parser_fits(version: str | None = None) -> bool:
    """Whether ItemParser may read answers under the installed botocore (or `version`): the one it
    was checked against, with the private names it relies on still there."""
    return ((version or botocore.__version__) == CHECKED_BOTOCORE
            and all(callable(getattr(JSONParser, name, None)) for name in ("_handle_structure", "_handle_map"))
            and callable(getattr(JSONParser(), "_blob_parser", None))
            and isinstance(getattr(ResponseParserFactory(), "_defaults", None), dict))


class _ParserFactory(ResponseParserFactory):
    """botocore's factory, with `ItemParser` for the JSON protocol (DynamoDB's) when it fits the
    installed botocore; botocore's own parsers otherwise."""

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json" and _FITS:
            return ItemParser(**cast(Any, self)._defaults)
        return super().create_parser(protocol_name)


_FITS = item_parser_fits()
if not _FITS:  # said once per container, where the operator reads the logs
    import logging

    from chalicelib.observability import log_event

    log_event("item_parser_off", level=logging.WARNING, botocore=botocore.__version__, checked_against=CHECKED_BOTOCORE)
