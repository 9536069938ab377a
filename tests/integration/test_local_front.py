"""The local stack's HTTP front, over real sockets: the portal pages carry the security headers
CloudFront sends in AWS, API answers are never cached, and requests framed to confuse it (a path
component longer than a file name may be, chunked bodies, bodies framed two ways) get a proper
answer in the contract's shape, never a dropped connection or a second, smuggled request."""
from __future__ import annotations

import json
import socket

import pytest
import requests

from infra.portal import portal_csp
from tests.conftest import ADMIN_KEY, World

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch) -> None:
    """argon2id at its lowest cost here: what is under test is the front, not the hash."""
    from argon2 import PasswordHasher

    from chalicelib import auth

    monkeypatch.setattr(auth, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def exchange(url: str, request: bytes, source: str = "127.0.0.1") -> list[Answer]:
    """Send raw bytes on one connection and read every answer until the server closes it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0)) as connection:
        connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    answers: list[Answer] = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        answers.append((int(lines[0].split(" ")[1]), headers, rest[:length]))
        data = rest[length:]
    return answers


def chunked(body: bytes, size: int = 7) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


# --- Headers -----------------------------------------------------------------------------------

def test_portal_pages_carry_the_security_headers_cloudfront_sends(http_api: str) -> None:
    for page in ("/", "/index.html", "/js/api.js"):
        answer = requests.get(http_api + page, timeout=10)
        assert answer.status_code == 200, page
        assert answer.headers["Content-Security-Policy"] == portal_csp("'self'")
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Permissions-Policy"].startswith("camera=()")


def test_answers_with_tokens_or_guests_data_are_never_cached(world: World, http_api: str) -> None:
    venue = world.venue()
    guest = world.guest(venue)
    bought = world.purchase(guest, [world.slot(venue)])
    logged_in = requests.post(f"{http_api}/v1/venues/{venue.venue_id}/login", timeout=10,
                              json={"email": guest.email, "password": guest.password})
    token = logged_in.json()["token"]
    answers = {
        "login": logged_in,
        "receipt": requests.get(f"{http_api}/v1/me/transactions/{bought['transaction_id']}", timeout=10,
                                headers={"Authorization": f"Bearer {token}"}),
        "guest list": requests.get(f"{http_api}/v1/me/transactions", timeout=10,
                                   headers={"Authorization": f"Bearer {token}"}),
        "new api key": requests.post(f"{http_api}/v1/admin/venues/{venue.venue_id}/api-keys", json={}, timeout=10,
                                     headers={"Authorization": f"Bearer {ADMIN_KEY}"}),
        "refused": requests.get(f"{http_api}/v1/me/transactions", timeout=10),
        "no such route": requests.get(f"{http_api}/v1/nowhere", timeout=10),
    }
    for name, answer in answers.items():
        assert (name, answer.headers.get("Cache-Control")) == (name, "no-store")
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert [answers[n].status_code for n in ("login", "receipt", "new api key", "refused")] == [200, 200, 201, 401]
    # The app sets them itself, so API Gateway's answers in AWS carry them too.
    receipt = guest.api.get(f"/v1/me/transactions/{bought['transaction_id']}")
    assert receipt.headers["cache-control"] == "no-store"


# --- Long paths ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/" + "a" * 256, "/" + "a" * 300 + ".html", "/css/" + "b" * 1000 + ".css",
                                  "/" + "%41" * 200 + "/index.html", "/v1/venues/" + "c" * 300])
def test_a_path_component_longer_than_a_file_name_is_not_found(http_api: str, path: str) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    (status, headers, body), = exchange(http_api, request)
    assert (status, json.loads(body)["error"]["code"]) == (404, "not_found")
    assert headers["content-type"] == "application/json"
    assert requests.get(http_api + "/", timeout=10).status_code == 200  # and the front still serves


# --- Chunked bodies and smuggling ---------------------------------------------------------------

def test_a_chunked_body_is_read_as_the_body(http_api: str) -> None:
    body = json.dumps({"name": "Chunked Park", "timezone": "Europe/London", "currency": "gbp"}).encode()
    request = (b"POST /v1/admin/venues HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n" + chunked(body))
    (status, _, answer), = exchange(http_api, request)
    assert status == 201 and json.loads(answer)["name"] == "Chunked Park"


SMUGGLED = b"GET /v1/admin/venues/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("framing, status, code", [
    (b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", 400, "invalid_request"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400, "invalid_request"),
    (b"Transfer-Encoding: gzip, chunked\r\n", 400, "invalid_request"),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", 400, "invalid_request"),
    (b"Content-Length: 2\r\nContent-Length: 60\r\n", 400, "invalid_request"),
])
def test_a_body_framed_two_ways_is_refused_and_nothing_is_smuggled(
        http_api: str, framing: bytes, status: int, code: str) -> None:
    hidden = chunked(b"{}" + b"\r\n" + SMUGGLED, size=64)
    request = b"POST /v1/admin/venues HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing + \
        b"\r\n" + hidden + SMUGGLED
    answers = exchange(http_api, request)
    assert [(s, json.loads(b)["error"]["code"]) for s, _, b in answers] == [(status, code)]


def test_a_chunk_is_never_read_as_a_second_request(http_api: str) -> None:
    """Before: the chunked body was read as empty, and the chunk as the next request."""
    payload = b'{"email": "nobody@example.com", "password": "x"}'
    inner = b"GET /v1/admin/venues/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    request = (b"POST /v1/venues/nosuchvenue/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n%s\r\n" % (len(payload), payload) + b"%x\r\n%s\r\n" % (len(inner), inner) + b"0\r\n\r\n")
    honest = b"GET /v1/venues/nosuchvenue HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answers = [(status, json.loads(body)["error"]["code"]) for status, _, body in exchange(http_api, request + honest)]
    # The whole body (JSON, then the smuggled bytes) reached the app as one body, which is not
    # JSON; then the next request on the connection is the honest one.
    assert answers == [(400, "invalid_request"), (404, "not_found")]


@pytest.mark.parametrize("chunks, status, code", [
    (b"zz\r\n{}\r\n0\r\n\r\n", 400, "invalid_request"),
    (b"0x2\r\n{}\r\n0\r\n\r\n", 400, "invalid_request"),
    (b"5\r\n{}\r\n0\r\n\r\n", 400, "invalid_request"),
    (b"fffffff\r\n{}", 413, "payload_too_large"),
    (b"2\r\n{}", 400, "invalid_request"),
])
def test_malformed_or_oversized_chunks_get_the_contract_error(
        http_api: str, chunks: bytes, status: int, code: str) -> None:
    request = (b"POST /v1/admin/venues HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    host, port = http_api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)  # a client that stops sending mid-body
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert (int(head.split(b" ")[1]), json.loads(body)["error"]["code"]) == (status, code)


# --- The caller's address -------------------------------------------------------------------------

def test_the_front_gives_the_app_each_connections_address(world: World, http_api: str) -> None:
    from chalicelib.config import config

    venue = world.venue()
    guest = world.guest(venue, login=False)

    def login(source: str, password: str) -> int:
        body = json.dumps({"email": guest.email, "password": password}).encode()
        request = (f"POST /v1/venues/{venue.venue_id}/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                   f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
        (status, _, _), = exchange(http_api, request, source=source)
        return status

    guesses = [login("127.0.0.2", f"guess-{n}") for n in range(config().login_max_failures + 1)]
    assert guesses[-1] == 429 and set(guesses[:-1]) == {401}
    assert login("127.0.0.3", guest.password) == 200


def test_keep_alive_still_serves_two_honest_requests_on_one_connection(http_api: str) -> None:
    one = b"GET /v1/venues/nosuchvenue HTTP/1.1\r\nHost: x\r\n\r\n"
    two = b"GET /v1/venues/nosuchvenue HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert [status for status, _, _ in exchange(http_api, one + two)] == [404, 404]


