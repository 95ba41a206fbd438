"""JWT claims as API Gateway's JWT authorizer passes them, checked again here (defence in depth).

API Gateway has already verified the signature; this re-checks what the router depends on. The authorizer hands
the claims over as strings (`"exp": "1718003600"`, arrays as `"[a b]"`), so every check accepts both forms.
  - no claims or no `sub`                                  → 401
  - `exp` missing, not a number or in the past               → 401
  - `token_use` not `id`/`access`                            → 403
  - `iss` not the configured issuer                          → 403
  - ID token: `aud`, access token: `client_id` not the configured audience (the app client id) → 403
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .config import RouterConfig
from .errors import HttpError

TOKEN_USES = ("id", "access")


@dataclass(frozen=True)
class Caller:
    sub: str
    token_use: str


def claims_of(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, Mapping) else None


def _number(value: Any) -> float | None:
    """A finite number from a claim (NaN or infinity would pass every comparison with the clock)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _values(value: Any) -> list[str]:
    """A claim that may be a string, a list, or API Gateway's flattened `"[a b]"` form."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            return text[1:-1].split()
        return [text]
    return []


def check_claims(claims: Mapping[str, Any] | None, config: RouterConfig, *, now: float) -> Caller:
    if not claims:
        raise HttpError(401, "unauthorized: no JWT claims on the request")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise HttpError(401, "unauthorized: the token has no sub claim")
    exp = _number(claims.get("exp"))
    if exp is None:
        raise HttpError(401, "unauthorized: the token has no valid exp claim")
    if exp <= now:
        raise HttpError(401, "unauthorized: the token has expired")
    token_use = claims.get("token_use")
    if token_use not in TOKEN_USES:
        raise HttpError(403, "forbidden: token_use must be id or access")
    if claims.get("iss") != config.jwt_issuer:
        raise HttpError(403, "forbidden: the token was issued by another issuer")
    audience_claim = "aud" if token_use == "id" else "client_id"
    if config.jwt_audience not in _values(claims.get(audience_claim)):
        raise HttpError(403, f"forbidden: the token's {audience_claim} is not this app's client")
    return Caller(sub=sub, token_use=token_use)
