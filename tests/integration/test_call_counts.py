"""What the guest's everyday operations cost in DynamoDB calls in a warm Lambda: a receipt is its
one Query, a cancellation of any number of sessions its Query and its TransactWriteItems, a move
two, a refund worker message two, an email from the table stream two (its claim and its `sent`
mark); and the venue's cached settings never decide a write once they have changed."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.storage import venue_cache
from chalicelib.storage.models import VenueRecord
from tests.conftest import World
from tests.dynamodb_calls import count_dynamodb_calls
from tests.integration.test_cancellations import cancel
from tests.integration.test_emails import kinds_sent


@pytest.fixture
def warm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Requests within the cache's lifetime of each other, however slow this machine is today."""
    monkeypatch.setattr(venue_cache, "MAX_AGE_SECONDS", 3600.0)
    yield


def receipt_path(made: dict[str, Any]) -> str:
    return f"/v1/me/transactions/{made['transaction_id']}"


def test_a_warm_receipt_is_one_query(world: World, warm: None) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue), world.slot(venue), world.slot(venue)])
    with count_dynamodb_calls() as cold:
        first = guest.api.get(receipt_path(made))
    with count_dynamodb_calls() as calls:
        again = guest.api.get(receipt_path(made))
    assert first.status == again.status == 200 and again.json == first.json
    assert cold.operations == ["Query", "GetItem"]  # a cold Lambda reads the venue once
    assert calls.operations == ["Query"]


def test_a_warm_cancellation_is_two_calls_for_1_or_10_sessions(world: World, warm: None) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue)
    slot = world.slot(venue, capacity=30)
    one, ten, keyed = (world.purchase(guest, [slot]), world.purchase(guest, [slot] * 10),
                       world.purchase(guest, [slot]))
    assert guest.api.get(receipt_path(one)).status == 200  # the Lambda has the venue now
    with count_dynamodb_calls() as single:
        assert cancel(guest, one, [0]).status == 200
    with count_dynamodb_calls() as many:
        answer = cancel(guest, ten, list(range(10)))
    with count_dynamodb_calls() as with_key:
        assert cancel(guest, keyed, [0], key="k1").status == 200
    assert answer.status == 200 and answer.json["refund"]["amount"] == 10 * 2500
    assert single.operations == many.operations == ["Query", "TransactWriteItems"]
    assert with_key.operations == ["GetItem", "Query", "TransactWriteItems"]  # the earlier answer, if any


def test_a_settings_change_by_another_lambda_is_never_decided_on_from_the_cached_copy(
        world: World, warm: None) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    assert guest.api.get(receipt_path(made)).json["sessions"][0]["actions"]["refund_on_cancel"] is True
    # Another Lambda instance saves new settings: this one still holds the old copy.
    VenueRecord(venue.venue_id).update(actions=[VenueRecord.refund_on_cancel.set(False),
                                                VenueRecord.settings_version.add(1)])
    with count_dynamodb_calls() as calls:
        answer = cancel(guest, made, [0])
    assert answer.status == 200
    assert answer.json["refund"] is None  # decided on the current settings: no refund any more
    receipt = guest.api.get(receipt_path(made)).json
    assert receipt["refunds"] == [] and receipt["sessions"][0]["refund_status"] == "not_refunded"
    assert receipt["sessions"][0]["status"] == "cancelled"
    assert world.stack.stripe.refunds() == [] or all(
        r["metadata"].get("transaction_id") != made["transaction_id"] for r in world.stack.stripe.refunds())
    # the stale write changed nothing; one fresh read of the venue; the write again
    assert calls.operations == ["Query", "TransactWriteItems", "GetItem", "TransactWriteItems"]


def test_a_move_is_two_calls(world: World, warm: None) -> None:
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    here, there = world.slot(venue), world.slot(venue)
    made = world.purchase(guest, [here])
    session_id = made["sessions"][0]["session_id"]
    with count_dynamodb_calls() as calls:
        answer = guest.api.patch(f"{receipt_path(made)}/sessions/{session_id}", {"slot_id": there["slot_id"]})
    assert answer.status == 200 and answer.json["slot_id"] == there["slot_id"]
    assert calls.operations == ["BatchGetItem", "TransactWriteItems"]


def _refund_message(world: World, refund_id: str) -> tuple[dict[str, Any], str]:
    """This refund's message from the refund queue, and the queue's ARN; any other test's message
    received on the way is put straight back."""
    import json

    from infra.local.stack import LOCAL_REGION

    sqs, name = world.stack._sqs(), next(n for n, h in world.stack.queue_handlers()
                                 if h is world.stack.app_module.handle_refunds)  # type: ignore[union-attr]
    url = world.stack.queue_url(name)
    for _ in range(20):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            if json.loads(message["Body"]).get("refund_id") == refund_id:
                return message, f"arn:aws:sqs:{LOCAL_REGION}:000000000000:{name}"
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    raise AssertionError(f"no message for refund {refund_id}")


def test_a_refund_worker_message_is_two_calls(world: World, warm: None) -> None:
    from infra.local.stack import lambda_context, sqs_record

    venue = world.venue(refund_on_cancel=True)
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue), world.slot(venue)])
    assert cancel(guest, made, [0, 1]).status == 200
    [refund] = guest.api.get(receipt_path(made)).json["refunds"]
    message, arn = _refund_message(world, refund["refund_id"])
    with count_dynamodb_calls() as calls:
        answer = world.stack.app_module.handle_refunds(  # type: ignore[union-attr]
            {"Records": [sqs_record(message, arn)]}, lambda_context("handle_refunds"))
    assert answer == {"batchItemFailures": []}
    receipt = guest.api.get(receipt_path(made)).json
    assert [r["status"] for r in receipt["refunds"]] == ["refunded"]
    assert [s["refund_status"] for s in receipt["sessions"]] == ["refunded", "refunded"]
    assert calls.operations == ["GetItem", "TransactWriteItems"]


def test_an_email_from_the_stream_is_its_claim_and_its_sent_mark(world: World, warm: None) -> None:
    """The stream's record carries the notice (it is not read again) and a warm sender knows the
    guest's address after its first email (a guest's address is its key: it never changes)."""
    venue = world.venue(allow_guest_modify=True)
    guest = world.guest(venue)
    here, there = world.slot(venue), world.slot(venue)
    made = world.purchase(guest, [here])
    path = f"{receipt_path(made)}/sessions/{made['sessions'][0]['session_id']}"
    world.stack.deliver_streams()  # earlier records (this worker's other tests) out of the way
    counted = []
    for slot in (there, here):
        assert guest.api.patch(path, {"slot_id": slot["slot_id"]}).status == 200
        with count_dynamodb_calls() as calls:
            world.stack.deliver_streams()
        counted.append(calls.operations)
    assert counted == [["Query", "UpdateItem", "UpdateItem"], ["UpdateItem", "UpdateItem"]]
    assert kinds_sent(world, guest) == {"session_changed": 2}
    assert len([e for e in world.stack.emails() if e["to"] == [guest.email]]) == 2
