"""Every error a client can be told about has its status: a new one nobody mapped fails here,
instead of reaching a guest as a guessed status."""
from __future__ import annotations

from chalicelib import errors
from chalicelib.api.errors import STATUS, error_response


def _all_errors(cls: type[errors.RebookError]) -> set[type[errors.RebookError]]:
    found = set()
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("chalicelib"):
            found |= {sub} | _all_errors(sub)
    return found


def test_every_domain_error_has_a_status_and_its_own_code() -> None:
    unmapped = {cls.__name__ for cls in _all_errors(errors.RebookError)} - {cls.__name__ for cls in STATUS}
    assert not unmapped
    assert all(cls.code != errors.RebookError.code for cls in STATUS)


def test_an_unmapped_error_is_answered_as_our_fault_not_the_clients() -> None:
    class NobodyMappedThis(errors.RebookError):
        code = "nobody_mapped_this"

    answer = error_response(NobodyMappedThis("a new rule"))

    assert answer.status_code == 500 and answer.body["error"]["code"] == "internal_error"
