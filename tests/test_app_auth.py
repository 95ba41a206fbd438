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


def _answer_token_with(api, id_token: str) -> None:
    """The issuer's next token answer carries `id_token` (minted by the real issuer, claims of the test's choice)."""
    api.issuer.answer_json("POST", urlsplit(api.info["token_url"]).path,
                           {"id_token": id_token, "access_token": "a", "token_type": "Bearer", "expires_in": 3600})


@pytest.mark.parametrize("claims, expires_in, refused", [
    ({"aud": "another-client"}, 3600, "aud"),
    ({"iss": "http://127.0.0.1:9/not-this-issuer"}, 3600, "issuer"),
    ({}, -600, "exp"),
    ({"nonce": "a-nonce-of-another-sign-in"}, 3600, "nonce"),
    ({}, 3600, "nonce"),  # a valid token of the issuer, but not the answer to this sign-in
], ids=["wrong-aud", "wrong-iss", "expired", "wrong-nonce", "no-nonce"])
def test_a_token_of_another_client_issuer_or_sign_in_or_expired_is_refused(api, app_cloud, claims, expires_in,
                                                                           refused):
    _answer_token_with(api, app_cloud.token("local-user", expires_in=expires_in, claims=claims))
    tokens = TokenProvider(api.endpoints())
    with pytest.raises(AuthError, match=refused):
        tokens.get(interactive=False)
    assert not tokens.signed_in


def test_the_sign_in_sends_a_nonce_and_the_token_carries_it(api):
    first, second = TokenProvider(api.endpoints()), TokenProvider(api.endpoints())
    nonces = [token_claims(tokens.get(interactive=False)).get("nonce") for tokens in (first, second)]
    assert all(nonces) and nonces[0] != nonces[1], "the issuer puts in the token the nonce each sign-in sent"


def test_a_refreshed_token_of_another_client_is_refused_and_the_user_signs_in_again(api, app_cloud):
    now = [1_000_000.0]
    tokens = TokenProvider(api.endpoints(), clock=lambda: now[0])
    first = tokens.get()
    _answer_token_with(api, app_cloud.token("local-user", claims={"aud": "another-client"}))
    now[0] += 3600
    second = tokens.get()
    assert second != first and token_claims(second)["aud"] == api.info["client_id"]
    assert len(api.grants("authorization_code")) == 2
