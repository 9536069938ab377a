"""docs/openapi.yaml against the code: a valid OpenAPI document, the same routes as app.py, and
real answers of the app (through the Chalice test client) that match the documented schemas.

`assert_matches_spec(method, path_template, status, body)` is the helper to reuse for new routes."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from openapi_spec_validator import validate as validate_spec

from tests.conftest import Api, Response, World, iso, now

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def spec_routes() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec()["paths"].items()
            for method in item if method in HTTP_METHODS}


def app_routes(app: Any) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, entries in app.routes.items() for method in entries}


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local `$ref` ("#/components/...") to what it names."""
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def documented_response(method: str, path_template: str, status: int) -> Mapping[str, Any]:
    operation = spec()["paths"][path_template][method.lower()]
    responses = operation["responses"]
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return _resolve(responses[key])
    raise AssertionError(f"{method.upper()} {path_template} does not document status {status}; "
                         f"it documents {sorted(responses)}")


def assert_body_matches(schema: Mapping[str, Any], body: Any, where: str) -> None:
    # The schema is validated as if it sat in the spec, so its "#/components/..." refs resolve.
    rooted = {**schema, "components": spec()["components"]}
    validator = OAS31Validator(rooted, format_checker=oas31_format_checker)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10]]
        raise AssertionError(f"{where}: the answer does not match the spec:\n" + "\n".join(lines)
                             + f"\nbody: {body!r}")


def assert_matches_spec(method: str, path_template: str, status: int, body: Any,
                        headers: Mapping[str, str] | None = None) -> None:
    """The answer `status` + `body` (+ `headers`) of `method path_template` is what the spec says
    that operation answers with that status: a documented status, the JSON schema of that
    response, and the response headers it declares as required."""
    where = f"{method.upper()} {path_template} -> {status}"
    response = documented_response(method, path_template, status)
    schema = response["content"]["application/json"]["schema"]
    assert_body_matches(schema, body, where)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if headers is not None:
        assert lowered.get("content-type", "").startswith("application/json"), f"{where}: {headers}"
    for name, header in response.get("headers", {}).items():
        if _resolve(header).get("required") and headers is not None:
            assert name.lower() in lowered, f"{where}: the {name} header is missing"


def assert_answer_matches(method: str, path_template: str, answer: Response) -> None:
    assert_matches_spec(method, path_template, answer.status, answer.json, answer.headers)


def error_schema() -> Mapping[str, Any]:
    return spec()["components"]["schemas"]["Error"]


# --- The document itself --------------------------------------------------------------------

def test_the_spec_is_a_valid_openapi_document() -> None:
    validate_spec(spec())


def test_every_route_the_app_has_is_documented(stack: Any) -> None:
    undocumented = app_routes(stack.app_module.app) - spec_routes()
    assert not undocumented, f"routes in app.py missing from docs/openapi.yaml: {sorted(undocumented)}"


def test_the_spec_and_the_app_have_exactly_the_same_routes(stack: Any) -> None:
    """Fails until app.py has every route of the contract: the message lists what is missing."""
    have = app_routes(stack.app_module.app)
    documented = spec_routes()
    assert have == documented, (f"documented but not in app.py: {sorted(documented - have)}; "
                                f"in app.py but not documented: {sorted(have - documented)}")


def test_every_error_code_the_code_can_send_is_in_the_error_schema() -> None:
    from chalicelib import errors
    from chalicelib.api.errors import GATEWAY_RESPONSES, GENERIC, STATUS

    documented = set(error_schema()["properties"]["error"]["properties"]["code"]["enum"])
    codes = {cls.code for cls in STATUS} | {code for code, _ in GENERIC.values()} | {
        code for _, code, _ in GATEWAY_RESPONSES.values()}
    subclasses = {cls.code for cls in errors.RebookError.__subclasses__()}
    assert (codes | subclasses) - documented == set()


def test_every_domain_error_is_documented_at_its_status_somewhere() -> None:
    """Each (status, code) the error mapping can produce is allowed by at least one operation's
    documented response for that status."""
    from chalicelib.api.errors import STATUS, error_body

    missing = []
    for cls, status in STATUS.items():
        body = error_body(cls.code, "a sentence")
        allowed = False
        for path, item in spec()["paths"].items():
            for method, operation in item.items():
                if method not in HTTP_METHODS or str(status) not in operation["responses"]:
                    continue
                schema = _resolve(operation["responses"][str(status)])["content"]["application/json"]["schema"]
                try:
                    assert_body_matches(schema, body, f"{method} {path}")
                    allowed = True
                except AssertionError:
                    pass
        if not allowed:
            missing.append((status, cls.code))
    assert not missing, f"no operation documents these (status, code): {missing}"


def test_every_request_body_is_strict() -> None:
    """Unknown fields are a 400 in the code, so every JSON request body refuses them in the spec
    too (the Stripe event is Stripe's object, not ours)."""
    loose = []
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS or "requestBody" not in operation:
                continue
            schema = _resolve(operation["requestBody"]["content"]["application/json"]["schema"])
            if schema.get("additionalProperties") is not False and path != "/v1/webhooks/stripe":
                loose.append(f"{method.upper()} {path}")
    assert not loose


def test_every_operation_documents_the_503_any_of_them_can_answer() -> None:
    """Every view answers DynamoDB staying busy through its retries with a 503
    (chalicelib/api/errors.py, busy_reads_are_unavailable), reads and writes alike, staff's too."""
    silent = [f"{method.upper()} {path}" for path, item in spec()["paths"].items()
              for method, operation in item.items()
              if method in HTTP_METHODS and "503" not in operation["responses"]]
    assert not silent


# --- Real answers of the app against the spec -----------------------------------------------

VENUE = "/v1/admin/venues/{venue_id}"


def test_venue_key_and_settings_answers_match_the_spec(world: World) -> None:
    created = world.platform.post("/v1/admin/venues", {"name": "Spec Park", "timezone": "Europe/Paris",
                                                        "currency": "eur"})
    assert created.status == 201
    assert_answer_matches("POST", "/v1/admin/venues", created)
    venue_id = created.json["venue_id"]

    assert_answer_matches("GET", VENUE, world.platform.get(f"/v1/admin/venues/{venue_id}"))
    minted = world.platform.post(f"/v1/admin/venues/{venue_id}/api-keys", {})
    assert minted.status == 201
    assert_answer_matches("POST", VENUE + "/api-keys", minted)
    key = Api(world.client, minted.json["api_key"])

    read = key.get(f"/v1/admin/venues/{venue_id}/settings")
    assert read.status == 200
    assert_answer_matches("GET", VENUE + "/settings", read)
    saved = key.put(f"/v1/admin/venues/{venue_id}/settings", {
        "allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 8760})
    assert saved.status == 200
    assert_answer_matches("PUT", VENUE + "/settings", saved)


def test_slot_guest_and_login_answers_match_the_spec(world: World) -> None:
    venue = world.venue()
    start = now() + timedelta_days(4)
    created = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/slots", {
        "product_id": "jump-60", "product_name": "Open Jump", "start": iso(start),
        "end": iso(start + timedelta_days(0.05)), "capacity": 1})
    assert created.status == 201
    assert_answer_matches("POST", VENUE + "/slots", created)

    from zoneinfo import ZoneInfo

    day = start.astimezone(ZoneInfo(venue.timezone)).date().isoformat()
    listed = venue.admin.get(f"/v1/admin/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}")
    assert listed.status == 200 and listed.json["slots"]
    assert_answer_matches("GET", VENUE + "/slots", listed)
    public = Api(world.client, None).get(f"/v1/venues/{venue.venue_id}/slots?product_id=jump-60&date={day}")
    assert public.status == 200 and public.json["slots"]
    assert_answer_matches("GET", "/v1/venues/{venue_id}/slots", public)

    guest = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests",
                             {"email": "Spec@Example.com", "password": "long enough", "name": "Spec"})
    assert guest.status == 201
    assert_answer_matches("POST", VENUE + "/guests", guest)
    login = Api(world.client, None).post(f"/v1/venues/{venue.venue_id}/login",
                                         {"email": "spec@example.com", "password": "long enough"})
    assert login.status == 200
    assert_answer_matches("POST", "/v1/venues/{venue_id}/login", login)


def timedelta_days(days: float) -> Any:
    from datetime import timedelta

    return timedelta(days=days)


@pytest.mark.parametrize("method, template, body, status", [
    ("PUT", VENUE + "/settings", {"allow_guest_modify": True}, 400),
    ("PUT", VENUE + "/settings", {"allow_guest_modify": True, "refund_on_cancel": True,
                                  "refund_cutoff_hours": 8761, "extra": 1}, 400),
    ("POST", VENUE + "/slots", {"product_id": "p", "product_name": "P", "start": "2030-01-01T10:00:00",
                                "end": "2030-01-01T11:00:00Z", "capacity": 0}, 400),
    ("GET", VENUE + "/slots?product_id=p&date=2030-02-30", None, 400),
    ("POST", VENUE + "/guests", {"email": "not an email", "password": "short", "name": ""}, 400),
    ("POST", VENUE + "/api-keys", {}, 403),
])
def test_refusals_match_the_spec(world: World, method: str, template: str, body: Any, status: int) -> None:
    venue = world.venue()
    answer = venue.admin.call(method, template.format(venue_id=venue.venue_id), body)
    assert answer.status == status, answer.json
    assert_answer_matches(method, template.split("?")[0], answer)


def test_auth_refusals_match_the_spec(world: World) -> None:
    mine, theirs = world.venue(), world.venue()
    anonymous = Api(world.client, None)
    for answer, method, template in [
        (anonymous.get(f"/v1/admin/venues/{mine.venue_id}/settings"), "GET", VENUE + "/settings"),
        (Api(world.client, "rbk_nope").get(f"/v1/admin/venues/{mine.venue_id}"), "GET", VENUE),
        (mine.admin.get(f"/v1/admin/venues/{theirs.venue_id}"), "GET", VENUE),
        (mine.admin.post("/v1/admin/venues", {"name": "X", "timezone": "UTC", "currency": "usd"}),
         "POST", "/v1/admin/venues"),
        (world.platform.get("/v1/admin/venues/no-such-venue/settings"), "GET", VENUE + "/settings"),
        (world.platform.get("/v1/admin/venues/not%20an%20id"), "GET", VENUE),
        (anonymous.get("/v1/venues/no-such-venue/slots?product_id=p&date=2030-01-01"),
         "GET", "/v1/venues/{venue_id}/slots"),
    ]:
        assert 400 <= answer.status < 500
        assert_answer_matches(method, template, answer)


def test_conflicts_and_login_refusals_match_the_spec(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    venue = world.venue()
    guest = world.guest(venue, login=False)
    again = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/guests",
                             {"email": guest.email, "password": "long enough", "name": "Twin"})
    assert again.status == 409
    assert_answer_matches("POST", VENUE + "/guests", again)

    anonymous = Api(world.client, None)
    login = "/v1/venues/{venue_id}/login"
    wrong = {"email": guest.email, "password": "not the password"}
    statuses = []
    for _ in range(8):
        answer = anonymous.post(login.format(venue_id=venue.venue_id), wrong)
        statuses.append(answer.status)
        assert_answer_matches("POST", login, answer)
        if answer.status == 429:
            break
    assert statuses[0] == 401 and statuses[-1] == 429, statuses


def test_transport_refusals_match_the_spec(world: World) -> None:
    venue = world.venue()
    path = f"/v1/admin/venues/{venue.venue_id}/settings"
    unsupported = venue.admin.call("PUT", path, raw=b"a=b", headers={"Content-Type": "text/plain"})
    assert unsupported.status == 415
    assert_answer_matches("PUT", VENUE + "/settings", unsupported)
    malformed = venue.admin.call("PUT", path, raw=b"{nope")
    assert malformed.status == 400
    assert_answer_matches("PUT", VENUE + "/settings", malformed)
    huge = venue.admin.call("PUT", path, raw=b'{"x": "' + b"a" * (65 * 1024) + b'"}')
    assert huge.status == 413
    assert_answer_matches("PUT", VENUE + "/settings", huge)


def test_a_wrong_method_and_an_unknown_route_have_the_error_shape(world: World) -> None:
    venue = world.venue()
    wrong_method = venue.admin.call("DELETE", f"/v1/admin/venues/{venue.venue_id}/settings")
    assert wrong_method.status == 405
    assert_body_matches(error_schema(), wrong_method.json, "DELETE settings")


def test_the_helper_refuses_an_answer_that_breaks_the_spec() -> None:
    with pytest.raises(AssertionError, match="does not match"):
        assert_matches_spec("GET", VENUE + "/settings", 200, {"venue_id": "v", "allow_guest_modify": "yes"})
    with pytest.raises(AssertionError, match="does not document status"):
        assert_matches_spec("GET", VENUE + "/settings", 409, {"error": {"code": "conflict", "message": "m"}})
    with pytest.raises(AssertionError, match="does not match"):
        assert_matches_spec("GET", VENUE + "/settings", 404, {"error": {"code": "forbidden", "message": "m"}})


def test_a_slot_before_the_year_1000_is_a_400_in_the_contract_shape(world: World) -> None:
    """Found by fuzzing: strftime("%Y") wrote "933-07-10T..." (no zero padding). Such years are
    now outside the years a venue can use (1970 to 2200); format_utc still pads (unit tests)."""
    venue = world.venue()
    created = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/slots", {
        "product_id": "p", "product_name": "P", "start": "0933-07-11T02:25:15+11:12",
        "end": "8909-11-18T18:15:11Z", "capacity": 1})
    assert created.status == 400 and set(created.json["error"]["details"]["fields"]) == {"start", "end"}
    assert_answer_matches("POST", VENUE + "/slots", created)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_outside_the_utc_calendar_is_a_400_not_a_500(world: World, moment: str) -> None:
    """Found by reading the parser after fuzzing: the UTC conversion overflowed (OverflowError)."""
    venue = world.venue()
    answer = venue.admin.post(f"/v1/admin/venues/{venue.venue_id}/slots", {
        "product_id": "p", "product_name": "P", "start": moment, "end": "9999-12-31T00:00:00Z", "capacity": 1})
    assert answer.status == 400 and "start" in answer.json["error"]["details"]["fields"]
    assert_answer_matches("POST", VENUE + "/slots", answer)
