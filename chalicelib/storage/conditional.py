"""Single-item writes with a condition, in the domain's words: a condition that does not hold is
an answer (False, nothing written), DynamoDB staying busy is TemporarilyUnavailable (503, nothing
written), and anything else is raised as it came. All-or-nothing writes of several items are
storage/atomic.py's."""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.models import Model

from chalicelib.errors import TemporarilyUnavailable
from chalicelib.storage.atomic import RETRY_AFTER_SECONDS, THROTTLE_CODES, error_code


def save_if(record: Model, condition: Any) -> bool:
    """Put `record` if `condition` holds on the stored item; False if it does not."""
    try:
        record.save(condition=condition)
    except PutError as error:
        return _refused(error)
    return True


def update_if(record: Model, actions: list[Any], condition: Any) -> bool:
    """Apply `actions` to the stored `record` if `condition` holds; False if it does not."""
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as error:
        return _refused(error)
    return True


def _refused(error: PutError | UpdateError) -> bool:
    # `error_code`, not `error.cause_response_code`: that raises AttributeError when the cause
    # carries no response (a read timeout, a dropped connection), hiding the real error.
    code = error_code(error)
    if code == "ConditionalCheckFailedException":
        return False
    if code in THROTTLE_CODES:  # botocore has already retried it
        raise TemporarilyUnavailable("the data is busy; nothing was changed, try again shortly",
                                     RETRY_AFTER_SECONDS) from None
    raise error
