"""The Stripe gateway: look up payments, make and find refunds, tell retryable failures from final ones.

Every call about a venue's payments names the venue's connected account (`stripe_account`, sent as
the `Stripe-Account` header), or none for the platform's own. Also checks the signatures of
Stripe's webhooks. `stripe` is imported only when Stripe is called.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import stripe
    from stripe.params import RefundCreateParams, RefundListParams

# Stripe's largest page: one round trip covers every refund a payment of ours will ever have.
_REFUND_PAGE_SIZE = 100
_RETRYABLE_CODES = frozenset({"idempotency_key_in_use", "lock_timeout", "rate_limit"})


class PaymentError(Exception):
    """Stripe did not do what we asked; `code` and `message` are Stripe's where it gave them."""

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None,
                 operational: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        # True when the fault is ours (a revoked key, missing permission): alert someone, blame no guest.
        self.operational = operational

    def __str__(self) -> str:
        return f"{self.code or 'payment_error'}: {self.message}"


class RetryablePaymentError(PaymentError):
    """The same request, with the same idempotency key, may succeed later."""


class FinalPaymentError(PaymentError):
    """Stripe refused the request; sending it again cannot change the answer."""


class InvalidWebhook(Exception):
    """A webhook whose signature is missing, wrong or too old."""


@dataclass(frozen=True)
class PaymentIntent:
    id: str
    status: str
    currency: str
    amount: int
    amount_received: int


@dataclass(frozen=True)
class StripeRefund:
    id: str
    status: str
    amount: int
    payment_intent: str | None
    metadata: dict[str, str]
    failure_reason: str | None


class StripeGateway:
    """Stripe's API behind the few calls we make, its client built once on first use."""

    def __init__(self, api_key: str, api_base: str | None = None, *, http_client: Any = None) -> None:
        """`api_base` (e.g. "http://127.0.0.1:12111") points the SDK at a stand-in; None means Stripe.

        `http_client` is one of the SDK's HTTP clients; None lets the SDK choose (requests if present).
        """
        self._api_key = api_key
        self._api_base = api_base
        self._http_client = http_client
        self._client: stripe.StripeClient | None = None
        self._client_lock = threading.Lock()

    def get_payment_intent(self, payment_intent_id: str, *, stripe_account: str | None = None) -> PaymentIntent | None:
        """The payment intent, or None when Stripe has no such payment intent on that account."""
        if not payment_intent_id:
            # An empty id would turn the request into GET /v1/payment_intents/, a list of all of them.
            raise ValueError("payment_intent_id is empty")
        try:
            with _stripe_errors():
                intent = self._stripe().v1.payment_intents.retrieve(
                    payment_intent_id, options=_on_account(stripe_account)).to_dict()
        except FinalPaymentError as error:
            if error.code == "resource_missing" and error.http_status == 404:
                return None
            raise
        return PaymentIntent(
            id=intent["id"],
            status=intent["status"],
            currency=intent["currency"],
            amount=intent["amount"],
            amount_received=intent.get("amount_received") or 0,
        )

    def create_refund(self, *, payment_intent_id: str, amount: int, idempotency_key: str,
                      metadata: dict[str, str], stripe_account: str | None = None) -> StripeRefund:
        """Refund `amount` of the payment; repeating the call with the same key never pays twice."""
        if not idempotency_key:
            raise ValueError("a refund without an idempotency key could be paid twice")
        params: RefundCreateParams = {
            "payment_intent": payment_intent_id,
            "amount": amount,
            "reason": "requested_by_customer",
            "metadata": dict(metadata),
        }
        with _stripe_errors():
            refund = self._stripe().v1.refunds.create(
                params=params, options={**_on_account(stripe_account), "idempotency_key": idempotency_key})
            return _stripe_refund(refund.to_dict())

    def find_refund(self, *, payment_intent_id: str, refund_id: str,
                    stripe_account: str | None = None) -> StripeRefund | None:
        """The Stripe refund of this payment made for our refund `refund_id` (its metadata), if any."""
        params: RefundListParams = {"payment_intent": payment_intent_id, "limit": _REFUND_PAGE_SIZE}
        with _stripe_errors():
            # The page keeps the account for the pages after it (the SDK's persistent request options).
            page = self._stripe().v1.refunds.list(params=params, options=_on_account(stripe_account))
            for refund in page.auto_paging_iter():
                found = refund.to_dict()
                if (found.get("metadata") or {}).get("refund_id") == refund_id:
                    return _stripe_refund(found)
        return None

    def _stripe(self) -> stripe.StripeClient:
        with self._client_lock:
            if self._client is None:
                import stripe

                # Retries belong to the queue, which redelivers with the same idempotency key.
                options: dict[str, Any] = {"max_network_retries": 0}
                if self._api_base is not None:
                    options["base_addresses"] = {"api": self._api_base}
                if self._http_client is not None:
                    options["http_client"] = self._http_client
                self._client = stripe.StripeClient(self._api_key, **options)
            return self._client


def _on_account(stripe_account: str | None) -> stripe.RequestOptions:
    """The SDK's request options for a call on a connected account; none for the platform's own."""
    return {"stripe_account": stripe_account} if stripe_account else {}


def _stripe_refund(refund: dict[str, Any]) -> StripeRefund:
    intent = refund.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return StripeRefund(
        id=refund["id"],
        status=refund["status"],
        amount=refund["amount"],
        payment_intent=intent,
        metadata={str(k): str(v) for k, v in (refund.get("metadata") or {}).items()},
        failure_reason=refund.get("failure_reason"),
    )


@contextmanager
def _stripe_errors() -> Iterator[None]:
    import stripe

    try:
        yield
    except stripe.StripeError as error:
        raise classify(error) from error
    except (OSError, http.client.HTTPException) as error:
        # The SDK's urllib client (the one Lambda gets, having no `requests`) lets these through.
        raise RetryablePaymentError(f"network error: {error!r}", code="api_connection_error") from error


def classify(error: stripe.StripeError) -> PaymentError:
    """Stripe's exception as ours: retryable when another try may succeed, else final."""
    import stripe

    status = error.http_status
    body = error.json_body.get("error") if isinstance(error.json_body, dict) else None
    details = body if isinstance(body, dict) else {}
    code = error.code or details.get("code") or details.get("type")
    message = error.user_message or details.get("message") or str(error) or type(error).__name__
    if isinstance(error, stripe.APIConnectionError):
        return RetryablePaymentError(message, code=code or "api_connection_error", http_status=status)
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return FinalPaymentError(message, code=code, http_status=status, operational=True)
    if isinstance(error, stripe.RateLimitError) or code in _RETRYABLE_CODES:
        return RetryablePaymentError(message, code=code, http_status=status)
    if status is None or status == 409 or status >= 500:
        return RetryablePaymentError(message, code=code, http_status=status)
    return FinalPaymentError(message, code=code, http_status=status)


def verify_webhook(payload: bytes, signature_header: str | None, secret: str | Sequence[str], now: float,
                   tolerance_seconds: int = 300) -> dict[str, Any]:
    """The event Stripe signed with `secret` (or any of several: the platform's endpoint and the
    Connect endpoint have one each), or InvalidWebhook when the signature is missing, wrong or stale."""
    if not signature_header:
        raise InvalidWebhook("no Stripe-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in signature_header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidWebhook("the signature's timestamp is not a number") from None
        elif name == "v1":
            signatures.append(value)
    if timestamp is None:
        raise InvalidWebhook("the signature has no timestamp")
    if not signatures:
        raise InvalidWebhook("the signature has no v1 scheme")
    signed = f"{timestamp}.".encode() + payload
    secrets = [secret] if isinstance(secret, str) else list(secret)
    expected = [hmac.new(s.encode("utf-8"), signed, hashlib.sha256).hexdigest().encode() for s in secrets]
    # Compare against every v1: Stripe sends one per secret while a secret is being rolled.
    if not any(hmac.compare_digest(mine, candidate.encode()) for mine in expected for candidate in signatures):
        raise InvalidWebhook("no signature matches")
    if abs(now - timestamp) > tolerance_seconds:
        raise InvalidWebhook("the signature is too old")
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidWebhook("the payload is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidWebhook("the payload is not a JSON object")
    return event
