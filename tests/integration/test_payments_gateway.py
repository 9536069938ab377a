"""The Stripe gateway against the local stand-in, through the real `stripe` SDK on loopback."""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from chalicelib import payments
from chalicelib.payments import FinalPaymentError, RetryablePaymentError, StripeGateway
from infra.local.stripe_standin import StripeStandIn

API_KEY = "sk_test_rebook"


@pytest.fixture(scope="module")
def running_standin() -> Iterator[StripeStandIn]:
    with StripeStandIn(port=0) as standin:
        yield standin


@pytest.fixture
def standin(running_standin: StripeStandIn) -> StripeStandIn:
    running_standin.reset()
    return running_standin


# Lambda has no `requests`, so there the SDK talks through urllib: both must behave the same.
@pytest.fixture(params=["requests", "urllib"])
def gateway(request: pytest.FixtureRequest, standin: StripeStandIn) -> StripeGateway:
    http_client = stripe.RequestsClient() if request.param == "requests" else stripe.UrllibClient()
    return StripeGateway(API_KEY, api_base=standin.url, http_client=http_client)


@pytest.fixture
def paid(standin: StripeStandIn) -> str:
    """A guest's succeeded payment of 50.00 EUR."""
    return standin.create_payment_intent(5000, "eur")["id"]


def refund(gateway: StripeGateway, payment: str, amount: int = 2000, key: str = "refund-r1-g0",
           refund_id: str = "r1") -> payments.StripeRefund:
    return gateway.create_refund(payment_intent_id=payment, amount=amount, idempotency_key=key,
                                 metadata={"refund_id": refund_id})


def control(standin: StripeStandIn, action: str, body: dict | None = None) -> object:
    request = urllib.request.Request(f"{standin.url}/_standin/{action}", method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)


def test_a_payment_is_looked_up_with_what_was_received(gateway: StripeGateway, paid: str) -> None:
    intent = gateway.get_payment_intent(paid)

    assert intent == payments.PaymentIntent(id=paid, status="succeeded", currency="eur", amount=5000,
                                            amount_received=5000)


def test_an_unknown_payment_is_none(gateway: StripeGateway) -> None:
    assert gateway.get_payment_intent("pi_does_not_exist") is None


def test_a_payment_created_through_the_sdk_is_found(gateway: StripeGateway, standin: StripeStandIn) -> None:
    client = stripe.StripeClient(API_KEY, base_addresses={"api": standin.url}, max_network_retries=0)
    created = client.v1.payment_intents.create(params={"amount": 1200, "currency": "eur", "confirm": True,
                                                       "payment_method": "pm_card_visa"})

    assert gateway.get_payment_intent(created.id).status == "succeeded"


def test_a_refund_is_paid_and_carries_our_refund_id(gateway: StripeGateway, standin: StripeStandIn,
                                                    paid: str) -> None:
    made = refund(gateway, paid, 2000)

    assert made.id.startswith("re_")
    assert (made.status, made.amount, made.payment_intent) == ("succeeded", 2000, paid)
    assert made.metadata == {"refund_id": "r1"}
    assert made.failure_reason is None
    [stored] = standin.refunds()
    assert stored["id"] == made.id and stored["reason"] == "requested_by_customer"


def test_a_replayed_refund_request_pays_once(gateway: StripeGateway, standin: StripeStandIn, paid: str) -> None:
    first = refund(gateway, paid)
    second = refund(gateway, paid)

    assert second == first
    assert len(standin.refunds()) == 1
    assert [r["replayed"] for r in standin.requests() if r["method"] == "POST"] == [False, True]


def test_concurrent_deliveries_of_one_refund_pay_once(gateway: StripeGateway, standin: StripeStandIn,
                                                      paid: str) -> None:
    def attempt(_: int) -> str:
        try:
            return refund(gateway, paid).id
        except RetryablePaymentError as error:
            return error.code or "retryable"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = set(pool.map(attempt, range(16)))

    [made] = standin.refunds()
    assert outcomes <= {made.get("id"), "idempotency_key_in_use"}


def test_reusing_a_key_for_another_amount_is_refused_for_good(gateway: StripeGateway, paid: str) -> None:
    refund(gateway, paid, 2000)

    with pytest.raises(FinalPaymentError) as refused:
        refund(gateway, paid, 2500)

    assert refused.value.code == "idempotency_error"
    assert refused.value.http_status == 400


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_stripe_outage_is_retryable_and_the_retry_pays_once(gateway: StripeGateway, standin: StripeStandIn,
                                                              paid: str, status: int) -> None:
    standin.fail_next([status], path_prefix="/v1/refunds")

    with pytest.raises(RetryablePaymentError) as failed:
        refund(gateway, paid)
    made = refund(gateway, paid)

    assert failed.value.http_status == status
    assert made.status == "succeeded"
    assert [r["id"] for r in standin.refunds()] == [made.id]


def test_an_answer_lost_after_stripe_paid_is_retryable_and_the_retry_returns_the_same_refund(
        gateway: StripeGateway, standin: StripeStandIn, paid: str) -> None:
    standin.drop_next(path_prefix="/v1/refunds")

    with pytest.raises(RetryablePaymentError):
        refund(gateway, paid)
    [paid_before_the_answer_was_lost] = standin.refunds()
    made = refund(gateway, paid)

    assert made.id == paid_before_the_answer_was_lost["id"]
    assert len(standin.refunds()) == 1


def test_refunding_more_than_was_paid_is_refused_for_good(gateway: StripeGateway, paid: str) -> None:
    with pytest.raises(FinalPaymentError) as refused:
        refund(gateway, paid, 5001)

    assert refused.value.code == "amount_too_large"
    assert refused.value.http_status == 400
    assert "greater than unrefunded amount" in refused.value.message


def test_refunding_a_fully_refunded_payment_is_refused_for_good(gateway: StripeGateway, paid: str) -> None:
    refund(gateway, paid, 5000, key="k1")

    with pytest.raises(FinalPaymentError) as refused:
        refund(gateway, paid, 100, key="k2")

    assert refused.value.code == "charge_already_refunded"


def test_a_declined_refund_is_final_with_stripes_code(gateway: StripeGateway, standin: StripeStandIn,
                                                      paid: str) -> None:
    standin.decline_next("charge_disputed", "This charge is disputed.")

    with pytest.raises(FinalPaymentError) as refused:
        refund(gateway, paid)

    assert (refused.value.code, refused.value.message) == ("charge_disputed", "This charge is disputed.")
    assert standin.refunds() == []


def test_a_revoked_api_key_is_final_and_ours_to_fix(standin: StripeStandIn, paid: str) -> None:
    gateway = StripeGateway("sk_live_wrong_mode", api_base=standin.url)

    with pytest.raises(FinalPaymentError) as refused:
        gateway.get_payment_intent(paid)

    assert refused.value.http_status == 401
    assert refused.value.operational


def test_stripe_out_of_reach_is_retryable() -> None:
    gateway = StripeGateway(API_KEY, api_base="http://127.0.0.1:9")

    with pytest.raises(RetryablePaymentError) as failed:
        gateway.get_payment_intent("pi_1")

    assert failed.value.code == "api_connection_error"


def test_our_refund_is_found_by_its_id_among_the_payments_refunds(
        gateway: StripeGateway, paid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payments, "_REFUND_PAGE_SIZE", 2)
    made = [refund(gateway, paid, 500, key=f"k{i}", refund_id=f"r{i}") for i in range(5)]

    assert gateway.find_refund(payment_intent_id=paid, refund_id="r0") == made[0]
    assert gateway.find_refund(payment_intent_id=paid, refund_id="r4") == made[4]
    assert gateway.find_refund(payment_intent_id=paid, refund_id="r9") is None


def test_a_refund_of_another_payment_is_not_found(gateway: StripeGateway, standin: StripeStandIn,
                                                  paid: str) -> None:
    other = standin.create_payment_intent(3000)["id"]
    refund(gateway, other, refund_id="r1")

    assert gateway.find_refund(payment_intent_id=paid, refund_id="r1") is None


def test_faults_can_be_injected_over_http(gateway: StripeGateway, standin: StripeStandIn, paid: str) -> None:
    control(standin, "fail", {"statuses": [503], "path_prefix": "/v1/refunds"})
    control(standin, "drop", {"path_prefix": "/v1/refunds"})

    with pytest.raises(RetryablePaymentError):
        refund(gateway, paid)
    with pytest.raises(RetryablePaymentError):
        refund(gateway, paid)
    made = refund(gateway, paid)

    [recorded] = control(standin, "refunds")
    assert recorded["id"] == made.id
    statuses = [(r["status"], r["dropped"], r["replayed"]) for r in control(standin, "requests")]
    assert statuses == [(503, False, False), (200, True, False), (200, False, True)]


# --- Connect: every object belongs to one account, as at Stripe --------------------------------

VENUE_ACCOUNT = "acct_1VenueOwnAccount"
OTHER_ACCOUNT = "acct_1SomebodyElse"


def test_a_payment_on_a_connected_account_is_found_on_that_account_only(gateway: StripeGateway,
                                                                        standin: StripeStandIn) -> None:
    paid_there = standin.create_payment_intent(4000, "eur", account=VENUE_ACCOUNT)["id"]

    assert gateway.get_payment_intent(paid_there, stripe_account=VENUE_ACCOUNT).amount_received == 4000
    assert gateway.get_payment_intent(paid_there) is None
    assert gateway.get_payment_intent(paid_there, stripe_account=OTHER_ACCOUNT) is None
    [lookup] = [r for r in standin.requests() if r["account"] == VENUE_ACCOUNT]
    assert (lookup["method"], lookup["path"], lookup["status"]) == ("GET", f"/v1/payment_intents/{paid_there}", 200)


def test_a_platform_payment_is_not_found_on_a_connected_account(gateway: StripeGateway, paid: str) -> None:
    assert gateway.get_payment_intent(paid, stripe_account=VENUE_ACCOUNT) is None


def test_a_refund_on_a_connected_account_is_paid_on_that_account(gateway: StripeGateway,
                                                                 standin: StripeStandIn) -> None:
    paid_there = standin.create_payment_intent(4000, "eur", account=VENUE_ACCOUNT)["id"]

    made = gateway.create_refund(payment_intent_id=paid_there, amount=1500, idempotency_key="k1",
                                 metadata={"refund_id": "r1"}, stripe_account=VENUE_ACCOUNT)

    assert [r["id"] for r in standin.refunds(account=VENUE_ACCOUNT)] == [made.id]
    assert standin.refunds(account=None) == [] and standin.account_of(made.id) == VENUE_ACCOUNT


def test_refunding_another_accounts_payment_is_refused_as_missing(gateway: StripeGateway,
                                                                  standin: StripeStandIn, paid: str) -> None:
    paid_there = standin.create_payment_intent(4000, "eur", account=VENUE_ACCOUNT)["id"]

    for payment, account in ((paid_there, None), (paid_there, OTHER_ACCOUNT), (paid, VENUE_ACCOUNT)):
        with pytest.raises(FinalPaymentError) as refused:
            gateway.create_refund(payment_intent_id=payment, amount=100, idempotency_key=f"k-{account}",
                                  metadata={"refund_id": "r1"}, stripe_account=account)
        assert (refused.value.code, refused.value.http_status) == ("resource_missing", 400)
    assert standin.refunds() == []


def test_idempotency_keys_are_kept_per_account(gateway: StripeGateway, standin: StripeStandIn, paid: str) -> None:
    paid_there = standin.create_payment_intent(4000, "eur", account=VENUE_ACCOUNT)["id"]

    on_platform = refund(gateway, paid, 2000, key="same-key")
    on_venue = gateway.create_refund(payment_intent_id=paid_there, amount=1000, idempotency_key="same-key",
                                     metadata={"refund_id": "r1"}, stripe_account=VENUE_ACCOUNT)
    replayed = gateway.create_refund(payment_intent_id=paid_there, amount=1000, idempotency_key="same-key",
                                     metadata={"refund_id": "r1"}, stripe_account=VENUE_ACCOUNT)

    assert on_venue.id != on_platform.id and replayed == on_venue
    assert [r["replayed"] for r in standin.requests() if r["method"] == "POST"] == [False, False, True]
    assert len(standin.refunds()) == 2


def test_our_refund_is_found_among_a_connected_accounts_refunds_across_pages(
        gateway: StripeGateway, standin: StripeStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payments, "_REFUND_PAGE_SIZE", 2)
    paid_there = standin.create_payment_intent(5000, "eur", account=VENUE_ACCOUNT)["id"]
    made = [gateway.create_refund(payment_intent_id=paid_there, amount=500, idempotency_key=f"k{i}",
                                  metadata={"refund_id": f"r{i}"}, stripe_account=VENUE_ACCOUNT) for i in range(5)]

    assert gateway.find_refund(payment_intent_id=paid_there, refund_id="r0", stripe_account=VENUE_ACCOUNT) == made[0]
    assert gateway.find_refund(payment_intent_id=paid_there, refund_id="r0") is None
    listed = [r for r in standin.requests() if r["method"] == "GET" and r["path"] == "/v1/refunds"]
    assert len(listed) == 4 and [r["account"] for r in listed] == [VENUE_ACCOUNT] * 3 + [None]


def test_an_account_id_stripe_could_not_have_issued_is_refused(gateway: StripeGateway, paid: str) -> None:
    with pytest.raises(FinalPaymentError) as refused:
        gateway.get_payment_intent(paid, stripe_account="acct_../../v1")

    assert (refused.value.code, refused.value.http_status) == ("account_invalid", 403)


def test_a_connected_payment_and_a_late_refund_failure_can_be_made_over_http(
        gateway: StripeGateway, standin: StripeStandIn) -> None:
    intent = control(standin, "payment_intents", {"amount": 3000, "currency": "eur", "account": VENUE_ACCOUNT})
    made = gateway.create_refund(payment_intent_id=intent["id"], amount=3000, idempotency_key="k1",
                                 metadata={"refund_id": "r1"}, stripe_account=VENUE_ACCOUNT)

    failed = control(standin, "fail_refund", {"refund_id": made.id})

    assert (failed["status"], failed["failure_reason"]) == ("failed", "expired_or_canceled_card")
    again = gateway.create_refund(payment_intent_id=intent["id"], amount=3000, idempotency_key="k2",
                                  metadata={"refund_id": "r1"}, stripe_account=VENUE_ACCOUNT)
    assert again.status == "succeeded"  # the failed refund's money could be refunded again
