"""Configuration in one place: every name, URL, secret and tunable the code reads comes from here.

Values come from the environment, which `.chalice/config.json` and `infra/` set in AWS and the
local stack sets on one machine. Secrets may be given directly (`TOKEN_SECRET=...`) or by the
ARN of a Secrets Manager secret (`TOKEN_SECRET_ARN=...`), read again once older than
`SECRET_MAX_AGE_SECONDS`, so a rotated secret reaches every warm container.
"""
from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

# Logical queue names; each work queue has a dead-letter queue "<name>-dlq".
QUEUES = ("refunds", "deadline-updates", "slot-closures")


@dataclass(frozen=True)
class Config:
    table_prefix: str
    refund_queue_url: str
    deadline_queue_url: str
    slot_closure_queue_url: str
    stripe_api_base: str | None
    token_ttl_seconds: int
    refund_reconcile_after_seconds: int
    window_shards: int
    login_max_failures: int  # per email and client address, per lockout window
    login_lockout_seconds: int
    login_email_max_failures: int  # per email from all addresses; past it, unknown addresses get one try
    login_known_address_days: int  # how long an address that logged in counts as the guest's own
    max_body_bytes: int
    # A few seconds, well inside the worker's Lambda timeout (15 s), which must also cover DynamoDB.
    stripe_timeout_seconds: float
    secret_max_age_seconds: int
    # argon2id takes 64 MiB a hash: at most this many at once per process, the rest answered 429.
    password_hash_concurrency: int

    queue_arn_prefix: str
    # The one other origin allowed to call the API from a browser (the hosted portal); None when
    # the portal is served on the API's own origin, as `make run` does.
    portal_origin: str | None
    # Emails to guests: the verified SES identity they come from, and the portal their links open.
    mail_from: str
    portal_url: str
    notification_resend_after_seconds: int

    def table_name(self, logical: str) -> str:
        return f"{self.table_prefix}-{logical}"

    def queue_name(self, logical: str) -> str:
        return f"{self.table_prefix}-{logical}"

    def stream_arn(self, logical: str) -> str:
        """The table stream ARN app.py names; like `queue_arn`, infra/ points the event source at
        the real stream, and the local stack reads the stream by table name."""
        return f"{self.queue_arn_prefix.replace(':sqs:', ':dynamodb:')}:table/{self.table_name(logical)}/stream/local"

    def queue_arn(self, logical: str) -> str:
        """The ARN app.py names in its queue handlers. Chalice fixes it when packaging; in AWS
        infra/ points each event source at the real queue, so this needs to be right only locally."""
        return f"{self.queue_arn_prefix}:{self.queue_name(logical)}"


@functools.lru_cache(maxsize=1)
def config() -> Config:
    env = os.environ
    stage = env.get("STAGE", "dev")
    return Config(
        table_prefix=env.get("TABLE_PREFIX", f"rebook-{stage}"),
        refund_queue_url=env.get("REFUND_QUEUE_URL", ""),
        deadline_queue_url=env.get("DEADLINE_QUEUE_URL", ""),
        slot_closure_queue_url=env.get("SLOT_CLOSURE_QUEUE_URL", ""),
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        token_ttl_seconds=int(env.get("TOKEN_TTL_SECONDS", str(12 * 3600))),
        refund_reconcile_after_seconds=int(env.get("REFUND_RECONCILE_AFTER_SECONDS", "300")),
        window_shards=int(env.get("WINDOW_SHARDS", "8")),
        login_max_failures=int(env.get("LOGIN_MAX_FAILURES", "5")),
        login_lockout_seconds=int(env.get("LOGIN_LOCKOUT_SECONDS", "900")),
        login_email_max_failures=int(env.get("LOGIN_EMAIL_MAX_FAILURES", "50")),
        login_known_address_days=int(env.get("LOGIN_KNOWN_ADDRESS_DAYS", "30")),
        max_body_bytes=int(env.get("MAX_BODY_BYTES", str(64 * 1024))),
        stripe_timeout_seconds=float(env.get("STRIPE_TIMEOUT_SECONDS", "5")),
        secret_max_age_seconds=int(env.get("SECRET_MAX_AGE_SECONDS", "300")),
        password_hash_concurrency=int(env.get("PASSWORD_HASH_CONCURRENCY", "4")),
        queue_arn_prefix=env.get("QUEUE_ARN_PREFIX", "arn:aws:sqs:us-east-1:000000000000"),
        portal_origin=env.get("PORTAL_ORIGIN") or None,
        mail_from=env.get("MAIL_FROM", "bookings@rebook.invalid"),
        portal_url=(env.get("PORTAL_URL") or env.get("PORTAL_ORIGIN") or "http://127.0.0.1:8000").rstrip("/"),
        notification_resend_after_seconds=int(env.get("NOTIFICATION_RESEND_AFTER_SECONDS", "300")),
    )


class MissingSecret(RuntimeError):
    pass


_secrets: dict[str, tuple[str, float]] = {}
_secrets_lock = threading.Lock()


def secret(name: str) -> str:
    """The secret `name`, from the environment or from Secrets Manager by `<name>_ARN`; a value read
    from Secrets Manager is kept for `secret_max_age_seconds`."""
    value = os.environ.get(name)
    if value:
        return value
    arn = os.environ.get(f"{name}_ARN")
    if not arn:
        raise MissingSecret(f"{name} is not configured (set {name} or {name}_ARN)")
    with _secrets_lock:
        cached = _secrets.get(name)
    if cached is not None and time.monotonic() - cached[1] < config().secret_max_age_seconds:
        return cached[0]
    value = str(_secrets_manager().get_secret_value(SecretId=arn)["SecretString"])
    with _secrets_lock:
        _secrets[name] = (value, time.monotonic())
    return value


def forget_secret(name: str) -> None:
    """Read `name` again on its next use (it was refused: it may have been rotated)."""
    with _secrets_lock:
        _secrets.pop(name, None)


def _secrets_manager() -> Any:
    # botocore's client, built once per container and only where a secret is read by ARN; no boto3
    # on a guest's request path (chalicelib/aws.py)
    from chalicelib import aws

    return aws.client("secretsmanager")
