"""The AWS stack of one stage: the Chalice app (through `chalice.cdk`), its tables, queues,
secrets, per-function roles, log groups, gateway responses, alarms, and the portal's hosting
(S3 behind CloudFront; the API allows that one origin in CORS).

What each Lambda function may touch is declared once, in `ACCESS`; a function that app.py
defines and `ACCESS` does not name stops the synthesis, so nothing runs with grants by accident.
"""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from chalice.cdk import Chalice
from constructs import Construct

from infra.portal import PERMISSIONS_POLICY, portal_csp
from infra.tables import TableSpec, holding_back, table_specs

REPO_ROOT = Path(__file__).resolve().parent.parent
STAGES = ("dev", "prod")
SECRETS = ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "TOKEN_SECRET", "ADMIN_API_KEY")
# Chalice's HTTP function: its handler is "app.app", its SAM logical id "APIHandler".
API_FUNCTION = "api_handler"

ALL_TABLES = ("venues", "api-keys", "guests", "slots", "bookings", "history", "idempotency", "login-attempts",
              "jobs", "notifications")


@dataclass(frozen=True)
class Access:
    """What one Lambda function may do. Tables are logical names (see infra.tables)."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()  # implies read
    send: tuple[str, ...] = ()  # queues it sends to
    consumes: str | None = None  # the queue its SQS event reads
    partial_batch: bool = False  # FunctionResponseTypes: [ReportBatchItemFailures]
    secrets: tuple[str, ...] = ()
    stream: str | None = None  # the table whose stream its DynamoDB event reads
    sends_email: bool = False  # ses:SendEmail from the stage's identity, and MAIL_FROM/PORTAL_URL


ACCESS: dict[str, Access] = {
    API_FUNCTION: Access(write=ALL_TABLES, send=("refunds", "deadline-updates", "slot-closures"), secrets=SECRETS),
    # Settling a refund queues the guest's email in the same write (the notifications outbox).
    "handle_refunds": Access(read=("venues",), write=("bookings", "history", "notifications"), consumes="refunds",
                             partial_batch=True, secrets=("STRIPE_API_KEY",)),
    "handle_refund_dead_letters": Access(read=("venues",), write=("bookings", "history", "notifications"),
                                         consumes="refunds-dlq", partial_batch=True),
    "handle_deadline_updates": Access(read=("venues",), write=("bookings", "history"), send=("deadline-updates",),
                                      consumes="deadline-updates", partial_batch=True),
    "handle_slot_closures": Access(read=("venues",), write=("bookings", "history", "jobs", "notifications", "slots"),
                                   send=("refunds", "slot-closures"), consumes="slot-closures", partial_batch=True),
    "close_refund_windows": Access(read=("venues",), write=("bookings", "history")),
    "reconcile_refunds": Access(write=("bookings",), send=("refunds",)),
    # The only functions that may send email; they derive reset links from TOKEN_SECRET.
    "send_notifications": Access(read=("guests",), write=("notifications",), stream="notifications",
                                 partial_batch=True, secrets=("TOKEN_SECRET",), sends_email=True),
    "resend_notifications": Access(read=("guests",), write=("notifications",), secrets=("TOKEN_SECRET",),
                                   sends_email=True),
}
STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                  "dynamodb:ListStreams"]
# How often Lambda retries a stream record whose email SES keeps refusing for now, before it
# moves on; the sweeper (resend_notifications) sends what is still queued after that.
STREAM_RETRY_ATTEMPTS = 10

READ_ACTIONS = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem",
                "dynamodb:DescribeTable"]
WRITE_ACTIONS = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]

ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER,
                   "B": dynamodb.AttributeType.BINARY}
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT_FACTOR = 6  # AWS's advice for Lambda event sources: 6x the function timeout
API_5XX_RATE = 0.05
# API Gateway throttling (token bucket: steady requests per second, burst). The whole stage, and
# tighter on the routes that check a password, where each request costs argon2id (64 MiB,
# ~200 ms): a flood of guesses is refused at the gateway before it reaches a Lambda. Limits are
# per stage, for all clients together; the per-(email, address) throttle in the app is per guest.
STAGE_THROTTLE = {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}
PASSWORD_ROUTE_THROTTLE = {"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20}
PASSWORD_ROUTES = ("/v1/venues/{venue_id}/login", "/v1/venues/{venue_id}/password-reset",
                   "/v1/venues/{venue_id}/password-reset/confirm")
# An origin as a browser sends it: scheme and host (and port), nothing after.
ORIGIN = re.compile(r"https://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?")


def logical_id(function_name: str) -> str:
    """The SAM logical id Chalice gives a function: handle_refunds -> HandleRefunds."""
    if function_name == API_FUNCTION:
        return "APIHandler"
    return "".join(part[:1].upper() + part[1:] for part in function_name.split("_"))


@dataclass(frozen=True)
class PackagedFunction:
    """A function as `chalice package` emitted it, before our overrides."""

    name: str
    logical_id: str
    timeout: int
    events: dict[str, Any]


class StageSettings:
    """The per-stage choices: what production keeps and protects, and what dev may throw away."""

    def __init__(self, stage: str) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
        self.stage = stage
        self.prefix = f"rebook-{stage}"
        self.production = stage == "prod"
        self.removal = cdk.RemovalPolicy.RETAIN if self.production else cdk.RemovalPolicy.DESTROY
        self.log_retention = logs.RetentionDays.THREE_MONTHS if self.production else logs.RetentionDays.TWO_WEEKS


class RebookStack(cdk.Stack):
    def __init__(self, scope: Construct, stage: str, *, alarm_email: str | None = None,
                 portal_origin: str | None = None, source_dir: Path = REPO_ROOT,
                 hold_back_indexes: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.settings = StageSettings(stage)
        super().__init__(scope, self.settings.prefix, description=f"rebook ({stage})", **kwargs)
        self.source_dir = source_dir
        self.specs = {spec.logical: spec for spec in holding_back(table_specs(), hold_back_indexes)}
        _check_access(set(self.specs))
        self.tables = {name: self._table(spec) for name, spec in self.specs.items()}
        self.queues, self.dead_letter_queues = self._queues()
        self.secrets = {name: self._secret(name) for name in SECRETS}
        self.mail_from, self.mail_identity = self._mail_parameters()
        self.portal_origin: str | None = self.portal(portal_origin)

        # Chalice needs one role ARN to package; every function then gets its own role below.
        self.roles = {API_FUNCTION: self._role(API_FUNCTION)}
        self.stage_config = self._stage_config()
        with _fresh_app_import():
            self.chalice = Chalice(self, "Api", source_dir=str(source_dir), stage_config=self.stage_config)
        self._portal_reaches_api(own_origin=portal_origin is not None)
        self.functions = self._packaged_functions()
        self.log_groups: dict[str, logs.LogGroup] = {}
        for function in self.functions.values():
            self._configure_function(function)
        self._set_visibility_timeouts()
        self._gateway_responses()
        self._throttling()
        self.alarm_topic = self._alarms(alarm_email)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        for name, secret in self.secrets.items():
            cdk.CfnOutput(self, f"{name.title().replace('_', '')}SecretArn", value=secret.secret_arn)

    # --- Storage, queues and secrets ---------------------------------------------------------

    def _table(self, spec: TableSpec) -> dynamodb.Table:
        def attribute(name: str) -> dynamodb.Attribute:
            return dynamodb.Attribute(name=name, type=ATTRIBUTE_TYPES[spec.attribute_type(name)])

        table = dynamodb.Table(
            self, f"Table{_camel(spec.logical)}",
            table_name=spec.table_name(self.settings.prefix),
            partition_key=attribute(spec.hash_key),
            sort_key=attribute(spec.range_key) if spec.range_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            deletion_protection=self.settings.production,
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=self.settings.removal,
            stream=dynamodb.StreamViewType(spec.stream_view_type) if spec.stream_view_type else None,
        )
        for index in spec.global_indexes:
            table.add_global_secondary_index(
                index_name=index.name, partition_key=attribute(index.hash_key),
                sort_key=attribute(index.range_key) if index.range_key else None,
                projection_type=dynamodb.ProjectionType(index.projection),
                non_key_attributes=list(index.non_key_attributes) or None)
        for index in spec.local_indexes:
            table.add_local_secondary_index(
                index_name=index.name, sort_key=attribute(index.range_key or index.hash_key),
                projection_type=dynamodb.ProjectionType(index.projection),
                non_key_attributes=list(index.non_key_attributes) or None)
        return table

    def _queues(self) -> tuple[dict[str, sqs.Queue], dict[str, sqs.Queue]]:
        from chalicelib.config import QUEUES

        queues: dict[str, sqs.Queue] = {}
        dead_letter_queues: dict[str, sqs.Queue] = {}
        for name in QUEUES:
            dlq = sqs.Queue(self, f"Queue{_camel(name)}Dlq", queue_name=f"{self.settings.prefix}-{name}-dlq",
                            retention_period=cdk.Duration.days(14), encryption=sqs.QueueEncryption.SQS_MANAGED,
                            enforce_ssl=True, removal_policy=self.settings.removal)
            # The visibility timeout is set from the consumer's timeout once Chalice has packaged.
            queues[name] = sqs.Queue(
                self, f"Queue{_camel(name)}", queue_name=f"{self.settings.prefix}-{name}",
                retention_period=cdk.Duration.days(4), encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True, removal_policy=self.settings.removal,
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=MAX_RECEIVE_COUNT))
            queues[f"{name}-dlq"] = dlq
            dead_letter_queues[f"{name}-dlq"] = dlq
        return queues, dead_letter_queues

    def _mail_parameters(self) -> tuple[cdk.CfnParameter, cdk.CfnParameter]:
        """Where guests' emails come from: an address of an identity verified in SES (a domain or
        the address itself). The sender may send from that identity and that address only."""
        mail_from = cdk.CfnParameter(
            self, "MailFrom", type="String", allowed_pattern=r"[^@\s]+@[^@\s]+",
            description="The address guests' emails come from (MAIL_FROM), e.g. bookings@venue.example")
        identity = cdk.CfnParameter(
            self, "MailIdentity", type="String", allowed_pattern=r"[^\s]+",
            description="The SES identity verified for MAIL_FROM: its domain, or the address itself")
        return mail_from, identity

    def _secret(self, name: str) -> secretsmanager.Secret:
        # A random value until an operator puts the real one (docs/deploy.md); CloudFormation leaves
        # a value put later alone, since the template's generator does not change.
        return secretsmanager.Secret(
            self, f"Secret{name.title().replace('_', '')}", secret_name=f"{self.settings.prefix}/{name}",
            description=f"rebook {self.settings.stage}: {name}",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True,
                                                                        password_length=48),
            removal_policy=self.settings.removal)

    # --- The portal -------------------------------------------------------------------------

    def portal(self, own_origin: str | None) -> str:
        """Hosts portal/ (private S3 behind CloudFront) and returns the origin the API allows in
        CORS: a venue's own portal host if given, else this distribution's. `make portal-deploy`
        uploads the files; a CDK asset upload (BucketDeployment) would need a role with a managed
        policy and wildcard S3 grants."""
        if own_origin is not None and not ORIGIN.fullmatch(own_origin):
            raise ValueError(f"portal_origin must be an https origin such as https://portal.example.com "
                             f"(no path, no trailing slash), not {own_origin!r}")
        self.portal_bucket = s3.Bucket(
            self, "PortalBucket", block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # No auto-delete: its custom resource runs with a managed policy. Empty a dev bucket
            # before destroying the stack (docs/deploy.md).
            removal_policy=self.settings.removal, auto_delete_objects=False)
        # The API's origin joins connect-src once Chalice has packaged (see _portal_reaches_api).
        # The same headers as infra.portal.portal_headers, which the local front sends (a test
        # holds the two together).
        self.portal_headers = cloudfront.ResponseHeadersPolicy(
            self, "PortalHeaders", response_headers_policy_name=f"{self.settings.prefix}-portal",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=portal_csp("'self'"), override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365), include_subdomains=True, override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True)),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(custom_headers=[
                cloudfront.ResponseCustomHeader(header="Permissions-Policy", value=PERMISSIONS_POLICY,
                                                override=True)]))
        self.portal_distribution = cloudfront.Distribution(
            self, "Portal", comment=f"rebook {self.settings.stage} portal",
            default_root_object="index.html", price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.portal_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.portal_headers))
        portal_url = f"https://{self.portal_distribution.distribution_domain_name}"
        self.portal_url = own_origin or portal_url  # where emailed links lead
        cdk.CfnOutput(self, "PortalUrl", value=portal_url)
        cdk.CfnOutput(self, "PortalBucketName", value=self.portal_bucket.bucket_name)
        cdk.CfnOutput(self, "PortalDistributionId", value=self.portal_distribution.distribution_id)
        return own_origin or portal_url

    def _portal_reaches_api(self, own_origin: bool) -> None:
        """The portal's CSP names the API's origin, and the API's CORS names the portal's: when that
        is the distribution's own, each would wait for the other, so connect-src then allows this
        region's API Gateway hosts instead of the one API."""
        api_origin = f"https://{self.chalice.get_resource('RestAPI').ref}.execute-api.{self.region}.{self.url_suffix}"
        cdk.CfnOutput(self, "ApiUrl", value=f"{api_origin}/{self.stage_config['api_gateway_stage']}")
        connect = api_origin if own_origin else f"https://*.execute-api.{self.region}.{self.url_suffix}"
        self.portal_headers.node.default_child.add_property_override(
            "ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy.ContentSecurityPolicy",
            portal_csp(f"'self' {connect}"))

    # --- The Chalice app ---------------------------------------------------------------------

    def _stage_config(self) -> dict[str, Any]:
        disk = json.loads((self.source_dir / ".chalice" / "config.json").read_text())
        on_disk = disk.get("stages", {}).get(self.settings.stage, {})
        environment = {
            **on_disk.get("environment_variables", {}),
            "STAGE": self.settings.stage,
            "TABLE_PREFIX": self.settings.prefix,
            "REFUND_QUEUE_URL": self.queues["refunds"].queue_url,
            "DEADLINE_QUEUE_URL": self.queues["deadline-updates"].queue_url,
            "SLOT_CLOSURE_QUEUE_URL": self.queues["slot-closures"].queue_url,
            "QUEUE_ARN_PREFIX": f"arn:{self.partition}:sqs:{self.region}:{self.account}",
        }
        if self.portal_origin:
            # At packaging too: app.py's CORS becomes the OPTIONS answers API Gateway gives itself.
            environment["PORTAL_ORIGIN"] = self.portal_origin
        # Chalice names its stage after this stack, so the stage's own block in config.json is
        # not found by name: pass it explicitly, with what infra owns on top.
        return {
            **{key: value for key, value in on_disk.items() if key != "lambda_functions"},
            "api_gateway_stage": on_disk.get("api_gateway_stage", "v"),
            "autogen_policy": False,
            "manage_iam_role": False,
            "iam_role_arn": self.roles[API_FUNCTION].role_arn,
            "environment_variables": environment,
        }

    def _packaged_functions(self) -> dict[str, PackagedFunction]:
        sam = json.loads((Path(self.chalice._sam_package_dir) / "sam.json").read_text())
        functions: dict[str, PackagedFunction] = {}
        for resource_id, resource in sam["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            handler = resource["Properties"]["Handler"].split(".", 1)[1]
            name = API_FUNCTION if handler == "app" else handler
            if logical_id(name) != resource_id:
                raise RuntimeError(f"Chalice named {name}'s resource {resource_id}, expected {logical_id(name)}")
            functions[name] = PackagedFunction(name=name, logical_id=resource_id,
                                               timeout=int(resource["Properties"]["Timeout"]),
                                               events=resource["Properties"].get("Events", {}))
        undeclared = sorted(set(functions) - set(ACCESS))
        if undeclared:
            raise RuntimeError(f"app.py defines {', '.join(undeclared)}, which infra/stack.py ACCESS does not "
                               "declare: say which tables, queues and secrets each may use")
        missing = sorted(set(ACCESS) - set(functions))
        if missing:
            raise RuntimeError(f"infra/stack.py ACCESS declares {', '.join(missing)}, which app.py does not define")
        return functions

    def _configure_function(self, function: PackagedFunction) -> None:
        access = ACCESS[function.name]
        resource = self.chalice.get_resource(function.logical_id)
        function_name = f"{self.settings.prefix}-{function.name}"
        log_group = logs.LogGroup(self, f"Logs{function.logical_id}", log_group_name=f"/aws/lambda/{function_name}",
                                  retention=self.settings.log_retention, removal_policy=self.settings.removal)
        self.log_groups[function.name] = log_group
        role = self.roles.get(function.name) or self._role(function.name)
        self.roles[function.name] = role
        policy = self._grant(role, access, log_group)

        resource.add_override("Properties.FunctionName", function_name)
        resource.add_override("Properties.Role", role.role_arn)
        resource.add_override("Properties.LoggingConfig", {"LogGroup": log_group.log_group_name, "LogFormat": "Text"})
        # The role alone is not enough: an SQS event source is refused until the role's policy
        # allows receiving, and a function should not start before it may write its logs.
        resource.add_resource_dependency(policy.node.default_child)
        for name in access.secrets:
            resource.add_override(f"Properties.Environment.Variables.{name}_ARN", self.secrets[name].secret_arn)
        if access.sends_email:
            resource.add_override("Properties.Environment.Variables.MAIL_FROM", self.mail_from.value_as_string)
            resource.add_override("Properties.Environment.Variables.PORTAL_URL", self.portal_url)
        self._bind_queue_event(function, access, resource)
        self._bind_stream_event(function, access, resource)

    def _bind_queue_event(self, function: PackagedFunction, access: Access, resource: cdk.CfnResource) -> None:
        found = _declared_event(function, "SQS", access.consumes, "a queue", "consumes")
        if found is None or access.consumes is None:
            return
        event_id, event = found
        placeholder = event["Properties"]["Queue"]
        if not placeholder.endswith(f"-{access.consumes}"):
            raise RuntimeError(f"app.py points {function.name} at {placeholder}, ACCESS says {access.consumes}")
        path = f"Properties.Events.{event_id}.Properties"
        resource.add_override(f"{path}.Queue", self.queues[access.consumes].queue_arn)
        if access.partial_batch:
            resource.add_override(f"{path}.FunctionResponseTypes", ["ReportBatchItemFailures"])

    def _bind_stream_event(self, function: PackagedFunction, access: Access, resource: cdk.CfnResource) -> None:
        """Point the function's DynamoDB event at the table's stream (app.py names a placeholder),
        from the oldest record kept, new items only, with partial batch responses and bounded retries."""
        found = _declared_event(function, "DynamoDB", access.stream, "a table stream", "stream")
        if found is None or access.stream is None:
            return
        event_id, event = found
        if f"table/{self.settings.prefix}-{access.stream}/" not in event["Properties"]["Stream"]:
            raise RuntimeError(f"app.py points {function.name} at {event['Properties']['Stream']}, "
                               f"ACCESS says {access.stream}")
        path = f"Properties.Events.{event_id}.Properties"
        resource.add_override(f"{path}.Stream", self.tables[access.stream].table_stream_arn)
        resource.add_override(f"{path}.StartingPosition", "TRIM_HORIZON")
        resource.add_override(f"{path}.MaximumRetryAttempts", STREAM_RETRY_ATTEMPTS)
        resource.add_override(f"{path}.FilterCriteria", {"Filters": [{"Pattern": json.dumps({"eventName": ["INSERT"]})}]})
        if access.partial_batch:
            resource.add_override(f"{path}.FunctionResponseTypes", ["ReportBatchItemFailures"])

    def _set_visibility_timeouts(self) -> None:
        for queue_name, queue in self.queues.items():
            timeouts = [f.timeout for f in self.functions.values() if ACCESS[f.name].consumes == queue_name]
            if timeouts:
                cfn_queue = queue.node.default_child
                cfn_queue.visibility_timeout = VISIBILITY_TIMEOUT_FACTOR * max(timeouts)

    # --- Least privilege ---------------------------------------------------------------------

    def _role(self, function_name: str) -> iam.Role:
        return iam.Role(self, f"Role{logical_id(function_name)}",
                        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"rebook {self.settings.stage}: {function_name} only")

    def _grant(self, role: iam.Role, access: Access, log_group: logs.LogGroup) -> iam.Policy:
        statements = [iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                          resources=[log_group.log_group_arn])]
        writes = set(access.write)
        for name in sorted(set(access.read) | writes):
            statements.append(iam.PolicyStatement(
                actions=READ_ACTIONS + (WRITE_ACTIONS if name in writes else []),
                resources=self._table_arns(name)))
        for name in access.send:
            statements.append(iam.PolicyStatement(actions=["sqs:SendMessage", "sqs:GetQueueAttributes"],
                                                  resources=[self.queues[name].queue_arn]))
        if access.consumes:
            statements.append(iam.PolicyStatement(
                actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                         "sqs:GetQueueAttributes"],
                resources=[self.queues[access.consumes].queue_arn]))
        if access.secrets:
            statements.append(iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[self.secrets[name].secret_arn for name in access.secrets]))
        if access.stream:
            statements.append(iam.PolicyStatement(actions=STREAM_ACTIONS,
                                                  resources=[self.tables[access.stream].table_stream_arn]))
        if access.sends_email:
            statements.append(iam.PolicyStatement(
                actions=["ses:SendEmail"],
                resources=[f"arn:{self.partition}:ses:{self.region}:{self.account}:identity/"
                           f"{self.mail_identity.value_as_string}"],
                conditions={"StringEquals": {"ses:FromAddress": self.mail_from.value_as_string}}))
        return iam.Policy(self, f"Policy{role.node.id}", roles=[role], statements=statements)

    def _table_arns(self, logical: str) -> list[str]:
        table = self.tables[logical]
        spec = self.specs[logical]
        indexes = [f"{table.table_arn}/index/{index.name}" for index in spec.global_indexes + spec.local_indexes]
        return [table.table_arn, *indexes]

    # --- The API's own answers ----------------------------------------------------------------

    def _gateway_responses(self) -> None:
        """Answers API Gateway gives before any Lambda runs, in the contract's error shape. Set on
        the SAM Api (not as separate resources) so SAM redeploys the stage when they change."""
        from chalicelib.api.errors import GATEWAY_RESPONSES
        from chalicelib.api.headers import API_ANSWER_HEADERS

        responses: dict[str, Any] = {}
        for response_type, (status, code, message) in GATEWAY_RESPONSES.items():
            headers = {"Content-Type": "'application/json'", **{k: f"'{v}'" for k, v in API_ANSWER_HEADERS.items()}}
            response: dict[str, Any] = {
                "ResponseParameters": {"Headers": headers},
                "ResponseTemplates": {"application/json": json.dumps({"error": {"code": code, "message": message}})},
            }
            if self.portal_origin:  # or the portal cannot read why it was refused
                response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] = f"'{self.portal_origin}'"
            if not response_type.startswith("DEFAULT_"):  # a default keeps the status it stands for
                response["StatusCode"] = str(status)
            responses[response_type] = response
        api = self.chalice.get_resource("RestAPI")
        api.add_override("Properties.GatewayResponses", responses)
        api.add_override("Properties.Name", self.settings.prefix)

    def _throttling(self) -> None:
        """Stage-wide limits, and tighter ones on every password route app.py defines. The
        gateway's own 429 answer is the THROTTLED gateway response: the contract's shape."""
        sam = json.loads((Path(self.chalice._sam_package_dir) / "sam.json").read_text())
        paths = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
        settings: list[dict[str, Any]] = [{"ResourcePath": "/*", "HttpMethod": "*", **STAGE_THROTTLE}]
        for path in PASSWORD_ROUTES:
            if "post" in paths.get(path, {}):
                # A method setting names its resource with each "/" written "~1".
                settings.append({"ResourcePath": "/" + path.replace("/", "~1"), "HttpMethod": "POST",
                                 **PASSWORD_ROUTE_THROTTLE})
        self.chalice.get_resource("RestAPI").add_override("Properties.MethodSettings", settings)

    # --- Alarms ------------------------------------------------------------------------------

    def _alarms(self, alarm_email: str | None) -> sns.Topic:
        topic = sns.Topic(self, "Alarms", topic_name=f"{self.settings.prefix}-alarms",
                          display_name=f"rebook {self.settings.stage} alarms")
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        action = cloudwatch_actions.SnsAction(topic)
        alarms: list[cloudwatch.Alarm] = []

        consumed = {access.consumes for access in ACCESS.values()}
        for name, dlq in self.dead_letter_queues.items():
            # A drained dead-letter queue (refunds-dlq: its handler marks the refund failed, which
            # pages through RefundsFailed) pages only when its handler stops draining it.
            periods = 3 if name in consumed else 1
            alarms.append(dlq.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum").create_alarm(
                self, f"Alarm{_camel(name)}", alarm_name=f"{self.settings.prefix}-{name}-not-empty",
                alarm_description=f"Messages wait in {name}: their work was given up after retries",
                threshold=0, comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=periods, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))

        namespace = f"rebook/{self.settings.stage}"
        for event, metric_name in (("refund_succeeded", "RefundsSucceeded"), ("refund_failed", "RefundsFailed"),
                                   ("stripe_key_rejected", "StripeKeyRejected")):
            for function_name, log_group in self.log_groups.items():
                logs.MetricFilter(self, f"Metric{metric_name}{logical_id(function_name)}", log_group=log_group,
                                  metric_namespace=namespace, metric_name=metric_name, metric_value="1",
                                  filter_pattern=logs.FilterPattern.string_value("$.event", "=", event))
        for function_name in ("send_notifications", "resend_notifications"):
            logs.MetricFilter(self, f"MetricNotificationsFailed{logical_id(function_name)}",
                              log_group=self.log_groups[function_name], metric_namespace=namespace,
                              metric_name="NotificationsFailed", metric_value="1",
                              filter_pattern=logs.FilterPattern.string_value("$.event", "=", "notification_failed"))
        logs.MetricFilter(self, "MetricClosureSessionsLeft", log_group=self.log_groups["handle_slot_closures"],
                          metric_namespace=namespace, metric_name="ClosureSessionsLeft", metric_value="1",
                          filter_pattern=logs.FilterPattern.string_value("$.event", "=", "closure_sessions_left"))

        def sum_of(metric_name: str, metric_namespace: str = namespace,
                   dimensions: dict[str, str] | None = None) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace=metric_namespace, metric_name=metric_name, statistic="Sum",
                                     period=cdk.Duration.minutes(5), dimensions_map=dimensions)

        def alarm_on_any(metric: cloudwatch.Metric, logical: str, name: str, description: str) -> None:
            """Any one in five minutes wants a person."""
            alarms.append(metric.create_alarm(
                self, logical, alarm_name=f"{self.settings.prefix}-{name}", alarm_description=description,
                threshold=0, comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))

        alarm_on_any(sum_of("NotificationsFailed"), "AlarmNotificationsFailed", "notifications-failed",
                     "An email to a guest was refused by SES or given up: see the venue's notifications list")
        alarm_on_any(sum_of("RefundsFailed"), "AlarmRefundsFailed", "refunds-failed",
                     "A refund was marked failed: a guest is waiting for money an operator must see to")
        alarm_on_any(sum_of("ClosureSessionsLeft"), "AlarmClosureSessionsLeft", "closure-sessions-left",
                     "A closed slot still counts booked sessions its job could not find after sweeping again: "
                     "its guests are neither cancelled nor refunded (docs/operations.md)")
        alarm_on_any(sum_of("StripeKeyRejected"), "AlarmStripeKeyRejected", "stripe-key-rejected",
                     "Stripe refused our own key (revoked, rotated or lacking permission): refunds wait "
                     "pending until the STRIPE_API_KEY secret holds a working key")

        api_5xx = cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="5XXError", statistic="Average",
                                    period=cdk.Duration.minutes(5),
                                    dimensions_map={"ApiName": self.settings.prefix,
                                                    "Stage": self.stage_config["api_gateway_stage"]})
        alarms.append(api_5xx.create_alarm(
            self, "AlarmApi5xxRate", alarm_name=f"{self.settings.prefix}-api-5xx-rate",
            alarm_description=f"More than {API_5XX_RATE:.0%} of API requests answered 5xx",
            threshold=API_5XX_RATE, comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2, datapoints_to_alarm=2, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))

        for function in self.functions.values():
            if function.name == API_FUNCTION:
                continue  # its failures show as 5xx
            errors = sum_of("Errors", "AWS/Lambda", {"FunctionName": f"{self.settings.prefix}-{function.name}"})
            alarm_on_any(errors, f"AlarmErrors{function.logical_id}", f"{function.name}-errors",
                         f"{function.name} raised or timed out")

        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return topic


@contextmanager
def _fresh_app_import() -> Iterator[None]:
    """chalice.cdk imports app.py in this process after putting the stage's variables in os.environ,
    and leaves them there. app.py decides its CORS at import, so import it afresh for each stage's
    package, and give the process back its environment and modules afterwards."""
    from chalicelib.config import config

    environment = dict(os.environ)
    imported = sys.modules.pop("app", None)
    config.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environment)
        sys.modules.pop("app", None)
        if imported is not None:
            sys.modules["app"] = imported
        config.cache_clear()


def _declared_event(function: PackagedFunction, event_type: str, declared: str | None, reads: str,
                    option: str) -> tuple[str, dict[str, Any]] | None:
    """The function's one event of `event_type` (app.py's), when ACCESS declares what it reads;
    None when neither has one. app.py and ACCESS disagreeing stops the synthesis."""
    events = {event_id: event for event_id, event in function.events.items() if event["Type"] == event_type}
    if not declared:
        if events:
            raise RuntimeError(f"{function.name} reads {reads}; declare which in ACCESS ({option}=...)")
        return None
    if len(events) != 1:
        raise RuntimeError(f"{function.name} should have exactly one {event_type} event, has {sorted(events)}")
    (event_id, event), = events.items()
    return event_id, event


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def _check_access(tables: set[str]) -> None:
    if set(ALL_TABLES) != tables:
        raise RuntimeError(f"the models define tables {sorted(tables)}; infra/stack.py ALL_TABLES lists {sorted(ALL_TABLES)}")
    for name, access in ACCESS.items():
        unknown = set(access.read + access.write) - tables
        if unknown:
            raise RuntimeError(f"ACCESS gives {name} tables no model defines: {sorted(unknown)}")
