"""A person following one refund through the logs: every line of an invocation says which Lambda
invocation wrote it (request id, function, cold start) and carries the venue and transaction."""
from __future__ import annotations

import json
from typing import Any

import pytest


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_cancellation_and_its_refund_can_be_followed_by_their_ids(bought, capsys) -> None:
    world, guest, receipt = bought
    tx = receipt["transaction_id"]
    session_id = receipt["sessions"][0]["session_id"]
    world.stack.deliver_all()  # earlier tests' messages, so that only this refund is paid below
    capsys.readouterr()

    assert guest.api.post(f"/v1/me/transactions/{tx}/cancellations", {"session_ids": [session_id]}).status == 200
    [cancelled] = [line for line in _lines(capsys) if line.get("event") == "sessions_cancelled"]
    world.stack.deliver_all()
    [paid] = [line for line in _lines(capsys) if line.get("event") == "refund_succeeded"]

    assert cancelled["venue_id"] == paid["venue_id"] == receipt["venue_id"]
    assert cancelled["transaction_id"] == paid["transaction_id"] == tx
    assert paid["refund_id"] and paid["function_name"] != cancelled["function_name"]
    assert cancelled["function_request_id"] and paid["function_request_id"]
    assert cancelled["function_request_id"] != paid["function_request_id"]
    assert cancelled["cold_start"] is False and paid["cold_start"] is False


def test_the_error_middlewares_lines_carry_the_request_and_path_ids(bought, capsys) -> None:
    _, guest, receipt = bought
    capsys.readouterr()

    assert guest.api.post("/v1/venues/" + receipt["venue_id"] + "/login",
                          {"email": guest.email, "password": "wrong password"}).status == 401
    [failed] = [line for line in _lines(capsys) if line.get("event") == "login_failed"]

    assert failed["venue_id"] == receipt["venue_id"] and failed["function_request_id"]
