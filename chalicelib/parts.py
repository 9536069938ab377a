"""The outside parts the services talk to: the queues (SQS), Stripe, the mail sender (SES) and the
clock. app.py builds them once per container and hands each service the parts it uses, so every
input of a service is in its signature: a test passes the part it wants instead of patching a
module, and nothing reaches a singleton of its own.

Each part is described here by what the services ask of it; the real ones are
`queues.SqsQueues`, `services.stripe_key.StripeKey` and `emails.ses.SesSender`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from chalicelib.times import utc_now

if TYPE_CHECKING:
    from email.message import EmailMessage

    from chalicelib.payments import StripeGateway


class QueueSender(Protocol):
    """Messages to our queues. A failed send raises; each caller says what makes up for it."""

    def send_refund(self, transaction_id: str, refund_id: str) -> None: ...

    def send_refunds(self, refunds: list[tuple[str, str]]) -> None: ...

    def send_deadline_update(self, venue_id: str, settings_version: int) -> None: ...

    def send_closure_piece(self, job_id: str, piece: int, delay_seconds: int = 0) -> None: ...


class StripeAccess(Protocol):
    """Stripe under our current key."""

    def gateway(self) -> StripeGateway:
        """The gateway for the key configured now."""
        ...

    def refresh_key(self) -> bool:
        """Stripe refused our key: read it again. True when another key is now configured."""
        ...


class MailSender(Protocol):
    def send(self, email: EmailMessage, to: str) -> str:
        """The sent message's id; raises `emails.ses.Busy` (nothing sent, try again later) or
        `emails.ses.Refused` (final); any other exception leaves the outcome unknown."""
        ...


@dataclass(frozen=True)
class Parts:
    queues: QueueSender
    stripe: StripeAccess
    mail: MailSender
    clock: Callable[[], datetime] = utc_now
