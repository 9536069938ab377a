"""SQS and DynamoDB Stream batches as Lambda wants them: each record handled on its own, and only
the failed ones reported back (partial batch response), so one bad record never replays the others."""
from __future__ import annotations

from typing import Any, Callable


def each_message(event: dict[str, Any], context: Any, handle: Callable[[Any], None]) -> dict[str, Any]:
    """Run `handle(record)` for every SQS record; a record whose handler raises is reported in
    `batchItemFailures` and comes back after its visibility timeout."""
    # Powertools' batch utility costs ~80 ms to import: only queue handlers pay for it.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)


def each_stream_record(event: dict[str, Any], context: Any, handle: Callable[[Any], None]) -> dict[str, Any]:
    """Run `handle(record)` for every DynamoDB Stream record; Lambda starts the next delivery at
    the first failed record (so records after it come again: the handler must be idempotent)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
