"""The reconciler: every few minutes, refunds still pending some minutes after they were made
(a lost SQS send, a crashed worker) are sent to the refund queue again. Duplicates are harmless:
the worker pays each refund once."""
from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.config import config
from chalicelib.observability import log_event
from chalicelib.parts import QueueSender
from chalicelib.storage.models import BookingItem, PendingRefunds
from chalicelib.storage.shards import REFUND_SHARDS


def resend_stale(now: datetime, queues: QueueSender) -> int:
    """Send again every refund pending since before the cutoff; how many were sent."""
    cutoff = now - timedelta(seconds=config().refund_reconcile_after_seconds)
    resent = 0
    for shard in range(REFUND_SHARDS):
        for stale in BookingItem.pending_refunds.query(shard, PendingRefunds.created_at < cutoff):
            queues.send_refund(stale.transaction_id, stale.item.split("#", 1)[1])
            resent += 1
    log_event("refunds_reconciled", resent=resent)
    return resent
