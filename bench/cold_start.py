"""Cold start: `import app` against `import boto3` alone, each in a fresh interpreter with a warm
bytecode cache, and the modules one guest read (a receipt) loads."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MUST_NOT_LOAD = ("stripe", "argon2", "aws_lambda_powertools")

_TIMED = """
import json, sys, time
w, c = time.perf_counter(), time.process_time()
import {module}
print(json.dumps({{"wall": time.perf_counter() - w, "cpu": time.process_time() - c}}))
"""


@dataclass
class ImportTimes:
    module: str
    wall: list[float]
    cpu: list[float]

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


def time_imports(runs: int = 7) -> tuple[ImportTimes, ImportTimes]:
    """Median of `runs` fresh interpreters each, interleaved so load on the machine hits both alike."""
    boto3, app = ImportTimes("boto3", [], []), ImportTimes("app", [], [])
    for module in ("boto3", "app"):  # warm the bytecode cache
        subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, env=_clean_env(), check=True)
    for _ in range(runs):
        for timed in (boto3, app):
            out = subprocess.run([sys.executable, "-c", _TIMED.format(module=timed.module)], cwd=ROOT,
                                 env=_clean_env(), check=True, capture_output=True, text=True).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            timed.wall.append(figures["wall"])
            timed.cpu.append(figures["cpu"])
    return boto3, app


def heaviest_imports(limit: int = 12) -> list[tuple[str, int]]:
    """The top-level packages `import app` pulls in, by cumulative import time (python -X
    importtime, microseconds; a package's time includes what it imports first)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT, env=_clean_env(),
                         check=True, capture_output=True, text=True).stderr
    rows: dict[str, int] = {}
    for line in err.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3:
            continue
        name = parts[2].strip()
        try:
            cumulative = int(parts[1])
        except ValueError:
            continue
        if "." not in name and not name.startswith("_"):
            rows[name] = max(rows.get(name, 0), cumulative)
    return sorted(rows.items(), key=lambda r: r[1], reverse=True)[:limit]


_READ_PATH = """
import json, sys
import app
after_import = set(sys.modules)
from chalice.test import Client
before_request = set(sys.modules)
with Client(app.app) as client:
    answer = client.http.get("/v1/me/transactions/" + sys.argv[1],
                             headers={"Authorization": "Bearer " + sys.argv[2]})
loaded = set(sys.modules) - before_request
print(json.dumps({"status": answer.status_code, "after_import": sorted(after_import),
                  "loaded_by_request": sorted(loaded), "all": sorted(sys.modules)}))
"""


def guest_read_path(env: dict[str, str], transaction_id: str, token: str) -> dict[str, Any]:
    """In a fresh interpreter pointed at the running embedded stack: import app, serve one receipt
    through Chalice's test client, and list what got imported."""
    full_env = {**_clean_env(), **env}
    out = subprocess.run([sys.executable, "-c", _READ_PATH, transaction_id, token], cwd=ROOT, env=full_env,
                         check=True, capture_output=True, text=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    tops = {name.split(".")[0] for name in found["all"]}
    found["forbidden_loaded"] = [name for name in MUST_NOT_LOAD if name in tops]
    found["top_level"] = sorted(tops)
    found["boto3_loaded"] = "boto3" in tops
    return found


# A cold Lambda's first guest request, as Lambda runs it: the handler called with an API Gateway
# proxy event (no test client), the secrets read by ARN from Secrets Manager.
_FIRST_APP = """
import json, sys, time
w, c = time.perf_counter(), time.process_time()
import app
tx, token = sys.argv[1], sys.argv[2]
resource = "/v1/me/transactions/{transaction_id}"
event = {"resource": resource, "path": "/v1/me/transactions/" + tx, "httpMethod": "GET",
         "headers": {"Authorization": "Bearer " + token}, "multiValueHeaders": {"Authorization": ["Bearer " + token]},
         "queryStringParameters": None, "multiValueQueryStringParameters": None,
         "pathParameters": {"transaction_id": tx}, "stageVariables": None, "body": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": resource, "httpMethod": "GET", "path": "/api/v1/me/transactions/" + tx,
                            "requestId": "cold-start-bench", "stage": "api", "identity": {"sourceIp": "127.0.0.1"}}}
class Context:
    function_name, aws_request_id, memory_limit_in_mb = "api", "cold-start-bench", 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:api"
    def get_remaining_time_in_millis(self): return 30000
answer = app.app(event, Context())
assert answer["statusCode"] == 200, answer
print(json.dumps({"wall": time.perf_counter() - w, "cpu": time.process_time() - c, "boto3": "boto3" in sys.modules}))
"""

# The same AWS work with boto3: the token secret by ARN, the transaction's Query, the venue's read.
_FIRST_BOTO3 = """
import json, os, sys, time
w, c = time.perf_counter(), time.process_time()
import boto3
boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["TOKEN_SECRET_ARN"])["SecretString"]
dynamodb = boto3.client("dynamodb")
dynamodb.query(TableName=sys.argv[3], KeyConditionExpression="transaction_id = :t",
               ExpressionAttributeValues={":t": {"S": sys.argv[1]}})
dynamodb.get_item(TableName=sys.argv[4], Key={"venue_id": {"S": sys.argv[5]}}, ConsistentRead=True)
print(json.dumps({"wall": time.perf_counter() - w, "cpu": time.process_time() - c}))
"""


def time_first_request(env: dict[str, str], transaction_id: str, token: str, venue_id: str,
                       runs: int = 7, without: tuple[str, ...] = ()) -> tuple[ImportTimes, ImportTimes, bool]:
    """`import boto3` + the request's AWS work against `import app` + the request, each in a
    fresh interpreter pointed at the embedded stack, interleaved; and whether the app loaded boto3."""
    from chalicelib.storage.models import BookingItem, VenueRecord

    full_env = {k: v for k, v in {**_clean_env(), **env}.items() if k not in without}
    args = [transaction_id, token, str(BookingItem.Meta.table_name), str(VenueRecord.Meta.table_name), venue_id]
    boto3, app = ImportTimes("boto3 + the same AWS calls", [], []), ImportTimes("app + one receipt", [], [])
    loaded_boto3 = False
    for _ in range(runs):
        for timed, code in ((boto3, _FIRST_BOTO3), (app, _FIRST_APP)):
            out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=full_env, check=True,
                                 capture_output=True, text=True).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            timed.wall.append(figures["wall"])
            timed.cpu.append(figures["cpu"])
            loaded_boto3 = loaded_boto3 or bool(figures.get("boto3"))
    return boto3, app, loaded_boto3
