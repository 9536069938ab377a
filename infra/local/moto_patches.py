"""moto's DynamoDB at a cost independent of the table's size (TransactWriteItems, Query), and its
item answers written without moto's model-driven serializer.

Two of moto 5.2.5's operations cost time in proportion to everything the table holds, where
DynamoDB's cost depends only on the items an operation touches; and every answer goes through a
serializer that looks each attribute value's ten possible members up under six aliases each
(60% of moto's time on a receipt's Query). All of it sits under the embedded server's
one-request-at-a-time lock, so every client waits for it. `install()` fixes the three without
changing what any of them answers, and makes moto's costliest steps on a move, a cancellation and
a refund quicker with the same outcome (expressions parsed once and validated in less time, item
sizes, copies, SQS's attribute look-ups): each section below says why the change answers as moto
does, and tests/unit/test_moto_patches.py compares each with moto's own function and pins the
moto sources it relies on (version 5.2.5, by hash).

Measured (cProfile function calls in the embedded server's request handling, 192 moves / 192
one-session cancellations, 1,000 sessions): 11.4M / 15.9M at bf226a5, 4.7M / 6.9M after.

## TransactWriteItems

moto 5.2.5's `DynamoDBBackend.transact_write_items` backs up, before applying anything, a deep
copy of every table the transaction names, once per transaction item, and puts those copies back
if any item fails. A cancellation of five sessions thus copies the whole bookings table six times:
with 100,000 sessions that is seconds per request, under the embedded server's lock, for every
client. DynamoDB's cost does not grow with the table, so the local stack should not either.

The backup only has to cover what a transaction can change: the items it names (Put, Update,
Delete, ConditionCheck each name one key) and the table's stream records. moto keeps no other
per-table state a write touches: its secondary indexes are not stored, they are derived from the
items on every Query/Scan, so restoring the items restores every index entry too.

So `install()` wraps moto's own function (all of its checks, writes and errors stay moto's):
it deep-copies just the named items first, runs moto's function with its whole-table copies
turned into no-ops, and on any failure puts the named items (and the stream) back before
re-raising moto's error. It runs inside `EmbeddedAws`'s one-request-at-a-time lock, as moto's
own backup did, so no other request sees the half-applied state.

## Query

`Table.query` starts from `Table.all_items()`: every item of the table, sorted, on every call,
then keeps those with the asked hash key (or, on an index, those matching the index's key). A
receipt's Query of one transaction thus sorts 100,000 sessions. The wrapper hands moto's query
only the candidates it can return: for the table itself, the items under the asked hash key (in
range-key order, as all_items gives them); for an index, every item unsorted, since moto sorts an
index's candidates itself by the index keys and then the table keys (a total order).

A query of the table itself (no index) also skips moto's `copy.deepcopy(results)` of the items
it found (~5% of a receipt's time): moto copies them so that projecting or filtering cannot touch
the stored items, and neither does (`Item.project` builds a new item, a filter only reads), and the
answer is turned into plain dicts (`DynamoResult` -> `dynamo_to_dict`) before the embedded
server's lock is released, so no write can change an item between the query and its answer.
A query of an index keeps the copy (`index.project` is moto's to change).

An index query still starts from every item (moto keeps no index), but `_matching_index_keys`
first drops, in one tight loop, the items moto's own first test would drop (an index hash-key
attribute missing or `!=` the asked value): at 100,000 sessions moto's loop over every item held
the lock ~80 ms for each index query (the refund worker's, the emails').

## Answers

For the item operations (`_PLAIN_JSON_OPERATIONS`), moto's responses module already builds the
answer in DynamoDB's wire shape (attribute values as `{"S": ...}` maps), so JSON-encoding it as
it is gives the same body the serializer would, provided it holds nothing but strings, numbers,
booleans, lists and string-keyed maps, and no None (the serializer drops None members). Anything
else (a binary attribute's bytes, a timestamp, a None) falls back to moto's serializer.
tests/unit/test_moto_patches.py compares both bodies over every attribute type.

The same holds for a stream's GetRecords (`_PLAIN_JSON_STREAM_OPERATIONS`): moto keeps each
record in DynamoDB Streams' wire shape already, and the serializer spent ~7 ms on each batch of
ten (a move's or a cancellation's emails are read through it) walking the item images attribute by
attribute. Its one non-JSON member, a record's `ApproximateCreationDateTime` (a datetime), is
written as the serializer writes it, by moto's own unix-timestamp function.

Before that, moto turns every answer into plain dicts (`DynamoResult` -> `dynamo_to_dict`),
asking each string and dict of it whether it is a datetime, a DynamoType or has a `to_json`:
half of a Query's time for a receipt of twelve sessions. `_dynamo_to_dict` answers the same
for the values those questions cannot match (exactly a dict, list, str, int, float, bool or
None: it copies dicts (and an item's attributes, a LimitedSizeDict) and lists, returns the
rest), for exactly a DynamoType other than a binary
one (`{type: its value converted}`, as moto's) and exactly an Item (its `to_json()` converted, as
moto's), and hands anything else to moto's function.

## Expressions parsed once

moto parses a request's condition up to three times (TransactWriteItems: once to check that every
name and value is used, once to check the item, once more inside the Put/Update/Delete it then
runs; UpdateItem twice), and an update expression twice, lexing and rebuilding the tree each time:
a fifth of the embedded server's time on a cancellation. A parse depends only on its inputs, so
`install()` keeps the last 1,024: a condition's tree by its expression, names and values (parsed
from copies of them, so that it shares nothing with a request), with the names and values it
found; an update expression's tree by its text. Errors are not kept: a bad expression fails each
time, as moto's does. Sharing a tree is safe because nothing changes one: a condition's tree is
only evaluated against items (`Op.expr`, `Operand.expr` read), and an update expression's tree is
only read (`find_clauses`) or deep-copied before it is validated and executed
(`Validator.__init__`).

## Update expressions validated

Every UpdateItem (and each Update of a TransactWriteItems) runs moto's `UpdateExpressionValidator`:
it deep-copies the expression's tree, then walks it once per processor (ten of them), asking at
every node whether it is a `Node` and whether the processor handles it, through `isinstance` on
ABCMeta classes and a processing map rebuilt at every node: ~45% of the embedded server's time on
a move. `install()` keeps moto's processors and their order, and changes three things:

- the walk (`DepthFirstTraverser.traverse_node_recursively`) is moto's, with both questions
  answered once per node class (and traverser class): each traverser's map has class literals as
  its keys, and no class is registered as a virtual `Node`;
- the copy of the tree is unpickled from bytes pickled once per kept tree (`_make_update` keeps
  the trees, which nothing changes): the same objects `deepcopy` makes (no node class defines its
  own copy or pickling), built by C code;
- the first three processors (ActionCount, OverlappingPaths, UpdateHashRangeKey) read only the
  tree, the names and the table's key attributes, and return every node unchanged: once they
  passed for the same three, they are skipped (errors are not kept: a bad update fails each
  time). The other seven read the item or the values and run every time.

tests/unit/test_moto_patches.py applies updates of every kind, and each check's failure, with
this and with moto's own validation, and compares the items and the errors.

## Item sizes

moto checks DynamoDB's 400 KB item limit at every attribute it sets (`LimitedSizeDict.__setitem__`),
summing the size of every attribute already set: making an item of 28 attributes (a put, a new
item of an update) took ~300 us, mostly `DynamoType.size` making a new DynamoType for each map
value and set member. `install()` keeps the same sums and limit: `_dynamo_type_size` is
`DynamoType.size` without those copies, `_limited_setitem` is moto's check with it, and
`_item_init` (moto's `Item.__init__`) keeps the running sum instead of recomputing it for each
attribute (nothing else holds the new values while the item is made): ~50 us. The sizes, items
and the writes refused just over the limit are compared with moto's own in the tests.

`Item.size` (moto asks it twice for each item a Query returns, for its 1 MB page, and for the
consumed capacity) sums the same sizes; within one query each item's size is kept after the
first time (by the item itself: nothing changes an item during a query, under the lock).

## Copies

moto deep-copies items: an UpdateItem's old image (UpdateItem copies the item twice), each item
a transaction names (the backup above), an index query's results. `DynamoType.__deepcopy__` and
`Item.__deepcopy__` are moto's own copies (new DynamoTypes, lists and maps, a set's members in a
new list, the memo kept, so a value two attributes share is shared in the copy too), calling each
other directly instead of through `copy.deepcopy`'s dispatch for each value: half the time. A
test compares them with moto's, and changes a copy's lists, maps and sets to see the item stay.

## SQS

moto's ReceiveMessage checks each message it hands out against the queue's retention period,
which it reads through `get_queue_attributes`: that builds every attribute of the queue three
times, each counting the queue's messages and asking the clock twice per message. With the
refunds of a burst of cancellations queued (~200), one receive of ten asked the clock ~24,000
times: a sixth of the embedded server's time while the refund worker drains its queue.
`install()` reads the period from the queue itself (the int `get_queue_attributes` returns).
SendMessage built the same attributes once per message, to ask whether the queue deduplicates by
content: with the refunds of a burst of cancellations queued, an eighth of the embedded server's
time in the cancellations; `_send_message` is moto's function with that one question answered
from the queue's own two fields (`_deduplicates_by_content`).

What this relies on, pinned by tests/unit/test_moto_patches.py: moto's version, the exact
source of the functions it wraps (transact_write_items' only `copy.deepcopy` of a `Table` is the
backup, and it rolls back by assigning those copies into `self.tables`; query reads the table
only through `self.all_items()`, and its one `copy.deepcopy` is of its results), items living in
`Table.items` keyed by hash (and range) value, and moto's validator and tree modules as a whole.
"""
from __future__ import annotations

import copy
import json
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

PINNED_MOTO_VERSION = "5.2.5"

_installed = threading.Lock()
_moto_transact_write_items: Callable[..., Any] | None = None
_moto_query: Callable[..., Any] | None = None
_moto_execute_result: Callable[..., Any] | None = None
_moto_parse_condition: Callable[..., Any] | None = None
_moto_dynamo_to_dict: Callable[[Any], Any] | None = None
_moto_make_update: Callable[..., Any] | None = None
_moto_traverse: Callable[..., Any] | None = None
_moto_validator_init: Callable[..., Any] | None = None
_moto_retention_check: Callable[..., Any] | None = None
_moto_send_message: Callable[..., Any] | None = None
_moto_size: Callable[..., Any] | None = None
_moto_limited_setitem: Callable[..., Any] | None = None
_moto_item_init: Callable[..., Any] | None = None
_moto_item_size: Callable[..., Any] | None = None
_moto_deepcopies: tuple[Callable[..., Any], Callable[..., Any]] | None = None
_KEPT_PARSES = 1024
_conditions: OrderedDict[str, tuple[Any, list[str], list[str]]] = OrderedDict()
_updates: OrderedDict[str, Any] = OrderedDict()
PLAIN_JSON_ANSWERS = True  # tests switch it off to compare with moto's serializer
_PLAIN_JSON_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem",
                                    "DeleteItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"})
_PLAIN_JSON_STREAM_OPERATIONS = frozenset({"GetRecords"})


def install() -> None:
    """Wrap moto's `transact_write_items`, `Table.query`, its answers and its expression parsers,
    once per process (idempotent)."""
    global _moto_transact_write_items, _moto_query, _moto_execute_result
    with _installed:
        if _moto_transact_write_items is not None:
            return
        from moto.core.responses import ActionResult
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.table import Table

        _moto_transact_write_items = DynamoDBBackend.transact_write_items
        _moto_query = Table.query
        _moto_execute_result = ActionResult.execute_result
        DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
        Table.query = _query  # type: ignore[method-assign]
        ActionResult.execute_result = _execute_result  # type: ignore[method-assign]
        _install_parse_once()
        _install_quick_validation()
        _install_quick_retention_check()
        _install_quick_sizes()
        import moto.dynamodb.responses as dynamodb_responses

        global _moto_dynamo_to_dict
        _moto_dynamo_to_dict = dynamodb_responses.dynamo_to_dict
        dynamodb_responses.dynamo_to_dict = _dynamo_to_dict  # what DynamoResult calls, by this module-level name


def _install_quick_validation() -> None:
    """moto's update-expression validation, with the same outcome in less time (see the module's
    doc, "Update expressions validated")."""
    global _moto_traverse, _moto_validator_init
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    _moto_traverse = DepthFirstTraverser.traverse_node_recursively
    _moto_validator_init = validators.Validator.__init__
    for name in dir(validators):  # moto's traversers that keep the base class's hook and walk
        found = getattr(validators, name)
        if isinstance(found, type) and issubclass(found, DepthFirstTraverser) \
                and found.pre_processing_of_child is DepthFirstTraverser.pre_processing_of_child \
                and "traverse_node_recursively" not in vars(found) and "traverse" not in vars(found):
            _plain_walkers.add(found)
    DepthFirstTraverser.traverse_node_recursively = _traverse_node_recursively  # type: ignore[method-assign]
    validators.UpdateExpressionValidator.__init__ = _update_validator_init  # type: ignore[method-assign]
    validators.UpdateExpressionValidator.validate = _validate_update  # type: ignore[method-assign]


def _install_quick_retention_check() -> None:
    global _moto_retention_check
    from moto.sqs.models import SQSBackend

    _moto_retention_check = SQSBackend.is_message_valid_based_on_retention_period
    SQSBackend.is_message_valid_based_on_retention_period = _retention_check  # type: ignore[method-assign]
    global _moto_send_message
    _moto_send_message = SQSBackend.send_message
    SQSBackend.send_message = _send_message  # type: ignore[method-assign]


def _send_message(backend: Any, queue_name: str, message_body: str, message_attributes: dict[str, Any] | None = None,
                  delay_seconds: int | None = None, deduplication_id: str | None = None, group_id: str | None = None,
                  system_attributes: dict[str, Any] | None = None, validate_group_id: bool = True) -> Any:
    """moto's `SQSBackend.send_message`, line for line, but for its one look at the queue's
    attributes (whether content-based deduplication is on), answered by `_deduplicates_by_content`
    instead of building every attribute of the queue (counting its messages three times)."""
    import hashlib
    import string

    from moto.sqs import models
    from moto.sqs.exceptions import InvalidParameterValue

    queue = backend.get_queue(queue_name)

    backend._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )

    delay_seconds = int(delay_seconds) if delay_seconds is not None else queue.delay_seconds

    message_id = str(models.random.uuid4())
    message = models.Message(message_id, message_body, system_attributes)

    if _deduplicates_by_content(queue):
        sha256 = hashlib.sha256()
        sha256.update(message_body.encode("utf-8"))
        message.deduplication_id = sha256.hexdigest()

    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(models.random.choice(string.digits) for _ in range(20))

    if group_id is not None:
        message.group_id = group_id

    if message_attributes:
        message.message_attributes = message_attributes

    assert delay_seconds is not None
    if delay_seconds > models.MAXIMUM_MESSAGE_DELAY:
        msg = (
            f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
            "Reason: DelaySeconds must be >= 0 and <= 900."
        )
        raise InvalidParameterValue(msg)

    message.mark_sent(delay_seconds=delay_seconds)

    queue.add_message(message)

    return message


def _deduplicates_by_content(queue: Any) -> bool:
    """`queue.attributes.get("ContentBasedDeduplication") == "true"`: `Queue.attributes` holds
    that member only for a FIFO queue, as the queue's `content_based_deduplication`, a bool
    written in lower case."""
    if not queue.fifo_queue:
        return False
    value = queue.content_based_deduplication
    if isinstance(value, bool):
        value = str(value).lower()
    return bool(value == "true")


def _retention_check(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's `is_message_valid_based_on_retention_period`, reading the queue's retention period
    itself instead of through `get_queue_attributes`, which builds every attribute of the queue
    three times (each counting the queue's messages, asking the clock twice per message) to
    answer that one: per message received. An int set by `Queue._set_attributes`, returned by
    `get_queue_attributes` as it is."""
    from moto.core.utils import unix_time

    retention_period = backend.get_queue(queue_name).message_retention_period
    if type(retention_period) is not int:
        assert _moto_retention_check is not None
        return bool(_moto_retention_check(backend, queue_name, message))
    retain_until = retention_period + message.sent_timestamp / 1000
    return not retain_until <= unix_time()


def _install_quick_sizes() -> None:
    global _moto_size, _moto_limited_setitem, _moto_item_init, _moto_item_size, _moto_deepcopies, _DynamoType, _Item, _LimitedSizeDict, _bytesize
    global _ItemSizeTooLarge
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    _DynamoType, _LimitedSizeDict, _bytesize, _ItemSizeTooLarge = DynamoType, LimitedSizeDict, bytesize, ItemSizeTooLarge
    _Item = Item
    _moto_item_init = Item.__init__
    Item.__init__ = _item_init  # type: ignore[method-assign]
    _moto_item_size = Item.size
    Item.size = _item_size  # type: ignore[method-assign]
    _moto_deepcopies = (DynamoType.__deepcopy__, Item.__deepcopy__)
    DynamoType.__deepcopy__ = _dynamo_type_deepcopy  # type: ignore[method-assign]
    Item.__deepcopy__ = _item_deepcopy  # type: ignore[method-assign]
    _moto_size = DynamoType.size
    _moto_limited_setitem = LimitedSizeDict.__setitem__
    DynamoType.size = _dynamo_type_size  # type: ignore[method-assign]
    LimitedSizeDict.__setitem__ = _limited_setitem  # type: ignore[assignment,method-assign]


_SET_MEMBERS = {"SS": "S", "NS": "N", "BS": "B"}
_DynamoType: Any = None  # moto's, bound by _install_quick_sizes (no import on every call)
_LimitedSizeDict: Any = None
_Item: Any = None
_bytesize: Any = None
_ItemSizeTooLarge: Any = None


def _dynamo_type_size(value: Any) -> int:
    """moto's `DynamoType.size`: the same sizes, without a new DynamoType for every set member
    and map value, nor its method calls for each type test."""
    kind, inner = value.type, value.value
    if kind == "S" and type(inner) is str:  # the common case, as the last branch below
        return len(inner.encode("utf-8"))
    if kind == "N":
        return len(str(inner))
    member = _SET_MEMBERS.get(kind)
    total = 0
    if member is not None:  # each as DynamoType({member: v}).size(): a number's digits, else bool or bytes
        for v in inner:
            total += len(str(v)) if member == "N" else 1 if isinstance(v, bool) else _bytesize(v)
        return total
    if kind == "L":
        for v in inner:
            total += _dynamo_type_size(v) if type(v) is _DynamoType else v.size()
        return total
    if kind == "M":  # each value as DynamoType(v).size(), which copies a DynamoType as it is
        for k, v in inner.items():
            total += _bytesize(k) + (_dynamo_type_size(v) if type(v) is _DynamoType else _DynamoType(v).size())
        return total
    if isinstance(inner, bool):
        return 1
    return int(_bytesize(inner))


def _item_init(item: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto's `Item.__init__`, which sets each attribute through `LimitedSizeDict.__setitem__`,
    summing every attribute set so far each time (quadratic in the attributes): here the same
    check (the sizes so far plus the new pair's, against the same limit, raising the same error
    at the same attribute) with the sum kept as it goes. The same sum, since nothing else holds
    the new values while the item is made, and the keys of a dict are set once each."""
    item.hash_key = hash_key
    item.range_key = range_key
    item.attrs = _LimitedSizeDict()
    total = 0
    for key, value in attrs.items():
        value = _DynamoType(value)
        size = _dynamo_type_size(value)
        if total + _bytesize(key) + size > 405000:
            raise _ItemSizeTooLarge
        dict.__setitem__(item.attrs, key, value)
        total += _bytesize(str(key)) + size


def _dynamo_type_deepcopy(value: Any, memo: dict[int, Any]) -> Any:
    """moto's `DynamoType.__deepcopy__`: the same copy (a new DynamoType per DynamoType, lists and
    maps copied, a set's members in a new list, the memo kept), calling itself for a child that
    is a DynamoType instead of going through `copy.deepcopy`'s dispatch for each."""
    found = memo.get(id(value))
    if found is not None:
        return found
    result = value.__class__.__new__(value.__class__)
    memo[id(value)] = result
    kind = result.type = value.type
    inner = value.value
    if kind == "L":
        result.value = [_dynamo_type_deepcopy(v, memo) if type(v) is _DynamoType else copy.deepcopy(v, memo)
                        for v in inner]
    elif kind == "M":
        result.value = {k: _dynamo_type_deepcopy(v, memo) if type(v) is _DynamoType else copy.deepcopy(v, memo)
                        for k, v in inner.items()}
    elif kind in _SET_MEMBERS:
        result.value = list(inner)
    else:
        result.value = inner
    return result


def _item_deepcopy(item: Any, memo: dict[int, Any]) -> Any:
    """moto's `Item.__deepcopy__` (its keys and attributes deep-copied into a LimitedSizeDict set
    without the size check), with `_dynamo_type_deepcopy` called directly for DynamoTypes."""
    found = memo.get(id(item))
    if found is not None:
        return found
    result = item.__class__.__new__(item.__class__)
    memo[id(item)] = result
    for name in ("hash_key", "range_key"):
        key = getattr(item, name)
        setattr(result, name, _dynamo_type_deepcopy(key, memo) if type(key) is _DynamoType else copy.deepcopy(key, memo))
    attrs = _LimitedSizeDict.__new__(_LimitedSizeDict)
    dict.__init__(attrs)
    for key, value in item.attrs.items():
        dict.__setitem__(attrs, key, _dynamo_type_deepcopy(value, memo) if type(value) is _DynamoType
                         else copy.deepcopy(value, memo))
    result.attrs = attrs
    return result


def _item_size(item: Any) -> int:
    """moto's `Item.size` (each key's bytes plus its value's size), with `_dynamo_type_size`:
    asked for every item a Query or Scan returns (its 1 MB page) and for the consumed capacity."""
    sizes = _sizes_kept
    if sizes is not None:
        kept = sizes.get(id(item))
        if kept is not None and kept[0] is item:
            return kept[1]
    total = 0
    for key, value in item.attrs.items():
        total += _bytesize(key) + (_dynamo_type_size(value) if type(value) is _DynamoType else value.size())
    if sizes is not None:
        sizes[id(item)] = (item, total)  # the item kept with it: its id cannot pass to another meanwhile
    return total


# Item sizes by id, while a query runs (`_query`): moto asks each candidate's size twice, and
# nothing changes an item during a query (the embedded server's lock, and a query only reads).
_sizes_kept: dict[int, tuple[Any, int]] | None = None


def _limited_setitem(attrs: Any, key: str, value: Any) -> None:
    """moto's `LimitedSizeDict.__setitem__` (the 400 KB item limit, checked at every attribute
    set): the same sum of every key's and value's size plus the new pair's, with the sizes taken
    by `_dynamo_type_size`."""
    current = 0
    for part in attrs:
        current += _dynamo_type_size(part) if type(part) is _DynamoType else _bytesize(str(part))
    for part in attrs.values():
        current += _dynamo_type_size(part) if type(part) is _DynamoType else _bytesize(str(part))
    new = _bytesize(key) + (_dynamo_type_size(value) if type(value) is _DynamoType else _bytesize(str(value)))
    if current + new > 405000:
        raise _ItemSizeTooLarge
    dict.__setitem__(attrs, key, value)


_plain_walkers: set[type] = set()  # traversers whose walk is the base class's, with its no-op hook
_node_kinds: dict[type, bool] = {}  # a class: whether it is one of moto's AST nodes
_processed: dict[tuple[type, type], bool] = {}  # (traverser, node class): whether the traverser processes it


def _traverse_node_recursively(traverser: Any, node: Any, child_id: int = -1) -> Any:
    """moto's `DepthFirstTraverser.traverse_node_recursively`, the same walk, with its two
    `isinstance` questions per node (both against ABCMeta classes, so asked through Python code)
    answered once per class: whether the node is a `Node`, and whether the traverser processes it
    (`nodes_to_be_processed()`, rebuilt from `_processing_map()` at every node, holds the same
    classes for every instance of a traverser class: each map's keys are class literals)."""
    kind = type(node)
    is_node = _node_kinds.get(kind)
    if is_node is None:
        from moto.dynamodb.parsing.ast_nodes import Node

        is_node = _node_kinds[kind] = issubclass(kind, Node)
    if not is_node:
        return node
    parent_node = node.parent
    if node.children is not None:
        if type(traverser) in _plain_walkers:  # no hook before each child, no walk of its own
            for i, child_node in enumerate(node.children):
                _traverse_node_recursively(traverser, child_node, i)
        else:
            for i, child_node in enumerate(node.children):
                traverser.pre_processing_of_child(node, i)
                traverser.traverse_node_recursively(child_node, i)
    key = (type(traverser), kind)
    processed = _processed.get(key)
    if processed is None:
        processed = _processed[key] = issubclass(kind, traverser.nodes_to_be_processed())
    if processed:
        node = traverser.process(node)
        node.parent = parent_node
        if parent_node:
            parent_node.children[child_id] = node
    return node


# Each update expression's tree as pickled bytes, by the tree (kept alive here, so its id stays its own).
_pickled_trees: OrderedDict[int, tuple[Any, bytes]] = OrderedDict()
# Item-independent checks an update expression passed: (its tree's bytes, names, table keys).
_passed_checks: OrderedDict[tuple[bytes, str, tuple[str, ...]], bool] = OrderedDict()
_ITEM_INDEPENDENT_CHECKS = 3  # ActionCount, OverlappingPaths, UpdateHashRangeKey: the first three processors


def _update_validator_init(validator: Any, expression: Any, expression_attribute_names: Any,
                           expression_attribute_values: Any, item: Any, table: Any) -> None:
    """moto's `Validator.__init__`, with the tree copied by unpickling bytes pickled once per tree
    instead of `deepcopy` walking it each time."""
    validator.expression_attribute_names = expression_attribute_names
    validator.expression_attribute_values = expression_attribute_values
    validator.item = item
    validator.table = table
    validator.processors = validator.get_ast_processors()
    kept = _pickled_trees.get(id(expression))
    if kept is None or kept[0] is not expression:
        kept = (expression, pickle.dumps(expression, pickle.HIGHEST_PROTOCOL))
        _pickled_trees[id(expression)] = kept
        if len(_pickled_trees) > _KEPT_PARSES:
            _pickled_trees.popitem(last=False)
    else:
        _pickled_trees.move_to_end(id(expression))
    validator.node_to_validate = pickle.loads(kept[1])
    validator._tree_bytes = kept[1]


def _validate_update(validator: Any) -> Any:
    """moto's `Validator.validate` (each processor's walk in turn), skipping the first three,
    which read only the tree, the names and the table's key attributes and change nothing, when
    the same three inputs passed them before."""
    node = validator.node_to_validate
    processors = validator.processors
    try:
        key: tuple[bytes, str, tuple[str, ...]] | None = (
            validator._tree_bytes, json.dumps(validator.expression_attribute_names, sort_keys=True),
            tuple(validator.table.table_key_attrs))
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _passed_checks:
        _passed_checks.move_to_end(key)
        processors = processors[_ITEM_INDEPENDENT_CHECKS:]
    else:
        for processor in processors[:_ITEM_INDEPENDENT_CHECKS]:
            node = processor.traverse(node)
        processors = processors[_ITEM_INDEPENDENT_CHECKS:]
        if key is not None:
            _passed_checks[key] = True
            if len(_passed_checks) > _KEPT_PARSES:
                _passed_checks.popitem(last=False)
    for processor in processors:
        node = processor.traverse(node)
    return node


def _install_parse_once() -> None:
    global _moto_parse_condition, _moto_make_update
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    _moto_parse_condition = ConditionExpressionParser.parse
    _moto_make_update = UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]
    ConditionExpressionParser.parse = _parse_condition  # type: ignore[method-assign]
    UpdateExpressionParser.make = classmethod(_make_update)  # type: ignore[method-assign,assignment]


def moto_originals() -> dict[str, Callable[..., Any]]:
    """moto's own functions (the ones wrapped), for the pinning test."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.models.utilities import bytesize, dynamo_to_dict
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator, Validator
    from moto.sqs.models import Queue, SQSBackend

    return {"transact_write_items": _moto_transact_write_items or DynamoDBBackend.transact_write_items,
            "query": _moto_query or Table.query, "all_items": Table.all_items,
            "execute_result": _moto_execute_result or ActionResult.execute_result,
            "parse_condition": _moto_parse_condition or ConditionExpressionParser.parse,
            "make_update": _moto_make_update or UpdateExpressionParser.make.__func__,  # type: ignore[attr-defined]
            "dynamo_to_dict": _moto_dynamo_to_dict or dynamo_to_dict,
            "traverse_node_recursively": _moto_traverse or DepthFirstTraverser.traverse_node_recursively,
            "validator_init": _moto_validator_init or Validator.__init__,
            "validate": Validator.validate, "update_processors": UpdateExpressionValidator.get_ast_processors,
            "retention_check": _moto_retention_check or SQSBackend.is_message_valid_based_on_retention_period,
            "queue_attributes": SQSBackend.get_queue_attributes, "set_queue_attributes": Queue._set_attributes,
            "send_message": _moto_send_message or SQSBackend.send_message, "queue_attributes_property": Queue.attributes.fget,
            "size": _moto_size or DynamoType.size,
            "limited_setitem": _moto_limited_setitem or LimitedSizeDict.__setitem__, "bytesize": bytesize,
            "item_init": _moto_item_init or Item.__init__, "limited_size_dict_init": LimitedSizeDict.__init__,
            "item_size": _moto_item_size or Item.size,
            "dynamo_type_deepcopy": _moto_deepcopies[0] if _moto_deepcopies else DynamoType.__deepcopy__,
            "item_deepcopy": _moto_deepcopies[1] if _moto_deepcopies else Item.__deepcopy__}


_AS_THEY_ARE = frozenset({str, int, float, bool, type(None)})


def _dynamo_to_dict(value: Any) -> Any:
    """moto's `dynamo_to_dict`, quicker for plain JSON values (see the module's doc)."""
    kind = type(value)
    if kind is dict or kind is _LimitedSizeDict:  # an item's attributes: a dict without `to_json`, as moto's
        return {k: _dynamo_to_dict(v) for k, v in value.items()}
    if kind is list:
        return [_dynamo_to_dict(v) for v in value]
    if kind in _AS_THEY_ARE:
        return value
    if kind is _DynamoType and value.type not in ("B", "BS"):  # as moto's: {type: its value, converted}
        return {value.type: _dynamo_to_dict(value.value)}
    if kind is _Item:  # as moto's, for an object with `to_json`
        return _dynamo_to_dict(value.to_json())
    assert _moto_dynamo_to_dict is not None
    return _moto_dynamo_to_dict(value)


def _parse_condition(parser: Any) -> Any:
    """moto's `ConditionExpressionParser.parse`, kept per expression, names and values."""
    assert _moto_parse_condition is not None
    inputs = [parser.condition_expression, parser.expression_attribute_names, parser.expression_attribute_values]
    try:
        key = json.dumps(inputs, sort_keys=True)
    except (TypeError, ValueError):  # bytes (a binary value): parsed as moto parses it
        return _moto_parse_condition(parser)
    kept = _conditions.get(key)
    if kept is None:
        own = type(parser)(*copy.deepcopy(inputs))
        kept = (_moto_parse_condition(own), list(own.expr_attr_names_found), list(own.expr_attr_values_found))
        _keep(_conditions, key, kept)
    else:
        _conditions.move_to_end(key)
    parser.expr_attr_names_found.extend(kept[1])
    parser.expr_attr_values_found.extend(kept[2])
    return kept[0]


def _make_update(parser_class: Any, expression: str) -> Any:
    """moto's `UpdateExpressionParser.make`, kept per expression."""
    assert _moto_make_update is not None
    if not isinstance(expression, str):
        return _moto_make_update(parser_class, expression)
    kept = _updates.get(expression)
    if kept is None:
        kept = _moto_make_update(parser_class, expression)
        _keep(_updates, expression, kept)
    else:
        _updates.move_to_end(expression)
    return kept


def _keep(kept: OrderedDict[str, Any], key: str, value: Any) -> None:
    kept[key] = value
    if len(kept) > _KEPT_PARSES:
        kept.popitem(last=False)


def _execute_result(result: Any, context: Any) -> Any:
    assert _moto_execute_result is not None
    if PLAIN_JSON_ANSWERS and type(result).__name__ in ("ActionResult", "DynamoResult") \
            and context.service_model.protocol == "json":
        service, operation = context.service_model.service_name, context.operation_model.name
        items = service == "dynamodb" and operation in _PLAIN_JSON_OPERATIONS
        records = service == "dynamodbstreams" and operation in _PLAIN_JSON_STREAM_OPERATIONS
        if (items or records) and _plain(result.result, times=records):
            version = context.service_model.metadata.get("jsonVersion", "1.0")
            return 200, {"Content-Type": f"application/x-amz-json-{version}"}, \
                json.dumps(result.result, default=_unix_time)
    return _moto_execute_result(result, context)


_PLAIN_SCALARS = frozenset({str, bool, int, float})


def _plain(value: Any, times: bool = False) -> bool:
    """Whether JSON would carry `value` exactly as moto's serializer does (see the module's doc);
    with `times`, datetimes too (written by `_unix_time`). Exact types only: anything unusual
    goes to moto's serializer. A loop, not a recursion: it looked at every value of every answer
    (as long as the JSON encoding itself)."""
    waiting = [value]
    while waiting:
        found = waiting.pop()
        kind = type(found)
        if kind is dict:
            for key, inner in found.items():
                if type(key) is not str:
                    return False
                waiting.append(inner)
        elif kind is list:
            waiting.extend(found)
        elif kind not in _PLAIN_SCALARS and not (times and isinstance(found, datetime)):
            return False
    return True


def _unix_time(value: Any) -> Any:
    """A datetime as moto's JSON serializer writes a timestamp member (its default format)."""
    from botocore.utils import parse_to_aware_datetime
    from moto.core.serialize import TimestampSerializer

    if not isinstance(value, datetime):
        raise TypeError(f"not JSON: {type(value).__name__}")  # _plain let nothing else through
    return TimestampSerializer._timestamp_unixtimestamp(parse_to_aware_datetime(value))


def _query(table: Any, *args: Any, **kwargs: Any) -> Any:
    assert _moto_query is not None
    hash_key = kwargs["hash_key"] if "hash_key" in kwargs else (args[0] if args else None)
    index_name = kwargs["index_name"] if "index_name" in kwargs else (args[7] if len(args) > 7 else None)
    if index_name is None and hash_key is not None:
        under_key = table.items.get(hash_key)  # .get: Table.items is a defaultdict
        if under_key is None:
            candidates = []
        elif table.range_key_attr:
            candidates = sorted(under_key.values(), key=lambda item: item.range_key)
        else:
            candidates = [under_key]
    elif index_name is not None and kwargs.get("hash_key_conditions"):
        candidates = _index_candidates(table, kwargs["hash_key_conditions"])
    else:
        candidates = [item for under_key in table.items.values()
                      for item in (under_key.values() if table.range_key_attr else [under_key])]
    table.all_items = lambda: candidates  # this call only: the instance attribute shadows the method
    import moto.dynamodb.models.table as table_module

    if index_name is None:
        table_module.copy = _NO_RESULT_COPIES  # moto's module-level `copy`, seen by query's result copy only
    global _sizes_kept
    _sizes_kept = {}
    try:
        return _moto_query(table, *args, **kwargs)
    finally:
        _sizes_kept = None
        del table.all_items
        table_module.copy = copy


def _index_candidates(table: Any, conditions: list[tuple[str, Any]]) -> list[Any]:
    """Every item of the table that `_matching_index_keys` keeps, the first string condition
    tested while the items are gathered (one pass over the table instead of two)."""
    name, expected = conditions[0]
    if not (type(expected) is _DynamoType and expected.type == "S" and type(expected.value) is str):
        everything = [item for under_key in table.items.values()
                      for item in (under_key.values() if table.range_key_attr else [under_key])]
        return _matching_index_keys(everything, conditions)
    wanted = expected.value
    buckets = table.items.values() if table.range_key_attr else [table.items]
    kept = [item for under_key in buckets for item in under_key.values() if type(item) is not _Item or (
        (found := item.attrs.get(name)) is not None
        and (type(found) is not _DynamoType or (found.type == "S" and found.value == wanted)))]
    return _matching_index_keys(kept, conditions[1:]) if len(conditions) > 1 else kept


def _matching_index_keys(candidates: list[Any], conditions: list[tuple[str, Any]]) -> list[Any]:
    """The items an index query can return: moto's own first test of each item (`Table.query`:
    every hash-key condition's attribute present and not `!=` its value), here before moto's query
    runs, with a string value compared as moto's `DynamoType.__ne__` compares two strings (type,
    then value), in one tight loop; moto's query then tests the few left the same way. At 100,000
    sessions an index query (the refund worker's, the emails') held the lock ~80 ms in moto's
    loop; anything that is not exactly an Item is left for moto to judge."""
    kept = candidates
    for name, expected in conditions:
        if type(expected) is _DynamoType and expected.type == "S" and type(expected.value) is str:
            wanted = expected.value
            kept = [item for item in kept if type(item) is not _Item or (
                (found := item.attrs.get(name)) is not None
                and (type(found) is not _DynamoType or (found.type == "S" and found.value == wanted)))]
        else:
            kept = [item for item in kept if type(item) is not _Item or (
                (found := item.attrs.get(name)) is not None and not found != expected)]  # noqa: SIM202 (moto's !=)
    return kept


def _transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    import moto.dynamodb.models as models

    assert _moto_transact_write_items is not None
    backup = _Backup.of(backend, transact_items)
    models.copy = _NO_TABLE_COPIES  # moto's module-level `copy`, seen by its backup loop only
    try:
        _moto_transact_write_items(backend, transact_items)
    except BaseException:
        backup.restore()
        raise
    finally:
        models.copy = copy


def _deepcopy_except_tables(value: Any, memo: dict[int, Any] | None = None) -> Any:
    from moto.dynamodb.models.table import Table

    if isinstance(value, Table):
        return value  # the backup of a whole table: _Backup covers what the transaction can touch
    return copy.deepcopy(value, memo)


_NO_TABLE_COPIES = SimpleNamespace(deepcopy=_deepcopy_except_tables, copy=copy.copy)


def _results_as_they_are(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """A table query's found items, uncopied (see the module's doc); anything else deep-copied."""
    from moto.dynamodb.models.dynamo_type import Item

    if isinstance(value, list) and all(type(item) is Item for item in value):
        return value
    return copy.deepcopy(value, memo)


_NO_RESULT_COPIES = SimpleNamespace(deepcopy=_results_as_they_are, copy=copy.copy)


class _Backup:
    """Deep copies of the items a transaction names, and each touched table's stream length."""

    def __init__(self) -> None:
        self._items: dict[tuple[int, Any, Any], tuple[Any, Any, Any, Any, bool]] = {}
        self._streams: dict[int, tuple[Any, int]] = {}

    @classmethod
    def of(cls, backend: Any, transact_items: list[dict[str, Any]]) -> _Backup:
        backup = cls()
        for entry in transact_items:
            for op_type, op in entry.items():
                backup._add(backend, op_type, op)
        return backup

    def _add(self, backend: Any, op_type: str, op: dict[str, Any]) -> None:
        try:
            table = backend.get_table(op["TableName"])
            if op_type == "Put":
                names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
                key = {name: op["Item"][name] for name in names}
            else:
                key = op["Key"]
            hash_value, range_value = backend.get_keys_value(table, key)
        except Exception:  # a key moto cannot resolve is one it cannot write either
            return
        if table.stream_shard is not None and id(table) not in self._streams:
            self._streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        slot = (id(table), hash_value, range_value)
        if slot in self._items:
            return  # a second op on the same key fails the transaction; the first copy is the original
        bucket_existed = hash_value in table.items
        current = table.get_item(hash_value, range_value) if bucket_existed else None
        self._items[slot] = (table, hash_value, range_value, copy.deepcopy(current), bucket_existed)

    def restore(self) -> None:
        for table, hash_value, range_value, original, bucket_existed in self._items.values():
            if range_value is None:
                if original is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = original
                continue
            bucket = table.items[hash_value]
            if original is None:
                bucket.pop(range_value, None)
                if not bucket and not bucket_existed:
                    del table.items[hash_value]
            else:
                bucket[range_value] = original
        for shard, length in self._streams.values():
            del shard.items[length:]
