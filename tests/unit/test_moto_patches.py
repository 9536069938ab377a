"""The embedded stack's TransactWriteItems and Query (infra/local/moto_patches.py): transactions
all-or-nothing as DynamoDB's, including index entries, without copying whole tables; queries
answering exactly what moto's own would, in the same order and pages; and both pinned to the moto
code they wrap, so a moto upgrade cannot silently break them."""
from __future__ import annotations

import hashlib
import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local import moto_patches
from infra.local.embedded_aws import EmbeddedAws

# sha256 of moto 5.2.5's sources that infra/local/moto_patches.py wraps or replaces for a call.
# If one changes, re-read moto's function against the assumptions in that module's docstring.
MOTO_SOURCES_SHA256 = {
    "transact_write_items": "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4",
    "query": "002b4d00be6df07cf37f6cbe0132e5eb89455ae12a8e79b23db3fb492450f21e",
    "all_items": "c80d2ee3c896acd0cab6ca35aaeae3ab3fb65858933f8a3403d4e027c240f31d",
    "execute_result": "6333faa349b58671258985778d2aaf02d31e0617aae380442e4c683c36ab248d",
    "parse_condition": "5c9b63c5f49ed5d5d644eb0ac7422fb3c2ac4bbd310374f4161686bc4e10c453",
    "make_update": "2c00ed96d6e191f243b449166e75bfb38f307b2e19405bc0981847061e0dbee3",
    "dynamo_to_dict": "80f600124c13ddcb132c02448abeefffd2b43b353c7fcedaa2fa7ca67b3107c4",
    "traverse_node_recursively": "d7f01d9b45cf9f64ac84751ec4c8cab3114e7c179350eb1b81ffe5f0a114aa78",
    "validator_init": "9489b532dd0fb359e273711c1a67971f1b73af47ddbaa91868e9cc42a26ddbb3",
    "validate": "5a99f0d36c7b7b8ebfa3e745203515f57a9b99109cfca55a039153a8f6b081c6",
    "update_processors": "918400bbecd67e8321619b3141e6a276e91a5112c8e8b602fbbc748d83329af6",
    "retention_check": "cca23b94a5f3af9d9c5af1c09ee5e615017bdf6bd032301cb321c06c7e595d4b",
    "queue_attributes": "58417223da457b5a0aac5ccc31b6646ed9b22c3b276a0f0d9fd5f3f13bd797ec",
    "set_queue_attributes": "4b7aaf3f46363f13788975ac5d49c63ee3d85c75538692d12d22f7f71cedc2f2",
    "size": "f7c111fca25b4c5ecea8b4d570d210aef1dcf5b9c52fa3250a27f1bfdd85966b",
    "limited_setitem": "d979580fdbe14f79f3216564e1385c4b3485db82bc88193326c467a037331e81",
    "bytesize": "b0dce378c1ce66af675fdd42153ec1ea12f3461e60c4cddaf756613f816b580b",
    "item_init": "d9c12b62cb921831aab9b2eb22ac24fbd600689064a0219ae3ffbe057ae4be74",
    "item_size": "9bc6ada96d33365c0a0abcb4faf534e1bdc7bfe0af0ef0c1c6671eccd5b80f45",
    "dynamo_type_deepcopy": "9b2947b28c81579274ac9e385b8037e714fddeea13a57f9e0e79eb5da50e0796",
    "item_deepcopy": "7621d16ad7ce49d93f1da0ff2a799ec0ca57b34d30249ef65bc2557c2acc5168",
    "send_message": "bf161af09a9e6b860e3dd5d8f58ccc802623caa86883fab9b2ffb333f8f70330",
    "queue_attributes_property": "40cb990b121628d535cecbcd0e0d333984024633b70a097489ae8611e1a59338",
    "limited_size_dict_init": "f015127701951e734026631d7fbd9e670c2e18123fb0506be997893357e788b8",
}
# The kept condition trees are shared: moto's whole condition module (its Op and Operand classes
# only read an item when they evaluate it) is the one this was checked against.
MOTO_COMPARISONS_SHA256 = "db64ea9ba9afffaef9a9b1c0592cc9d99a143b159a2d8caa00089b5688c2732a"
# The quicker update-expression validation answers per class what moto asks per node, and skips
# checks that passed before: moto's whole validator and tree modules are the ones this was checked
# against (each traverser's `_processing_map` keys are class literals; the first three processors
# only read the tree, the names and the table's keys, and return each node unchanged).
MOTO_VALIDATION_SHA256 = {"validators": "345c1740c0c674a72a5ed56f5ea01ba385ccb69a1bf21f8c134b389d9b41a3e3",
                          "ast_nodes": "ab97413e907e4054c861e7c91b5f1cde6d56a702ddc58b720d275caec351cfe4"}


def test_the_wrapped_moto_functions_are_the_ones_they_were_written_against() -> None:
    import moto

    assert moto.__version__ == moto_patches.PINNED_MOTO_VERSION
    sources = {name: inspect.getsource(f) for name, f in moto_patches.moto_originals().items()}
    assert {name: hashlib.sha256(s.encode()).hexdigest() for name, s in sources.items()} == MOTO_SOURCES_SHA256
    transact = sources["transact_write_items"]
    assert transact.count("copy.deepcopy(") == 1  # the whole-table backup, the one made a no-op
    assert transact.count("self.tables[table_name] = original_table_state[table_name]") == 2
    assert "self.items" not in sources["query"]  # it reads the table through all_items() only
    # its one deep copy is of the items it found (skipped for a table query, kept for an index)
    assert sources["query"].count("copy.deepcopy(") == 1 and "results = copy.deepcopy(results)" in sources["query"]
    # an index query's first test of each item, which _matching_index_keys makes before moto's loop
    assert "if not item_value or item_value != expected_value:" in sources["query"]


def test_the_service_lookup_kept_per_host_depends_on_the_host_alone() -> None:
    """infra/local/embedded_aws.py keeps `get_backend_for_host(host)` per host: moto's dispatcher
    must ask it through the instance, and the answer must come from the host and static tables."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    assert inspect.getsource(DomainDispatcherApplication.get_application).count("self.get_backend_for_host(host)") == 2
    lookup = inspect.getsource(DomainDispatcherApplication.get_backend_for_host)
    assert list(inspect.signature(DomainDispatcherApplication.get_backend_for_host).parameters) == ["self", "host"]
    assert "environ" not in lookup and "self.backend_url_patterns" in lookup


def test_the_action_names_kept_per_class_are_the_ones_moto_lists() -> None:
    """infra/local/embedded_aws.py keeps `method_names_from_class` per class: moto must look it up
    by its module-level name, on the handler's class, only to test the action's membership."""
    import moto.core.responses as responses
    from moto.core.utils import method_names_from_class
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    from infra.local.embedded_aws import _remember_action_names

    _remember_action_names()
    call_action = inspect.getsource(responses.BaseResponse.call_action)
    assert call_action.count("method_names_from_class(") == 1
    assert "method_names = method_names_from_class(self.__class__)" in call_action
    assert "if action in method_names:" in call_action
    for handler in (DynamoHandler, SQSResponse):
        assert responses.method_names_from_class(handler) == method_names_from_class(handler)
    assert "query" in responses.method_names_from_class(DynamoHandler)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    server = EmbeddedAws().start()
    yield boto3.client("dynamodb", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    server.stop()


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = f"tx-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "status")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-status", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                               {"AttributeName": "sk", "KeyType": "RANGE"}]}])
    for sk, status in (("a", "booked"), ("b", "booked"), ("c", "booked")):
        dynamodb.put_item(TableName=name, Item={"pk": {"S": "t1"}, "sk": {"S": sk}, "status": {"S": status},
                                                "seats": {"N": "1"}})
    return name


def _state(dynamodb: Any, table: str) -> tuple[list[Any], dict[str, list[str]]]:
    items = sorted(dynamodb.scan(TableName=table)["Items"], key=lambda item: item["sk"]["S"])
    index = {status: [item["sk"]["S"] for item in dynamodb.query(
        TableName=table, IndexName="by-status", KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": status}})["Items"]]
        for status in ("booked", "cancelled")}
    return items, index


def _key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "t1"}, "sk": {"S": sk}}


def _cancel(table: str, sk: str) -> dict[str, Any]:
    return {"Update": {"TableName": table, "Key": _key(sk),
                       "UpdateExpression": "SET #s = :c, seats = seats - :one",
                       "ExpressionAttributeNames": {"#s": "status"},
                       "ExpressionAttributeValues": {":c": {"S": "cancelled"}, ":one": {"N": "1"}}}}


def test_a_transaction_failing_on_its_last_item_leaves_every_item_and_index_entry_as_it_was(
        dynamodb: Any, table: str) -> None:
    before = _state(dynamodb, table)
    with pytest.raises(ClientError) as failed:
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {**_key("d"), "status": {"S": "booked"}}}},
            _cancel(table, "a"),
            {"Delete": {"TableName": table, "Key": _key("b")}},
            {"ConditionCheck": {"TableName": table, "Key": _key("c"), "ConditionExpression": "seats > :n",
                                "ExpressionAttributeValues": {":n": {"N": "5"}}}},
        ])
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _state(dynamodb, table) == before


def test_a_transaction_naming_one_item_twice_changes_nothing(dynamodb: Any, table: str) -> None:
    before = _state(dynamodb, table)
    with pytest.raises(ClientError) as failed:
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {**_key("z"), "status": {"S": "booked"}}}},
            _cancel(table, "a"),
            {"Delete": {"TableName": table, "Key": _key("z")}},
        ])
    assert failed.value.response["Error"]["Code"] == "ValidationException"
    assert _state(dynamodb, table) == before


def test_a_transaction_that_succeeds_applies_every_item_and_never_copies_the_table(
        dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    def refuse(self: Any, memo: Any) -> Any:
        raise AssertionError("a whole table was deep-copied")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
    dynamodb.transact_write_items(TransactItems=[
        _cancel(table, "a"), {"Delete": {"TableName": table, "Key": _key("b")}},
        {"Put": {"TableName": table, "Item": {**_key("d"), "status": {"S": "booked"}}}}])
    items, index = _state(dynamodb, table)
    assert [item["sk"]["S"] for item in items] == ["a", "c", "d"]
    assert items[0]["seats"] == {"N": "0"}
    assert index == {"booked": ["c", "d"], "cancelled": ["a"]}
    with pytest.raises(ClientError):  # and a failed one rolls back without copying it either
        dynamodb.transact_write_items(TransactItems=[
            _cancel(table, "c"), {"ConditionCheck": {"TableName": table, "Key": _key("a"),
                                                     "ConditionExpression": "attribute_not_exists(pk)"}}])
    assert _state(dynamodb, table) == (items, index)


def test_queries_answer_what_moto_would_in_its_order_and_pages(dynamodb: Any, table: str) -> None:
    for pk, sk, status in (("t0", "m", "booked"), ("t2", "b", "cancelled"), ("t1", "e", "cancelled"),
                           ("t1", "d", "booked"), ("t3", "a", "booked")):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": sk}, "status": {"S": status}})

    def query(**kwargs: Any) -> list[tuple[str, str]]:
        pages, start = [], {}
        while True:
            page = dynamodb.query(TableName=table, Limit=2, **start, **kwargs)
            pages += [(item["pk"]["S"], item["sk"]["S"]) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return pages
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    t1 = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "t1"}}}
    assert query(**t1) == [("t1", "a"), ("t1", "b"), ("t1", "c"), ("t1", "d"), ("t1", "e")]
    assert query(**t1, ScanIndexForward=False) == [("t1", "e"), ("t1", "d"), ("t1", "c"), ("t1", "b"), ("t1", "a")]
    assert query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "nobody"}}) == []
    booked = {"IndexName": "by-status", "KeyConditionExpression": "#s = :s",
              "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":s": {"S": "booked"}}}
    assert query(**booked) == [("t1", "a"), ("t3", "a"), ("t1", "b"), ("t1", "c"), ("t1", "d"), ("t0", "m")]


def test_a_projected_or_filtered_table_query_leaves_the_stored_items_whole(dynamodb: Any, table: str) -> None:
    """A table query hands moto's projection and filter the stored items themselves (no copy):
    what they answer must never change what is stored."""
    t1 = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "t1"}}}
    before = dynamodb.query(TableName=table, **t1)["Items"]
    projected = dynamodb.query(TableName=table, ProjectionExpression="sk", **t1)["Items"]
    assert projected == [{"sk": {"S": sk}} for sk in ("a", "b", "c")]
    filtered = dynamodb.query(TableName=table, FilterExpression="sk = :b", **{
        **t1, "ExpressionAttributeValues": {":p": {"S": "t1"}, ":b": {"S": "b"}}})["Items"]
    assert [item["sk"]["S"] for item in filtered] == ["b"]
    assert dynamodb.query(TableName=table, **t1)["Items"] == before
    assert before[0] == {"pk": {"S": "t1"}, "sk": {"S": "a"}, "status": {"S": "booked"}, "seats": {"N": "1"}}


def test_item_answers_are_what_motos_serializer_writes_for_every_attribute_type(
        dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    every_type = {"s": {"S": "text"}, "n": {"N": "12.5"}, "b": {"B": b"\x00\xffbytes"}, "yes": {"BOOL": True},
                  "none": {"NULL": True}, "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"k": {"S": "v"}}}]},
                  "m": {"M": {"inner": {"L": [{"BOOL": False}]}}}, "ss": {"SS": ["a", "b"]},
                  "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"a", b"b"]}}

    def conversation(suffix: str) -> list[Any]:
        key_b = {"pk": {"S": f"v{suffix}"}, "sk": {"S": "b"}}
        key_p = {"pk": {"S": f"v{suffix}"}, "sk": {"S": "plain"}}
        plain = {**key_p, "status": {"S": "booked"}, "l": {"L": [{"S": "x"}, {"M": {"k": {"N": "3"}}}]}}
        calls = [
            lambda: dynamodb.put_item(TableName=table, Item={**key_b, **every_type}),
            lambda: dynamodb.put_item(TableName=table, Item=plain, ReturnValues="ALL_OLD"),
            lambda: dynamodb.put_item(TableName=table, Item=plain, ReturnValues="ALL_OLD",
                                      ReturnConsumedCapacity="TOTAL"),
            lambda: dynamodb.get_item(TableName=table, Key=key_b),
            lambda: dynamodb.get_item(TableName=table, Key=key_p, ReturnConsumedCapacity="TOTAL"),
            lambda: dynamodb.get_item(TableName=table, Key={"pk": {"S": "nobody"}, "sk": {"S": "x"}}),
            lambda: dynamodb.update_item(TableName=table, Key=key_p, UpdateExpression="SET seats = :n",
                                         ExpressionAttributeValues={":n": {"N": "4"}}, ReturnValues="ALL_NEW"),
            lambda: dynamodb.query(TableName=table, KeyConditionExpression="pk = :p", Limit=1,
                                   ExpressionAttributeValues={":p": {"S": f"v{suffix}"}}),
            lambda: dynamodb.query(TableName=table, KeyConditionExpression="pk = :p", ReturnConsumedCapacity="TOTAL",
                                   ExpressionAttributeValues={":p": {"S": f"v{suffix}"}}),
            lambda: dynamodb.batch_get_item(RequestItems={table: {"Keys": [key_b, key_p]}}),
            lambda: dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key_p}}]),
            lambda: dynamodb.transact_write_items(TransactItems=[_cancel(table, "a")]),
            lambda: dynamodb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {**key_p, "x": {"S": "y"}}}}]}),
            lambda: dynamodb.delete_item(TableName=table, Key=key_p, ReturnValues="ALL_OLD"),
        ]
        answers = []
        for call in calls:
            answer = call()
            answer.pop("ResponseMetadata")
            answers.append(_without(answer, f"v{suffix}"))
        return answers

    fast = conversation("1")
    monkeypatch.setattr(moto_patches, "PLAIN_JSON_ANSWERS", False)
    dynamodb.put_item(TableName=table, Item={**_key("a"), "status": {"S": "booked"}, "seats": {"N": "1"}})
    assert fast == conversation("2")
    assert fast[3]["Item"]["b"] == {"B": b"\x00\xffbytes"} and fast[6]["Attributes"]["seats"] == {"N": "4"}


def _without(value: Any, marker: str) -> Any:
    """An answer with the run's own partition key replaced, so two runs compare equal."""
    if isinstance(value, dict):
        return {k: _without(v, marker) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, marker) for v in value]
    return "<pk>" if value == marker else value


def test_stream_records_are_what_motos_serializer_writes(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """GetRecords answers (a new item, a change, a removal, every attribute type in the images)
    byte for byte as JSON what moto's serializer writes, creation times included."""
    import json

    from moto.core.serialize import BaseJSONSerializer, TimestampSerializer

    # what moto_patches._unix_time copies: a JSON answer's timestamps in moto's unix format
    assert BaseJSONSerializer.DEFAULT_TIMESTAMP_FORMAT == TimestampSerializer.TIMESTAMP_FORMAT_UNIX
    name = f"st-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    every_type = {"n": {"N": "12.5"}, "b": {"B": b"\x00\xffbytes"}, "yes": {"BOOL": True}, "none": {"NULL": True},
                  "l": {"L": [{"S": "x"}, {"M": {"k": {"S": "v"}}}]}, "ss": {"SS": ["a", "b"]}, "bs": {"BS": [b"a"]}}
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "plain"}, "s": {"S": "é"}, "m": {"M": {"k": {"N": "1"}}}})
    dynamodb.update_item(TableName=name, Key={"pk": {"S": "plain"}}, UpdateExpression="SET s = :s",
                         ExpressionAttributeValues={":s": {"S": "moved"}})
    dynamodb.delete_item(TableName=name, Key={"pk": {"S": "plain"}})
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "typed"}, **every_type})
    streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb.meta.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
    arn = dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    bodies: list[bytes] = []
    streams.meta.events.register("after-call.dynamodbstreams.GetRecords",
                                 lambda http_response, **_: bodies.append(http_response.content))

    def records(limit: int) -> Any:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        answer = streams.get_records(ShardIterator=iterator, Limit=limit)
        body = json.loads(bodies[-1])
        assert body.pop("NextShardIterator") == answer["NextShardIterator"]  # a new one on every call
        return body, answer["Records"]

    fast = [records(2), records(10)]
    monkeypatch.setattr(moto_patches, "PLAIN_JSON_ANSWERS", False)
    assert fast == [records(2), records(10)]
    page, every = fast[1]
    assert [r["eventName"] for r in every] == ["INSERT", "MODIFY", "REMOVE", "INSERT"]
    assert every[1]["dynamodb"]["OldImage"]["s"] == {"S": "é"} and every[3]["dynamodb"]["NewImage"]["b"] == {
        "B": b"\x00\xffbytes"}
    assert isinstance(page["Records"][0]["dynamodb"]["ApproximateCreationDateTime"], (int, float))


def test_a_kept_parse_is_only_read_or_copied_by_moto() -> None:
    """infra/local/moto_patches.py shares one parsed tree between requests: moto must never change
    one (conditions are only evaluated; an update expression's tree is read, or deep-copied before
    it is validated and executed)."""
    import moto.dynamodb.comparisons as comparisons
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing.validators import Validator
    from moto.dynamodb.responses import DynamoHandler

    assert hashlib.sha256(inspect.getsource(comparisons).encode()).hexdigest() == MOTO_COMPARISONS_SHA256
    assert "self.node_to_validate = deepcopy(expression)" in inspect.getsource(Validator.__init__)
    assert "expression" not in inspect.getsource(Validator.validate).replace("node_to_validate", "")
    model = inspect.getsource(DynamoDBBackend.update_item)
    assert model.count("update_expression_ast") == 3 and model.count("UpdateExpressionValidator(\n") == 2
    assert all(line.strip() == "update_expression_ast," for line in model.splitlines()
               if "update_expression_ast" in line and "=" not in line)
    for handler in (DynamoHandler.update_item, DynamoHandler.transact_write_items):
        uses = [line.strip() for line in inspect.getsource(handler).splitlines() if "update_expression_ast" in line]
        assert uses and all(use.startswith(("update_expression_ast = UpdateExpressionParser.make(",
                                            "attr_name_clauses = update_expression_ast.find_clauses(",
                                            "attr_value_clauses = update_expression_ast.find_clauses("))
                            for use in uses)


def test_a_condition_kept_from_one_request_decides_by_the_next_ones_values_and_names(
        dynamodb: Any, table: str) -> None:
    def take(seats: str, name: str = "seats") -> bool:
        try:
            dynamodb.update_item(TableName=table, Key=_key("a"), UpdateExpression="SET #f = #f + :one",
                                 ConditionExpression="#f = :n", ExpressionAttributeNames={"#f": name},
                                 ExpressionAttributeValues={":n": {"N": seats}, ":one": {"N": "1"}})
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False
        return True

    assert take("1") and not take("1") and take("2") and not take("2") and take("3")
    dynamodb.update_item(TableName=table, Key=_key("a"), UpdateExpression="SET spare = :n",
                         ExpressionAttributeValues={":n": {"N": "4"}})
    assert not take("4", name="missing") and take("4", name="spare") and take("4")
    item = dynamodb.get_item(TableName=table, Key=_key("a"))["Item"]
    assert item["seats"] == {"N": "5"} and item["spare"] == {"N": "5"}


def test_a_bad_expression_is_refused_every_time_and_unused_or_used_names_and_values_judged_as_moto_does(
        dynamodb: Any, table: str) -> None:
    for _ in range(2):
        with pytest.raises(ClientError) as bad:
            dynamodb.update_item(TableName=table, Key=_key("a"), UpdateExpression="SET seats = = :n",
                                 ExpressionAttributeValues={":n": {"N": "1"}})
        assert bad.value.response["Error"]["Code"] == "ValidationException"
        with pytest.raises(ClientError) as unused:
            dynamodb.update_item(TableName=table, Key=_key("a"), UpdateExpression="SET seats = :n",
                                 ConditionExpression="seats = :n",
                                 ExpressionAttributeValues={":n": {"N": "1"}, ":extra": {"N": "2"}})
        assert "unused" in unused.value.response["Error"]["Message"]
        dynamodb.update_item(TableName=table, Key=_key("c"), UpdateExpression="SET seats = :n",  # a name and a
                             ConditionExpression="#s = :b", ExpressionAttributeNames={"#s": "status"},  # value the
                             ExpressionAttributeValues={":n": {"N": "3"}, ":b": {"S": "booked"}})  # condition uses
        dynamodb.transact_write_items(TransactItems=[{"Update": {
            "TableName": table, "Key": _key("b"), "UpdateExpression": "SET seats = :n",
            "ConditionExpression": "attribute_exists(seats)", "ExpressionAttributeValues": {":n": {"N": "7"}}}}])
    assert dynamodb.get_item(TableName=table, Key=_key("b"))["Item"]["seats"] == {"N": "7"}
    assert dynamodb.get_item(TableName=table, Key=_key("a"))["Item"]["seats"] == {"N": "1"}
    assert dynamodb.get_item(TableName=table, Key=_key("c"))["Item"]["seats"] == {"N": "3"}


def test_answers_turned_into_plain_dicts_as_moto_turns_them() -> None:
    """moto_patches._dynamo_to_dict gives what moto's dynamo_to_dict gives, on every kind of value
    an answer holds, and is the one moto's DynamoResult calls."""
    from datetime import UTC, datetime

    import moto.dynamodb.responses as responses
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    moto_patches.install()  # as EmbeddedAws.start() does
    assert responses.dynamo_to_dict is moto_patches._dynamo_to_dict
    assert "transformed_result = dynamo_to_dict(result)" in inspect.getsource(responses.DynamoResult.__init__)
    moto_own = moto_patches.moto_originals()["dynamo_to_dict"]
    item = Item(DynamoType({"S": "k"}), None, {"pk": {"S": "k"}, "b": {"B": "AAE="}, "bs": {"BS": ["AAE="]},
                                                "m": {"M": {"l": {"L": [{"N": "1"}, {"NULL": True}]}}}})
    answers = [
        {"Items": [item.to_json()["Attributes"], {"s": {"S": "x"}, "yes": {"BOOL": False}}], "Count": 2,
         "ScannedCount": 2.0, "LastEvaluatedKey": None},
        {"Item": item, "when": datetime(2030, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), "bytes": b"\x00"},
        [DynamoType({"B": b"raw"}), DynamoType({"M": {"k": {"S": "v"}}}), "plain", 7, True, None],
        {"Items": [item.attrs], "Count": 1},  # a query's found items, as moto's DynamoResult gets them
    ]
    for answer in answers:
        assert moto_patches._dynamo_to_dict(answer) == moto_own(answer)
        assert type(moto_patches._dynamo_to_dict(answer)) is type(moto_own(answer))
    assert moto_patches._dynamo_to_dict(answers[2])[:2] == [{"B": b"raw"}, {"M": {"k": {"S": "v"}}}]
    assert moto_patches._dynamo_to_dict({"b": DynamoType({"B": "AAE="})}) == {"b": {"B": b"\x00\x01"}}


def test_the_embedded_server_answers_sdks_without_cors_headers(dynamodb: Any, table: str) -> None:
    """infra/local/embedded_aws.py turns moto's global CORS off (no browser calls it): moto must
    read the switch when it makes each service's app, and the SDKs' calls must still work."""
    import requests
    from moto.moto_server import werkzeug_app

    assert "if not DISABLE_GLOBAL_CORS:" in inspect.getsource(werkzeug_app.create_backend_app)
    answer = requests.post(dynamodb.meta.endpoint_url + "/", timeout=10, data="{}", headers={
        "Origin": "http://elsewhere.example", "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=local/20300101/us-east-1/dynamodb/aws4_request"})
    assert answer.status_code == 200 and table in answer.json()["TableNames"]
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_a_long_running_stack_walks_what_it_keeps_in_one_full_collection_only() -> None:
    """infra/local/embedded_aws.py's freeze_what_survives_full_collections: what start-up made and
    what survives each later full collection is frozen, so the next full collection does not walk
    moto's whole store again (it paused every request for 200 ms with 1,000 sessions); objects
    dropped later are still freed."""
    import gc
    import weakref

    from infra.local.embedded_aws import _freeze_after_full_collections, freeze_what_survives_full_collections

    class Stored:  # stands for one of moto's items
        pass

    # A test worker's stack (tests/conftest.py) may have asked for it already: then it stays.
    installed_before = _freeze_after_full_collections in gc.callbacks
    try:
        freeze_what_survives_full_collections()
        freeze_what_survives_full_collections()  # once only
        assert gc.callbacks.count(_freeze_after_full_collections) == 1
        assert gc.get_freeze_count() > 0
        kept = [Stored() for _ in range(5_000)]
        gc.collect()
        # Frozen: still tracked by the collector, but in none of the generations a collection walks.
        walked = {id(o) for o in gc.get_objects()}
        assert all(gc.is_tracked(o) and id(o) not in walked for o in (kept[0], kept[2_500], kept[-1]))
        del walked
        dropped = weakref.ref(kept[0])
        del kept
        assert dropped() is None  # reference counting frees it, frozen or not
    finally:
        if not installed_before:
            gc.callbacks.remove(_freeze_after_full_collections)
            gc.unfreeze()


def test_a_request_cut_short_by_a_client_that_left_is_dropped_quietly(
        dynamodb: Any, table: str, capfd: pytest.CaptureFixture[str]) -> None:
    """A pump process stopped mid-request leaves a body shorter than its Content-Length: the
    embedded server drops it (nothing applied, no traceback) and goes on answering others."""
    import json
    import socket
    import time
    from urllib.parse import urlparse

    body = json.dumps({"TableName": table, "Item": {"pk": {"S": "cut"}, "sk": {"S": "x"}}}).encode()
    address = urlparse(dynamodb.meta.endpoint_url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\n"
                       b"Content-Type: application/x-amz-json-1.0\r\n"
                       b"Authorization: AWS4-HMAC-SHA256 Credential=local/20300101/us-east-1/dynamodb/aws4_request\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(body) + body[:20])
    time.sleep(0.3)
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"pk": {"S": "cut"}, "sk": {"S": "x"}})
    assert "Traceback" not in capfd.readouterr().err


# Update expressions: every kind of action, and every check moto's validator makes.
_UPDATES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("SET seats = seats - :one, #s = :c", {"#s": "status"}, {":one": {"N": "1"}, ":c": {"S": "cancelled"}}),
    ("SET a = :v REMOVE b", {}, {":v": {"S": "x"}}),
    ("SET l = list_append(l, :l)", {}, {":l": {"L": [{"S": "z"}]}}),
    ("SET n = if_not_exists(n, :zero) + :one", {}, {":zero": {"N": "0"}, ":one": {"N": "1"}}),
    ("ADD tally :one, tags :set", {}, {":one": {"N": "1"}, ":set": {"SS": ["t2"]}}),
    ("ADD counter :one", {}, {":one": {"N": "1"}}),  # a reserved word
    ("DELETE tags :set", {}, {":set": {"SS": ["t1"]}}),
    ("REMOVE l[0], l[1]", {}, {}),
    ("SET m.deep.k = :v, #m.#d.j = :w", {"#m": "m", "#d": "deep"}, {":v": {"S": "new"}, ":w": {"N": "2"}}),
    ("SET #f = :v", {"#f": "sk"}, {":v": {"S": "x"}}),  # a key: refused
    ("SET #f = :v", {"#f": "other"}, {":v": {"S": "x"}}),  # the same expression, another name: allowed
    ("SET a = :v, a = :w", {}, {":v": {"S": "x"}, ":w": {"S": "y"}}),
    ("SET a = :v SET b = :w", {}, {":v": {"S": "x"}, ":w": {"S": "y"}}),
    ("SET m.deep = :v, m = :w", {}, {":v": {"S": "x"}, ":w": {"S": "y"}}),
    ("SET absent.x = :v", {}, {":v": {"S": "x"}}),
    ("SET a = nothere + :one", {}, {":one": {"N": "1"}}),
    ("SET a = :undefined", {}, {":v": {"S": "x"}}),
    ("SET a = :s + :one", {}, {":s": {"S": "x"}, ":one": {"N": "1"}}),
    ("SET #s = :empty", {"#s": "status"}, {":empty": {"S": ""}}),
    ("SET #s = :n", {"#s": "status"}, {":n": {"N": "1"}}),
    ("SET l[5] = :v", {}, {":v": {"S": "appended"}}),
    ("SET seats[0] = :v", {}, {":v": {"S": "x"}}),
]


def _updated(dynamodb: Any, table: str, pk: str) -> list[Any]:
    """Each of _UPDATES on a fresh item: the item after it, or the error moto answered."""
    answers = []
    for n, (expression, names, values) in enumerate(_UPDATES):
        key = {"pk": {"S": pk}, "sk": {"S": str(n)}}
        dynamodb.put_item(TableName=table, Item={
            **key, "status": {"S": "booked"}, "seats": {"N": "3"}, "b": {"S": "gone"}, "tags": {"SS": ["t1"]},
            "l": {"L": [{"S": "x"}, {"S": "y"}, {"S": "w"}]}, "m": {"M": {"deep": {"M": {"k": {"S": "old"}}}}}})
        try:
            answer = dynamodb.update_item(TableName=table, Key=key, UpdateExpression=expression,
                                          ReturnValues="ALL_NEW", **({"ExpressionAttributeNames": names} if names else {}),
                                          **({"ExpressionAttributeValues": values} if values else {}))
            answers.append(_without(answer["Attributes"], pk))
        except ClientError as error:
            answers.append((error.response["Error"]["Code"], error.response["Error"]["Message"]))
        answers.append(_without(dynamodb.get_item(TableName=table, Key=key)["Item"], pk))
    return answers


def test_the_quicker_validation_relies_on_what_motos_validator_modules_hold() -> None:
    import moto.dynamodb.parsing.ast_nodes as ast_nodes
    import moto.dynamodb.parsing.validators as validators

    assert {name: hashlib.sha256(inspect.getsource(module).encode()).hexdigest()
            for name, module in (("validators", validators), ("ast_nodes", ast_nodes))} == MOTO_VALIDATION_SHA256
    processors = inspect.getsource(validators.UpdateExpressionValidator.get_ast_processors)
    first = [processors.index(name) for name in ("ActionCountValidator(", "OverlappingPathsValidator(",
                                                "UpdateHashRangeKeyValidator(", "ExpressionAttributeValueProcessor(")]
    assert first == sorted(first)
    assert moto_patches._ITEM_INDEPENDENT_CHECKS == 3
    # a Node is never registered as a virtual subclass: isinstance is issubclass of its class
    assert ".register(" not in inspect.getsource(ast_nodes)


def test_update_expressions_are_validated_and_applied_as_moto_does(
        dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quicker validation (one walk per processor with its node questions answered per class,
    the tree copied from pickled bytes, the item-independent checks kept per expression, names and
    table) answers every update as moto's own: the same item or the same error, the first time an
    expression is seen and when its checks were kept, and with another name for the same text."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator, Validator

    quick = [_updated(dynamodb, table, "q1"), _updated(dynamodb, table, "q2")]
    originals = moto_patches.moto_originals()
    monkeypatch.setattr(DepthFirstTraverser, "traverse_node_recursively", originals["traverse_node_recursively"])
    monkeypatch.setattr(UpdateExpressionValidator, "__init__", Validator.__init__)
    monkeypatch.setattr(UpdateExpressionValidator, "validate", Validator.validate)
    motos = _updated(dynamodb, table, "m1")
    assert quick[0] == motos and quick[1] == motos
    errors = [answer[0] for answer in motos if isinstance(answer, tuple)]
    assert len(errors) == 10 and set(errors) == {"ValidationException"}
    assert motos[0]["seats"] == {"N": "2"} and motos[16]["m"]["M"]["deep"]["M"]["j"] == {"N": "2"}
    assert "part of the key" in motos[18][1] and motos[20]["other"] == {"S": "x"}  # the same text, another name


def test_messages_past_the_queues_retention_period_are_received_as_moto_decides(
        dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The retention check reads the queue's period itself: what ReceiveMessage hands out (a
    fresh message; none once the next one in line is past the period, as moto stops there) is
    what moto's own check gives, with the period given as a string when the queue was made."""
    from moto.sqs.models import SQSBackend, sqs_backends

    sqs = boto3.client("sqs", endpoint_url=dynamodb.meta.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")

    def received(name: str) -> list[list[str]]:
        url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "120",
                                                           "VisibilityTimeout": "0"})["QueueUrl"]
        for body in ("old", "new"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        rounds = [[m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]]
        queue = sqs_backends["123456789012"]["us-east-1"].get_queue(name)
        queue._messages[0].sent_timestamp -= 121_000  # "old" is now past the period
        rounds += [[m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
                   for _ in range(2)]
        return rounds

    quick = received(f"q-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period",
                        moto_patches.moto_originals()["retention_check"])
    assert quick == received(f"m-{uuid.uuid4().hex[:8]}") == [["old", "new"], [], []]



def test_item_sizes_and_the_400_kb_limit_are_moto_own(dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quicker `DynamoType.size` gives moto's size for every attribute type, nested; items are
    made as moto makes them; and the item limit refuses and accepts the same writes (a put and an
    update just over and under)."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    moto_patches.install()
    values = [{"S": "é text"}, {"N": "-12.50"}, {"B": b"\x00\xff"}, {"B": "AAE="}, {"BOOL": False}, {"NULL": True},
              {"SS": ["a", "bé"]}, {"NS": ["1", "2.5"]}, {"BS": [b"a", "AAE="]},
              {"L": [{"S": "x"}, {"N": "1"}, {"M": {"k": {"SS": ["v"]}}}, {"L": []}]},
              {"M": {"inner": {"L": [{"BOOL": True}, {"NULL": True}]}, "ñ": {"B": b"raw"}}}]
    moto_size = moto_patches.moto_originals()["size"]
    for value in values:
        assert DynamoType.size is moto_patches._dynamo_type_size
        assert moto_patches._dynamo_type_size(DynamoType(value)) == moto_size(DynamoType(value)) > 0

    attrs = {f"a{n}": value for n, value in enumerate(values)}
    quick_item, moto_item = Item(DynamoType({"S": "k"}), None, attrs), Item.__new__(Item)
    moto_patches.moto_originals()["item_init"](moto_item, DynamoType({"S": "k"}), None, attrs)
    assert type(quick_item.attrs) is type(moto_item.attrs) is LimitedSizeDict
    assert list(quick_item.attrs) == list(moto_item.attrs) and quick_item == moto_item
    assert quick_item.to_json() == moto_item.to_json()
    assert quick_item.size() == moto_patches.moto_originals()["item_size"](moto_item) > 0

    def limits(prefix: str) -> list[str]:
        outcomes = []
        for n, length in enumerate((404_900, 405_100)):
            key = {"pk": {"S": prefix}, "sk": {"S": f"p{n}"}}
            for put in (True, False):
                try:
                    if put:
                        dynamodb.put_item(TableName=table, Item={**key, "big": {"S": "x" * length}})
                    else:
                        dynamodb.update_item(TableName=table, Key={**key, "sk": {"S": f"u{n}"}},
                                             UpdateExpression="SET big = :b, more = :m", ExpressionAttributeValues={
                                                 ":b": {"S": "x" * (length - 100)}, ":m": {"S": "y" * 90}})
                    outcomes.append("written")
                except ClientError as error:
                    outcomes.append(error.response["Error"]["Message"])
        return outcomes

    quick = limits("size-quick")
    monkeypatch.setattr(DynamoType, "size", moto_size)
    monkeypatch.setattr(LimitedSizeDict, "__setitem__", moto_patches.moto_originals()["limited_setitem"])
    monkeypatch.setattr(Item, "__init__", moto_patches.moto_originals()["item_init"])
    assert quick == limits("size-moto")
    assert quick[0] == quick[1] == "written" and "maximum allowed size" in quick[2] and quick[2] != "written"


def test_messages_are_sent_as_moto_sends_them_on_standard_and_fifo_queues(
        dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """SendMessage without building the queue's attributes: the same messages (bodies, attributes,
    delays refused, FIFO deduplication by content or by id, groups) as moto's own function."""
    from moto.sqs.models import SQSBackend

    sqs = boto3.client("sqs", endpoint_url=dynamodb.meta.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")

    def conversation(prefix: str) -> list[Any]:
        plain = sqs.create_queue(QueueName=f"{prefix}-plain")["QueueUrl"]
        by_content = sqs.create_queue(QueueName=f"{prefix}-c.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
        by_id = sqs.create_queue(QueueName=f"{prefix}-i.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        seen: list[Any] = []
        for call in (
                lambda: sqs.send_message(QueueUrl=plain, MessageBody="one", MessageAttributes={
                    "kind": {"DataType": "String", "StringValue": "refund"}}),
                lambda: sqs.send_message(QueueUrl=plain, MessageBody="late", DelaySeconds=901),
                lambda: sqs.send_message(QueueUrl=by_content, MessageBody="same", MessageGroupId="g"),
                lambda: sqs.send_message(QueueUrl=by_content, MessageBody="same", MessageGroupId="g"),
                lambda: sqs.send_message(QueueUrl=by_id, MessageBody="x", MessageGroupId="g"),
                lambda: sqs.send_message(QueueUrl=by_id, MessageBody="x", MessageGroupId="g",
                                         MessageDeduplicationId="d1"),
                lambda: sqs.send_message(QueueUrl=by_id, MessageBody="y", MessageGroupId="g",
                                         MessageDeduplicationId="d1")):
            try:
                answer = call()
                seen.append(sorted(k for k in answer if k not in ("ResponseMetadata", "MessageId", "SequenceNumber")))
            except ClientError as error:
                seen.append(error.response["Error"]["Message"])
        for url in (plain, by_content, by_id):
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                      MessageAttributeNames=["All"]).get("Messages", [])
            seen.append([(m["Body"], m.get("MessageAttributes"), m["Attributes"].get("MessageDeduplicationId"),
                          m["Attributes"].get("MessageGroupId")) for m in got])
        return seen

    quick = conversation(f"q{uuid.uuid4().hex[:6]}")
    monkeypatch.setattr(SQSBackend, "send_message", moto_patches.moto_originals()["send_message"])
    assert quick == conversation(f"m{uuid.uuid4().hex[:6]}")
    assert "DelaySeconds must be >= 0 and <= 900" in quick[1] and len(quick[8]) == 1  # deduplicated by content


def test_the_pumps_requests_let_the_apis_waiting_requests_go_first_and_each_is_applied_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """infra/local/embedded_aws.py: a request on the background port (the pump process's) that
    meets an API request waiting for the lock lets it go first; both are applied, one at a time."""
    import threading
    import time

    from infra.local import embedded_aws
    from infra.local.embedded_aws import BACKGROUND_ENVIRON_KEY, WorkCount, _OneRequestAtATime
    from infra.local.faults import FaultSwitch

    monkeypatch.setattr(embedded_aws, "BACKGROUND_YIELD_SECONDS", 60.0)  # however slow this machine is

    order: list[str] = []
    inside = threading.Lock()  # held by a request while it is applied: never two at once

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        assert inside.acquire(blocking=False), "two requests applied at once"
        order.append(environ["PATH_INFO"])
        inside.release()
        start_response("200 OK", [])
        return [b"{}"]

    server = _OneRequestAtATime(app, FaultSwitch(None), threading.Event(), threading.Event(),
                                {"queues": WorkCount(), "streams": WorkCount()}, {})
    server._lock.acquire()  # a request being applied
    background = threading.Thread(target=server, args=({"PATH_INFO": "/pump", BACKGROUND_ENVIRON_KEY: True},
                                                        lambda *a: None))
    api = threading.Thread(target=server, args=({"PATH_INFO": "/api"}, lambda *a: None))
    api.start()
    while server._turns._waiting == 0:  # the API request waits for the lock
        time.sleep(0.001)
    background.start()
    time.sleep(0.05)  # the background request comes to wait too (if it comes later, it finds the API's first)
    assert order == []
    server._lock.release()
    api.join(5)
    background.join(5)
    assert order == ["/api", "/pump"]
    server(({"PATH_INFO": "/pump-alone", BACKGROUND_ENVIRON_KEY: True}), lambda *a: None)  # nothing waits: at once
    assert order[-1] == "/pump-alone" and server._turns._waiting == 0


def test_an_items_copy_is_motos_copy_and_shares_nothing_changeable_with_the_item() -> None:
    """moto copies items (the update's old image, a transaction's backup, an index query's
    results): the quicker copy makes what moto's makes (values, types, a value shared by two
    attributes still shared once in the copy), and changing the copy's lists, maps and sets
    leaves the item as it was."""
    import copy

    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    moto_patches.install()
    shared = DynamoType({"M": {"k": {"S": "v"}}})
    item = Item(DynamoType({"S": "k"}), DynamoType({"N": "1"}), {
        "s": {"S": "text"}, "b": {"B": b"\x00"}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1"]},
        "l": {"L": [{"S": "x"}, {"M": {"deep": {"L": [{"N": "2"}]}}}]}, "yes": {"BOOL": True}, "none": {"NULL": True}})
    dict.__setitem__(item.attrs, "one", shared)
    dict.__setitem__(item.attrs, "other", shared)
    before = item.to_json()
    quick = copy.deepcopy(item)
    own = moto_patches.moto_originals()
    moto_copy = own["item_deepcopy"](item, {})
    assert quick == moto_copy and quick.to_json() == moto_copy.to_json() == before
    assert type(quick.attrs) is LimitedSizeDict and list(quick.attrs) == list(moto_copy.attrs)
    assert (quick.hash_key, quick.range_key) == (item.hash_key, item.range_key) and quick.hash_key is not item.hash_key
    assert quick.attrs["one"] is quick.attrs["other"] and moto_copy.attrs["one"] is moto_copy.attrs["other"]
    quick.attrs["ss"].value.append("c")
    quick.attrs["l"].value[1].value["deep"].value.append(DynamoType({"N": "3"}))
    quick.attrs["one"].value["k"] = DynamoType({"S": "changed"})
    quick.attrs["s"] = DynamoType({"S": "changed"})
    assert item.to_json() == before
    assert copy.deepcopy(DynamoType({"L": [{"S": "x"}]})) == own["dynamo_type_deepcopy"](DynamoType({"L": [{"S": "x"}]}), {})


def test_index_queries_answer_what_moto_would_with_the_items_they_cannot_match_dropped_first(
        dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An index query's candidates are first narrowed to the items whose index hash key equals
    the asked value: the same items, order and pages as moto's own query over every item, with
    items lacking the attribute, other values, and values that only differ in case or spaces."""
    from moto.dynamodb.models.table import Table

    for n, status in enumerate(("booked", "Booked", "booked ", "cancelled", None, "booked", "booked")):
        item = {"pk": {"S": f"ix{n % 3}"}, "sk": {"S": f"s{n}"}}
        dynamodb.put_item(TableName=table, Item=item if status is None else {**item, "status": {"S": status}})

    def pages(status: str) -> list[list[tuple[str, str]]]:
        found, start = [], {}
        while True:
            page = dynamodb.query(TableName=table, IndexName="by-status", Limit=2, KeyConditionExpression="#s = :s",
                                  ExpressionAttributeNames={"#s": "status"},
                                  ExpressionAttributeValues={":s": {"S": status}}, **start)
            found.append([(item["pk"]["S"], item["sk"]["S"]) for item in page["Items"]])
            if "LastEvaluatedKey" not in page:
                return found
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    asked = ("booked", "Booked", "booked ", "cancelled", "nobody")
    quick = [pages(status) for status in asked]
    monkeypatch.setattr(Table, "query", moto_patches.moto_originals()["query"])
    assert quick == [pages(status) for status in asked]
    assert sum(len(page) for page in quick[0]) == 6  # a, b, c from the fixture and three here
