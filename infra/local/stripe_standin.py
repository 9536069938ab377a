"""A stand-in for the slice of Stripe's HTTP API rebook uses, served on loopback for the real SDK.

It owns payment intents, refunds, Stripe's idempotent replay and its wire formats, plus the faults
tests inject (failed requests, answers lost after processing, declines) and a record of traffic.
Like Stripe under Connect, every object belongs to one account: the platform's (no header) or the
connected account named by the `Stripe-Account` header. An object of another account is
`resource_missing`, and idempotency keys are kept per account.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import itertools
import json
import re
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from infra.local.background import BackgroundServer

CONTROL_PREFIX = "/_standin/"
DEFAULT_API_VERSION = "2026-10-28.endive"
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    401: ("invalid_request_error", None, "Invalid API Key provided."),
    402: ("card_error", "card_declined", "Your card was declined."),
    409: ("idempotency_error", "idempotency_key_in_use",
          "There is currently another in-progress request using this Stripe-Idempotency-Key."),
    429: ("invalid_request_error", "rate_limit",
          "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."),
}


@dataclass
class _Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    # Stripe saves no idempotent result when a request never began executing (bad parameters).
    storable: bool = True


@dataclass(frozen=True)
class _Stored:
    fingerprint: str
    status: int
    body: dict[str, Any]
    request_id: str


@dataclass
class Hold:
    """A request held in progress at the stand-in until the test lets it go: tests of races wait
    for `reached` instead of sleeping and hoping the other side got there first."""

    reached: threading.Event = field(default_factory=threading.Event)  # in progress, its key in flight
    released: threading.Event = field(default_factory=threading.Event)

    def wait_until_reached(self, timeout: float = 60) -> None:
        if not self.reached.wait(timeout):
            raise AssertionError(f"no request reached the held fault within {timeout} s")

    def release(self) -> None:
        self.released.set()


@dataclass
class _Fault:
    kind: Literal["status", "drop", "decline", "delay", "hold"]
    path_prefix: str
    method: str | None
    status: int = 0
    seconds: float = 0.0
    code: str | None = None
    message: str | None = None
    hold: Hold | None = None
    metadata: dict[str, str] | None = None  # only a request whose metadata holds these

    def matches(self, method: str, path: str, params: dict[str, Any]) -> bool:
        if self.metadata and not self.metadata.items() <= dict(params.get("metadata") or {}).items():
            return False
        return path.startswith(self.path_prefix) and (self.method is None or self.method == method)


class StandInError(Exception):
    """A request that Stripe would answer with its error body."""

    def __init__(self, status: int, type_: str, message: str, code: str | None = None,
                 param: str | None = None, storable: bool = True) -> None:
        super().__init__(message)
        self.response = _error_response(status, type_, message, code, param, storable)


def _error_response(status: int, type_: str, message: str, code: str | None = None,
                    param: str | None = None, storable: bool = True) -> _Response:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param is not None:
        error["param"] = param
    return _Response(status, {"error": error}, storable=storable)


def status_error(status: int) -> _Response:
    """Stripe's body for a request refused with `status` before it ran (load shedding, outage)."""
    if status >= 500:
        return _error_response(status, "api_error", "An unknown error occurred on Stripe's end.")
    type_, code, message = _STATUS_ERRORS.get(status, ("invalid_request_error", None, f"HTTP {status}"))
    return _error_response(status, type_, message, code)


def _bad_parameter(message: str, param: str, code: str = "parameter_invalid_integer") -> StandInError:
    return StandInError(400, "invalid_request_error", message, code, param, storable=False)


def decode_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`metadata[k]=v`, `expand[0]=x`) to nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, tail = key.partition("[")
        segments = [head] + (re.findall(r"\[([^\]]*)\]", "[" + tail) if tail else [])
        node = root
        for i, segment in enumerate(segments):
            if segment == "":
                segment = str(len(node))
            if i == len(segments) - 1:
                node[segment] = value
            else:
                node = node.setdefault(segment, {})
                if not isinstance(node, dict):
                    raise _bad_parameter(f"Invalid value for {key}.", key, "parameter_invalid_string")
    return _lists_from_indexed(root)


def _lists_from_indexed(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_indexed(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


# What a connected account's id looks like; anything else in `Stripe-Account` is refused.
_ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9]{1,250}")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _positive_int(raw: Any, param: str) -> int:
    if isinstance(raw, str) and raw.isdigit() and int(raw) > 0:
        return int(raw)
    raise _bad_parameter("Invalid positive integer", param)


class StripeStandIn:
    """Serve the stand-in on `host:port` (0 picks a free port) from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True) -> None:
        self._host = host
        self._port = port
        self._quiet = quiet
        self._lock = threading.RLock()
        self._server: BackgroundServer | None = None
        self._sequence = itertools.count()
        self._clear()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return self._server.url

    def start(self) -> StripeStandIn:
        self._server = BackgroundServer("stripe-standin", self._host, self._port, _handler_for(self), stop_timeout=5)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> StripeStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, statuses: list[int], *, path_prefix: str = "/v1/", method: str | None = None) -> None:
        """The next requests matching answer these statuses, one each, before doing anything."""
        with self._lock:
            for status in statuses:
                self._faults.append(_Fault("status", path_prefix, method, status=int(status)))

    def drop_next(self, *, path_prefix: str = "/v1/refunds", method: str | None = "POST", times: int = 1) -> None:
        """The next requests matching are processed in full, then the connection closes unanswered."""
        with self._lock:
            self._faults.extend(_Fault("drop", path_prefix, method) for _ in range(times))

    def decline_next(self, code: str = "charge_disputed", message: str | None = None, *,
                     http_status: int = 400, path_prefix: str = "/v1/refunds", method: str | None = "POST",
                     times: int = 1, metadata: dict[str, str] | None = None) -> None:
        """The next requests matching (and carrying `metadata`, when given) are refused with
        `code`, stored for replay like any result."""
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault("decline", path_prefix, method, status=http_status, code=code,
                                           metadata=metadata,
                                           message=message or f"The request was declined ({code})."))

    def delay_next(self, seconds: float, *, path_prefix: str = "/v1/refunds", method: str | None = "POST",
                   times: int = 1) -> None:
        """The next requests matching take `seconds` longer, as if Stripe were slow; they are in
        progress meanwhile, so a request with the same idempotency key is answered 409."""
        with self._lock:
            self._faults.extend(_Fault("delay", path_prefix, method, seconds=float(seconds)) for _ in range(times))

    def hold_next(self, *, path_prefix: str = "/v1/refunds", method: str | None = "POST",
                  limit_seconds: float = 60) -> Hold:
        """The next request matching stays in progress (a request with its idempotency key is
        answered 409) until `release()`, or `limit_seconds` so a failed test never hangs."""
        hold = Hold()
        with self._lock:
            self._faults.append(_Fault("hold", path_prefix, method, seconds=float(limit_seconds), hold=hold))
        return hold

    def reset(self) -> None:
        """Forget everything: objects, idempotent results, faults and records."""
        with self._lock:
            self._clear()

    def forget_idempotent_results(self) -> None:
        """What Stripe does 24 hours after a key's first use: the same key now makes a new object."""
        with self._lock:
            self._stored.clear()

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._requests)

    def refunds(self, account: str | Literal["any"] | None = "any") -> list[dict[str, Any]]:
        """Every refund created, once each and in creation order, however often it was replayed;
        only those of `account` (None: the platform's own) when it is given."""
        with self._lock:
            return copy.deepcopy([self._refunds[refund_id] for refund_id in self._refund_order
                                  if account == "any" or self._owner[refund_id] == account])

    def account_of(self, object_id: str) -> str | None:
        """The connected account an object belongs to; None for the platform's own."""
        with self._lock:
            return self._owner[object_id]

    def create_payment_intent(self, amount: int, currency: str = "eur", *, succeeded: bool = True,
                              metadata: dict[str, str] | None = None, account: str | None = None) -> dict[str, Any]:
        """Seed a payment intent without going through HTTP, on `account` (None: the platform's)."""
        with self._lock:
            return copy.deepcopy(self._new_payment_intent(amount, currency, succeeded, metadata or {}, account))

    def fail_refund(self, refund_id: str, reason: str = "expired_or_canceled_card") -> dict[str, Any]:
        """A refund Stripe accepted fails later (the card was closed): its money is refundable again.
        Returns the refund as the `refund.failed` event's `data.object` carries it."""
        with self._lock:
            refund = self._refunds[refund_id]
            if refund["status"] != "failed":
                refund["status"], refund["failure_reason"] = "failed", reason
                self._refunded[refund["payment_intent"]] -= refund["amount"]
            return copy.deepcopy(refund)

    def _clear(self) -> None:
        self._intents: dict[str, dict[str, Any]] = {}
        self._refunded: dict[str, int] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._refund_order: list[str] = []
        self._owner: dict[str, str | None] = {}  # object id -> its connected account, None: the platform's
        self._stored: dict[tuple[str, str | None, str], _Stored] = {}
        self._in_flight: set[tuple[str, str | None, str]] = set()
        self._faults: list[_Fault] = []
        self._requests: list[dict[str, Any]] = []

    def _take_fault(self, method: str, path: str, params: dict[str, Any]) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.matches(method, path, params):
                    return self._faults.pop(i)
        return None

    def handle_api(self, method: str, path: str, query: str, body: bytes,
                   headers: dict[str, str]) -> tuple[_Response, bool]:
        """Answer one /v1 request; the flag says to drop the connection instead of answering."""
        idempotency_key = headers.get("idempotency-key") or None
        account = headers.get("stripe-account") or None
        record: dict[str, Any] = {"method": method, "path": path, "params": {}, "idempotency_key": idempotency_key,
                                  "account": account, "status": None, "replayed": False, "dropped": False,
                                  "fault": None}
        drop = False
        try:
            api_key = _api_key(headers.get("authorization"))
            raw = query if method == "GET" else body.decode("utf-8", errors="replace")
            params = decode_params(parse_qsl(raw, keep_blank_values=True))
            record["params"] = params
            fault = self._take_fault(method, path, params)
            record["fault"] = fault.kind if fault else None
            drop = fault is not None and fault.kind == "drop"
            if account is not None and not _ACCOUNT_ID.fullmatch(account):
                raise StandInError(403, "invalid_request_error",
                                   f"The provided key does not have access to account '{account}' (or that account "
                                   f"does not exist). Application access may have been revoked.",
                                   "account_invalid", storable=False)
            if fault is not None and fault.kind == "status":
                response = status_error(fault.status)
            elif method == "POST" and idempotency_key:
                response = self._idempotent(api_key, account, idempotency_key, method, path, params, fault)
                record["replayed"] = response.headers.get("Idempotent-Replayed") == "true"
            else:
                response = self._execute(method, path, params, fault, account)
        except StandInError as exc:
            response = exc.response
        except Exception:  # a stand-in bug should look like Stripe's 500, not kill the thread
            response = status_error(500)
        response.headers.setdefault("Request-Id", _new_id("req"))
        if idempotency_key:
            response.headers["Idempotency-Key"] = idempotency_key
        response.headers["Stripe-Version"] = headers.get("stripe-version") or DEFAULT_API_VERSION
        record["status"] = response.status
        record["dropped"] = drop
        with self._lock:
            self._requests.append(record)
        return response, drop

    def _idempotent(self, api_key: str, account: str | None, key: str, method: str, path: str,
                    params: dict[str, Any], fault: _Fault | None) -> _Response:
        scope = (api_key, account, key)
        fingerprint = json.dumps([method, path, params], sort_keys=True)
        with self._lock:
            stored = self._stored.get(scope)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise StandInError(
                        400, "idempotency_error",
                        f"Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                        storable=False)
                return _Response(stored.status, copy.deepcopy(stored.body),
                                 {"Idempotent-Replayed": "true", "Original-Request": stored.request_id,
                                  "Request-Id": _new_id("req")})
            if scope in self._in_flight:
                response = status_error(409)
                response.headers["Stripe-Should-Retry"] = "true"
                return response
            self._in_flight.add(scope)
        try:
            try:
                response = self._execute(method, path, params, fault, account)
            except StandInError as exc:
                response = exc.response
            if response.storable:
                request_id = _new_id("req")
                response.headers["Request-Id"] = request_id
                with self._lock:
                    self._stored[scope] = _Stored(fingerprint, response.status, copy.deepcopy(response.body),
                                                  request_id)
            return response
        finally:
            with self._lock:
                self._in_flight.discard(scope)

    def _execute(self, method: str, path: str, params: dict[str, Any], fault: _Fault | None,
                 account: str | None = None) -> _Response:
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)  # outside the lock: other requests go on meanwhile
        if fault is not None and fault.hold is not None:
            fault.hold.reached.set()
            fault.hold.released.wait(fault.seconds)  # outside the lock too
        if fault is not None and fault.kind == "decline":
            type_ = "card_error" if fault.status == 402 else "invalid_request_error"
            return _error_response(fault.status, type_, fault.message or fault.code or "declined", fault.code)
        parts = path.strip("/").split("/")
        with self._lock:
            if method == "POST" and parts == ["v1", "payment_intents"]:
                return _Response(200, copy.deepcopy(self._create_payment_intent(params, account)))
            if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "payment_intents"]:
                return _Response(200, copy.deepcopy(
                    self._find("payment_intent", self._of(self._intents, account), parts[2], "intent", 404)))
            if method == "POST" and parts == ["v1", "refunds"]:
                return _Response(200, copy.deepcopy(self._create_refund(params, account)))
            if method == "GET" and parts == ["v1", "refunds"]:
                return _Response(200, self._list_refunds(params, account))
            if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "refunds"]:
                return _Response(200, copy.deepcopy(
                    self._find("refund", self._of(self._refunds, account), parts[2], "id", 404)))
        raise StandInError(404, "invalid_request_error",
                           f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or "
                           f"we can help at https://support.stripe.com/.", storable=False)

    # The resource methods below expect the caller to hold the lock.

    def _of(self, table: dict[str, dict[str, Any]], account: str | None) -> dict[str, dict[str, Any]]:
        """The objects of `table` that `account` can see: its own, never another account's."""
        return {object_id: found for object_id, found in table.items() if self._owner[object_id] == account}

    @staticmethod
    def _find(kind: str, table: dict[str, dict[str, Any]], object_id: str, param: str, status: int) -> dict[str, Any]:
        found = table.get(object_id)
        if found is None:
            raise StandInError(status, "invalid_request_error", f"No such {kind}: '{object_id}'",
                               "resource_missing", param)
        return found

    def _create_payment_intent(self, params: dict[str, Any], account: str | None) -> dict[str, Any]:
        if "amount" not in params:
            raise _bad_parameter("Missing required param: amount.", "amount", "parameter_missing")
        amount = _positive_int(params["amount"], "amount")
        currency = params.get("currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[a-zA-Z]{3}", currency):
            raise _bad_parameter("Missing required param: currency.", "currency", "parameter_missing")
        metadata = params.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _bad_parameter("Invalid object", "metadata", "parameter_invalid_string")
        succeeded = params.get("confirm") == "true"
        intent = self._new_payment_intent(amount, currency, succeeded, metadata, account)
        if params.get("payment_method"):
            intent["payment_method"] = params["payment_method"]
        return intent

    def _new_payment_intent(self, amount: int, currency: str, succeeded: bool,
                            metadata: dict[str, str], account: str | None = None) -> dict[str, Any]:
        intent_id = _new_id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": amount if succeeded else 0,
            "capture_method": "automatic",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency.lower(),
            "latest_charge": _new_id("ch") if succeeded else None,
            "livemode": False,
            "metadata": dict(metadata),
            "payment_method": _new_id("pm") if succeeded else None,
            "payment_method_types": ["card"],
            "status": "succeeded" if succeeded else "requires_payment_method",
        }
        self._intents[intent_id] = intent
        self._owner[intent_id] = account
        self._refunded[intent_id] = 0
        return intent

    def _create_refund(self, params: dict[str, Any], account: str | None) -> dict[str, Any]:
        intent = self._intent_to_refund(params, account)
        remaining = intent["amount_received"] - self._refunded[intent["id"]]
        if remaining <= 0:
            raise StandInError(400, "invalid_request_error", f"Charge {intent['latest_charge']} has already been refunded.",
                               "charge_already_refunded")
        amount = _positive_int(params["amount"], "amount") if "amount" in params else remaining
        if amount > remaining:
            raise StandInError(400, "invalid_request_error",
                               f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                               "amount_too_large", "amount")
        reason = params.get("reason") or None
        if reason is not None and reason not in REFUND_REASONS:
            raise _bad_parameter(f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}", "reason",
                                 "parameter_invalid_string")
        metadata = params.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise _bad_parameter("Invalid object", "metadata", "parameter_invalid_string")
        refund = {
            "id": _new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": _new_id("txn"),
            "charge": intent["latest_charge"],
            "created": int(time.time()),
            "currency": intent["currency"],
            "destination_details": {"type": "card", "card": {"type": "refund", "reference_status": "pending"}},
            "metadata": dict(metadata),
            "payment_intent": intent["id"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self._refunded[intent["id"]] += amount
        self._refunds[refund["id"]] = refund
        self._owner[refund["id"]] = account
        self._refund_order.append(refund["id"])
        return refund

    def _intent_to_refund(self, params: dict[str, Any], account: str | None) -> dict[str, Any]:
        intents = self._of(self._intents, account)
        if params.get("payment_intent"):
            intent = self._find("payment_intent", intents, params["payment_intent"], "payment_intent", 400)
        elif params.get("charge"):
            by_charge = {i["latest_charge"]: i for i in intents.values() if i["latest_charge"]}
            intent = self._find("charge", by_charge, params["charge"], "charge", 400)
        else:
            raise _bad_parameter("One of the following params should be provided for this request: "
                                 "payment_intent or charge.", "payment_intent", "parameter_missing")
        if intent["status"] != "succeeded":
            raise StandInError(400, "invalid_request_error",
                               f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                               "payment_intent_unexpected_state", "payment_intent")
        return intent

    def _list_refunds(self, params: dict[str, Any], account: str | None) -> dict[str, Any]:
        limit = _positive_int(params.get("limit", "10"), "limit")
        if limit > 100:
            raise _bad_parameter("This value must be less than or equal to 100.", "limit")
        newest_first = [self._refunds[r] for r in reversed(self._refund_order) if self._owner[r] == account]
        if params.get("payment_intent"):
            newest_first = [r for r in newest_first if r["payment_intent"] == params["payment_intent"]]
        if params.get("charge"):
            newest_first = [r for r in newest_first if r["charge"] == params["charge"]]
        ids = [r["id"] for r in newest_first]
        if params.get("starting_after"):
            cursor = params["starting_after"]
            if cursor not in ids:
                raise StandInError(400, "invalid_request_error", f"No such refund: '{cursor}'",
                                   "resource_missing", "starting_after")
            page_from = newest_first[ids.index(cursor) + 1:]
            page, has_more = page_from[:limit], len(page_from) > limit
        elif params.get("ending_before"):
            cursor = params["ending_before"]
            if cursor not in ids:
                raise StandInError(400, "invalid_request_error", f"No such refund: '{cursor}'",
                                   "resource_missing", "ending_before")
            before = newest_first[:ids.index(cursor)]
            page, has_more = before[-limit:], len(before) > limit
        else:
            page, has_more = newest_first[:limit], len(newest_first) > limit
        return {"object": "list", "data": copy.deepcopy(page), "has_more": has_more, "url": "/v1/refunds"}

    def handle_control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        action = path[len(CONTROL_PREFIX):].strip("/")
        if method == "GET" and action == "requests":
            return 200, self.requests()
        if method == "GET" and action == "refunds":
            return 200, self.refunds()
        if method != "POST":
            return 404, {"error": f"no control endpoint {method} {path}"}
        try:
            args = json.loads(body or b"{}")
            if not isinstance(args, dict):
                raise ValueError("the body must be a JSON object")
            if action == "fail":
                self.fail_next([int(s) for s in args["statuses"]], path_prefix=args.get("path_prefix", "/v1/"),
                               method=args.get("method"))
            elif action == "drop":
                self.drop_next(path_prefix=args.get("path_prefix", "/v1/refunds"), method=args.get("method", "POST"),
                               times=int(args.get("times", 1)))
            elif action == "decline":
                self.decline_next(args.get("code", "charge_disputed"), args.get("message"),
                                  http_status=int(args.get("http_status", 400)),
                                  path_prefix=args.get("path_prefix", "/v1/refunds"),
                                  method=args.get("method", "POST"), times=int(args.get("times", 1)),
                                  metadata=args.get("metadata"))
            elif action == "delay":
                self.delay_next(float(args["seconds"]), path_prefix=args.get("path_prefix", "/v1/refunds"),
                                method=args.get("method", "POST"), times=int(args.get("times", 1)))
            elif action == "reset":
                self.reset()
            elif action == "reset_faults":
                self.reset_faults()
            elif action == "payment_intents":
                return 200, self.create_payment_intent(int(args["amount"]), args.get("currency", "eur"),
                                                       succeeded=bool(args.get("succeeded", True)),
                                                       metadata=args.get("metadata"), account=args.get("account"))
            elif action == "fail_refund":
                return 200, self.fail_refund(str(args["refund_id"]), args.get("reason", "expired_or_canceled_card"))
            else:
                return 404, {"error": f"no control endpoint {method} {path}"}
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"error": f"bad control request: {exc!r}"}
        return 200, {"ok": True}


def _api_key(authorization: str | None) -> str:
    """The secret key from a Bearer or Basic header; any test-mode key is accepted."""
    key = ""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials.strip()).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
    if not key:
        raise StandInError(401, "invalid_request_error",
                           "You did not provide an API key. You need to provide your API key in the Authorization "
                           "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                           storable=False)
    if not key.startswith(("sk_test_", "rk_test_")):
        raise StandInError(401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}***{key[-4:]}",
                           "api_key_invalid" if not key.startswith(("sk_live_", "rk_live_")) else "livemode_mismatch",
                           storable=False)
    return key


def _handler_for(standin: StripeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stripe-standin"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if url.path.startswith(CONTROL_PREFIX):
                status, payload = standin.handle_control(method, url.path, body)
                self._answer(status, payload, {})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            response, drop = standin.handle_api(method, url.path, url.query, body, headers)
            if drop:
                # The work is done and stored; only the answer is lost, as in a crash after Stripe replied.
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._answer(response.status, response.body, response.headers)

        def _answer(self, status: int, payload: Any, headers: dict[str, str]) -> None:
            data = json.dumps(payload, indent=2).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            if not standin._quiet:
                super().log_message(format, *args)

    return Handler


def main(argv: list[str]) -> None:
    port = int(argv[1]) if len(argv) > 1 else 12111
    host = argv[2] if len(argv) > 2 else "127.0.0.1"
    standin = StripeStandIn(host, port, quiet=False).start()
    print(f"Stripe stand-in listening on {standin.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main(sys.argv)
