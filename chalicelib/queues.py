"""Messages to our SQS queues: refunds to pay, venues whose stored deadlines need updating, and
the pieces of a slot's closure. app.py builds one `SqsQueues` per container (see parts.py)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from chalicelib.config import config

# --- The messages: one shape per queue, written by the sender and read by the worker ---------


@dataclass(frozen=True)
class RefundMessage:
    """A refund to pay (the `refunds` queue)."""
    transaction_id: str
    refund_id: str


@dataclass(frozen=True)
class ClosurePiece:
    """One piece of a slot's closure job (the `slot-closures` queue)."""
    job_id: str
    piece: int


Message = TypeVar("Message", RefundMessage, ClosurePiece)
_TYPES = {"str": str, "int": int}  # the fields' annotations, as text (postponed annotations)


def read(kind: type[Message], body: str) -> Message:
    """The message of `kind` in an SQS body; KeyError or ValueError when it is not one."""
    data = json.loads(body)
    return kind(**{f.name: _TYPES[str(f.type)](data[f.name]) for f in fields(kind)})



class SqsQueues:
    """The `QueueSender` of parts.py on SQS. The client is built on the first send, and only by
    code that sends."""

    def sqs(self) -> Any:
        from chalicelib import aws  # one client per container, shared with every other user of SQS

        return aws.client("sqs")

    def send_refund(self, transaction_id: str, refund_id: str) -> None:
        self._send(config().refund_queue_url, asdict(RefundMessage(transaction_id, refund_id)))

    def send_refunds(self, refunds: list[tuple[str, str]]) -> None:
        """Several refunds (transaction id, refund id), ten to a request."""
        for start in range(0, len(refunds), 10):
            chunk = refunds[start:start + 10]
            answer = self.sqs().send_message_batch(QueueUrl=config().refund_queue_url, Entries=[
                {"Id": str(n), "MessageBody": json.dumps(asdict(RefundMessage(transaction_id, refund_id)))}
                for n, (transaction_id, refund_id) in enumerate(chunk)])
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} refund messages")

    def send_deadline_update(self, venue_id: str, settings_version: int) -> None:
        self._send(config().deadline_queue_url, {"venue_id": venue_id, "settings_version": settings_version})

    def send_closure_piece(self, job_id: str, piece: int, delay_seconds: int = 0) -> None:
        """`delay_seconds` (at most 900, SQS's limit) holds the piece back: a sweep run again
        after an index had time to catch up."""
        self._send(config().slot_closure_queue_url, asdict(ClosurePiece(job_id, piece)), delay_seconds)

    def _send(self, queue_url: str, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self.sqs().send_message(QueueUrl=queue_url, MessageBody=json.dumps(message), DelaySeconds=delay_seconds)
