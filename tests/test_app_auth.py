"""Sign-in: authorization code + PKCE (S256) through the local login form and through a browser + localhost
callback; refresh before expiry; sign in again when refreshing fails. Against the local cloud's issuer, through the
fault proxy that counts its grants."""
from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.services.auth import AuthError, BrowserLogin, TokenProvider, _FormParser, token_claims
from tlfif_local.oidc import LocalUser
from tlfif_local.ports import free_port

pytestmark = pytest.mark.timeout(30)


def scripted_browser(seen: list):
    """Does what a person's browser does: load the login page, submit its form, follow the redirect."""
    def open_browser(url: str):
        seen.append(url)

        def run():
            with requests.Session() as http:
                page = http.get(url, timeout=5)
                parser = _FormParser()
                parser.feed(page.text)
                form = parser.forms[0]
                answer = http.post(page.url.split("?")[0], data=form["fields"], allow_redirects=False, timeout=5)
                seen.append(http.get(answer.headers["Location"], timeout=5).text)
        threading.Thread(target=run, daemon=True).start()
        return True
    return open_browser


def test_local_user_signs_in_without_a_browser(api):
    notes = []
    tokens = TokenProvider(api.endpoints(),
                           notify=lambda topic, **data: notes.append((topic, data)),
                           browser_agent=BrowserLogin(open_browser=lambda url: pytest.fail("no browser wanted")))
    id_token = tokens.get(interactive=False)
    assert id_token in api.issued() and len(api.grants("authorization_code")) == 1
    email = LocalUser("local-user").email
    assert token_claims(id_token)["email"] == email and tokens.user == email
    assert [t for t, _ in notes] == ["auth.signing_in", "auth.signed_in"]
    assert all(id_token not in repr(data) for _, data in notes), "tokens never travel on the bus"
    assert tokens.get() == id_token and len(api.grants("authorization_code")) == 1  # held in memory


def test_browser_login_catches_the_code_on_the_localhost_callback(api):
    port = free_port()
    endpoints = api.endpoints(browser=True, redirect_uri=f"http://localhost:{port}/callback")
    seen: list = []
    tokens = TokenProvider(endpoints, browser_agent=BrowserLogin(open_browser=scripted_browser(seen),
                                                                               timeout_s=10))
    assert tokens.get(interactive=False) is None, "a poller never opens a browser"
    assert seen == []
    id_token = tokens.get(interactive=True)
    assert id_token in api.issued()
    query = parse_qs(urlsplit(seen[0]).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [api.info["client_id"]]
    assert query["redirect_uri"] == [f"http://localhost:{port}/callback"]
    assert "Signed in to TL-FIF" in seen[1]


def test_browser_login_gives_up_when_nobody_signs_in(api):
    endpoints = api.endpoints(browser=True, redirect_uri=f"http://localhost:{free_port()}/callback")
    notes = []
    tokens = TokenProvider(endpoints, notify=lambda topic, **data: notes.append(topic),
                           browser_agent=BrowserLogin(open_browser=lambda url: True, timeout_s=0.5))
    with pytest.raises(AuthError, match="no login within"):
        tokens.get()
    assert notes[-1] == "auth.failed"


def test_an_expired_token_is_refreshed_and_a_refused_refresh_signs_in_again(api):
    now = [1_000_000.0]
    tokens = TokenProvider(api.endpoints(), clock=lambda: now[0])
    first = tokens.get()
    now[0] += 3600 - 30  # inside the refresh leeway
    second = tokens.get()
    assert second != first and len(api.grants("refresh_token")) == 1 and len(api.grants("authorization_code")) == 1
    api.refuse_refresh()
    now[0] += 3600
    third = tokens.get()
    assert third not in (first, second) and len(api.grants("authorization_code")) == 2


def test_invalidate_after_a_401_forces_a_new_token(api):
    tokens = TokenProvider(api.endpoints())
    first = tokens.get()
    tokens.invalidate(first)
    assert tokens.get() != first and len(api.grants("refresh_token")) == 1
