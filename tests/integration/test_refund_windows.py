"""Refund windows in the background: the scheduled sweep closes windows whose deadline has passed,
and a settings change re-projects the stored deadlines of the venue's future sessions.

The test database is shared by the whole run, so every assertion is about sessions these tests
made; a sweep at a given `now` closes every window crossing it, whoever made the session."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.api import representations as shape
from chalicelib.ids import new_id
from chalicelib.services import receipts
from chalicelib.services.refund_windows import close_due_windows, reproject_venue
from chalicelib.storage.models import BookingItem, SessionRecord
from chalicelib.storage.shards import window_shard
from infra.local.stack import lambda_context
from tests.conftest import Venue, World, now
from tests.dynamodb_calls import count_dynamodb_calls


def _sessions(transaction_id: str) -> list[SessionRecord]:
    items = BookingItem.query(transaction_id, consistent_read=True)
    return sorted((i for i in items if isinstance(i, SessionRecord)), key=lambda s: s.start)


def _receipt_sessions(venue: Venue, transaction_id: str, at: datetime) -> list[dict[str, Any]]:
    """What the guest's receipt shows at `at` (the route renders exactly this, at the request's time)."""
    found = receipts.receipt(venue.venue_id, transaction_id)
    return shape.receipt(found.venue, found.transaction, found.sessions, found.refunds, at)["sessions"]


def _window(session: SessionRecord) -> tuple[str, datetime | None, bool]:
    return session.refund_window, session.refund_deadline, session.window_shard is not None


def _buy(world: World, venue: Venue, *starts: datetime) -> str:
    guest = world.guest(venue, login=False)
    return str(world.purchase(guest, [world.slot(venue, start=start) for start in starts])["transaction_id"])


def test_a_sweep_closes_exactly_the_windows_whose_deadline_has_passed(world: World) -> None:
    t0 = now()
    refunding = world.venue(refund_on_cancel=True, cutoff_hours=24)
    no_refunds = world.venue(allow_guest_modify=True)
    soon, later = t0 + timedelta(hours=26), t0 + timedelta(days=3)
    tx = _buy(world, refunding, soon, later)
    tx_off = _buy(world, no_refunds, soon)
    assert [_window(s) for s in _sessions(tx)] == [
        ("open", soon - timedelta(hours=24), True), ("open", later - timedelta(hours=24), True)]
    assert [_window(s) for s in _sessions(tx_off)] == [("closed", None, False)]

    sweep_at = t0 + timedelta(hours=3)  # past the first session's deadline only
    result = close_due_windows(sweep_at)

    assert result.closed >= 1 and result.shards > 0
    assert [_window(s) for s in _sessions(tx)] == [
        ("closed", soon - timedelta(hours=24), False), ("open", later - timedelta(hours=24), True)]
    assert [_window(s) for s in _sessions(tx_off)] == [("closed", None, False)]
    shown = _receipt_sessions(refunding, tx, sweep_at)
    assert [(s["refund_window"], s["actions"]["refund_on_cancel"]) for s in shown] == [
        ("closed", False), ("open", True)]

    again = close_due_windows(sweep_at)
    assert again.closed == 0
    assert next(_window(s) for s in _sessions(tx)) == ("closed", soon - timedelta(hours=24), False)


def test_a_window_is_still_open_at_its_deadline_and_closes_just_after(world: World) -> None:
    t0 = now()
    venue = world.venue(refund_on_cancel=True, cutoff_hours=24)
    tx = _buy(world, venue, t0 + timedelta(hours=26))
    deadline = t0 + timedelta(hours=2)

    close_due_windows(deadline)  # cancelling exactly at the deadline still refunds
    assert _window(_sessions(tx)[0]) == ("open", deadline, True)
    close_due_windows(deadline + timedelta(microseconds=1))
    assert _window(_sessions(tx)[0]) == ("closed", deadline, False)


def test_the_sweep_leaves_a_cancelled_session_alone(world: World) -> None:
    t0 = now()
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    tx = _buy(world, venue, t0 + timedelta(hours=26))
    [session] = _sessions(tx)
    # As if a cancellation had raced the sweep: still in the open-windows index, no longer booked.
    session.update(actions=[SessionRecord.status.set("cancelled")])

    result = close_due_windows(t0 + timedelta(hours=3))

    assert result.skipped >= 1
    [after] = _sessions(tx)
    assert after.status == "cancelled"
    assert _window(after) == _window(session) == ("open", t0 + timedelta(hours=2), True)


def test_the_sweep_follows_the_current_settings_when_the_stored_deadline_lags(world: World) -> None:
    t0 = now()
    venue = world.venue(refund_on_cancel=True, cutoff_hours=24)
    start = t0 + timedelta(hours=26)
    tx = _buy(world, venue, start)
    world.settings(venue, False, True, 2)  # the re-projection message is not delivered yet

    result = close_due_windows(t0 + timedelta(hours=3))

    assert result.reprojected >= 1
    assert [_window(s) for s in _sessions(tx)] == [("open", start - timedelta(hours=2), True)]
    world.stack.deliver_all()
    assert [_window(s) for s in _sessions(tx)] == [("open", start - timedelta(hours=2), True)]


def test_a_settings_change_moves_the_stored_deadlines_in_the_background(world: World) -> None:
    t0 = now()
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    first, second = t0 + timedelta(days=3), t0 + timedelta(days=5)
    tx = _buy(world, venue, first, second)
    world.stack.deliver_all()

    world.settings(venue, True, True, 2)
    assert [_window(s)[1] for s in _sessions(tx)] == [first - timedelta(hours=24), second - timedelta(hours=24)]
    world.stack.deliver_all()
    assert [_window(s) for s in _sessions(tx)] == [
        ("open", first - timedelta(hours=2), True), ("open", second - timedelta(hours=2), True)]

    world.settings(venue, True, False, 2)
    world.stack.deliver_all()
    sessions = _sessions(tx)
    assert [_window(s) for s in sessions] == [("closed", None, False), ("closed", None, False)]
    for session in sessions:
        shard = window_shard(session.session_id)
        assert session.item not in {i.item for i in BookingItem.open_refund_windows.query(shard)}

    rerun = reproject_venue(venue.venue_id, now())
    assert (rerun.sessions_read, rerun.updated, rerun.unchanged) == (2, 0, 2)


def test_a_settings_change_ignores_cancelled_and_started_sessions(world: World) -> None:
    t0 = now()
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    tx = _buy(world, venue, t0 + timedelta(days=3), t0 + timedelta(days=4))
    cancelled, booked = _sessions(tx)
    cancelled.update(actions=[SessionRecord.status.set("cancelled"), SessionRecord.window_shard.remove(),
                              SessionRecord.refund_window.set("closed")])

    world.settings(venue, True, True, 48)
    result = reproject_venue(venue.venue_id, now())

    assert (result.sessions_read, result.updated) == (1, 1)
    assert _window(_sessions(tx)[0]) == ("closed", t0 + timedelta(days=2), False)
    assert _window(_sessions(tx)[1]) == ("open", booked.start - timedelta(hours=48), True)
    world.stack.deliver_all()


def test_a_failed_deadline_message_alone_comes_back(world: World) -> None:
    venue = world.venue(refund_on_cancel=True)
    event = {"Records": [_sqs_record("m-good", {"venue_id": venue.venue_id, "settings_version": 2}),
                         _sqs_record("m-unreadable", "not json"),
                         _sqs_record("m-again", {"venue_id": venue.venue_id, "settings_version": 2}),
                         _sqs_record("m-gone", {"venue_id": "no-such-venue", "settings_version": 1})]}

    answer = world.stack.app_module.handle_deadline_updates(event, lambda_context("handle_deadline_updates"))

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-unreadable"}]}


def test_the_scheduled_function_closes_a_window_as_its_deadline_passes(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True, cutoff_hours=24)
    guest = world.guest(venue)
    deadline = now() + timedelta(seconds=4)
    tx = world.purchase(guest, [world.slot(venue, start=deadline + timedelta(hours=24))])["transaction_id"]
    assert _window(_sessions(tx)[0])[0] == "open"
    time.sleep(max(0.0, (deadline - now()).total_seconds()) + 1.1)
    capsys.readouterr()

    world.stack.run_schedules_once()

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [logged] = [line for line in lines if line.get("event") == "refund_windows_closed"]
    assert logged["closed"] >= 1 and logged["items_read"] >= logged["closed"]
    assert _window(_sessions(tx)[0]) == ("closed", deadline, False)
    [shown] = guest.api.get(f"/v1/me/transactions/{tx}").json["sessions"]
    assert (shown["refund_window"], shown["actions"]["refund_on_cancel"]) == ("closed", False)


@pytest.mark.slow
def test_the_sweep_reads_only_what_crosses_not_the_whole_table(world: World) -> None:
    t0 = now()
    venue = world.venue(refund_on_cancel=True, cutoff_hours=24)
    backlog = close_due_windows(t0)  # whatever earlier tests left crossing `t0` is closed now
    future = [_bulk_session(venue.venue_id, t0 + timedelta(days=2, seconds=i)) for i in range(10_000)]
    crossing = [_bulk_session(venue.venue_id, t0 - timedelta(minutes=1, seconds=i)) for i in range(20)]
    with BookingItem.batch_write() as batch:
        for session in future + crossing:
            batch.save(session)

    with count_dynamodb_calls() as calls:
        result = close_due_windows(t0)

    assert result.closed == 20
    assert result.items_read <= 20 + backlog.skipped  # sessions that could not be closed stay crossing
    assert calls.items_returned <= result.items_read + 1  # plus the one venue's settings
    assert calls.items_evaluated <= result.items_read
    stored = SessionRecord.batch_get([(s.transaction_id, s.item) for s in crossing + future[:80]])
    windows = {s.item: s.refund_window for s in stored}
    assert [windows[s.item] for s in crossing] == ["closed"] * 20
    assert [windows[s.item] for s in future[:80]] == ["open"] * 80


def _bulk_session(venue_id: str, deadline: datetime) -> SessionRecord:
    session_id = new_id()
    start = deadline + timedelta(hours=24)
    return SessionRecord(
        transaction_id=new_id(), item=f"session#{session_id}", venue_id=venue_id, session_id=session_id,
        slot_id="bulk", product_id="jump-60", product_name="Open Jump 60 min", start=start,
        end=start + timedelta(hours=1), participant_name="Kid", amount=2500, status="booked",
        refund_status="none", refund_deadline=deadline, refund_window="open",
        window_shard=window_shard(session_id), session_venue_id=venue_id)


def _sqs_record(message_id: str, body: Any) -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}",
            "body": body if isinstance(body, str) else json.dumps(body), "attributes": {},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:rebook-test-deadline-updates",
            "awsRegion": "us-east-1"}
