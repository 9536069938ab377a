"""The fault switch's settings, as `make run LOCAL_FAULTS=...` gives them."""
from __future__ import annotations

import pytest

from infra.local.faults import FaultRates


def test_local_faults_are_read_from_one_line() -> None:
    rates = FaultRates.parse("conflicts=0.2, throttles=0.05,index_lag_ms=500,duplicates=0.1,seed=7")
    assert rates == FaultRates(conflicts=0.2, throttles=0.05, index_lag_ms=500, duplicates=0.1, seed=7)
    assert rates.active and rates.lambda_timeout_ms == 60_000


def test_no_faults_is_the_default_and_a_lambda_timeout_alone_injects_nothing() -> None:
    assert FaultRates.parse("") == FaultRates() and not FaultRates().active
    assert not FaultRates.parse("lambda_timeout_ms=15000").active


def test_an_unknown_fault_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown fault 'conflict'"):
        FaultRates.parse("conflict=0.2")
