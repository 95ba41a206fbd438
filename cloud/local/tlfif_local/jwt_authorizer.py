"""API Gateway's JWT authorizer, as an HTTP API configures it: issuer + audience, keys from the issuer's JWKS.

A request passes only with `Authorization: Bearer <JWT>` (the `Bearer ` prefix is optional, as on AWS) whose header
says `alg: RS256` with a `kid` found in the JWKS, whose signature verifies, whose `iss` is the issuer, whose `aud`
(ID tokens) or `client_id` (access tokens) is an allowed audience, and that is inside `exp`/`nbf`. Anything else is
`Unauthorized(reason)`. The JWKS is fetched over HTTP like API Gateway does, cached, and refetched (at most every
few seconds) when a token names an unknown `kid`.
"""
from __future__ import annotations

import base64
import json
import threading
import time

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHM = "RS256"
JWKS_REFRESH_MIN_SECONDS = 5.0


class Unauthorized(Exception):
    """The request is not authorized; str(err) says why. `missing` when there was no token at all."""

    def __init__(self, reason: str, *, missing: bool = False):
        super().__init__(reason)
        self.missing = missing


def _b64json(segment: str) -> dict:
    padded = segment + "=" * (-len(segment) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


class JwtAuthorizer:
    def __init__(self, issuer: str, audiences: list[str], jwks_url: str):
        self.issuer = issuer
        self.audiences = set(audiences)
        self.jwks_url = jwks_url
        self._keys: dict[str, object] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _key(self, kid: str):
        with self._lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._fetched_at >= JWKS_REFRESH_MIN_SECONDS:
                self._fetched_at = time.monotonic()
                try:
                    answer = requests.get(self.jwks_url, timeout=5)
                    answer.raise_for_status()
                    key_set = KeySet.import_key_set(answer.json())
                    self._keys = {k.kid: k for k in key_set.keys if k.kid}
                except (requests.RequestException, ValueError, JoseError) as err:
                    raise Unauthorized(f"cannot fetch the issuer's JWKS: {err}") from None
                key = self._keys.get(kid)
            return key

    def authorize(self, authorization: str | None, *, now: float | None = None) -> dict:
        """The token's claims when it is valid; raises Unauthorized otherwise."""
        if not authorization or not authorization.strip():
            raise Unauthorized("missing bearer token", missing=True)
        value = authorization.strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        parts = value.split(".")
        if len(parts) != 3:
            raise Unauthorized("the token is not a JWS compact JWT")
        try:
            header = _b64json(parts[0])
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("the token header is not valid base64url JSON") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"token alg must be {ALGORITHM}, got {header.get('alg')!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token header has no kid")
        key = self._key(kid)
        if key is None:
            raise Unauthorized("the token's kid is not in the issuer's JWKS")
        try:
            claims = jwt.decode(value, key, algorithms=[ALGORITHM]).claims
        except (JoseError, ValueError) as err:
            raise Unauthorized(f"signature verification failed ({type(err).__name__})") from None
        self._check_claims(claims, time.time() if now is None else now)
        return claims

    def _check_claims(self, claims: dict, now: float) -> None:
        if claims.get("iss") != self.issuer:
            raise Unauthorized("wrong issuer (iss)")
        if "aud" in claims:
            aud = claims["aud"]
            audiences = aud if isinstance(aud, list) else [aud]
            if not self.audiences.intersection(a for a in audiences if isinstance(a, str)):
                raise Unauthorized("wrong audience (aud)")
        elif claims.get("client_id") not in self.audiences:
            raise Unauthorized("wrong audience (client_id)")
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise Unauthorized("the token has no exp")
        if now >= exp:
            raise Unauthorized("the token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and now < nbf:
            raise Unauthorized("the token is not valid yet (nbf)")


def claims_as_strings(claims: dict) -> dict[str, str]:
    """Claims as API Gateway hands them to the integration: every value a string (arrays as `[a b]`)."""
    out: dict[str, str] = {}
    for name, value in claims.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, str):
            out[name] = value
        elif isinstance(value, list):
            out[name] = "[" + " ".join(str(v) for v in value) + "]"
        elif isinstance(value, dict):
            out[name] = json.dumps(value, separators=(",", ":"))
        else:
            out[name] = str(value)
    return out
