"""rebook: guests edit, cancel and get refunds for the sessions they booked, under venue rules.

This file is the table of contents: every route, schedule and queue handler, each a few lines
that parse, call a service in chalicelib, and shape the answer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Chalice, Rate, Response
from chalice.app import DynamoDBEvent, Request, SQSEvent

from chalicelib import queues
from chalicelib.api import representations as shape
from chalicelib.api import validation as v
from chalicelib.api.cors import cors_on_every_answer, portal_cors
from chalicelib.api.errors import busy_reads_are_unavailable, contract_errors
from chalicelib.api.headers import private_answers
from chalicelib.config import config
from chalicelib.emails.ses import SesSender
from chalicelib.errors import InvalidRequest, NotFound
from chalicelib.lazy import lazy_module
from chalicelib.observability import log_context
from chalicelib.parts import Parts
from chalicelib.queues import SqsQueues
from chalicelib.rules import MAX_CUTOFF_HOURS, MAX_FEE_FIXED, MAX_FEE_PERCENT, MAX_SESSIONS, RefundMode
from chalicelib.services import access
from chalicelib.services.stripe_key import StripeKey
from chalicelib.storage import pages
from chalicelib.times import format_utc

if TYPE_CHECKING:
    from chalicelib.services import (
        account_access,
        cancellations,
        closures,
        edits,
        guests,
        history,
        notifications,
        purchases,
        queue_messages,
        receipts,
        refund_admin,
        refund_payments,
        refund_reconciler,
        refund_windows,
        slots,
        staff,
        stripe_webhooks,
        venues,
    )
else:  # each imported by the first event that uses it: a cold start pays only for its own (chalicelib/lazy.py)
    account_access = lazy_module("chalicelib.services.account_access")
    cancellations = lazy_module("chalicelib.services.cancellations")
    closures = lazy_module("chalicelib.services.closures")
    edits = lazy_module("chalicelib.services.edits")
    guests = lazy_module("chalicelib.services.guests")
    history = lazy_module("chalicelib.services.history")
    notifications = lazy_module("chalicelib.services.notifications")
    purchases = lazy_module("chalicelib.services.purchases")
    queue_messages = lazy_module("chalicelib.services.queue_messages")
    receipts = lazy_module("chalicelib.services.receipts")
    refund_admin = lazy_module("chalicelib.services.refund_admin")
    refund_payments = lazy_module("chalicelib.services.refund_payments")
    refund_reconciler = lazy_module("chalicelib.services.refund_reconciler")
    refund_windows = lazy_module("chalicelib.services.refund_windows")
    slots = lazy_module("chalicelib.services.slots")
    staff = lazy_module("chalicelib.services.staff")
    stripe_webhooks = lazy_module("chalicelib.services.stripe_webhooks")
    venues = lazy_module("chalicelib.services.venues")

app = Chalice(app_name="rebook", configure_logs=False)
# The outside parts (SQS, Stripe, SES, the clock), built once per container and handed to the
# services that use them; none connects before its first use, so a cold start pays for none.
parts = Parts(queues=SqsQueues(), stripe=StripeKey(), mail=SesSender())
app.register_middleware(log_context, "all")  # outermost: even the error middleware's lines carry it
if portal_origin := config().portal_origin:  # set before any route: each route takes its CORS from app.api
    app.api.cors = portal_cors(portal_origin)
    app.register_middleware(cors_on_every_answer(app.api.cors), "http")
app.register_middleware(private_answers, "http")
app.register_middleware(contract_errors, "http")


def _request() -> Request:
    request = app.current_request
    if request is None:  # Chalice sets it before any route runs
        raise RuntimeError("no current request outside a route")
    return request


def _raw_body() -> bytes:
    raw = _request().raw_body  # typed str | bytes, but Chalice encodes a text body itself
    return raw.encode() if isinstance(raw, str) else raw


def _body(spec: dict[str, Any]) -> dict[str, Any]:
    _query({})  # a route with a body takes no query parameters
    return v.fields(v.json_body(_raw_body(), config().max_body_bytes), spec)


def _query(spec: dict[str, Any]) -> dict[str, Any]:
    return v.query(_request().query_params, spec)


def _auth() -> str | None:
    return _request().headers.get("authorization")


def _client_address() -> str | None:
    """The caller's address as API Gateway saw the connection (not a header a client may set)."""
    return (_request().context.get("identity") or {}).get("sourceIp")


def _id(value: str) -> str:
    """A path id; anything that cannot be one of ours is simply not found."""
    try:
        return v.identifier(value)
    except ValueError:
        raise NotFound("no such resource") from None


# A list that pages: `limit` 1..100 (default 50) and the `next_cursor` of the page before.
_PAGE = {"limit": v.optional(v.integer_text(1, pages.MAX_LIMIT)), "cursor": v.optional(v.cursor)}


def _idempotency_key() -> str | None:
    key = _request().headers.get("idempotency-key")
    if key is not None and not cancellations.idempotency_key_valid(key):
        raise InvalidRequest("the Idempotency-Key header must be 1 to 255 printable characters",
                             {"fields": {"Idempotency-Key": "invalid"}})
    return key


def _created(body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=201)


# --- Admin: venues, keys and settings -------------------------------------------------------

@app.route("/v1/admin/venues", methods=["POST"])
def create_venue() -> Response:
    admin = access.authenticate_admin(_auth())
    access.require_platform(admin)
    # venue_id left out (not null) has one made; stripe_account null is the platform's own account.
    body = _body({"venue_id": v.optional(v.identifier, null_is_absent=False), "name": v.text(200),
                  "timezone": v.timezone_name, "currency": v.currency, "stripe_account": v.optional(v.stripe_account)})
    return _created(shape.venue(venues.create_venue(admin, now=parts.clock(), **body)))


@app.route("/v1/admin/venues/{venue_id}", methods=["GET"])
def get_venue(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    _query({})
    return shape.venue(venue)


@app.route("/v1/admin/venues/{venue_id}", methods=["PATCH"])
def connect_stripe_account(venue_id: str) -> dict[str, Any]:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    access.require_platform(admin)
    body = _body({"stripe_account": v.nullable(v.stripe_account)})
    return shape.venue(venues.connect_stripe_account(admin, venue, body["stripe_account"]))


@app.route("/v1/admin/venues/{venue_id}/api-keys", methods=["POST"])
def mint_api_key(venue_id: str) -> Response:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    access.require_platform(admin)
    _body({})
    key = venues.mint_api_key(admin, venue, parts.clock())
    return _created({"api_key": key.api_key, "key_id": key.key_id, "venue_id": venue.venue_id})


@app.route("/v1/admin/venues/{venue_id}/settings", methods=["GET"])
def get_settings(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    _query({})
    return shape.settings(venue)


@app.route("/v1/admin/venues/{venue_id}/settings", methods=["PUT"])
def put_settings(venue_id: str) -> dict[str, Any]:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    body = _body({"allow_guest_modify": v.boolean, "refund_on_cancel": v.boolean,
                  "refund_cutoff_hours": v.integer(0, MAX_CUTOFF_HOURS),
                  # Optional: an absent field keeps its value.
                  "modify_cutoff_hours": v.optional(v.integer(0, MAX_CUTOFF_HOURS), null_is_absent=False),
                  "cancellation_fee_fixed": v.optional(v.integer(0, MAX_FEE_FIXED), null_is_absent=False),
                  "cancellation_fee_percent": v.optional(v.integer(0, MAX_FEE_PERCENT), null_is_absent=False),
                  "notify_guests": v.optional(v.boolean, null_is_absent=False)})
    return shape.settings(venues.update_settings(admin, venue, body, parts.clock(), parts.queues))


# --- Admin: slots and guests ----------------------------------------------------------------

@app.route("/v1/admin/venues/{venue_id}/slots", methods=["POST"])
def create_slot(venue_id: str) -> Response:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    body = _body({"product_id": v.identifier, "product_name": v.text(200), "start": v.timestamp,
                  "end": v.timestamp, "capacity": v.integer(1, 100_000)})
    return _created(shape.slot(slots.create_slot(venue, **body)))


@app.route("/v1/admin/venues/{venue_id}/slots", methods=["GET"])
def list_slots(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    query = _query({"product_id": v.identifier, "date": v.calendar_date})
    return {"slots": [shape.slot(s) for s in slots.slots_on(venue, query["product_id"], query["date"])]}


@app.route("/v1/admin/venues/{venue_id}/guests", methods=["POST"])
def create_guest(venue_id: str) -> Response:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    # Left out, not null, to invite the guest: a null is refused like any value that is not a password.
    body = _body({"email": v.email, "password": v.optional(v.password, null_is_absent=False), "name": v.text(200)})
    return _created(shape.guest(guests.create_guest(venue, now=parts.clock(), **body)))


@app.route("/v1/admin/venues/{venue_id}/transactions", methods=["POST"])
def record_purchase(venue_id: str) -> Response:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    body = _body({
        "guest_id": v.identifier, "payment_intent_id": v.stripe_id, "currency": v.currency,
        "sessions": v.list_of(v.obj({"slot_id": v.identifier, "participant_name": v.text(100),
                                     "amount": v.integer(0, 100_000_000)}), 1, MAX_SESSIONS)})
    orders = [purchases.SessionOrder(**order) for order in body.pop("sessions")]
    now = parts.clock()
    made = purchases.record_purchase(admin, venue, orders=orders, now=now, stripe=parts.stripe, **body)
    return _created(shape.receipt(made.venue, made.transaction, made.sessions, made.refunds, now))


@app.route("/v1/admin/venues/{venue_id}/notifications", methods=["GET"])
def list_notifications(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    query = _query({"guest_id": v.optional(v.identifier), "limit": v.optional(v.integer_text(1, 100)),
                    "cursor": v.optional(v.cursor)})
    found, cursor = notifications.venue_notifications(venue.venue_id, query.get("guest_id"), query.get("limit", 50),
                                                      query.get("cursor"))
    return {"notifications": [shape.notification(n) for n in found], "next_cursor": cursor}


@app.route("/v1/admin/venues/{venue_id}/transactions/{transaction_id}/history", methods=["GET"])
def transaction_history(venue_id: str, transaction_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    query = _query(_PAGE)
    found, cursor = history.events(venue.venue_id, _id(transaction_id), query.get("limit", pages.DEFAULT_LIMIT),
                                   query.get("cursor"))
    return {"events": [shape.history_event(e) for e in found], "next_cursor": cursor}


# --- Admin: staff acting for guests ---------------------------------------------------------

@app.route("/v1/admin/venues/{venue_id}/guests", methods=["GET"])
def find_guests(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    email = _query({"email": v.email})["email"]
    return {"guests": [shape.guest(g) for g in staff.find_guests(venue, email)]}


@app.route("/v1/admin/venues/{venue_id}/guests/{guest_id}/transactions", methods=["GET"])
def guest_transactions(venue_id: str, guest_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    query = _query({"limit": v.optional(v.integer_text(1, 100)), "cursor": v.optional(v.cursor)})
    found, cursor = staff.guest_transactions(venue, _id(guest_id), query.get("limit", 20), query.get("cursor"))
    return {"transactions": [shape.transaction_summary(t) for t in found], "next_cursor": cursor}


@app.route("/v1/admin/venues/{venue_id}/transactions/{transaction_id}", methods=["GET"])
def staff_receipt(venue_id: str, transaction_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    _query({})
    found = staff.receipt(venue, _id(transaction_id))
    return shape.receipt(found.venue, found.transaction, found.sessions, found.refunds, parts.clock())


_REASON = {"reason": v.text(500)}  # why staff act: required, into the history with the key that acted
_SESSION_IDS = {"session_ids": v.list_of(v.identifier, 1, MAX_SESSIONS, unique=True)}
_CANCELLATION = {**_SESSION_IDS, "expected_refund_amount": v.optional(
    v.integer(0, MAX_FEE_FIXED * MAX_SESSIONS), null_is_absent=False)}


@app.route("/v1/admin/venues/{venue_id}/transactions/{transaction_id}/sessions/{session_id}", methods=["PATCH"])
def staff_edit_session(venue_id: str, transaction_id: str, session_id: str) -> dict[str, Any]:
    now = parts.clock()
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    transaction_id, session_id = _id(transaction_id), _id(session_id)
    body = _body({"slot_id": v.optional(v.identifier, null_is_absent=False),
                  "participant_name": v.optional(v.text(100), null_is_absent=False), **_REASON})
    edited = edits.staff_edit_session(admin.actor, venue.venue_id, transaction_id, session_id, now, **body)
    return shape.session(edited.session, edited.venue.settings(), now)


_REFUND_CHOICE = {"refund": v.one_of(*(mode.value for mode in RefundMode))}


@app.route("/v1/admin/venues/{venue_id}/transactions/{transaction_id}/cancellation-quote", methods=["POST"])
def staff_cancellation_quote(venue_id: str, transaction_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    transaction_id = _id(transaction_id)
    body = _body({**_SESSION_IDS, **_REFUND_CHOICE})
    plan = cancellations.staff_quote(venue, transaction_id, body["session_ids"], RefundMode(body["refund"]),
                                     parts.clock())
    return shape.quote(plan)


@app.route("/v1/admin/venues/{venue_id}/transactions/{transaction_id}/cancellations", methods=["POST"])
def staff_cancel_sessions(venue_id: str, transaction_id: str) -> dict[str, Any]:
    now = parts.clock()
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    transaction_id = _id(transaction_id)
    body = _body({**_CANCELLATION, **_REFUND_CHOICE, **_REASON})
    return cancellations.staff_cancel(admin.actor, venue, transaction_id, body["session_ids"],
                                      RefundMode(body["refund"]), body["reason"], now, _idempotency_key(),
                                      render=shape.cancellation,
                                      expected_refund_amount=body.get("expected_refund_amount"),
                                      render_quote=shape.quote, queues=parts.queues)


@app.route("/v1/admin/venues/{venue_id}/slots/{slot_id}/closure", methods=["POST"])
def close_slot(venue_id: str, slot_id: str) -> Response:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    slot_id = _id(slot_id)
    body = _body({**_REFUND_CHOICE, **_REASON})
    _idempotency_key()  # a repeat answers the first job anyway; the key is only checked
    job = closures.close_slot(admin.actor, venue, slot_id, body["reason"], RefundMode(body["refund"]), parts.clock(),
                              parts.queues)
    return Response(body=shape.job(job), status_code=202)


@app.route("/v1/admin/venues/{venue_id}/jobs/{job_id}", methods=["GET"])
def get_job(venue_id: str, job_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    _query({})
    return shape.job(closures.find_job(venue.venue_id, _id(job_id)))


# --- Guests: login and availability ---------------------------------------------------------

@app.route("/v1/venues/{venue_id}/login", methods=["POST"])
def login(venue_id: str) -> dict[str, Any]:
    body = _body({"email": v.email, "password": v.login_password})
    result = guests.login(_id(venue_id), body["email"], body["password"], parts.clock(), _client_address())
    return {"token": result.token, "token_type": "Bearer", "expires_at": format_utc(result.expires_at),
            "guest": shape.guest(result.guest)}


@app.route("/v1/venues/{venue_id}/password-reset", methods=["POST"])
def request_password_reset(venue_id: str) -> Response:
    body = _body({"email": v.email})
    account_access.request_reset(_id(venue_id), body["email"], parts.clock(), _client_address())
    return Response(body={}, status_code=202)


@app.route("/v1/venues/{venue_id}/password-reset/confirm", methods=["POST"])
def confirm_password_reset(venue_id: str) -> dict[str, Any]:
    body = _body({"token": v.text(200), "password": v.password})
    result = account_access.confirm(_id(venue_id), body["token"], body["password"], parts.clock())
    return {"token": result.token, "token_type": "Bearer", "expires_at": format_utc(result.expires_at),
            "guest": shape.guest(result.guest)}


@app.route("/v1/venues/{venue_id}", methods=["GET"])
def public_venue(venue_id: str) -> dict[str, Any]:
    venue = access.load_venue(_id(venue_id))
    _query({})
    return shape.public_venue(venue)


@app.route("/v1/venues/{venue_id}/slots", methods=["GET"])
def available_slots(venue_id: str) -> dict[str, Any]:
    venue = access.load_venue(_id(venue_id))
    query = _query({"product_id": v.identifier, "date": v.calendar_date})
    found = slots.slots_on(venue, query["product_id"], query["date"], not_before=parts.clock(), open_only=True)
    return {"slots": [shape.slot(s) for s in found]}


@app.route("/v1/venues/{venue_id}/availability", methods=["GET"])
def availability(venue_id: str) -> dict[str, Any]:
    venue = access.load_venue(_id(venue_id))
    query = _query({"product_id": v.identifier, "month": v.calendar_month})
    days = slots.open_days(venue, query["product_id"], query["month"], not_before=parts.clock())
    return shape.availability(venue, query["product_id"], query["month"], days)


# --- Guests: purchases and receipts ---------------------------------------------------------

@app.route("/v1/me/transactions", methods=["GET"])
def my_transactions() -> dict[str, Any]:
    claims = access.authenticate_guest(_auth(), parts.clock())
    query = _query({"limit": v.optional(v.integer_text(1, 100)), "cursor": v.optional(v.cursor)})
    found, cursor = purchases.list_transactions(claims, query.get("limit", 20), query.get("cursor"))
    return {"transactions": [shape.transaction_summary(t) for t in found], "next_cursor": cursor}


@app.route("/v1/me/transactions/{transaction_id}", methods=["GET"])
def my_receipt(transaction_id: str) -> dict[str, Any]:
    now = parts.clock()
    claims = access.authenticate_guest(_auth(), now)
    _query({})
    found = receipts.guest_receipt(claims, _id(transaction_id))
    return shape.receipt(found.venue, found.transaction, found.sessions, found.refunds, now)


@app.route("/v1/me/transactions/{transaction_id}/sessions/{session_id}", methods=["PATCH"])
def edit_my_session(transaction_id: str, session_id: str) -> dict[str, Any]:
    now = parts.clock()
    claims = access.authenticate_guest(_auth(), now)
    # null is not "unchanged" here: the contract gives both as strings, to leave out when unchanged.
    body = _body({"slot_id": v.optional(v.identifier, null_is_absent=False),
                  "participant_name": v.optional(v.text(100), null_is_absent=False)})
    edited = edits.edit_session(claims, _id(transaction_id), _id(session_id), now, **body)
    return shape.session(edited.session, edited.venue.settings(), now)


# --- Guests: cancelling ---------------------------------------------------------------------

@app.route("/v1/me/transactions/{transaction_id}/cancellation-quote", methods=["POST"])
def cancellation_quote(transaction_id: str) -> dict[str, Any]:
    now = parts.clock()
    claims = access.authenticate_guest(_auth(), now)
    plan = cancellations.quote(claims, _id(transaction_id), _body(_SESSION_IDS)["session_ids"], now)
    return shape.quote(plan)


@app.route("/v1/me/transactions/{transaction_id}/cancellations", methods=["POST"])
def cancel_sessions(transaction_id: str) -> dict[str, Any]:
    now = parts.clock()
    claims = access.authenticate_guest(_auth(), now)
    body = _body(_CANCELLATION)
    return cancellations.cancel(claims, _id(transaction_id), body["session_ids"], now, _idempotency_key(),
                                render=shape.cancellation, expected_refund_amount=body.get("expected_refund_amount"),
                                render_quote=shape.quote, queues=parts.queues)


# --- Admin: refunds -------------------------------------------------------------------------

@app.route("/v1/admin/venues/{venue_id}/refunds", methods=["GET"])
def list_refunds(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    query = _query({"status": v.optional(v.one_of("pending", "refunded", "failed")), **_PAGE})
    found, bought, cursor = refund_admin.venue_refunds(venue.venue_id, query.get("status"),
                                                       query.get("limit", pages.DEFAULT_LIMIT), query.get("cursor"))
    return {"refunds": [shape.refund(r, detailed=True, purchase=bought.get(r.transaction_id)) for r in found],
            "next_cursor": cursor}


@app.route("/v1/admin/venues/{venue_id}/refunds/{refund_id}/retry", methods=["POST"])
def retry_refund(venue_id: str, refund_id: str) -> Response:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    _body({})
    retried = refund_admin.retry(refund_admin.find(venue.venue_id, _id(refund_id)), admin.actor, parts.clock(),
                                 parts.stripe, parts.queues)
    return Response(body=shape.refund(retried, detailed=True), status_code=202)


# --- Stripe ---------------------------------------------------------------------------------

@app.route("/v1/webhooks/stripe", methods=["POST"])
def stripe_webhook() -> dict[str, Any]:
    from chalicelib.payments import InvalidWebhook, verify_webhook

    now = parts.clock()
    try:
        event = verify_webhook(_raw_body(), _request().headers.get("stripe-signature"),
                               access.webhook_secrets(), now.timestamp())
    except InvalidWebhook:
        raise InvalidRequest("the Stripe signature is missing, wrong or stale") from None
    return {"received": True, "outcome": stripe_webhooks.apply_stripe_event(event, now)}


# --- Background: refunds --------------------------------------------------------------------

@app.on_sqs_message(queue_arn=config().queue_arn("refunds"), batch_size=10)
def handle_refunds(event: SQSEvent) -> dict[str, Any]:
    return queue_messages.each_message(
        event.to_dict(), event.context,
        lambda record: refund_payments.pay(queues.read(queues.RefundMessage, record.body), parts.clock(), parts.stripe),
        needs_ms=refund_payments.time_needed_ms())


@app.on_sqs_message(queue_arn=config().queue_arn("refunds-dlq"), batch_size=10)
def handle_refund_dead_letters(event: SQSEvent) -> dict[str, Any]:
    return queue_messages.each_message(
        event.to_dict(), event.context,
        lambda record: refund_payments.give_up(queues.read(queues.RefundMessage, record.body), parts.clock(),
                                               refund_payments.sent_time(record.raw_event["attributes"])))


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile_refunds(event: Any) -> None:
    refund_reconciler.resend_stale(parts.clock(), parts.queues)


# --- Background: slot closures --------------------------------------------------------------

@app.on_sqs_message(queue_arn=config().queue_arn("slot-closures"), batch_size=1)
def handle_slot_closures(event: SQSEvent) -> dict[str, Any]:
    return queue_messages.each_message(
        event.to_dict(), event.context,
        lambda record: closures.run_piece(queues.read(queues.ClosurePiece, record.body), parts.clock(), parts.queues))


# --- Background: refund windows -------------------------------------------------------------

@app.schedule(Rate(5, unit=Rate.MINUTES))
def close_refund_windows(event: Any) -> None:
    refund_windows.close_due_windows(parts.clock())


@app.on_sqs_message(queue_arn=config().queue_arn("deadline-updates"), batch_size=10)
def handle_deadline_updates(event: SQSEvent) -> dict[str, Any]:
    messages = [(record.to_dict()["messageId"], record.body) for record in event]
    return refund_windows.reproject_from_messages(messages, parts.clock())


# --- Background: emails to guests -----------------------------------------------------------

@app.on_dynamodb_record(stream_arn=config().stream_arn("notifications"), batch_size=10)
def send_notifications(event: DynamoDBEvent) -> dict[str, Any]:
    return queue_messages.each_stream_record(
        event.to_dict(), event.context,
        lambda record: notifications.deliver_from_stream(record.raw_event, parts.clock(), parts.mail))


@app.schedule(Rate(5, unit=Rate.MINUTES))
def resend_notifications(event: Any) -> None:
    notifications.resend_stale(parts.clock(), parts.mail)


busy_reads_are_unavailable(app.routes)  # last, over every route: a read DynamoDB keeps throttling is a 503
