"""DynamoDB's answers read by chalicelib.aws.ItemParser are exactly botocore's own reading: items
of every attribute type, nested maps and lists, binaries, pages, batch and transaction answers,
stream records, errors with the items that failed them, and values no DynamoDB sends."""
from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
from botocore.parsers import JSONParser
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import aws
from chalicelib.aws import ItemParser

_SESSION = botocore.session.get_session()


def _answer(body: Any, status: int = 200) -> dict[str, Any]:
    return {"status_code": status, "body": json.dumps(body).encode(),
            "headers": {"x-amzn-requestid": "REQ1", "content-type": "application/x-amz-json-1.0"},
            "context": {"operation_name": "x"}}


def _outcome(parser: JSONParser, shape: Any, body: Any, status: int) -> Any:
    """What the parser gives, or the kind of exception it raises on a value no DynamoDB sends."""
    try:
        return parser.parse(_answer(body, status), shape)
    except Exception as error:
        return type(error)


def _both(service: str, operation: str, body: Any, status: int = 200) -> tuple[Any, Any]:
    shape = _SESSION.get_service_model(service).operation_model(operation).output_shape
    return _outcome(ItemParser(), shape, body, status), _outcome(JSONParser(), shape, body, status)


def _error_both(operation: str, error: str, body: Any) -> tuple[Any, Any]:
    """A modeled error's fields, as botocore's endpoint adds them to the error it raises."""
    service = _SESSION.get_service_model("dynamodb")
    shape = service.shape_for(error)
    return _outcome(ItemParser(), shape, body, 400), _outcome(JSONParser(), shape, body, 400)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


EVERY_TYPE = {
    "pk": {"S": "transaction#01"}, "n": {"N": "-12.50"}, "b": {"B": _b64(b"\x00\xffbytes")},
    "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [_b64(b"x"), _b64(b"\x01")]},
    "null": {"NULL": True}, "yes": {"BOOL": True}, "no": {"BOOL": False}, "empty": {"S": ""},
    "m": {"M": {"inner": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"B": _b64(b"deep")}}}, {"NULL": True}]},
                "empty_map": {"M": {}}, "empty_list": {"L": []}}},
    "unicode": {"S": "Zoë ☃ \u00e9"},
}


def test_an_item_of_every_attribute_type_reads_as_botocore_reads_it() -> None:
    fast, reference = _both("dynamodb", "GetItem", {
        "Item": EVERY_TYPE, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}})
    assert fast == reference
    assert fast["Item"]["b"] == {"B": b"\x00\xffbytes"} and fast["Item"]["bs"] == {"BS": [b"x", b"\x01"]}
    assert fast["ResponseMetadata"]["RequestId"] == "REQ1"


def test_pages_batches_and_transactions_read_as_botocore_reads_them() -> None:
    key = {"transaction_id": {"S": "T1"}, "item": {"S": "session#1"}}
    cases = [
        ("Query", {"Items": [EVERY_TYPE, key], "Count": 2, "ScannedCount": 2, "LastEvaluatedKey": key,
                   "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1}}),
        ("Query", {"Items": [], "Count": 0, "ScannedCount": 0}),
        ("BatchGetItem", {"Responses": {"t1": [EVERY_TYPE], "t2": [key]},
                          "UnprocessedKeys": {"t1": {"Keys": [key], "ConsistentRead": True}},
                          "ConsumedCapacity": [{"TableName": "t1", "CapacityUnits": 2.5}]}),
        ("UpdateItem", {"Attributes": EVERY_TYPE}),
        ("PutItem", {}),
        ("TransactWriteItems", {"ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 10.0,
                                                      "WriteCapacityUnits": 10.0}]}),
        ("TransactGetItems", {"Responses": [{"Item": EVERY_TYPE}, {}]}),
        ("BatchWriteItem", {"UnprocessedItems": {"t": [{"PutRequest": {"Item": EVERY_TYPE}},
                                                       {"DeleteRequest": {"Key": key}}]},
                            "ItemCollectionMetrics": {"t": [{"ItemCollectionKey": key,
                                                             "SizeEstimateRangeGB": [0.0, 1.0]}]}}),
        ("DescribeTable", {"Table": {"TableName": "t", "CreationDateTime": 1700000000.5, "ItemCount": 3}}),
    ]
    for operation, body in cases:
        fast, reference = _both("dynamodb", operation, body)
        assert fast == reference, operation


def test_a_cancelled_transaction_names_its_failed_items_as_botocore_does() -> None:
    body = {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                       "[ConditionalCheckFailed, None]",
            "CancellationReasons": [{"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
                                     "Item": EVERY_TYPE}, {"Code": "None"}]}
    fast, reference = _error_both("TransactWriteItems", "TransactionCanceledException", body)
    assert fast == reference and fast["CancellationReasons"][0]["Item"]["b"] == {"B": b"\x00\xffbytes"}
    fast, reference = _both("dynamodb", "TransactWriteItems", body, status=400)
    assert fast == reference and fast["Error"]["Code"] == "TransactionCanceledException"


def test_stream_records_read_as_botocore_reads_them() -> None:
    record = {"eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
              "dynamodb": {"ApproximateCreationDateTime": 1700000000.0, "Keys": {"venue_id": {"S": "V"}},
                           "NewImage": EVERY_TYPE, "SequenceNumber": "1100000000017454423009", "SizeBytes": 120,
                           "StreamViewType": "NEW_IMAGE"}}
    fast, reference = _both("dynamodbstreams", "GetRecords", {"Records": [record], "NextShardIterator": "it"})
    assert fast == reference


# Values as DynamoDB sends them, and values it never sends (no key, two keys, a key it does not
# know, a null): the latter are botocore's to read, with the same outcome.
_text = st.text(max_size=8)
_scalar = st.one_of(
    st.builds(lambda s: {"S": s}, _text), st.builds(lambda n: {"N": str(n)}, st.integers()),
    st.builds(lambda b: {"B": _b64(b)}, st.binary(max_size=8)),
    st.builds(lambda s: {"SS": s}, st.lists(_text, max_size=3)),
    st.builds(lambda s: {"NS": [str(n) for n in s]}, st.lists(st.integers(), max_size=3)),
    st.builds(lambda s: {"BS": [_b64(b) for b in s]}, st.lists(st.binary(max_size=4), max_size=3)),
    st.just({"NULL": True}), st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({}), st.just({"S": "a", "N": "1"}), st.just({"X": 1}), st.just({"S": None}), st.just({"L": None}),
    st.just({"M": "not a map"}), st.just({"SS": "not a list"}),
)
_value = st.recursive(_scalar, lambda inner: st.one_of(
    st.builds(lambda m: {"M": m}, st.dictionaries(_text, inner, max_size=3)),
    st.builds(lambda items: {"L": items}, st.lists(st.one_of(inner, st.none()), max_size=3)),
    st.builds(lambda m: {"M": m}, st.dictionaries(_text, st.none(), max_size=2)),
), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_text, _value, max_size=5))
def test_any_item_reads_as_botocore_reads_it(item: dict[str, Any]) -> None:
    for operation, body in (("GetItem", {"Item": item}), ("Query", {"Items": [item, item]}),
                            ("BatchGetItem", {"Responses": {"t": [item]}})):
        fast, reference = _both("dynamodb", operation, body)
        assert fast == reference


def test_the_clients_of_our_sessions_read_with_it() -> None:
    client: Any = aws.new_session().create_client("dynamodb", region_name="us-east-1")
    assert isinstance(client._endpoint._response_parser_factory.create_parser("json"), ItemParser)


def test_values_as_dynamodb_sends_them_never_take_botocore_s_walk(monkeypatch: Any) -> None:
    """What makes it cheaper: no attribute value is walked member by member (botocore's way)."""
    from botocore.parsers import BaseJSONParser

    walked: list[str] = []
    walk = BaseJSONParser._handle_structure  # type: ignore[attr-defined]  # botocore's stubs omit it

    def recording(self: Any, shape: Any, value: Any) -> Any:
        walked.append(shape.name)
        return walk(self, shape, value)

    monkeypatch.setattr(BaseJSONParser, "_handle_structure", recording)
    shape: Any = _SESSION.get_service_model("dynamodb").operation_model("Query").output_shape
    ItemParser().parse(_answer({"Items": [EVERY_TYPE] * 3, "Count": 3, "ScannedCount": 3}), shape)
    assert walked == ["QueryOutput"]
    JSONParser().parse(_answer({"Items": [EVERY_TYPE], "Count": 1, "ScannedCount": 1}), shape)
    assert walked.count("AttributeValue") > len(EVERY_TYPE)  # botocore's own parser does walk them


# --- Used only with the botocore it was checked against ---------------------------------------

def test_the_botocore_checked_is_the_one_pinned_and_installed() -> None:
    """The comparisons above ran on CHECKED_BOTOCORE: it is what requirements.txt pins (what Chalice
    packages) and what this run imported, so raising the pin without re-checking fails here."""
    from pathlib import Path

    pins = dict(line.split("==", 1) for line in
                (Path(__file__).parents[2] / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins["botocore"].strip() == aws.CHECKED_BOTOCORE == botocore.__version__
    assert aws.item_parser_fits()
    assert type(aws._ParserFactory().create_parser("json")) is ItemParser


def test_any_other_botocore_reads_answers_with_its_own_parser(monkeypatch: Any) -> None:
    assert not aws.item_parser_fits("1.44.9")
    assert not aws.item_parser_fits("2.0.0")
    monkeypatch.setattr(aws, "_FITS", False)
    parser = aws._ParserFactory().create_parser("json")
    assert type(parser) is JSONParser
    shape = _SESSION.get_service_model("dynamodb").operation_model("GetItem").output_shape
    body = {"Item": {"venue_id": {"S": "v1"}, "seats": {"N": "3"}, "tags": {"SS": ["a"]}}}
    assert parser.parse(_answer(body), shape)["Item"] == body["Item"]


def test_a_botocore_without_the_private_methods_relied_on_is_not_used(monkeypatch: Any) -> None:
    monkeypatch.setattr(JSONParser, "_handle_map", None)
    assert not aws.item_parser_fits()
