"""Secrets given by ARN, as in AWS, read from Secrets Manager (the embedded stack's) on a guest's
first request without importing boto3; and every AWS client of the app sharing one botocore data
loader, so a cold Lambda parses botocore's JSON once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

from infra.local.stack import LocalStack
from tests.conftest import World

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter, as a cold Lambda: the secrets only by ARN, one guest receipt served.
COLD_RECEIPT = """
import json, sys
import app
from chalice.test import Client
with Client(app.app) as client:
    answer = client.http.get(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
print(json.dumps({"status": answer.status_code, "boto3": "boto3" in sys.modules}))
"""


def test_a_cold_lambda_reads_its_secrets_by_arn_and_serves_a_guest_without_boto3(world: World,
                                                                                   stack: LocalStack) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    made = world.purchase(guest, [world.slot(venue)])
    secrets = boto3.client("secretsmanager")
    arns = {name: secrets.create_secret(Name=f"{name}-{made['transaction_id']}",
                                        SecretString=os.environ[name])["ARN"]
            for name in ("TOKEN_SECRET", "ADMIN_API_KEY", "STRIPE_WEBHOOK_SECRET")}
    env = {k: v for k, v in os.environ.items() if k not in arns}
    env.update({f"{name}_ARN": arn for name, arn in arns.items()})
    out = subprocess.run([sys.executable, "-c", COLD_RECEIPT, f"/v1/me/transactions/{made['transaction_id']}",
                          guest.api.credential or ""], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer == {"status": 200, "boto3": False}


def test_every_aws_client_of_the_app_shares_one_botocore_loader(stack: LocalStack) -> None:
    from chalicelib import aws
    from chalicelib.storage.models import ALL_MODELS

    loaders = {id(model._get_connection().connection.session.get_component("data_loader")) for model in ALL_MODELS}
    loaders.add(id(aws.new_session().get_component("data_loader")))  # the SQS and Secrets Manager clients'
    assert len(loaders) == 1
