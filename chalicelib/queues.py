"""Messages to our SQS queues: refunds to pay, and venues whose stored deadlines need updating."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.config import config

if TYPE_CHECKING:  # the stubs are a dev requirement; boto3 itself is imported only when a message is sent
    from types_boto3_sqs import SQSClient


@lru_cache(maxsize=1)
def _sqs() -> SQSClient:
    import boto3  # the client is built once per container, and only by code that sends

    return boto3.client("sqs")


def send_refund(transaction_id: str, refund_id: str) -> None:
    _send(config().refund_queue_url, {"transaction_id": transaction_id, "refund_id": refund_id})


def send_deadline_update(venue_id: str, settings_version: int) -> None:
    _send(config().deadline_queue_url, {"venue_id": venue_id, "settings_version": settings_version})


def _send(queue_url: str, message: dict[str, Any]) -> None:
    _sqs().send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
