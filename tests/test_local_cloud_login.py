"""Local cloud: sign-in through the issuer's PKCE flow, as a browser does it — over HTTP only.

The login page contract the desktop app relies on: GET authorize → 200 HTML with ONE `<form method="post">` that
posts back to the authorize path, a hidden input per OAuth parameter, a text input `username` prefilled
"local-user" and a submit button; POST → 302 to `redirect_uri?code=…&state=…`. The run's login secret (from the
state file) rides on the authorize URL, as the app sends it; without it the login is refused
(tests/test_faults_local_security.py).
"""
from __future__ import annotations

import base64
import hashlib
import queue
import secrets
import shutil
import tempfile
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


class FormParser(HTMLParser):
    """Every <form> with its inputs and buttons, as a browser sees them."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"method": (attrs.get("method") or "get").lower(), "action": attrs.get("action"),
                               "inputs": [], "buttons": 0})
        elif self.forms and tag == "input":
            self.forms[-1]["inputs"].append(attrs)
        elif self.forms and tag == "button" and (attrs.get("type") or "submit") == "submit":
            self.forms[-1]["buttons"] += 1


class Callback:
    """A tiny loopback HTTP server standing in for the app's `/callback`: it catches the redirect's query."""

    def __init__(self, host: str = "127.0.0.1"):
        caught: queue.Queue = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                body = b"<html><body>Signed in. You can close this window.</body></html>"
                self.send_response(200 if parts.path == "/callback" else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if parts.path == "/callback":
                    caught.put({k: v[0] for k, v in parse_qs(parts.query).items()})

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.redirect_uri = f"http://{host}:{self._server.server_address[1]}/callback"
        self._caught = caught
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait(self, timeout: float = 15.0) -> dict:
        return self._caught.get(timeout=timeout)

    def close(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def callback():
    server = Callback()
    yield server
    server.close()


def signed_in_info(cloud) -> dict:
    """The cloud's info line with the authorize URL as the app uses it: carrying this run's login secret."""
    secret = cloud.state()["login_secret"]
    return {**cloud.info, "authorize_url": f"{cloud.info['authorize_url']}?{urlencode({'login_secret': secret})}"}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_query(info: dict, redirect_uri: str, challenge: str | None, method: str | None = "S256",
                    **overrides) -> dict:
    params = {"response_type": "code", "client_id": info["client_id"], "redirect_uri": redirect_uri,
              "scope": "openid email", "state": secrets.token_urlsafe(16), "code_challenge": challenge,
              "code_challenge_method": method, **overrides}
    return {k: v for k, v in params.items() if v is not None}


def parse_login_page(html: str) -> dict:
    parser = FormParser()
    parser.feed(html)
    assert len(parser.forms) == 1, f"the login page must hold exactly one form, found {len(parser.forms)}"
    return parser.forms[0]


def submit_login(session: requests.Session, info: dict, params: dict, username: str | None = None,
                 follow: bool = True) -> requests.Response:
    """Fetch the login page, fill it in and submit it like a browser."""
    page = session.get(info["authorize_url"], params=params, timeout=10)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    form = parse_login_page(page.text)
    assert form["method"] == "post"
    action = urljoin(page.url, form["action"] or "")
    assert urlsplit(action).path == urlsplit(info["authorize_url"]).path
    fields = {i["name"]: i.get("value", "") for i in form["inputs"] if i.get("name")}
    hidden = {i["name"] for i in form["inputs"] if i.get("type") == "hidden"}
    assert set(params) <= hidden, f"hidden inputs {hidden} must carry every OAuth parameter {set(params)}"
    assert all(fields[name] == value for name, value in params.items())
    username_inputs = [i for i in form["inputs"] if i.get("name") == "username"]
    assert len(username_inputs) == 1 and username_inputs[0].get("type") == "text"
    assert fields["username"] == "local-user"
    assert form["buttons"] == 1
    if username is not None:
        fields["username"] = username
    return session.post(action, data=fields, allow_redirects=follow, timeout=10)


def exchange(info: dict, code: str, redirect_uri: str, verifier: str | None) -> requests.Response:
    data = {"grant_type": "authorization_code", "client_id": info["client_id"], "code": code,
            "redirect_uri": redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    return requests.post(info["token_url"], data=data, timeout=10)


def login_code(info: dict, callback: Callback, challenge: str, username: str = "bob") -> str:
    params = authorize_query(info, callback.redirect_uri, challenge)
    with requests.Session() as session:
        answer = submit_login(session, info, params, username=username)
    assert answer.status_code == 200 and answer.url.startswith(callback.redirect_uri)
    caught = callback.wait()
    assert caught["state"] == params["state"]
    assert "error" not in caught
    return caught["code"]


def verify_id_token(info: dict, id_token: str) -> dict:
    jwks = requests.get(info["jwks_url"], timeout=10).json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    return token.claims


def test_pkce_login_like_a_browser_gives_a_working_id_token(local_cloud, callback):
    info = signed_in_info(local_cloud)
    verifier, challenge = pkce_pair()
    code = login_code(info, callback, challenge, username="bob")

    answer = exchange(info, code, callback.redirect_uri, verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert {"id_token", "access_token", "refresh_token", "token_type", "expires_in"} <= set(tokens)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    claims = verify_id_token(info, tokens["id_token"])
    assert claims["iss"] == info["issuer"] and claims["aud"] == info["client_id"]
    assert claims["token_use"] == "id" and claims["sub"] and claims["email"].startswith("bob")
    assert claims["exp"] - claims["iat"] == 3600

    ping = local_cloud.api("GET", "/ping", token=tokens["id_token"])
    assert ping.status_code == 200, ping.text
    assert ping.json()["status"] == "ok"

    again = exchange(info, code, callback.redirect_uri, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # a code works once

    refreshed = requests.post(info["token_url"], timeout=10, data={
        "grant_type": "refresh_token", "client_id": info["client_id"], "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["token_type"] == "Bearer" and new["expires_in"] == 3600
    assert new["id_token"] != tokens["id_token"]
    assert verify_id_token(info, new["id_token"])["sub"] == claims["sub"]
    assert local_cloud.api("GET", "/ping", token=new["id_token"]).status_code == 200


@pytest.mark.parametrize("verifier, error", [("other", "invalid_grant"), (None, "invalid_request")],
                         ids=["wrong-verifier", "missing-verifier"])
def test_a_wrong_or_missing_verifier_is_refused(local_cloud, callback, verifier, error):
    info = signed_in_info(local_cloud)
    _, challenge = pkce_pair()
    if verifier == "other":
        verifier, _ = pkce_pair()
    code = login_code(info, callback, challenge)
    answer = exchange(info, code, callback.redirect_uri, verifier)
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert "id_token" not in answer.json()


@pytest.mark.parametrize("method, with_challenge", [("plain", True), (None, True), ("S256", False)],
                         ids=["plain", "no-method-means-plain", "no-challenge"])
def test_authorization_without_s256_is_refused(local_cloud, callback, method, with_challenge):
    info = signed_in_info(local_cloud)
    verifier, challenge = pkce_pair()
    params = authorize_query(info, callback.redirect_uri, verifier if with_challenge else None, method=method)
    answer = requests.get(info["authorize_url"], params=params, allow_redirects=False, timeout=10)
    assert answer.status_code == 302  # RFC 6749 §4.1.2.1: the client hears of it at its callback
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert answer.headers["Location"].startswith(callback.redirect_uri)
    assert query["error"] == ["invalid_request"] and "code" not in query
    assert query["state"] == [params["state"]]


@pytest.mark.parametrize("change", [
    {"client_id": "not-the-client"},
    {"redirect_uri": "http://evil.example:8400/callback"},
    {"redirect_uri": "https://localhost:8400/callback"},
    {"redirect_uri": "http://localhost:8400/elsewhere"},
    {"redirect_uri": "http://localhost:8400/callback?next=http://evil.example"},
], ids=["client_id", "foreign-host", "https", "path", "query"])
def test_wrong_client_or_redirect_uri_gets_a_400_page_and_no_redirect(local_cloud, change):
    info = signed_in_info(local_cloud)
    _, challenge = pkce_pair()
    params = {**authorize_query(info, "http://localhost:8400/callback", challenge), **change}
    for answer in (requests.get(info["authorize_url"], params=params, allow_redirects=False, timeout=10),
                   requests.post(info["authorize_url"], data={**params, "username": "bob"}, allow_redirects=False,
                                 timeout=10)):
        assert answer.status_code == 400
        assert "Location" not in answer.headers
        assert answer.headers["Content-Type"].startswith("text/html")


def test_any_loopback_callback_port_is_accepted(local_cloud):
    info = signed_in_info(local_cloud)
    _, challenge = pkce_pair()
    for redirect_uri in ("http://localhost:53682/callback", "http://127.0.0.1:1234/callback"):
        params = authorize_query(info, redirect_uri, challenge)
        with requests.Session() as session:
            answer = submit_login(session, info, params, username="port-user", follow=False)
        assert answer.status_code == 302
        location = urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
        query = parse_qs(location.query)
        assert query["code"] and query["state"] == [params["state"]]


def test_empty_user_name_shows_the_form_again(local_cloud):
    info = signed_in_info(local_cloud)
    _, challenge = pkce_pair()
    params = authorize_query(info, "http://localhost:8400/callback", challenge)
    with requests.Session() as session:
        answer = submit_login(session, info, params, username="", follow=False)
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert parse_login_page(answer.text)["method"] == "post"


@pytest.mark.timeout(120)
def test_login_in_headless_chromium(local_cloud, callback):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    assert shutil.which("chromium") or shutil.which("chromium-browser"), \
        "chromium is missing: run scripts/system-packages.sh test (make test does)"
    info = signed_in_info(local_cloud)
    verifier, challenge = pkce_pair()
    params = authorize_query(info, callback.redirect_uri, challenge)
    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage"):
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(info["authorize_url"] + "&" + urlencode(params))
        forms = driver.find_elements(By.TAG_NAME, "form")
        assert len(forms) == 1
        field = driver.find_element(By.NAME, "username")
        assert field.get_attribute("value") == "local-user"
        field.clear()
        field.send_keys("chromium-user")
        forms[0].find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        caught = callback.wait(timeout=30)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert caught["state"] == params["state"] and "error" not in caught
    answer = exchange(info, caught["code"], callback.redirect_uri, verifier)
    assert answer.status_code == 200, answer.text
    claims = verify_id_token(info, answer.json()["id_token"])
    assert claims["email"].startswith("chromium-user")
    assert local_cloud.api("GET", "/ping", token=answer.json()["id_token"]).status_code == 200
