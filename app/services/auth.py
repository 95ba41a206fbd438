"""Sign-in: OAuth 2.0 authorization code + PKCE (S256) with authlib; tokens in memory only.

Two user agents deliver the authorization code:
- `BrowserLogin`   the system browser at the hosted login (Cognito), the code caught on a localhost callback server;
- `LocalFormLogin` the local cloud's login page, submitted for the local user without a browser window.
Both run the same exchange: authorize URL with code_challenge, code + code_verifier at the token URL.

`TokenProvider` hands out the ID token (the API's Bearer), refreshes it before it expires (grant refresh_token)
and signs in again when refreshing fails. Nothing here writes a file or logs a token. Every ID token it is given
must be for this app from the expected issuer and unexpired (`check_id_token`: iss, aud, exp, and at sign-in the
nonce sent with the authorization request); the API verifies its signature.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import webbrowser
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Callable, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from app.services.endpoints import AwsEndpoint, EndpointSource

log = logging.getLogger("tlfif.app.auth")

LOCAL_USER = "local-user"
REFRESH_LEEWAY_S = 60
CLOCK_SKEW_S = 120  # an ID token whose exp is this far in the past is refused


class AuthError(RuntimeError):
    """Sign-in failed; str() says why (never contains a token)."""


class LoginAgent(Protocol):
    def authorize(self, authorize_url: str, redirect_uri: str) -> str:
        """Take the user through the login at `authorize_url`; return the redirect URL carrying code and state."""

    def cancel(self) -> None:
        """Give up a login in progress (the app is closing)."""


# --- the system browser and a localhost callback -------------------------------------------------------------------
class _CallbackServer(HTTPServer):
    allow_reuse_address = True
    redirect_base: str = ""
    redirect_url: str | None = None


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self):  # noqa: N802 (http.server's name)
        expected = urlsplit(self.server.redirect_base).path or "/"
        if urlsplit(self.path).path != expected:
            self.send_error(404)
            return
        self.server.redirect_url = self.server.redirect_base.split("?")[0] + "?" + urlsplit(self.path).query
        body = (b"<!doctype html><title>TL-FIF</title><p>Signed in to TL-FIF. "
                b"You can close this tab and return to the app.</p>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # the query holds the code: keep it out of the logs
        pass


class BrowserLogin:
    """Opens the login page in the system browser; a one-shot HTTP server on the redirect port catches the code."""

    def __init__(self, open_browser: Callable[[str], object] = webbrowser.open, timeout_s: float = 300.0):
        self._open_browser = open_browser
        self.timeout_s = timeout_s
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def authorize(self, authorize_url: str, redirect_uri: str) -> str:
        parts = urlsplit(redirect_uri)
        host = parts.hostname or "localhost"
        bind = "127.0.0.1" if host in ("localhost", "127.0.0.1") else host
        try:
            server = _CallbackServer((bind, parts.port or 80), _CallbackHandler)
        except OSError as err:
            raise AuthError(f"the login callback port {parts.port} is in use ({err.strerror})") from None
        server.redirect_base = redirect_uri
        server.timeout = 0.2
        try:
            if self._open_browser(authorize_url) is False:
                raise AuthError("could not open a web browser for the login page")
            deadline = time.monotonic() + self.timeout_s
            while server.redirect_url is None:
                if self._cancelled.is_set():
                    raise AuthError("sign-in cancelled")
                if time.monotonic() > deadline:
                    raise AuthError(f"no login within {int(self.timeout_s)} s")
                server.handle_request()
            return server.redirect_url
        finally:
            server.server_close()


# --- the local cloud's login form, without a browser ---------------------------------------------------------------
class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "method": (attrs.get("method") or "get").lower(),
                               "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


class LocalFormLogin:
    """Signs the local user in through the local cloud's login page: GET it, POST its form, read the redirect."""

    def __init__(self, username: str = LOCAL_USER, timeout_s: float = 10.0):
        self.username = username
        self.timeout_s = timeout_s

    def cancel(self) -> None:
        pass

    def authorize(self, authorize_url: str, redirect_uri: str) -> str:
        with requests.Session() as http:
            page = http.get(authorize_url, timeout=self.timeout_s)
            if page.status_code != 200:
                raise AuthError(f"the login page answered HTTP {page.status_code}")
            parser = _FormParser()
            parser.feed(page.text)
            if not parser.forms:
                raise AuthError("the login page has no form")
            form = parser.forms[0]
            fields = dict(form["fields"])
            fields["username"] = fields.get("username") or self.username
            action = urljoin(page.url, form["action"] or urlsplit(page.url).path)
            answer = http.post(action, data=fields, allow_redirects=False, timeout=self.timeout_s)
        location = answer.headers.get("Location", "")
        if answer.status_code not in (301, 302, 303, 307) or not location.startswith(redirect_uri.split("?")[0]):
            raise AuthError(f"the login form answered HTTP {answer.status_code} without a redirect to the app")
        return location


# --- tokens --------------------------------------------------------------------------------------------------------
def token_claims(jwt: str) -> dict:
    """The payload of a JWT, NOT verified (display only: who is signed in). {} when it is not a JWT."""
    try:
        payload = jwt.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, AttributeError):
        return {}


def check_id_token(id_token: str, endpoint: AwsEndpoint, *, now: float, nonce: str | None = None) -> dict:
    """The token's claims when it is this app's (aud), from the endpoint's issuer (iss), unexpired (exp) and, at
    sign-in, answers this sign-in's request (nonce); AuthError naming the claim otherwise."""
    claims = token_claims(id_token)
    iss, aud, exp = claims.get("iss"), claims.get("aud"), claims.get("exp")
    if not isinstance(iss, str) or not (iss == endpoint.issuer if endpoint.issuer
                                        else bool(endpoint.issuer_prefix) and iss.startswith(endpoint.issuer_prefix)):
        raise AuthError(f"the ID token is from another issuer ({str(iss)[:80]!r})")
    if aud != endpoint.client_id and not (isinstance(aud, list) and endpoint.client_id in aud):
        raise AuthError("the ID token is for another client (aud)")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or exp + CLOCK_SKEW_S < now:
        raise AuthError("the ID token has expired (exp)")
    if nonce is not None and claims.get("nonce") != nonce:
        raise AuthError("the ID token does not answer this sign-in (nonce)")
    return claims


class TokenProvider:
    """The ID token for the API, from memory; signs in (or refreshes) when there is none or it expires."""

    def __init__(self, endpoints: EndpointSource, *, notify: Callable[..., None] | None = None,
                 browser_agent: LoginAgent | None = None, local_agent: LoginAgent | None = None,
                 clock: Callable[[], float] = time.time, endpoint_wait_s: float = 120.0):
        self._endpoints = endpoints
        self._notify = notify or (lambda topic, **data: None)
        self._browser_agent = browser_agent or BrowserLogin()
        self._local_agent = local_agent or LocalFormLogin()
        self._clock = clock
        self._endpoint_wait_s = endpoint_wait_s
        self._lock = threading.Lock()
        self._token: dict | None = None
        self._expires_at = 0.0
        self.logins = 0
        self.refreshes = 0
        self.user = ""

    @property
    def signed_in(self) -> bool:
        return self._token is not None

    def can_sign_in_silently(self) -> bool:
        try:
            return not self._endpoints.get(timeout=0).browser
        except Exception:
            return False

    def get(self, *, interactive: bool = True) -> str | None:
        """The ID token. Non-interactive callers (pollers) get None rather than a browser window."""
        with self._lock:
            endpoint = self._endpoints.get(timeout=self._endpoint_wait_s)
            if self._token is not None and self._clock() < self._expires_at - REFRESH_LEEWAY_S:
                return self._token["id_token"]
            if self._token is not None and self._token.get("refresh_token"):
                try:
                    return self._refresh(endpoint)
                except Exception as err:  # refresh refused or failed: sign in again
                    log.info("[auth] refresh failed (%s); signing in again", err.__class__.__name__)
                    self._token = None
            if endpoint.browser and not interactive:
                return None
            return self._login(endpoint)

    def invalidate(self, id_token: str) -> None:
        """The API refused this token (401): the next get() refreshes or signs in again."""
        with self._lock:
            if self._token is not None and self._token.get("id_token") == id_token:
                self._expires_at = 0.0

    def forget(self) -> None:
        with self._lock:
            self._token = None
            self._expires_at = 0.0

    def cancel(self) -> None:
        for agent in (self._browser_agent, self._local_agent):
            agent.cancel()

    def _session(self, endpoint: AwsEndpoint) -> OAuth2Session:
        return OAuth2Session(endpoint.client_id, redirect_uri=endpoint.redirect_uri, scope=endpoint.scope,
                             code_challenge_method="S256", token_endpoint_auth_method="none")

    def _login(self, endpoint: AwsEndpoint) -> str:
        agent = self._browser_agent if endpoint.browser else self._local_agent
        self._notify("auth.signing_in", message="Opening the login page in your browser…" if endpoint.browser
                     else f"Signing in the local user ({LOCAL_USER})…")
        verifier, nonce = generate_token(64), generate_token(32)
        try:
            with self._session(endpoint) as oauth:
                url, state = oauth.create_authorization_url(endpoint.authorize_url, code_verifier=verifier,
                                                            nonce=nonce)
                redirect = agent.authorize(url, endpoint.redirect_uri)
                token = oauth.fetch_token(endpoint.token_url, authorization_response=redirect, state=state,
                                          code_verifier=verifier)
            accepted = self._accept(dict(token), endpoint, nonce=nonce)
        except AuthError as err:
            self._notify("auth.failed", message=f"[aws] sign-in failed: {err}")
            raise
        except Exception as err:
            message = f"[aws] sign-in failed: {_describe(err)}"
            self._notify("auth.failed", message=message)
            raise AuthError(message) from None
        self.logins += 1
        return accepted

    def _refresh(self, endpoint: AwsEndpoint) -> str:
        refresh_token = self._token["refresh_token"]
        with self._session(endpoint) as oauth:
            token = dict(oauth.refresh_token(endpoint.token_url, refresh_token=refresh_token))
        token.setdefault("refresh_token", refresh_token)  # Cognito does not send a new one
        accepted = self._accept(token, endpoint)
        self.refreshes += 1
        return accepted

    def sign_in_with(self, id_token: str, endpoint: AwsEndpoint) -> str:
        """Sign in with an ID token obtained elsewhere (the acceptance run's signed-in user): checked like any other."""
        return self._accept({"id_token": id_token}, endpoint)

    def _accept(self, token: dict, endpoint: AwsEndpoint, nonce: str | None = None) -> str:
        if not token.get("id_token"):
            raise AuthError("the token answer has no id_token")
        claims = check_id_token(token["id_token"], endpoint, now=self._clock(), nonce=nonce)
        self._token = {k: token[k] for k in ("id_token", "access_token", "refresh_token") if token.get(k)}
        self._expires_at = self._clock() + float(token.get("expires_in") or 3600)
        self.user = str(claims.get("email") or claims.get("cognito:username") or claims.get("sub") or "signed in")
        self._notify("auth.signed_in", user=self.user)
        return self._token["id_token"]


def _describe(err: Exception) -> str:
    text = (err.description or err.error) if isinstance(err, AuthlibBaseError) else None
    text = text or str(err)
    return f"{err.__class__.__name__}: {text}" if text else err.__class__.__name__
