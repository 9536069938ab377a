"""The synthesised AWS stack declares everything the code touches, the way the code expects it."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.errors import GATEWAY_RESPONSES
from chalicelib.config import QUEUES
from chalicelib.storage.models import ALL_MODELS
from infra.portal import hosted_copy, portal_csp, portal_headers
from tests.infra.conftest import ENV, VENUE_PORTAL_ORIGIN, Synthesised

# aws_cdk (and infra/stack.py, which imports it) is imported in the tests that use it: its import
# starts a Node process and costs ~1 s of CPU, and every test worker collects this file though
# one worker runs all of it (tests/conftest.py groups it).
REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = {"handle_refunds": "refunds", "handle_refund_dead_letters": "refunds-dlq",
           "handle_deadline_updates": "deadline-updates", "handle_slot_closures": "slot-closures"}
SCHEDULES = ("close_refund_windows", "reconcile_refunds")


def _logical_name(model: Any) -> str:
    from chalicelib.config import config

    return model.Meta.table_name.removeprefix(f"{config().table_prefix}-")


def _table(stack: Synthesised, name: str) -> dict[str, Any]:
    found = [t["Properties"] for t in stack.resources("AWS::DynamoDB::Table").values()
             if t["Properties"]["TableName"] == name]
    assert len(found) == 1, f"expected one table {name}, found {len(found)}"
    return found[0]


def _key_schema(raw: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((k["KeyType"], k["AttributeName"]) for k in raw)


def _ref_id(value: Any) -> str:
    """The logical id a Ref or GetAtt points at."""
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


def _queue_id(stack: Synthesised, name: str) -> str:
    ids = [k for k, q in stack.resources("AWS::SQS::Queue").items()
           if q["Properties"]["QueueName"] == f"rebook-{stack.stage}-{name}"]
    assert len(ids) == 1, name
    return ids[0]


# --- Tables ------------------------------------------------------------------------------------

def test_every_model_has_a_table_with_its_exact_key_schema_and_indexes(dev: Synthesised) -> None:
    assert len(dev.resources("AWS::DynamoDB::Table")) == len(ALL_MODELS)
    for model in ALL_MODELS:
        schema = model._get_schema()
        table = _table(dev, f"rebook-dev-{_logical_name(model)}")
        assert _key_schema(table["KeySchema"]) == _key_schema(schema["key_schema"]), model.__name__
        expected_gsis = {g["index_name"]: g for g in schema["global_secondary_indexes"]}
        actual_gsis = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes", [])}
        assert set(actual_gsis) == set(expected_gsis), model.__name__
        for name, gsi in expected_gsis.items():
            assert _key_schema(actual_gsis[name]["KeySchema"]) == _key_schema(gsi["key_schema"]), name
            assert actual_gsis[name]["Projection"]["ProjectionType"] == gsi["projection"]["ProjectionType"], name
        assert not table.get("LocalSecondaryIndexes") and not schema["local_secondary_indexes"]
        expected_types = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
        for gsi in schema["global_secondary_indexes"]:
            expected_types.update({a["AttributeName"]: a["AttributeType"] for a in gsi["attribute_definitions"]})
        actual_types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        assert actual_types == expected_types, model.__name__


def test_tables_with_a_ttl_attribute_expire_items_by_it(dev: Synthesised) -> None:
    for model in ALL_MODELS:
        ttl = model._ttl_attribute()
        table = _table(dev, f"rebook-dev-{_logical_name(model)}")
        if ttl is None:
            assert "TimeToLiveSpecification" not in table, model.__name__
        else:
            assert table["TimeToLiveSpecification"] == {"AttributeName": ttl.attr_name, "Enabled": True}


def test_tables_are_on_demand_with_point_in_time_recovery(dev: Synthesised, prod: Synthesised) -> None:
    for stack in (dev, prod):
        stack.template.all_resources_properties("AWS::DynamoDB::Table", {
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        })


def test_prod_tables_are_protected_and_kept_and_dev_tables_are_not(dev: Synthesised, prod: Synthesised) -> None:
    for table in prod.resources("AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"
    for table in dev.resources("AWS::DynamoDB::Table").values():
        assert table["Properties"].get("DeletionProtectionEnabled") is False
        assert table["DeletionPolicy"] == "Delete"


def test_the_models_name_the_same_tables_when_imported_for_a_stage(prod: Synthesised) -> None:
    # Lambda imports the models with the TABLE_PREFIX the stack gives it; a fresh import proves it.
    script = "from chalicelib.storage.models import ALL_MODELS; print(*[m.Meta.table_name for m in ALL_MODELS])"
    env = {**os.environ, "TABLE_PREFIX": prod.function("APIHandler")["Environment"]["Variables"]["TABLE_PREFIX"]}
    names = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
                           text=True, check=True).stdout.split()
    declared = {t["Properties"]["TableName"] for t in prod.resources("AWS::DynamoDB::Table").values()}
    assert set(names) == declared


# --- Functions ---------------------------------------------------------------------------------

def test_every_function_knows_its_stage_tables_and_queues(dev: Synthesised) -> None:
    for logical, function in dev.resources("AWS::Serverless::Function").items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["STAGE"] == "dev" and env["TABLE_PREFIX"] == "rebook-dev", logical
        assert _ref_id(env["REFUND_QUEUE_URL"]) == _queue_id(dev, "refunds"), logical
        assert _ref_id(env["DEADLINE_QUEUE_URL"]) == _queue_id(dev, "deadline-updates"), logical
        assert _ref_id(env["SLOT_CLOSURE_QUEUE_URL"]) == _queue_id(dev, "slot-closures"), logical


def test_every_function_has_its_own_role_and_log_group(dev: Synthesised) -> None:
    from infra.stack import ACCESS, logical_id

    functions = dev.resources("AWS::Serverless::Function")
    assert {logical_id(name) for name in ACCESS} == set(functions)
    roles = [_ref_id(f["Properties"]["Role"]) for f in functions.values()]
    assert len(set(roles)) == len(roles)
    for function in functions.values():
        log_group = dev.json["Resources"][_ref_id(function["Properties"]["LoggingConfig"]["LogGroup"])]
        assert log_group["Properties"]["LogGroupName"] == f"/aws/lambda/{function['Properties']['FunctionName']}"
        assert log_group["Properties"]["RetentionInDays"] > 0


def test_each_worker_reads_its_queue(dev: Synthesised) -> None:
    from infra.stack import logical_id

    for name, queue in WORKERS.items():
        events = dev.function(logical_id(name))["Events"]
        assert list(events) == [f"{logical_id(name)}SqsEventSource"]
        event = events[f"{logical_id(name)}SqsEventSource"]
        assert event["Type"] == "SQS"
        assert _ref_id(event["Properties"]["Queue"]) == _queue_id(dev, queue), name


def test_every_queue_handler_reports_partial_batch_failures(dev: Synthesised) -> None:
    # cfn-lint does not look inside SAM events, and Lambda ignores batchItemFailures without this:
    # it would delete every message of a batch the handler reported failures in, the dead-letter
    # handler's included.
    from aws_cdk.assertions import Match

    from infra.stack import ACCESS, logical_id

    queue_handlers = [name for name, access in ACCESS.items() if access.consumes]
    assert set(WORKERS) <= set(queue_handlers)
    for name in queue_handlers:
        dev.template.has_resource_properties("AWS::Serverless::Function", {
            "Handler": f"app.{name}",
            "Events": {f"{logical_id(name)}SqsEventSource": {
                "Type": "SQS", "Properties": Match.object_like({"FunctionResponseTypes": ["ReportBatchItemFailures"]}),
            }},
        })


def test_the_closure_worker_takes_one_piece_at_a_time_and_may_touch_only_what_a_closure_needs(
        dev: Synthesised) -> None:
    from infra.stack import ACCESS, logical_id

    name = "handle_slot_closures"
    event = dev.function(logical_id(name))["Events"][f"{logical_id(name)}SqsEventSource"]
    assert event["Properties"]["BatchSize"] == 1
    access = ACCESS[name]
    # Each transaction's cancellation queues the guest's email in its own write (the outbox).
    assert set(access.write) == {"bookings", "history", "jobs", "notifications", "slots"}
    assert access.read == ("venues",)
    assert set(access.send) == {"refunds", "slot-closures"} and not access.secrets
    assert "slot-closures" in ACCESS["api_handler"].send


def test_schedules_run_every_five_minutes(dev: Synthesised) -> None:
    from infra.stack import logical_id

    for name in SCHEDULES:
        events = dev.function(logical_id(name))["Events"]
        assert [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"] == ["rate(5 minutes)"]


def test_functions_read_only_the_secrets_they_are_given(dev: Synthesised) -> None:
    from infra.stack import ACCESS, SECRETS, logical_id

    secrets = {s["Properties"]["Name"].split("/")[-1]: k for k, s in dev.resources("AWS::SecretsManager::Secret").items()}
    assert set(secrets) == set(SECRETS)
    for name, access in ACCESS.items():
        env = dev.function(logical_id(name))["Environment"]["Variables"]
        given = {key.removesuffix("_ARN") for key in env if key.removesuffix("_ARN") in SECRETS}
        assert given == set(access.secrets), name
        for secret in given:
            assert _ref_id(env[f"{secret}_ARN"]) == secrets[secret]
    api = dev.function("APIHandler")["Environment"]["Variables"]
    assert {"TOKEN_SECRET_ARN", "ADMIN_API_KEY_ARN"} <= set(api)


# --- Queues ------------------------------------------------------------------------------------

def test_each_queue_dead_letters_after_five_receives_and_outlasts_its_worker(dev: Synthesised) -> None:
    from infra.stack import logical_id

    queues = dev.resources("AWS::SQS::Queue")
    for name in QUEUES:
        queue = queues[_queue_id(dev, name)]["Properties"]
        redrive = queue["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == 5
        assert _ref_id(redrive["deadLetterTargetArn"]) == _queue_id(dev, f"{name}-dlq")
    for worker, name in WORKERS.items():
        queue = queues[_queue_id(dev, name)]["Properties"]
        timeout = dev.function(logical_id(worker))["Timeout"]
        assert queue["VisibilityTimeout"] >= 6 * timeout, name


# --- API Gateway -------------------------------------------------------------------------------

def test_gateway_answers_in_the_contracts_error_shape(dev: Synthesised) -> None:
    (api,) = dev.resources("AWS::Serverless::Api").values()
    responses = api["Properties"]["GatewayResponses"]
    assert set(responses) == set(GATEWAY_RESPONSES)
    for response_type, (status, code, message) in GATEWAY_RESPONSES.items():
        response = responses[response_type]
        body = json.loads(response["ResponseTemplates"]["application/json"])
        assert body == {"error": {"code": code, "message": message}}
        assert response["ResponseParameters"]["Headers"]["Content-Type"] == "'application/json'"
        assert response["ResponseParameters"]["Headers"]["Cache-Control"] == "'no-store'"
        assert response["ResponseParameters"]["Headers"]["X-Content-Type-Options"] == "'nosniff'"
        if response_type.startswith("DEFAULT_"):
            assert "StatusCode" not in response, response_type
        else:
            assert response["StatusCode"] == str(status), response_type


# --- The portal ------------------------------------------------------------------------------

ALLOW_ORIGIN = "method.response.header.Access-Control-Allow-Origin"


def _one(stack: Synthesised, resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = stack.resources(resource_type).items()
    return found


def _distribution_origin(stack: Synthesised) -> dict[str, Any]:
    distribution, _ = _one(stack, "AWS::CloudFront::Distribution")
    return {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]}


def _quoted(origin: Any) -> Any:
    """An origin as API Gateway wants a static header value: in single quotes."""
    if isinstance(origin, str):
        return f"'{origin}'"
    parts = origin["Fn::Join"][1]
    return {"Fn::Join": ["", ["'" + parts[0], *parts[1:], "'"]]}


def _preflight_origins(stack: Synthesised) -> dict[str, Any]:
    (api,) = stack.resources("AWS::Serverless::Api").values()
    paths = api["Properties"]["DefinitionBody"]["paths"]
    return {path: methods.get("options", {}).get("x-amazon-apigateway-integration", {})
            .get("responses", {}).get("default", {}).get("responseParameters", {}).get(ALLOW_ORIGIN)
            for path, methods in paths.items()}


def _csp(stack: Synthesised) -> Any:
    _, policy = _one(stack, "AWS::CloudFront::ResponseHeadersPolicy")
    return policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"]


def test_the_portal_bucket_is_private_encrypted_and_refuses_plain_http(dev: Synthesised, prod: Synthesised) -> None:
    for stack in (dev, prod):
        bucket_id, bucket = _one(stack, "AWS::S3::Bucket")
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        _, policy = _one(stack, "AWS::S3::BucketPolicy")
        assert _ref_id(policy["Properties"]["Bucket"]) == bucket_id
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in policy["Properties"]["PolicyDocument"]["Statement"])
    assert _one(prod, "AWS::S3::Bucket")[1]["DeletionPolicy"] == "Retain"
    assert _one(dev, "AWS::S3::Bucket")[1]["DeletionPolicy"] == "Delete"
    # No auto-delete custom resource: its provider runs with a managed policy.
    assert not dev.resources("Custom::S3AutoDeleteObjects")


def test_only_the_portal_distribution_may_read_the_bucket(dev: Synthesised) -> None:
    distribution_id, distribution = _one(dev, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert _ref_id(origin["OriginAccessControlId"]) == _one(dev, "AWS::CloudFront::OriginAccessControl")[0]
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not the legacy identity
    _, policy = _one(dev, "AWS::S3::BucketPolicy")
    (allow,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Join"][1]
    assert {"Ref": distribution_id} in source


def test_the_portal_is_served_over_https_with_its_security_headers(dev: Synthesised) -> None:
    _, distribution = _one(dev, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    policy_id, policy = _one(dev, "AWS::CloudFront::ResponseHeadersPolicy")
    assert _ref_id(behaviour["ResponseHeadersPolicyId"]) == policy_id
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 365 * 24 * 3600
    assert headers["ContentTypeOptions"]["Override"] is True
    assert _csp(dev)["Override"] is True
    # The local front sends the same headers (tests/e2e/test_local_front.py checks it does).
    local = portal_headers("'self'")
    assert headers["FrameOptions"]["FrameOption"] == local["X-Frame-Options"]
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == local["Referrer-Policy"]
    assert local["X-Content-Type-Options"] == "nosniff"
    custom = policy["Properties"]["ResponseHeadersPolicyConfig"]["CustomHeadersConfig"]["Items"]
    assert {h["Header"]: h["Value"] for h in custom} == {"Permissions-Policy": local["Permissions-Policy"]}
    csp = "".join(p if isinstance(p, str) else "<ref>" for p in _csp(dev)["ContentSecurityPolicy"]["Fn::Join"][1])
    connect = re.search(r"connect-src ([^;]*)", csp)[1]  # type: ignore[index]
    assert csp == portal_csp(connect)


def test_the_portal_csp_allows_its_own_files_and_the_api_only(dev: Synthesised, venue_portal: Synthesised) -> None:
    csp = "".join(p if isinstance(p, str) else "<" + _ref_id(p) + ">"
                  for p in _csp(dev)["ContentSecurityPolicy"]["Fn::Join"][1])
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in csp
    # The distribution's own origin is in the API's CORS, so the CSP cannot name the API (a cycle):
    assert directives["connect-src"] == f"'self' https://*.execute-api.{ENV['region']}.<AWS::URLSuffix>"
    # With a venue's origin in CORS instead, it names exactly this stack's API.
    venue_csp = "".join(p if isinstance(p, str) else "<" + _ref_id(p) + ">"
                        for p in _csp(venue_portal)["ContentSecurityPolicy"]["Fn::Join"][1])
    assert f"connect-src 'self' https://<RestAPI>.execute-api.{ENV['region']}.<AWS::URLSuffix>;" in venue_csp


def test_the_portal_pages_need_nothing_the_csp_refuses() -> None:
    # No inline script, style or event handler: the CSP has no 'unsafe-inline'.
    for page in (REPO_ROOT / "portal").glob("*.html"):
        text = page.read_text()
        assert "<style" not in text and " style=" not in text, page.name
        assert re.findall(r"<script(?![^>]*\bsrc=)", text) == [], page.name
        assert not re.search(r"\son[a-z]+=", text), page.name


def test_the_api_allows_the_hosted_portal_origin_only(dev: Synthesised, prod: Synthesised) -> None:
    for stack in (dev, prod):
        origin = _distribution_origin(stack)
        preflights = _preflight_origins(stack)
        assert preflights and all(value == _quoted(origin) for value in preflights.values()), preflights
        assert stack.function("APIHandler")["Environment"]["Variables"]["PORTAL_ORIGIN"] == origin


def test_a_venue_portal_origin_replaces_the_hosted_one_everywhere(venue_portal: Synthesised) -> None:
    preflights = _preflight_origins(venue_portal)
    assert preflights and set(preflights.values()) == {f"'{VENUE_PORTAL_ORIGIN}'"}
    assert venue_portal.function("APIHandler")["Environment"]["Variables"]["PORTAL_ORIGIN"] == VENUE_PORTAL_ORIGIN
    (api,) = venue_portal.resources("AWS::Serverless::Api").values()
    for response in api["Properties"]["GatewayResponses"].values():
        assert response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] == f"'{VENUE_PORTAL_ORIGIN}'"
    assert "*" not in json.dumps(preflights)


def test_gateway_answers_are_readable_by_the_hosted_portal(dev: Synthesised) -> None:
    (api,) = dev.resources("AWS::Serverless::Api").values()
    for response in api["Properties"]["GatewayResponses"].values():
        assert response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] == _quoted(
            _distribution_origin(dev))


def test_the_outputs_say_where_to_upload_the_portal_and_where_it_is(dev: Synthesised) -> None:
    outputs = dev.json["Outputs"]
    assert outputs["PortalUrl"]["Value"] == _distribution_origin(dev)
    assert _ref_id(outputs["PortalBucketName"]["Value"]) == _one(dev, "AWS::S3::Bucket")[0]
    assert _ref_id(outputs["PortalDistributionId"]["Value"]) == _one(dev, "AWS::CloudFront::Distribution")[0]
    api_url = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert api_url[0] == "https://" and api_url[1] == {"Ref": "RestAPI"} and api_url[-1].endswith("/v")


def test_a_portal_origin_must_be_a_bare_https_origin() -> None:
    import aws_cdk as cdk

    from infra.stack import RebookStack

    for bad in ("http://portal.example.com", "https://portal.example.com/", "https://portal.example.com/app", "*"):
        with pytest.raises(ValueError, match="portal_origin"):
            RebookStack(cdk.App(), "dev", portal_origin=bad)


def test_the_hosted_copy_of_the_portal_calls_the_stages_api(tmp_path: Path) -> None:
    api = "https://abc123.execute-api.eu-west-1.amazonaws.com/v"
    pages = hosted_copy(tmp_path / "portal", api + "/")
    assert {p.name for p in pages} == {"index.html", "admin.html", "reset.html"}
    for page in pages:
        assert f'<meta name="rebook-api" content="{api}">' in page.read_text()
    assert (tmp_path / "portal" / "js" / "api.js").read_text() == (REPO_ROOT / "portal/js/api.js").read_text()
    assert not (tmp_path / "portal" / "README.md").exists()
    # The working copy keeps serving `make run` from the API's own origin.
    assert '<meta name="rebook-api" content="">' in (REPO_ROOT / "portal/index.html").read_text()
    with pytest.raises(ValueError):
        hosted_copy(tmp_path / "bad", 'https://x.example/"><script>')


# --- Alarms ------------------------------------------------------------------------------------

def _alarms(stack: Synthesised) -> list[dict[str, Any]]:
    return [a["Properties"] for a in stack.resources("AWS::CloudWatch::Alarm").values()]


def test_a_message_in_any_dead_letter_queue_pages(dev: Synthesised) -> None:
    watched = {_ref_id(d["Value"]) for a in _alarms(dev) if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
               for d in a["Dimensions"]}
    assert watched == {_queue_id(dev, f"{name}-dlq") for name in QUEUES}


def test_refund_outcomes_are_metrics_and_failures_page(dev: Synthesised) -> None:
    filters = [f["Properties"] for f in dev.resources("AWS::Logs::MetricFilter").values()]
    patterns = {f["MetricTransformations"][0]["MetricName"]: f["FilterPattern"] for f in filters}
    assert patterns == {"RefundsFailed": '{ $.event = "refund_failed" }',
                        "RefundsSucceeded": '{ $.event = "refund_succeeded" }',
                        "StripeKeyRejected": '{ $.event = "stripe_key_rejected" }',
                        "NotificationsFailed": '{ $.event = "notification_failed" }',
                        "ClosureSessionsLeft": '{ $.event = "closure_sessions_left" }'}
    worker_group = _ref_id(dev.function("HandleRefunds")["LoggingConfig"]["LogGroup"])
    assert {f["MetricTransformations"][0]["MetricName"] for f in filters
            if _ref_id(f["LogGroupName"]) == worker_group} == {"RefundsFailed", "RefundsSucceeded", "StripeKeyRejected"}
    assert any(a["MetricName"] == "RefundsFailed" and a["Threshold"] == 0 for a in _alarms(dev))


def test_our_stripe_key_being_refused_pages(dev: Synthesised) -> None:
    """Refunds stay pending while Stripe refuses our key: nothing else would tell anyone."""
    [alarm] = [a for a in _alarms(dev) if a["MetricName"] == "StripeKeyRejected"]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Namespace"] == "rebook/dev" and alarm["AlarmActions"]


def test_api_5xx_rate_and_worker_errors_page(dev: Synthesised) -> None:
    alarms = _alarms(dev)
    api_5xx = [a for a in alarms if a["MetricName"] == "5XXError"]
    assert len(api_5xx) == 1 and api_5xx[0]["Statistic"] == "Average"
    assert {"Name": "ApiName", "Value": "rebook-dev"} in api_5xx[0]["Dimensions"]
    (api,) = dev.resources("AWS::Serverless::Api").values()
    assert api["Properties"]["Name"] == "rebook-dev"
    worker_errors = [a for a in alarms if a["MetricName"] == "Errors"
                     and {"Name": "FunctionName", "Value": dev.function("HandleRefunds")["FunctionName"]} in a["Dimensions"]]
    assert len(worker_errors) == 1


def test_every_alarm_notifies_the_alarm_topic(dev: Synthesised) -> None:
    (topic,) = dev.resources("AWS::SNS::Topic")
    for alarm in _alarms(dev):
        assert [_ref_id(a) for a in alarm["AlarmActions"]] == [topic], alarm["AlarmName"]


# --- Least privilege ---------------------------------------------------------------------------

def _statements(stack: Synthesised) -> list[dict[str, Any]]:
    found = []
    for resource in stack.json["Resources"].values():
        properties = resource.get("Properties", {})
        documents = [properties.get("PolicyDocument")] + [p["PolicyDocument"] for p in properties.get("Policies", [])]
        found += [s for document in documents if document for s in document["Statement"]]
    return found


def test_no_policy_grants_every_resource_or_every_action(dev: Synthesised, prod: Synthesised) -> None:
    for stack in (dev, prod):
        for statement in _statements(stack):
            if statement["Effect"] != "Allow":
                continue
            resources = statement.get("Resource")
            resources = resources if isinstance(resources, list) else [resources]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "*" not in resources, statement
            assert not any(isinstance(a, str) and a.endswith("*") for a in actions), statement
        for role in stack.resources("AWS::IAM::Role").values():
            assert not role["Properties"].get("ManagedPolicyArns"), role


def test_a_scheduled_job_cannot_touch_tables_or_secrets_it_does_not_use(dev: Synthesised) -> None:
    role = _ref_id(dev.function("ReconcileRefunds")["Role"])
    policies = [p["Properties"] for p in dev.resources("AWS::IAM::Policy").values()
                if [_ref_id(r) for r in p["Properties"]["Roles"]] == [role]]
    (policy,) = policies
    touched = {_ref_id(r if not isinstance(r, dict) or "Fn::Join" not in r else r["Fn::Join"][1][0])
               for s in policy["PolicyDocument"]["Statement"]
               for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
    tables = {k for k, t in dev.resources("AWS::DynamoDB::Table").items()
              if t["Properties"]["TableName"] == "rebook-dev-bookings"}
    secrets = set(dev.resources("AWS::SecretsManager::Secret"))
    assert tables <= touched and not touched & secrets
    assert not touched & (set(dev.resources("AWS::DynamoDB::Table")) - tables)


def test_cfn_lint_finds_nothing_in_either_stage(dev: Synthesised, prod: Synthesised, tmp_path: Path) -> None:
    paths = []
    for synthesised in (dev, prod):
        path = tmp_path / f"rebook-{synthesised.stage}.template.json"
        path.write_text(json.dumps(synthesised.json))
        paths.append(str(path))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    linted = subprocess.run([str(cfn_lint), *paths], capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr


# --- Emails to guests --------------------------------------------------------------------------

EMAIL_FUNCTIONS = ("send_notifications", "resend_notifications")


def _policy_of(stack: Synthesised, function_logical_id: str) -> list[dict[str, Any]]:
    role = _ref_id(stack.function(function_logical_id)["Role"])
    return [s for p in stack.resources("AWS::IAM::Policy").values()
            if [_ref_id(r) for r in p["Properties"]["Roles"]] == [role]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_the_notifications_table_streams_new_items_to_the_sender(dev: Synthesised) -> None:
    table_ids = [k for k, t in dev.resources("AWS::DynamoDB::Table").items()
                 if t["Properties"]["TableName"] == "rebook-dev-notifications"]
    (table_id,) = table_ids
    assert dev.json["Resources"][table_id]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    events = dev.function("SendNotifications")["Events"]
    (event,) = events.values()
    assert event["Type"] == "DynamoDB"
    properties = event["Properties"]
    assert properties["Stream"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    # Not LATEST: a notice written before the event source existed is still sent.
    assert properties["StartingPosition"] == "TRIM_HORIZON"
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < properties["MaximumRetryAttempts"] <= 10
    assert [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]] == [{"eventName": ["INSERT"]}]
    streamed = [k for k, t in dev.resources("AWS::DynamoDB::Table").items() if "StreamSpecification" in t["Properties"]]
    assert streamed == [table_id]


def test_the_local_stack_filters_the_stream_as_the_event_source_does(dev: Synthesised) -> None:
    from infra.local.stack import STREAM_EVENT_NAMES

    (event,) = dev.function("SendNotifications")["Events"].values()
    assert [json.loads(f["Pattern"]) for f in event["Properties"]["FilterCriteria"]["Filters"]] == [
        {"eventName": sorted(STREAM_EVENT_NAMES)}]


def test_only_the_email_functions_may_send_email_and_only_from_the_stage_identity(dev: Synthesised) -> None:
    from infra.stack import ACCESS, logical_id

    parameters = dev.json["Parameters"]
    assert {"MailFrom", "MailIdentity"} <= set(parameters)
    for name in ACCESS:
        sends = [s for s in _policy_of(dev, logical_id(name)) if "ses:SendEmail" in json.dumps(s["Action"])]
        if name not in EMAIL_FUNCTIONS:
            assert sends == [], name
            continue
        (statement,) = sends
        assert statement["Action"] == "ses:SendEmail"
        identity = json.dumps(statement["Resource"])
        assert ':ses:' in identity and ':identity/' in identity and '{"Ref": "MailIdentity"}' in identity
        assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "MailFrom"}}}
        env = dev.function(logical_id(name))["Environment"]["Variables"]
        assert env["MAIL_FROM"] == {"Ref": "MailFrom"} and "PORTAL_URL" in env
    assert "MAIL_FROM" not in dev.function("APIHandler")["Environment"]["Variables"]


def test_the_sender_reads_only_the_notifications_stream_and_the_guests(dev: Synthesised) -> None:
    statements = _policy_of(dev, "SendNotifications")
    stream_reads = [s for s in statements if "dynamodb:GetRecords" in s["Action"]]
    (stream_read,) = stream_reads
    resource = stream_read["Resource"]
    assert (resource if isinstance(resource, dict) else resource[0])["Fn::GetAtt"][1] == "StreamArn"
    tables = {dev.json["Resources"][_ref_id(r if not isinstance(r, dict) or "Fn::Join" not in r else r["Fn::Join"][1][0])]
              ["Properties"]["TableName"]
              for s in statements if any(a.startswith("dynamodb:") for a in s["Action"]) and s is not stream_read
              for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
    assert tables == {"rebook-dev-notifications", "rebook-dev-guests"}


def test_a_closure_that_leaves_sessions_booked_pages(dev: Synthesised) -> None:
    from infra.stack import logical_id

    [found] = [f["Properties"] for f in dev.resources("AWS::Logs::MetricFilter").values()
               if f["Properties"]["MetricTransformations"][0]["MetricName"] == "ClosureSessionsLeft"]
    assert _ref_id(found["LogGroupName"]) == _ref_id(
        dev.function(logical_id("handle_slot_closures"))["LoggingConfig"]["LogGroup"])
    [alarm] = [a for a in _alarms(dev) if a["MetricName"] == "ClosureSessionsLeft"]
    assert alarm["Threshold"] == 0 and alarm["Namespace"] == "rebook/dev" and alarm["AlarmActions"]


def test_failed_emails_are_a_metric_and_page(dev: Synthesised) -> None:
    from infra.stack import logical_id

    filters = [f["Properties"] for f in dev.resources("AWS::Logs::MetricFilter").values()
               if f["Properties"]["MetricTransformations"][0]["MetricName"] == "NotificationsFailed"]
    groups = {_ref_id(f["LogGroupName"]) for f in filters}
    assert groups == {_ref_id(dev.function(logical_id(name))["LoggingConfig"]["LogGroup"]) for name in EMAIL_FUNCTIONS}
    assert all(f["FilterPattern"] == '{ $.event = "notification_failed" }' for f in filters)
    assert [a["Threshold"] for a in _alarms(dev) if a["MetricName"] == "NotificationsFailed"] == [0]


def test_the_email_sweeper_runs_every_five_minutes(dev: Synthesised) -> None:
    events = dev.function("ResendNotifications")["Events"]
    assert [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"] == ["rate(5 minutes)"]
# --- Throttling ------------------------------------------------------------------------------

def test_the_api_is_throttled_per_stage_and_tighter_on_password_routes(dev: Synthesised, prod: Synthesised) -> None:
    from infra.stack import PASSWORD_ROUTE_THROTTLE, STAGE_THROTTLE

    for stack in (dev, prod):
        (api,) = stack.resources("AWS::Serverless::Api").values()
        settings = {(s["HttpMethod"], s["ResourcePath"]): s for s in api["Properties"]["MethodSettings"]}
        stage = settings[("*", "/*")]
        login = settings[("POST", "/~1v1~1venues~1{venue_id}~1login")]
        assert stage["ThrottlingRateLimit"] == STAGE_THROTTLE["ThrottlingRateLimit"] > 0
        assert stage["ThrottlingBurstLimit"] == STAGE_THROTTLE["ThrottlingBurstLimit"] > 0
        assert 0 < login["ThrottlingRateLimit"] == PASSWORD_ROUTE_THROTTLE["ThrottlingRateLimit"] \
            < stage["ThrottlingRateLimit"]
        assert 0 < login["ThrottlingBurstLimit"] < stage["ThrottlingBurstLimit"]
        # Every setting names a route the API has, so none silently applies to nothing.
        paths = api["Properties"]["DefinitionBody"]["paths"]
        for method, resource in settings:
            if resource != "/*":
                assert method.lower() in paths[resource[1:].replace("~1", "/")], resource
        # The gateway's own 429 is in the contract's shape.
        throttled = api["Properties"]["GatewayResponses"]["THROTTLED"]
        assert throttled["StatusCode"] == "429"
        assert json.loads(throttled["ResponseTemplates"]["application/json"])["error"]["code"] == "too_many_requests"
