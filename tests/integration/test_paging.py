"""The venue's refund list and a transaction's history page with cursors: every item once, in
order, nothing cut off, and only cursors we gave out accepted."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import Venue, World, now
from tests.integration.test_openapi import assert_matches_spec


def _many_refunds(venue: Venue, count: int) -> list[str]:
    """`count` refunds of the venue written straight into storage (the cancellation route would
    take minutes for this many): every third failed, the rest refunded, one second apart."""
    from chalicelib.ids import new_id
    from chalicelib.storage.models import RefundRecord

    start = now() - timedelta(days=1)
    ids = []
    with RefundRecord.batch_write() as batch:
        for n in range(count):
            refund_id, transaction_id = new_id(), new_id()
            status = "failed" if n % 3 == 0 else "refunded"
            at = start + timedelta(seconds=n)
            batch.save(RefundRecord(
                transaction_id=transaction_id, item=f"refund#{refund_id}", venue_id=venue.venue_id,
                refund_id=refund_id, refund_key=refund_id, amount=100 + n, currency="usd", status=status,
                session_ids=[new_id()], payment_intent_id="pi_bulk", created_at=at, updated_at=at,
                venue_status=f"{venue.venue_id}#{status}", refund_venue_id=venue.venue_id, key_generation=1))
            ids.append(refund_id)
    return ids


def _all_pages(venue: Venue, path: str, field: str, limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        separator = "&" if "?" in path else "?"
        answer = venue.admin.get(f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert answer.status == 200, answer.json
        pages.append(answer.json[field])
        cursor = answer.json["next_cursor"]
        if cursor is None:
            return pages


def test_more_than_500_refunds_page_through_every_one_newest_first(world: World) -> None:
    venue = world.venue()
    made = _many_refunds(venue, 520)
    path = f"/v1/admin/venues/{venue.venue_id}/refunds"
    pages = _all_pages(venue, path, "refunds", 100)
    assert [len(p) for p in pages] == [100, 100, 100, 100, 100, 20]
    listed = [r["refund_id"] for p in pages for r in p]
    assert listed == list(reversed(made))
    first = venue.admin.get(path)
    assert len(first.json["refunds"]) == 50 and first.json["next_cursor"]  # the default page
    assert_matches_spec("GET", "/v1/admin/venues/{venue_id}/refunds", 200, first.json, first.headers)

    failed = [r["refund_id"] for p in _all_pages(venue, f"{path}?status=failed", "refunds", 64) for r in p]
    assert failed == [rid for n, rid in reversed(list(enumerate(made))) if n % 3 == 0]


def test_a_page_that_ends_the_list_says_so(world: World) -> None:
    venue = world.venue()
    _many_refunds(venue, 4)
    answer = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/refunds?limit=4")
    assert len(answer.json["refunds"]) == 4 and answer.json["next_cursor"] is None
    empty = world.venue()
    nothing = empty.admin.get(f"/v1/admin/venues/{empty.venue_id}/refunds")
    assert nothing.status == 200 and nothing.json == {"refunds": [], "next_cursor": None}


def test_a_refund_that_changes_status_while_staff_page_shows_once(bought: Any) -> None:
    world, guest, receipt = bought
    venue = guest.venue
    ids = [s["session_id"] for s in receipt["sessions"]]
    for session_id in ids:  # three refunds, pending until delivered
        answer = guest.api.post(f"/v1/me/transactions/{receipt['transaction_id']}/cancellations",
                                {"session_ids": [session_id]})
        assert answer.status == 200
    path = f"/v1/admin/venues/{venue.venue_id}/refunds"
    first = venue.admin.get(f"{path}?limit=1").json
    assert first["refunds"][0]["status"] == "pending"
    world.stack.deliver_all()  # every refund is paid meanwhile
    rest = venue.admin.get(f"{path}?limit=5&cursor={first['next_cursor']}").json
    listed = [r["refund_id"] for r in first["refunds"] + rest["refunds"]]
    assert len(listed) == 3 == len(set(listed)) and rest["next_cursor"] is None
    assert {r["status"] for r in rest["refunds"]} == {"refunded"}


def test_the_history_pages_oldest_first(bought: Any) -> None:
    _world, guest, receipt = bought
    venue = guest.venue
    for session in receipt["sessions"]:
        guest.api.patch(f"/v1/me/transactions/{receipt['transaction_id']}/sessions/{session['session_id']}",
                        {"participant_name": f"Renamed {session['session_id'][-4:]}"})
    path = f"/v1/admin/venues/{venue.venue_id}/transactions/{receipt['transaction_id']}/history"
    whole = venue.admin.get(path)
    assert_matches_spec("GET", "/v1/admin/venues/{venue_id}/transactions/{transaction_id}/history", 200,
                        whole.json, whole.headers)
    assert [e["action"] for e in whole.json["events"]] == ["purchased"] + ["participant_renamed"] * 3
    assert whole.json["next_cursor"] is None
    pages = _all_pages(venue, path, "events", 3)
    assert [len(p) for p in pages] == [3, 1]
    assert [e for p in pages for e in p] == whole.json["events"]


BAD_QUERIES = ["limit=0", "limit=101", "limit=ten", "limit=-1", "cursor=", "cursor=a.b",
               "cursor=AAAAAAAAAAAAAAAAAAAAAAeyJ0cmFuc2FjdGlvbl9pZCI6IDF9"]


def test_bad_limits_and_forged_cursors_are_refused(bought: Any) -> None:
    _world, guest, receipt = bought
    venue = guest.venue
    for path in (f"/v1/admin/venues/{venue.venue_id}/refunds",
                 f"/v1/admin/venues/{venue.venue_id}/transactions/{receipt['transaction_id']}/history"):
        for query in BAD_QUERIES:
            answer = venue.admin.get(f"{path}?{query}")
            assert answer.status == 400 and answer.error_code == "invalid_request", (path, query, answer.json)


def test_a_cursor_works_only_for_the_list_that_gave_it(world: World) -> None:
    venue, other = world.venue(), world.venue()
    _many_refunds(venue, 6)
    _many_refunds(other, 6)
    path = f"/v1/admin/venues/{venue.venue_id}/refunds"
    cursor = venue.admin.get(f"{path}?limit=2").json["next_cursor"]
    failed_cursor = venue.admin.get(f"{path}?status=failed&limit=1").json["next_cursor"]
    assert venue.admin.get(f"{path}?limit=2&cursor={cursor}").status == 200
    assert venue.admin.get(f"{path}?status=failed&cursor={cursor}").status == 400
    assert venue.admin.get(f"{path}?cursor={failed_cursor}").status == 400
    elsewhere = other.admin.get(f"/v1/admin/venues/{other.venue_id}/refunds?cursor={cursor}")
    assert elsewhere.status == 400 and elsewhere.error_code == "invalid_request"


def test_a_cancellation_of_several_sessions_pages_as_one_event_each(bought: Any) -> None:
    """It is stored as one item (one write, not one per session), yet staff read one
    `session_cancelled` event per session, with its own refund and fee, and a page may end
    between two of them."""
    world, guest, receipt = bought
    venue = guest.venue
    ids = [s["session_id"] for s in receipt["sessions"]]
    cancelled = guest.api.post(f"/v1/me/transactions/{receipt['transaction_id']}/cancellations",
                               {"session_ids": ids})
    assert cancelled.status == 200
    world.stack.deliver_all()  # the refund's outcome is one more event
    path = f"/v1/admin/venues/{venue.venue_id}/transactions/{receipt['transaction_id']}/history"
    answer = venue.admin.get(path)
    whole = answer.json
    assert [e["action"] for e in whole["events"]] == ["purchased"] + ["session_cancelled"] * 3 + ["refund_refunded"]
    events = whole["events"][1:4]
    assert [e["session_id"] for e in events] == ids
    assert all(e["after"] == {"status": "cancelled", "refund_status": "pending", "refund_amount": 2500,
                              "fee_amount": 0} and e["before"] == {"status": "booked"} for e in events)
    assert len({e["event_id"] for e in whole["events"]}) == 5
    assert_matches_spec("GET", "/v1/admin/venues/{venue_id}/transactions/{transaction_id}/history", 200,
                        whole, answer.headers)
    from chalicelib.storage.models import HistoryEvent

    stored = list(HistoryEvent.query(receipt["transaction_id"], consistent_read=True))
    assert len(stored) == 3  # the purchase, the cancellation, the refund's outcome: what the venue pays to write
    for size in (1, 2, 3):
        pages = _all_pages(venue, path, "events", size)
        assert [e for p in pages for e in p] == whole["events"], size
        assert all(len(p) == size for p in pages[:-1])


def test_a_history_cursor_naming_no_event_shown_leads_on_or_is_refused_never_a_500(bought: Any) -> None:
    """A cursor names the last event shown: an item's, or one session's part of a cancellation's
    item. One made with our own key for a part that item never had leads past the item; one that
    names no event at all is a 400, like any cursor we did not give out."""
    from chalicelib.storage import pages

    _world, guest, receipt = bought
    venue = guest.venue
    ids = [s["session_id"] for s in receipt["sessions"]]
    assert guest.api.post(f"/v1/me/transactions/{receipt['transaction_id']}/cancellations",
                          {"session_ids": ids}).status == 200
    path = f"/v1/admin/venues/{venue.venue_id}/transactions/{receipt['transaction_id']}/history"
    whole = venue.admin.get(path).json["events"]
    purchased, cancellation = whole[0]["event_id"], whole[1]["event_id"].split("-")[0]
    scope = f"history:{venue.venue_id}:{receipt['transaction_id']}"

    def after(event_id: Any) -> Any:
        key = {"transaction_id": {"S": receipt["transaction_id"]}, "event_id": event_id}
        return venue.admin.get(f"{path}?cursor={pages.encode_cursor(key, scope)}")

    assert after({"S": f"{cancellation}-9"}).json == {"events": whole[4:], "next_cursor": None}
    assert after({"S": f"{purchased}-1"}).json == {"events": whole[1:], "next_cursor": None}
    for forged in ({"S": f"{cancellation}-x"}, {"S": f"{cancellation}-"}, {"S": f"{cancellation}-1-2"},
                   {"S": f"{cancellation}-0"}, {"N": "1"}, "01"):
        answer = after(forged)
        assert (answer.status, answer.error_code) == (400, "invalid_request"), (forged, answer.json)
