"""Local cloud: the API Gateway emulation — info line, JWT authorizer, routes, bodies, throttling, CORS, access log,
`tl-fif cloud token`. Over HTTP (and the CLI) only.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

INFO_KEYS = {"api_url", "issuer", "authorize_url", "token_url", "jwks_url", "client_id", "redirect_uri", "region"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def cli(*args: str, state_file) -> subprocess.CompletedProcess:
    env = dict(os.environ, TLFIF_LOCAL_STATE=str(state_file))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=60)


def test_first_line_names_every_endpoint_on_loopback(local_cloud):
    info = local_cloud.info
    assert set(info) == INFO_KEYS
    for key in ("api_url", "issuer", "authorize_url", "token_url", "jwks_url"):
        assert info[key].startswith("http://127.0.0.1:"), info[key]
    assert info["region"] == "eu-central-1" and info["client_id"]
    discovery = requests.get(info["issuer"] + "/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == info["issuer"] and discovery["jwks_uri"] == info["jwks_url"]
    assert discovery["code_challenge_methods_supported"] == ["S256"]


def test_ping_answers_and_is_access_logged_as_json(local_cloud):
    answer = local_cloud.api("GET", "/ping", token=local_cloud.token("log-user"),
                             headers={"User-Agent": "tlfif-test/1"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok" and body["gpu"] in {"stopped", "pending", "running", "ready", "stopping"}
    assert isinstance(body["queue_depth"], int)
    request_id = answer.headers["Apigw-Requestid"]
    deadline = time.monotonic() + 5
    while not any(line.get("requestId") == request_id for line in local_cloud.access_log):
        assert time.monotonic() < deadline, f"no access-log line for {request_id}: {local_cloud.access_log[-3:]}"
        time.sleep(0.05)
    line = next(line for line in local_cloud.access_log if line.get("requestId") == request_id)
    assert line["routeKey"] == "GET /ping" and line["status"] == "200" and line["httpMethod"] == "GET"
    assert line["userAgent"] == "tlfif-test/1" and line["ip"] == "127.0.0.1"
    assert all(isinstance(value, str) for value in line.values())


def _forged(kind: str, cloud, state_file) -> str | None:
    """A token of the given kind of forgery (None: send no Authorization header)."""
    good = cloud.token("forger")
    header_b64, payload_b64, signature = good.split(".")
    header, claims = b64url_json(header_b64), b64url_json(payload_b64)
    if kind == "no-token":
        return None
    if kind == "alg-none":
        return f"{b64url(json.dumps({'alg': 'none', 'kid': header['kid']}).encode())}.{payload_b64}."
    if kind == "payload-tampered":
        return f"{header_b64}.{b64url(json.dumps({**claims, 'sub': 'someone-else'}).encode())}.{signature}"
    if kind == "other-key-same-kid":
        other = RSAKey.generate_key(2048, parameters={"kid": header["kid"]}, private=True)
        return jwt.encode({"alg": "RS256", "kid": header["kid"]}, claims, other)
    if kind == "hs256-with-public-key":
        jwks = requests.get(cloud.info["jwks_url"], timeout=10).json()["keys"][0]
        secret = json.dumps(jwks).encode()
        signing_input = f"{b64url(json.dumps({'alg': 'HS256', 'kid': header['kid']}).encode())}.{payload_b64}"
        return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"
    if kind == "expired":
        done = cli("-m", "tlfif_local", "token", "--user", "forger", "--expires-in", "-60", state_file=state_file)
        assert done.returncode == 0, done.stderr
        token = done.stdout.strip()
        assert b64url_json(token.split(".")[1])["exp"] < time.time()
        return token
    if kind == "wrong-aud":
        return cloud.token("forger", claims={"aud": "some-other-client"})
    if kind == "wrong-iss":
        return cloud.token("forger", claims={"iss": "https://cognito-idp.eu-central-1.amazonaws.com/elsewhere"})
    raise AssertionError(kind)


FORGERIES = ["no-token", "alg-none", "payload-tampered", "other-key-same-kid", "hs256-with-public-key", "expired",
             "wrong-aud", "wrong-iss"]


@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_tokens_get_401(local_cloud, kind):
    token = _forged(kind, local_cloud, local_cloud.state_file)
    for method, path in (("GET", "/ping"), ("POST", "/infer")):
        answer = local_cloud.api(method, path, token=token, json={"prompt": "hi", "idle": 5})
        assert answer.status_code == 401, (kind, path, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        if kind != "no-token":
            assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert answer.json()["error"].startswith("unauthorized")


def test_cloud_token_prints_a_token_that_works(local_cloud):
    done = cli("-m", "app.cli", "cloud", "token", "--user", "cli-user", state_file=local_cloud.state_file)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    answer = local_cloud.api("GET", "/ping", token=lines[0])
    assert answer.status_code == 200, answer.text


def test_cloud_token_says_when_no_cloud_runs(tmp_path):
    done = cli("-m", "tlfif_local", "token", state_file=tmp_path / "nothing.json")
    assert done.returncode == 2
    assert "no local cloud is running" in done.stderr and not done.stdout


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/nothing-here", 404), ("POST", "/infer/extra", 404), ("GET", "/", 404), ("GET", "/cancel/abc", 405),
    ("GET", "/infer", 405), ("POST", "/ping", 405), ("DELETE", "/stop", 405),
])
def test_only_the_api_routes_exist(local_cloud, method, path, status):
    answer = local_cloud.api(method, path)  # no token: routing comes before the authorizer
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]


BAD_BODIES = {
    "malformed-json": ('{"prompt": "hi", "idle": 5', "body"),
    "not-an-object": ('["hi", 5]', "body"),
    "no-body": ("", "body"),
    "unknown-field": ({"prompt": "hi", "idle": 5, "model": "gpt"}, "model"),
    "missing-prompt": ({"idle": 5}, "prompt"),
    "empty-prompt": ({"prompt": "   ", "idle": 5}, "prompt"),
    "prompt-not-string": ({"prompt": 42, "idle": 5}, "prompt"),
    "prompt-too-long": ({"prompt": "x" * (32 * 1024 + 1), "idle": 5}, "prompt"),
    "missing-idle": ({"prompt": "hi"}, "idle"),
    "idle-zero": ({"prompt": "hi", "idle": 0}, "idle"),
    "idle-31": ({"prompt": "hi", "idle": 31}, "idle"),
    "idle-string": ({"prompt": "hi", "idle": "5"}, "idle"),
    "idle-bool": ({"prompt": "hi", "idle": True}, "idle"),
    "idle-float": ({"prompt": "hi", "idle": 5.5}, "idle"),
    "adapter-other-bucket": ({"prompt": "hi", "idle": 5, "adapter_uri": "s3://someone-elses/lora"}, "adapter_uri"),
    "adapter-not-s3": ({"prompt": "hi", "idle": 5, "adapter_uri": "https://example.com/lora"}, "adapter_uri"),
    "params-unknown": ({"prompt": "hi", "idle": 5, "params": {"top_k": 3}}, "params.top_k"),
    "temperature-out-of-range": ({"prompt": "hi", "idle": 5, "params": {"temperature": 3}}, "params.temperature"),
    "messages-wrong-role": ({"prompt": "hi", "idle": 5, "messages": [{"role": "robot", "content": "x"}]},
                            "messages"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_infer_bodies_get_400_naming_the_field(local_cloud, case):
    body, field = BAD_BODIES[case]
    data = body if isinstance(body, str) else json.dumps(body)
    answer = local_cloud.api("POST", "/infer", token=local_cloud.token(f"body-{case}"), data=data.encode(),
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert field in error["error"] or error.get("field") == field, error


@pytest.mark.parametrize("origin, allowed", [
    ("http://localhost:5173", True), ("http://127.0.0.1:8400", True), ("http://localhost", True),
    ("https://evil.example", False), ("http://localhost.evil.example", False), ("https://localhost:5173", False),
    ("http://127.0.0.2:80", False), ("null", False),
])
def test_cors_allows_only_loopback_http_origins(local_cloud, origin, allowed):
    preflight = local_cloud.api("OPTIONS", "/infer", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code in (200, 204)
    user = "cors-" + hashlib.sha256(origin.encode()).hexdigest()[:8]  # the router allows 5 requests/s per user
    actual = local_cloud.api("GET", "/ping", token=local_cloud.token(user), headers={"Origin": origin})
    assert actual.status_code == 200, actual.text
    for answer in (preflight, actual):
        if allowed:
            assert answer.headers.get("Access-Control-Allow-Origin") == origin
        else:
            assert "Access-Control-Allow-Origin" not in answer.headers
    if allowed:
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()


def _burst(cloud, method: str, path: str, token: str, n: int = 12) -> tuple[list[tuple[int, dict]], float]:
    """`n` requests released together from `n` threads: (status, JSON body) of each, and the spread of send times."""
    body = {"prompt": "burst", "idle": 1} if path == "/infer" else None
    answers: list[tuple[int, dict]] = []
    sent: list[float] = []
    barrier = threading.Barrier(n)

    def fire():
        with requests.Session() as session:
            barrier.wait()
            sent.append(time.monotonic())
            answer = session.request(method, cloud.info["api_url"] + path, json=body, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"})
        answers.append((answer.status_code, answer.json()))

    threads = [threading.Thread(target=fire) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, max(sent) - min(sent)


def test_a_burst_of_12_in_one_second_gets_429s_on_every_route(local_cloud_factory):
    """Default limits: the API template's stage throttling (5/s, burst 10), then the router's 5/s per user."""
    cloud = local_cloud_factory("--boot-seconds", "1")
    assert cloud.api("GET", "/ping", token=cloud.token("warm-up")).status_code == 200  # the router's clients exist
    time.sleep(1.0)  # the bucket is full again
    for method, path in (("GET", "/ping"), ("POST", "/infer"), ("POST", "/stop")):
        token = cloud.token(f"burst{path.replace('/', '-')}")
        answers, spread = _burst(cloud, method, path, token)
        assert spread < 0.5, f"the requests left over {spread:.2f} s: not a burst within one second"
        statuses = [status for status, _ in answers]
        assert statuses.count(429) >= 1, (path, statuses)
        assert all(s in (200, 202, 429) for s in statuses), (path, statuses)
        assert all(body.get("error") for status, body in answers if status == 429)
