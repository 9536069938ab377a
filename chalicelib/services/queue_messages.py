"""SQS and DynamoDB Stream batches as Lambda wants them: each record handled on its own, and only
the failed ones reported back (partial batch response), so one bad record never replays the others.
A message is taken only while the Lambda has time left to finish it: the rest are reported
untouched, and come back, instead of being cut off by the timeout with the whole batch's report lost."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.observability import log_event


class DeadlineNear(Exception):
    """Too little of the Lambda's time is left to take this message."""


def each_message(event: dict[str, Any], context: Any, handle: Callable[[Any], object],
                 needs_ms: int = 1_000) -> dict[str, Any]:
    """Run `handle(record)` for every SQS record while `needs_ms` of the Lambda's time remain; a
    record whose handler raises, or that is left for lack of time, is reported in
    `batchItemFailures` and comes back after its visibility timeout."""
    # Powertools' batch utility costs ~80 ms to import: only queue handlers pay for it.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    def in_time(record: Any) -> None:
        remaining = context.get_remaining_time_in_millis() if context is not None else None
        if remaining is not None and remaining < needs_ms:
            log_event("message_left_for_lack_of_time", message_id=record.message_id, remaining_ms=int(remaining),
                      needs_ms=needs_ms)
            raise DeadlineNear(f"{int(remaining)} ms left, {needs_ms} ms needed")
        handle(record)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    answer = process_partial_response(event=event, record_handler=in_time, processor=processor, context=context)
    return {"batchItemFailures": answer["batchItemFailures"]}


def each_stream_record(event: dict[str, Any], context: Any, handle: Callable[[Any], object]) -> dict[str, Any]:
    """Run `handle(record)` for every DynamoDB Stream record; Lambda starts the next delivery at
    the first failed record (so records after it come again: the handler must be idempotent)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    answer = process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    return {"batchItemFailures": answer["batchItemFailures"]}
