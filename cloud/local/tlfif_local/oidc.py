"""The local OIDC issuer: a Cognito user pool's hosted login, on loopback, built with authlib.

    GET  /.well-known/openid-configuration   discovery
    GET  /.well-known/jwks.json               the RS256 public key (with its `kid`)
    GET  /oauth2/authorize                    the login page (see `login_page`); bad client/redirect → 400 page
    POST /oauth2/authorize                    with this run's login secret: 302 → redirect_uri?code=…&state=…;
                                              without it: 403 page (only the user who started the cloud signs in)
    POST /oauth2/token                        grant_type=authorization_code (PKCE S256 verifier required) or
                                              refresh_token → {"id_token","access_token","refresh_token",
                                              "token_type":"Bearer","expires_in":3600} (no new refresh token on refresh)
    POST /local/token                         admin, loopback, `Authorization: Bearer <admin secret>`:
                                              {"user", "expires_in", "claims"} → {"id_token"} (`tl-fif cloud token`)

One public client (no secret, like a Cognito app client for a desktop app). Only authorization code + PKCE with
S256: a missing challenge, `plain`, a missing or wrong verifier are refused. Redirect URIs: `http://localhost:<port>
/callback` and `http://127.0.0.1:<port>/callback`, any port (the app picks a free one). ID tokens are RS256,
60 minutes, with Cognito's claims (`iss`, `aud` = client id, `token_use` = id, `sub`, `email`, `exp`, `iat`, …).
The login secret reaches the page as the `login_secret` query parameter of the authorize URL (the app adds it;
it is also in the 0600 state file). Every request must name the issuer's own loopback `Host` (no DNS rebinding).
"""
from __future__ import annotations

import hmac
import logging
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from flask import Flask, Response, jsonify, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from .login_page import DEFAULT_USERNAME, LOGIN_SECRET_FIELD, OAUTH_PARAMS, error_page, login_page
from .wsgi_server import LoopbackServer, allowed_hosts

log = logging.getLogger("tlfif_local.oidc")

ID_TOKEN_TTL = 3600
AUTH_CODE_TTL = 300
REFRESH_TOKEN_TTL = 30 * 24 * 3600
SCOPES = ("openid", "email", "profile", "phone", "aws.cognito.signin.user.admin")  # a Cognito app client's
CALLBACK_HOSTS = ("localhost", "127.0.0.1")
CALLBACK_PATH = "/callback"
AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"
JWKS_PATH = "/.well-known/jwks.json"
ADMIN_TOKEN_PATH = "/local/token"
USERNAME_CHARS = frozenset(string.ascii_letters + string.digits + "._@+-")
MAX_USERNAME = 64


def is_loopback_callback(uri: str | None) -> bool:
    """`http://localhost:<port>/callback` or `http://127.0.0.1:<port>/callback`, nothing else."""
    if not isinstance(uri, str):
        return False
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    return (parts.scheme == "http" and parts.hostname in CALLBACK_HOSTS and port is not None
            and parts.netloc == f"{parts.hostname}:{port}" and parts.path == CALLBACK_PATH
            and not parts.query and not parts.fragment)


def username_problem(username: str) -> str | None:
    if not username:
        return "enter a user name"
    if len(username) > MAX_USERNAME or not set(username) <= USERNAME_CHARS:
        return f"a user name is 1–{MAX_USERNAME} letters, digits or . _ @ + -"
    return None


@dataclass(frozen=True)
class LocalUser:
    username: str

    @property
    def sub(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tl-fif-local-user:{self.username}"))

    @property
    def email(self) -> str:
        return self.username if "@" in self.username else f"{self.username}@local.tl-fif"

    def get_user_id(self) -> str:
        return self.sub


class LocalClient(ClientMixin):
    """The one public app client (no secret), like a Cognito app client for a desktop app."""

    def __init__(self, client_id: str):
        self.client_id = client_id

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # the request must name its callback

    def get_allowed_scope(self, scope):
        if not scope:
            return " ".join(SCOPES)
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return is_loopback_callback(redirect_uri)

    def check_client_secret(self, client_secret):
        return False

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "none"

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: LocalUser
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    auth_time: int
    expires_at: float

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


@dataclass
class RefreshToken:
    refresh_token: str
    client_id: str
    user: LocalUser
    scope: str
    auth_time: int
    expires_at: float
    revoked: bool = False

    def check_client(self, client):
        return client.get_client_id() == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self):
        return time.time() >= self.expires_at

    def is_revoked(self):
        return self.revoked


class S256Only(CodeChallenge):
    """PKCE as the local cloud demands it: a challenge on every authorization request, method S256 only."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256 (plain is refused)")
        super().validate_code_challenge(grant, redirect_uri)


@dataclass
class _Store:
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class LocalIssuer:
    """Keys, tokens and the Flask app of the local issuer. `start()` serves it on 127.0.0.1."""

    def __init__(self, port: int = 0, client_id: str | None = None, login_secret: str | None = None):
        self.client_id = client_id or "".join(secrets.choice(string.ascii_lowercase + string.digits)
                                              for _ in range(26))
        self.admin_secret = secrets.token_urlsafe(32)
        self.login_secret = login_secret or secrets.token_urlsafe(24)
        self.kid = secrets.token_urlsafe(12)
        self.key = RSAKey.generate_key(2048, parameters={"kid": self.kid, "use": "sig", "alg": "RS256"},
                                       private=True)
        self.client = LocalClient(self.client_id)
        self._store = _Store()
        self.app = self._build_app()
        self._server = LoopbackServer(self.app, port=port, name="oidc")
        self._hosts = allowed_hosts(self._server.port)
        self.url = self._server.url
        self.issuer = self.url

    # --- endpoints as URLs ----------------------------------------------------------------------------------
    @property
    def authorize_url(self) -> str:
        return self.url + AUTHORIZE_PATH

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    @property
    def admin_token_url(self) -> str:
        return self.url + ADMIN_TOKEN_PATH

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(private=False)]}

    # --- tokens -----------------------------------------------------------------------------------------------
    def _sign(self, claims: dict) -> str:
        return jwt.encode({"kid": self.kid, "alg": "RS256"}, claims, self.key)

    def mint_id_token(self, user: LocalUser, *, expires_in: int = ID_TOKEN_TTL, nonce: str | None = None,
                      auth_time: int | None = None, overrides: dict | None = None) -> str:
        now = int(time.time())
        exp = now + int(expires_in)
        iat = now if exp > now else exp - ID_TOKEN_TTL
        claims = {
            "sub": user.sub, "email_verified": True, "iss": self.issuer, "cognito:username": user.username,
            "origin_jti": str(uuid.uuid4()), "aud": self.client_id, "event_id": str(uuid.uuid4()),
            "token_use": "id", "auth_time": auth_time or iat, "exp": exp, "iat": iat, "jti": str(uuid.uuid4()),
            "email": user.email,
        }
        if nonce:
            claims["nonce"] = nonce
        for name, value in (overrides or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self._sign(claims)

    def mint_access_token(self, user: LocalUser, scope: str, *, auth_time: int) -> str:
        now = int(time.time())
        return self._sign({
            "sub": user.sub, "iss": self.issuer, "client_id": self.client_id, "origin_jti": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()), "token_use": "access", "scope": scope, "auth_time": auth_time,
            "exp": now + ID_TOKEN_TTL, "iat": now, "jti": str(uuid.uuid4()), "username": user.username,
        })

    def _generate_token(self, grant_type, client, user=None, scope=None, expires_in=None,
                        include_refresh_token=True):
        """authlib's token generator: Cognito's token response (the ID token is added by the grants)."""
        auth_time = int(time.time())
        token = {"access_token": self.mint_access_token(user, scope or "", auth_time=auth_time),
                 "expires_in": ID_TOKEN_TTL, "token_type": "Bearer"}
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(48)
        return token

    # --- authlib wiring -------------------------------------------------------------------------------------
    def _build_app(self) -> Flask:
        issuer = self
        store = self._store

        class _IdToken:
            def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None,
                               include_refresh_token=True):
                token = super().generate_token(user=user, scope=scope, grant_type=grant_type,
                                               expires_in=expires_in, include_refresh_token=include_refresh_token)
                code = getattr(self.request, "authorization_code", None)
                previous = getattr(self.request, "refresh_token", None)
                token = {"id_token": issuer.mint_id_token(
                    user, nonce=getattr(code, "nonce", None),
                    auth_time=getattr(code, "auth_time", None) or getattr(previous, "auth_time", None)), **token}
                return token

        class CodeGrant(_IdToken, grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

            def save_authorization_code(self, code, req):
                data = req.payload.data
                item = AuthCode(code=code, client_id=req.client.get_client_id(),
                                redirect_uri=req.payload.redirect_uri, scope=req.scope or "", user=req.user,
                                code_challenge=data.get("code_challenge"),
                                code_challenge_method=data.get("code_challenge_method"),
                                nonce=data.get("nonce"), auth_time=int(time.time()),
                                expires_at=time.time() + AUTH_CODE_TTL)
                with store.lock:
                    store.codes[code] = item

            def query_authorization_code(self, code, client):
                # Taken out as it is looked up: of concurrent redemptions exactly one finds it.
                with store.lock:
                    item = store.codes.pop(code, None)
                if item and item.client_id == client.get_client_id() and time.time() < item.expires_at:
                    return item
                return None

            def delete_authorization_code(self, authorization_code):
                with store.lock:
                    store.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class RefreshGrant(_IdToken, grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
            INCLUDE_NEW_REFRESH_TOKEN = False  # as Cognito: the refresh token stays valid, no new one

            def authenticate_refresh_token(self, refresh_token):
                with store.lock:
                    item = store.refresh.get(refresh_token)
                if item and not item.is_expired() and not item.is_revoked():
                    return item
                return None

            def authenticate_user(self, refresh_token):
                return refresh_token.user

            def revoke_old_credential(self, refresh_token):
                pass

        def save_token(token, req):
            refresh = token.get("refresh_token")
            if refresh:
                code = getattr(req, "authorization_code", None)
                with store.lock:
                    store.refresh[refresh] = RefreshToken(
                        refresh_token=refresh, client_id=req.client.get_client_id(), user=req.user,
                        scope=code.get_scope() if code else "", auth_time=getattr(code, "auth_time", 0),
                        expires_at=time.time() + REFRESH_TOKEN_TTL)

        app = Flask("tlfif_local.oidc")
        app.config["OAUTH2_SCOPES_SUPPORTED"] = list(SCOPES)
        server = AuthorizationServer(app, query_client=lambda cid: self.client if cid == self.client_id else None,
                                     save_token=save_token)
        server.register_token_generator("default", self._generate_token)
        server.register_grant(CodeGrant, [S256Only(required=True)])
        server.register_grant(RefreshGrant)

        def html(body: str, status: int) -> Response:
            return Response(body, status=status, content_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-store"})

        @app.before_request
        def only_our_host():
            if request.host.lower() not in self._hosts:
                return jsonify({"error": "unknown Host: this issuer answers only its loopback address"}), 403
            return None

        def secret_ok(value: str | None) -> bool:
            return isinstance(value, str) and hmac.compare_digest(value.encode(), self.login_secret.encode())

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify({
                "issuer": self.issuer, "authorization_endpoint": self.authorize_url,
                "token_endpoint": self.token_url, "jwks_uri": self.jwks_url,
                "response_types_supported": ["code"], "grant_types_supported": ["authorization_code",
                                                                                "refresh_token"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"], "scopes_supported": list(SCOPES),
                "token_endpoint_auth_methods_supported": ["none"],
            })

        @app.get(JWKS_PATH)
        def jwks():
            return jsonify(self.jwks())

        @app.route(AUTHORIZE_PATH, methods=["GET", "POST"])
        def authorize():
            params = {name: request.values.get(name) for name in OAUTH_PARAMS}
            try:
                grant = server.get_consent_grant(end_user=None)
            except OAuth2Error as error:
                if error.redirect_uri:  # client and callback are valid: tell the client (RFC 6749 §4.1.2.1)
                    log.info("[oidc] authorization request refused: %s", error.description)
                    return server.handle_error_response(None, error)
                log.info("[oidc] authorization request refused (no redirect): %s", error.description)
                return html(error_page("Sign-in request refused", error.description or error.error), 400)
            offered = request.values.get(LOGIN_SECRET_FIELD)
            if request.method == "GET":
                return html(login_page(AUTHORIZE_PATH, params, login_secret=offered if secret_ok(offered) else None),
                            200)
            if not secret_ok(offered):
                log.warning("[oidc] sign-in refused: login secret missing or wrong")
                return html(error_page("Sign-in refused", "This local cloud signs in only the user who started it: "
                                       "the login secret is missing or wrong."), 403)
            username = (request.form.get("username") or "").strip()
            problem = username_problem(username)
            if problem:
                return html(login_page(AUTHORIZE_PATH, params, username=username, message=problem,
                                       login_secret=offered), 400)
            response = server.create_authorization_response(grant_user=LocalUser(username), grant=grant)
            response.headers["Cache-Control"] = "no-store"
            log.info("[oidc] %s signed in", username)
            return response

        @app.post(TOKEN_PATH)
        def token():
            return server.create_token_response()

        @app.post(ADMIN_TOKEN_PATH)
        def admin_token():
            auth = request.headers.get("Authorization", "")
            if not hmac.compare_digest(auth.encode(), f"Bearer {self.admin_secret}".encode()):
                return jsonify({"error": "admin secret missing or wrong"}), 401
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return jsonify({"error": "body must be a JSON object"}), 400
            username = body.get("user", DEFAULT_USERNAME)
            problem = username_problem(username) if isinstance(username, str) else "user must be a string"
            if problem:
                return jsonify({"error": f"user: {problem}"}), 400
            expires_in = body.get("expires_in", ID_TOKEN_TTL)
            if isinstance(expires_in, bool) or not isinstance(expires_in, int):
                return jsonify({"error": "expires_in must be an integer (seconds; negative: already expired)"}), 400
            overrides = body.get("claims") or {}
            if not isinstance(overrides, dict):
                return jsonify({"error": "claims must be an object"}), 400
            return jsonify({"id_token": self.mint_id_token(LocalUser(username), expires_in=expires_in,
                                                           overrides=overrides)})

        return app

    # --- serving ----------------------------------------------------------------------------------------------
    def start(self) -> LocalIssuer:
        self._server.start()
        log.info("[oidc] issuer at %s (client id %s)", self.issuer, self.client_id)
        return self

    def stop(self) -> None:
        self._server.stop()
