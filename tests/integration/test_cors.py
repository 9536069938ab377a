"""Browsers may call the API from the hosted portal's origin, and from no other; `make run`
serves the portal on the API's own origin and needs no CORS at all."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PORTAL = "https://portal.venue.example"

# A fresh process: app.py decides its CORS when imported. The preflight goes to Chalice's local
# gateway, which answers OPTIONS the way API Gateway's generated mock integration does.
HOSTED = f"ORIGIN = {PORTAL!r}\n" + """
import json
from chalice.config import Config
from chalice.local import LocalGateway
from chalice.test import Client
import app

with Client(app.app) as client:
    answers = {name: {"status": a.status_code, "headers": dict(a.headers)} for name, a in {
        "refused": client.http.get("/v1/me/transactions"),
        "wrong_method": client.http.request("DELETE", "/v1/me/transactions"),
    }.items()}
preflight = LocalGateway(app.app, Config()).handle_request("OPTIONS", "/v1/me/transactions/t1/cancellations", {
    "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"}, b"")
answers["preflight"] = {"status": preflight["statusCode"], "headers": preflight["headers"]}
print(json.dumps(answers))
"""


def _hosted_answers() -> dict[str, Any]:
    env = {**os.environ, "PORTAL_ORIGIN": PORTAL, "TABLE_PREFIX": "rebook-cors-test"}
    run = subprocess.run([sys.executable, "-c", HOSTED], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_local_stack_sends_no_cors_headers(client: Any) -> None:
    answer = client.http.get("/v1/me/transactions")
    assert answer.status_code == 401
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_the_hosted_portal_may_read_answers_and_errors_and_send_its_headers() -> None:
    answers = _hosted_answers()
    for name in ("refused", "wrong_method", "preflight"):
        headers = {k.lower(): v for k, v in answers[name]["headers"].items()}
        assert headers["access-control-allow-origin"] == PORTAL, name
    assert answers["refused"]["status"] == 401 and answers["wrong_method"]["status"] == 405
    preflight = {k.lower(): v for k, v in answers["preflight"]["headers"].items()}
    assert answers["preflight"]["status"] == 200
    assert {"Authorization", "Content-Type", "Idempotency-Key"} <= set(preflight["access-control-allow-headers"].split(","))
    assert "POST" in preflight["access-control-allow-methods"]
    assert preflight["access-control-expose-headers"] == "Retry-After"
    assert preflight["access-control-max-age"] == "600"
