"""The one hierarchy of errors a client can be told about; `api.errors` maps each to its status.

They derive from Chalice's `ChaliceUnhandledError` only so that Chalice hands them, unchanged, to
the error middleware instead of turning them into a 500 on the way.
"""
from __future__ import annotations

from typing import Any

from chalice import ChaliceUnhandledError


class RebookError(ChaliceUnhandledError):
    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(RebookError):
    code = "invalid_request"


class PayloadTooLarge(RebookError):
    code = "payload_too_large"


class Unauthorized(RebookError):
    code = "unauthorized"


class InvalidCredentials(RebookError):
    code = "invalid_credentials"


class InvalidResetToken(RebookError):
    code = "invalid_reset_token"


class Forbidden(RebookError):
    code = "forbidden"


class FeatureDisabled(RebookError):
    code = "feature_disabled"


class NotFound(RebookError):
    code = "not_found"


class Conflict(RebookError):
    code = "conflict"


class SlotFull(RebookError):
    code = "slot_full"


class SlotClosed(RebookError):
    """Staff closed the slot: it takes no purchase and no move any more."""

    code = "slot_closed"


class SessionNotEditable(RebookError):
    code = "session_not_editable"


class SessionNotCancellable(RebookError):
    code = "session_not_cancellable"


class RefundNotRetryable(RebookError):
    code = "refund_not_retryable"


class IdempotencyConflict(RebookError):
    code = "idempotency_conflict"


class QuoteChanged(RebookError):
    """The refund due now is not the amount the guest confirmed; `details.quote` is the new one."""

    code = "quote_changed"


class PaymentNotAccepted(RebookError):
    """The store asked us to record a purchase that its Stripe payment does not back."""

    code = "payment_not_accepted"


class TooManyAttempts(RebookError):
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message, {"retry_after_seconds": retry_after_seconds})
        self.retry_after_seconds = retry_after_seconds


class Busy(TooManyAttempts):
    """More password checks at once than one process runs (each takes 64 MiB); the client may
    try again in a moment. The same code API Gateway's own throttling answers with."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message, retry_after_seconds)


class ServiceUnavailable(RebookError):
    """A dependency (Stripe, usually) could not be reached; the client may try again."""

    code = "service_unavailable"


class TemporarilyUnavailable(RebookError):
    """DynamoDB stayed busy (conflicting writes, throttling) through every retry; nothing changed."""

    code = "temporarily_unavailable"

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
