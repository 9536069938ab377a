"""What AWS does that moto does not, made to happen by the fault switch (infra/local/faults.py):
transaction conflicts, throttling, index lag, duplicate deliveries and Lambda deadlines. Each test
shows what a guest or a venue would notice: no false refusal, nothing changed on a 503, nothing
paid twice or lost."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from infra.local.faults import FaultRates
from tests.conftest import World, now


def test_a_purchase_that_meets_a_conflicting_transaction_is_recorded_not_refused(world: World, faults: Any) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    slot = world.slot(venue, capacity=2)
    faults.conflict_next(2)
    receipt = world.purchase(guest, [slot])
    assert faults.injected["conflict"] == 2
    assert len(receipt["sessions"]) == 1
