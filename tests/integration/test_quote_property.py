"""A property of the HTTP API: over amounts, fees, cutoffs and session starts, the quote a guest
is shown and the cancellation they then confirm agree to the cent (the confirmation, carrying
the quoted amount, is never refused as `quote_changed`), and every refundable session's refund
and fee add up to its amount."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import Guest, Venue, World, now

# Slots start these many whole hours (plus half an hour) ahead, and cutoffs are whole hours, so
# every refund deadline is at least 30 minutes from the test's clock: which side of it a session
# is on is known in advance.
HOURS_AHEAD = (1, 5, 11, 23, 24, 47, 71, 200)
CUTOFFS = (0, 1, 12, 24, 48, 72)


@pytest.fixture(scope="module")
def shop(client: Any, stack: Any) -> tuple[World, Venue, Guest, dict[int, dict[str, Any]]]:
    world = World(client, stack)
    venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
    guest = world.guest(venue)
    t0 = now()
    slots = {hours: world.slot(venue, start=t0 + timedelta(hours=hours, minutes=30), capacity=10_000)
             for hours in HOURS_AHEAD}
    return world, venue, guest, slots


purchases = st.lists(st.tuples(st.sampled_from(HOURS_AHEAD), st.integers(0, 50_000)), min_size=1, max_size=4)


# No shrinking: each example is a purchase through the stack, and a failure prints its example.
@settings(max_examples=12, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(bought=purchases, cutoff=st.sampled_from(CUTOFFS), fee_fixed=st.integers(0, 3000),
       fee_percent=st.integers(0, 100))
def test_the_quote_and_the_confirmed_cancellation_agree_to_the_cent(
        shop: tuple[World, Venue, Guest, dict[int, dict[str, Any]]], bought: list[tuple[int, int]],
        cutoff: int, fee_fixed: int, fee_percent: int) -> None:
    world, venue, guest, slots = shop
    saved = venue.admin.put(f"/v1/admin/venues/{venue.venue_id}/settings", {
        "allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": cutoff,
        "cancellation_fee_fixed": fee_fixed, "cancellation_fee_percent": fee_percent})
    assert saved.status == 200
    total = sum(amount for _, amount in bought)
    made = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/transactions", {
        "guest_id": guest.guest_id, "payment_intent_id": world.payment_intent(max(total, 1)), "currency": "usd",
        "sessions": [{"slot_id": slots[hours]["slot_id"], "participant_name": f"Kid {i}", "amount": amount}
                     for i, (hours, amount) in enumerate(bought)]})
    assert made.status == 201, made.json
    receipt = made.json
    ids = [s["session_id"] for s in receipt["sessions"]]
    hours_of_slot = {slot["slot_id"]: hours for hours, slot in slots.items()}
    hours_of = {s["session_id"]: hours_of_slot[s["slot_id"]] for s in receipt["sessions"]}
    amount_of = {s["session_id"]: s["amount"] for s in receipt["sessions"]}
    path = f"/v1/me/transactions/{receipt['transaction_id']}"

    quote = guest.api.post(f"{path}/cancellation-quote", {"session_ids": ids})
    assert quote.status == 200
    done = guest.api.post(f"{path}/cancellations",
                          {"session_ids": ids, "expected_refund_amount": quote.json["refund_amount"]})

    assert done.status == 200, done.json
    refund = done.json["refund"]
    assert (refund["amount"] if refund else 0) == quote.json["refund_amount"]
    assert quote.json["refund_amount"] == sum(s["refund_amount"] for s in quote.json["sessions"])
    refunded = {s["session_id"]: s["refund_status"] for s in done.json["sessions"]}
    for line in quote.json["sessions"]:
        session_id = line["session_id"]
        assert line["refundable"] == (hours_of[session_id] >= cutoff)
        if line["refundable"]:
            assert line["refund_amount"] + line["fee_amount"] == amount_of[session_id]
            assert line["refund_amount"] == max(0, amount_of[session_id] - fee_fixed
                                                - amount_of[session_id] * fee_percent // 100)
        else:
            assert line["refund_amount"] == line["fee_amount"] == 0
        assert refunded[session_id] == ("pending" if line["refund_amount"] > 0 else "not_refunded")
        assert (session_id in (refund["session_ids"] if refund else [])) == (line["refund_amount"] > 0)
