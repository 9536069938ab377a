"""Deploying the second round over the first: CloudFormation creates at most one global index per
table in one stack update, so the deploy that adds two holds one back, and the next adds it."""
from __future__ import annotations

import pytest

from infra.tables import TableSpec, holding_back, table_specs

# The first round's tables and their global indexes, as deployed (chalicelib/storage/models.py at 2db5e68).
FIRST_ROUND = {
    "venues": set(), "api-keys": set(), "guests": {"guest-id"}, "slots": {"product-start"}, "history": set(),
    "idempotency": set(), "login-attempts": set(),
    "bookings": {"guest-purchases", "venue-refunds", "pending-refunds", "refund-id", "open-refund-windows",
                 "venue-sessions"},
}


def new_indexes(specs: tuple[TableSpec, ...]) -> dict[str, set[str]]:
    """Per table the first round already has, the global indexes a deploy of `specs` would create."""
    return {spec.logical: {i.name for i in spec.global_indexes} - FIRST_ROUND[spec.logical]
            for spec in specs if spec.logical in FIRST_ROUND}


def test_a_plain_deploy_would_add_two_indexes_to_the_bookings_table_in_one_update() -> None:
    assert new_indexes(table_specs())["bookings"] == {"venue-refund-list", "slot-sessions"}


def test_holding_one_back_makes_two_deploys_of_one_new_index_each() -> None:
    first = holding_back(table_specs(), ["venue-refund-list"])
    assert all(len(added) <= 1 for added in new_indexes(first).values())
    assert new_indexes(first)["bookings"] == {"slot-sessions"}
    assert {spec.logical for spec in first} == {spec.logical for spec in table_specs()}
    then = {name for spec in table_specs() for name in (i.name for i in spec.global_indexes)}
    assert then - {name for spec in first for name in (i.name for i in spec.global_indexes)} == {"venue-refund-list"}


def test_holding_back_an_index_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="venue-refund-lists"):
        holding_back(table_specs(), ["venue-refund-lists"])
