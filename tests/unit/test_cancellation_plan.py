"""The cancellation planner without I/O: the quote and the cancellation are the same computation,
so over any amounts, fees, cutoffs and instants they agree to the cent, and every refundable
session's refund and fee add up to its amount."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import rules
from chalicelib.api import representations as shape
from chalicelib.services.cancellations import apply_plan, plan_cancellation
from chalicelib.services.receipts import Receipt
from chalicelib.storage.models import SessionRecord, TransactionRecord, VenueRecord

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


def receipt(venue_settings: rules.VenueSettings, sessions: list[tuple[int, int, bool]]) -> Receipt:
    """A receipt whose sessions are `(amount, seconds from NOW to the start, refund forfeited)`."""
    venue = VenueRecord(venue_id="V1", name="Bounce Park", timezone="Europe/London", currency="usd",
                        allow_guest_modify=venue_settings.allow_guest_modify,
                        refund_on_cancel=venue_settings.refund_on_cancel,
                        refund_cutoff_hours=venue_settings.refund_cutoff_hours,
                        cancellation_fee_fixed=venue_settings.cancellation_fee_fixed,
                        cancellation_fee_percent=venue_settings.cancellation_fee_percent,
                        settings_version=1, settings_updated_at=NOW, created_at=NOW)
    records = []
    for index, (amount, seconds, forfeited) in enumerate(sessions):
        start = NOW + timedelta(seconds=seconds)
        records.append(SessionRecord(
            transaction_id="T1", item=f"session#S{index}", venue_id="V1", session_id=f"S{index}", slot_id="A",
            product_id="jump", product_name="Jump", start=start, end=start + timedelta(hours=1),
            participant_name="Kid", amount=amount, status="booked", refund_forfeited=True if forfeited else None))
    transaction = TransactionRecord(transaction_id="T1", item="transaction", venue_id="V1", guest_id="G1",
                                    purchased_at=NOW - timedelta(days=10), currency="usd",
                                    total=sum(amount for amount, _, _ in sessions), payment_intent_id="pi_1",
                                    session_count=len(sessions))
    return Receipt(venue=venue, transaction=transaction, sessions=records, refunds=[])


policies = st.builds(rules.VenueSettings, allow_guest_modify=st.booleans(), refund_on_cancel=st.just(True),
                     refund_cutoff_hours=st.integers(0, 72), cancellation_fee_fixed=st.integers(0, 5000),
                     cancellation_fee_percent=st.integers(0, 100))
# Starts from one second to five days ahead: on both sides of any cutoff up to 72 hours.
sessions = st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 5 * 86_400), st.booleans()),
                    min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(venue_settings=policies, bought=sessions)
def test_the_quote_and_the_cancellation_agree_to_the_cent(venue_settings: rules.VenueSettings,
                                                         bought: list[tuple[int, int, bool]]) -> None:
    made = receipt(venue_settings, bought)
    ids = [s.session_id for s in made.sessions]
    quote = shape.quote(plan_cancellation(made, ids, NOW))
    done = apply_plan(plan_cancellation(made, ids, NOW), made)

    assert (done.refund.amount if done.refund else 0) == quote["refund_amount"]
    assert quote["refund_amount"] == sum(s["refund_amount"] for s in quote["sessions"])
    assert quote["fee_amount"] == sum(s["fee_amount"] for s in quote["sessions"])
    paid = [s["session_id"] for s in quote["sessions"] if s["refund_amount"] > 0]
    assert (sorted(done.refund.session_ids) if done.refund else []) == sorted(paid)
    statuses = {s.session_id: s.refund_status for s in done.sessions_after}
    assert statuses == {s["session_id"]: "pending" if s["refund_amount"] > 0 else "not_refunded"
                        for s in quote["sessions"]}
    for quoted, (amount, seconds, forfeited) in zip(quote["sessions"], bought, strict=True):
        deadline = NOW + timedelta(seconds=seconds) - timedelta(hours=venue_settings.refund_cutoff_hours)
        assert quoted["refundable"] == (not forfeited and deadline >= NOW)
        if quoted["refundable"]:
            assert quoted["refund_amount"] + quoted["fee_amount"] == amount
        else:
            assert quoted["refund_amount"] == quoted["fee_amount"] == 0


def test_a_cancellation_whose_refunds_add_up_to_zero_makes_no_refund() -> None:
    keeps_everything = rules.VenueSettings(refund_on_cancel=True, refund_cutoff_hours=24, cancellation_fee_fixed=5000)
    made = receipt(keeps_everything, [(2500, 3 * 86_400, False), (0, 3 * 86_400, False)])
    plan = plan_cancellation(made, ["S0", "S1"], NOW)
    done = apply_plan(plan, made)
    assert (plan.refund_amount, plan.fee_amount, done.refund) == (0, 2500, None)
    assert [s.refund_status for s in done.sessions_after] == ["not_refunded", "not_refunded"]


def test_a_free_session_beside_a_paid_one_is_not_part_of_the_refund() -> None:
    venue_settings = rules.VenueSettings(refund_on_cancel=True, refund_cutoff_hours=24)
    made = receipt(venue_settings, [(2500, 3 * 86_400, False), (0, 3 * 86_400, False)])
    done = apply_plan(plan_cancellation(made, ["S0", "S1"], NOW), made)
    assert done.refund is not None and (done.refund.amount, done.refund.session_ids) == (2500, ["S0"])
    assert [s.refund_status for s in done.sessions_after] == ["pending", "not_refunded"]


def test_a_staff_refund_choice_goes_through_the_same_plan() -> None:
    venue_settings = rules.VenueSettings(refund_on_cancel=True, refund_cutoff_hours=24, cancellation_fee_fixed=300)
    made = receipt(venue_settings, [(2500, 3600, False)])  # inside the no-refund window
    assert plan_cancellation(made, ["S0"], NOW).refund_amount == 0
    assert plan_cancellation(made, ["S0"], NOW, refund=rules.RefundMode.FULL).refund_amount == 2500
