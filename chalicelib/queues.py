"""Messages to our SQS queues: refunds to pay, and venues whose stored deadlines need updating."""
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


def _send(queue_url: str, message: dict[str, Any]) -> None:
    _sqs().send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
