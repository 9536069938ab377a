"""Messages to our SQS queues: refunds to pay, venues whose stored deadlines need updating, and
the pieces of a slot's closure."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.config import config


def _sqs() -> Any:
    from chalicelib import aws  # the client is built once per container, and only by code that sends

    return aws.client("sqs")


def send_refund(transaction_id: str, refund_id: str) -> None:
    _send(config().refund_queue_url, {"transaction_id": transaction_id, "refund_id": refund_id})


def send_deadline_update(venue_id: str, settings_version: int) -> None:
    _send(config().deadline_queue_url, {"venue_id": venue_id, "settings_version": settings_version})


def send_refunds(refunds: list[tuple[str, str]]) -> None:
    """Several refunds (transaction id, refund id), ten to a request."""
    for start in range(0, len(refunds), 10):
        chunk = refunds[start:start + 10]
        answer = _sqs().send_message_batch(QueueUrl=config().refund_queue_url, Entries=[
            {"Id": str(n), "MessageBody": json.dumps({"transaction_id": transaction_id, "refund_id": refund_id})}
            for n, (transaction_id, refund_id) in enumerate(chunk)])
        if answer.get("Failed"):
            raise RuntimeError(f"SQS refused {len(answer['Failed'])} refund messages")


def send_closure_piece(job_id: str, piece: int) -> None:
    _send(config().slot_closure_queue_url, {"job_id": job_id, "piece": piece})


def _send(queue_url: str, message: dict[str, Any]) -> None:
    _sqs().send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
