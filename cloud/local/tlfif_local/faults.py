"""Faults a local cloud can be started with (`cloud up --fault NAME[=VALUE]`), so that a check can be shown failing.

    slow-stop=SECONDS   StopInstances takes this long before the instance shows `stopping` (a slow EC2 stop)
    unverified-tokens   the JWT authorizer reads a token's claims without checking its signature (a broken
                        authorizer: a forged token gets in)

For tests and QA demonstrations only; a cloud started without --fault has none of them.
"""
from __future__ import annotations

import time

from .jwt_authorizer import JwtAuthorizer, Unauthorized, _b64json

SLOW_STOP = "slow-stop"
UNVERIFIED_TOKENS = "unverified-tokens"
FAULTS = (SLOW_STOP, UNVERIFIED_TOKENS)


def parse_faults(specs: list[str]) -> dict[str, str]:
    """{"slow-stop": "12", ...} from `NAME[=VALUE]` strings; ValueError naming an unknown or malformed one."""
    faults: dict[str, str] = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if name == SLOW_STOP:
            try:
                if float(value) < 0:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{SLOW_STOP} needs seconds ≥ 0, e.g. {SLOW_STOP}=12") from None
        faults[name] = value
    return faults


class UnverifiedJwtAuthorizer(JwtAuthorizer):
    """Checks issuer, audience and expiry, but never the signature."""

    def authorize(self, authorization: str | None, *, now: float | None = None) -> dict:
        if not authorization or not authorization.strip():
            raise Unauthorized("missing bearer token", missing=True)
        parts = authorization.strip().split(" ")[-1].split(".")
        try:
            claims = _b64json(parts[1])
        except (IndexError, ValueError, UnicodeDecodeError):
            raise Unauthorized("the token is not a JWT") from None
        self._check_claims(claims, time.time() if now is None else now)
        return claims
