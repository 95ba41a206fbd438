"""Fault suite, security: probe the running local cloud as a web page or another local user would — from outside,
over HTTP, a raw socket and the process list only.

moto's endpoint is found the way an attacker finds it: from a presigned result URL (a page would scan the ports).
"""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import redis
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

EVIL_ORIGIN = "http://evil.example"
EVIL_HOST = "rebound.evil.example"


def finished_result_url(cloud, user: str, prompt: str = "a private prompt") -> str:
    answer = cloud.api("POST", "/infer", token=cloud.token(user), json={"prompt": prompt, "idle": 1})
    assert answer.status_code == 202, answer.text
    url = answer.json()["result_url"]
    deadline = time.monotonic() + 30
    while True:
        got = requests.get(url, timeout=10)
        if got.status_code == 200 and got.json()["status"] == "done":
            return url
        assert time.monotonic() < deadline, f"no answer in 30 s: {got.status_code} {got.text[:200]}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def result_url(local_cloud) -> str:
    return finished_result_url(local_cloud, "probe-victim")


def moto_base(result_url: str) -> str:
    parts = urlsplit(result_url)
    return f"{parts.scheme}://{parts.netloc}"


def bucket_of(result_url: str) -> str:
    return urlsplit(result_url).path.split("/")[1]


def test_moto_answers_no_foreign_origin_and_no_preflight(result_url):
    answer = requests.get(result_url, headers={"Origin": EVIL_ORIGIN}, timeout=10)
    assert answer.headers.get("Access-Control-Allow-Origin") is None, answer.headers
    assert answer.status_code == 403
    preflight = requests.options(result_url, timeout=10, headers={
        "Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "PUT"})
    assert preflight.headers.get("Access-Control-Allow-Origin") is None, preflight.headers
    assert preflight.status_code == 403
    assert requests.get(result_url, timeout=10).status_code == 200  # the app's own presigned read still works


def test_moto_refuses_a_foreign_host_header(result_url):
    parts = urlsplit(result_url)
    answer = requests.get(result_url, headers={"Host": f"{EVIL_HOST}:{parts.port}"}, timeout=10)
    assert answer.status_code == 403


def test_moto_refuses_anonymous_and_fake_signed_requests(result_url):
    base, bucket = moto_base(result_url), bucket_of(result_url)
    key = urlsplit(result_url).path.split("/", 2)[2]
    assert requests.get(f"{base}/{bucket}", timeout=10).status_code == 403  # anonymous listing
    assert requests.get(f"{base}/{bucket}/{key}", timeout=10).status_code == 403  # anonymous read
    overwrite = requests.put(f"{base}/{bucket}/{key}", data=b'{"status":"done","text":"pwned"}', timeout=10)
    assert overwrite.status_code == 403
    fake = boto3.client("s3", endpoint_url=base, region_name="eu-central-1", aws_access_key_id="AKIAFAKEFAKEFAKE",
                        aws_secret_access_key="fake", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as refused:
        fake.list_objects_v2(Bucket=bucket)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError):
        fake.put_object(Bucket=bucket, Key=key, Body=b'{"status":"done","text":"pwned"}')
    assert "pwned" not in requests.get(result_url, timeout=10).text


def test_moto_refuses_a_browser_form_upload(result_url):
    base, bucket = moto_base(result_url), bucket_of(result_url)
    key = urlsplit(result_url).path.split("/", 2)[2]
    answer = requests.post(f"{base}/{bucket}", timeout=10, headers={"Origin": "null"},
                           files={"key": (None, key), "file": ("x.json", b'{"status":"done","text":"pwned"}')})
    assert answer.status_code == 403
    answer = requests.post(f"{base}/{bucket}", timeout=10,
                           files={"key": (None, key), "file": ("x.json", b'{"status":"done","text":"pwned"}')})
    assert answer.status_code == 403
    assert "pwned" not in requests.get(result_url, timeout=10).text


def test_moto_control_api_cannot_reset_the_stack(local_cloud, result_url):
    base = moto_base(result_url)
    assert requests.post(f"{base}/moto-api/reset", timeout=10).status_code == 403
    assert requests.get(f"{base}/moto-api/data.json", timeout=10).status_code == 403
    assert requests.get(result_url, timeout=10).status_code == 200  # nothing was wiped
    again = local_cloud.api("POST", "/infer", token=local_cloud.token("probe-after-reset"),
                            json={"prompt": "still here?", "idle": 1})
    assert again.status_code == 202, again.text


def test_gateway_and_issuer_refuse_a_foreign_host_and_foreign_origins(local_cloud):
    token = local_cloud.token("probe-host")
    api = urlsplit(local_cloud.info["api_url"])
    rebound = local_cloud.api("GET", "/ping", token=token, headers={"Host": f"{EVIL_HOST}:{api.port}"})
    assert rebound.status_code == 403 and "error" in rebound.json()
    issuer = urlsplit(local_cloud.info["issuer"])
    for path in ("/.well-known/openid-configuration", "/oauth2/authorize"):
        answer = requests.get(local_cloud.info["issuer"] + path, headers={"Host": f"{EVIL_HOST}:{issuer.port}"},
                              timeout=10)
        assert answer.status_code == 403, path
    foreign = local_cloud.api("GET", "/ping", token=token, headers={"Origin": EVIL_ORIGIN})
    assert foreign.status_code == 200 and "Access-Control-Allow-Origin" not in foreign.headers
    preflight = local_cloud.api("OPTIONS", "/infer", headers={"Origin": EVIL_ORIGIN,
                                                              "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    local = local_cloud.api("GET", "/ping", token=token, headers={"Origin": "http://localhost:3000"})
    assert local.headers.get("Access-Control-Allow-Origin") == "http://localhost:3000"  # documented: loopback pages


def test_redis_refuses_a_client_without_the_password(local_cloud):
    ports = [re.search(r":(\d+)", cmd) for cmd in local_cloud.descendants().values() if "redis-server" in cmd]
    assert ports and ports[0], local_cloud.descendants()
    client = redis.Redis(host="127.0.0.1", port=int(ports[0].group(1)), socket_timeout=5)
    try:
        with pytest.raises(redis.AuthenticationError):
            client.ping()
        with pytest.raises(redis.AuthenticationError):
            client.keys("*")
    finally:
        client.close()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize_params(info: dict, challenge: str) -> dict:
    return {"response_type": "code", "client_id": info["client_id"], "redirect_uri": "http://localhost:8400/callback",
            "scope": "openid email", "state": secrets.token_urlsafe(8), "code_challenge": challenge,
            "code_challenge_method": "S256"}


def test_no_token_for_another_user_without_the_run_secret(local_cloud):
    info = local_cloud.info
    _, challenge = pkce()
    params = authorize_params(info, challenge)
    # Another local user (or a page) can reach the login form, but has no way to the state file's secret.
    for extra in ({}, {"login_secret": "guessed"}):
        answer = requests.post(info["authorize_url"], data={**params, **extra, "username": "local-user"},
                               allow_redirects=False, timeout=10)
        assert answer.status_code == 403 and "Location" not in answer.headers, answer.text[:300]
    admin = requests.post(local_cloud.state()["admin_token_url"], json={"user": "local-user"}, timeout=10)
    assert admin.status_code == 401
    assert oct(Path(local_cloud.state_file).stat().st_mode & 0o777) == "0o600"


def test_an_authorization_code_is_redeemed_once_under_concurrency(local_cloud):
    info = local_cloud.info
    verifier, challenge = pkce()
    params = authorize_params(info, challenge)
    login = requests.post(info["authorize_url"], allow_redirects=False, timeout=10, data={
        **params, "login_secret": local_cloud.state().get("login_secret"), "username": "race-user"})
    assert login.status_code == 302, login.text[:300]
    code = parse_qs(urlsplit(login.headers["Location"]).query)["code"][0]
    data = {"grant_type": "authorization_code", "client_id": info["client_id"], "code": code,
            "redirect_uri": params["redirect_uri"], "code_verifier": verifier}
    n = 12
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def redeem() -> None:
        barrier.wait()
        statuses.append(requests.post(info["token_url"], data=data, timeout=20).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200] + [400] * (n - 1), statuses


@pytest.mark.parametrize("size", ["-1", "-5", "-0x10", "+5"])
def test_a_negative_chunk_size_is_a_400_and_blocks_nothing(local_cloud, size):
    api = urlsplit(local_cloud.info["api_url"])
    token = local_cloud.token("probe-chunk")
    request = (f"POST /infer HTTP/1.1\r\nHost: {api.netloc}\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\n{{\"a\":1}}\r\n")
    with socket.create_connection((api.hostname, api.port), timeout=10) as sock:
        sock.sendall(request.encode())  # and keep the connection open, as a slow attacker would
        try:
            head = sock.recv(4096).decode(errors="replace")
        except TimeoutError:
            head = "(no answer in 10 s)"
    assert head.startswith("HTTP/1.1 400"), head
    assert local_cloud.api("GET", "/ping", token=token).status_code == 200
