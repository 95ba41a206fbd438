"""Where the AWS backend talks to: the deployed stack (from ~/.tl-fif.ini) or the embedded local cloud."""
from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from app.models.settings import AwsSettings

CALLBACK_PATH = "/callback"
DEFAULT_SCOPE = "openid email profile"


class EndpointUnavailable(RuntimeError):
    """No API to talk to (the local cloud could not start, or is still starting past the wait)."""


class InsecureEndpoint(EndpointUnavailable):
    """A configured URL would carry tokens and prompts in clear text over the network."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(name: str, url: str) -> None:
    """`https://` anywhere, `http://` only to this machine (the local cloud, the login's callback)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return
    raise InsecureEndpoint(f"{name} must be an https:// URL (http:// only on this machine's loopback): {url!r}")


@dataclass(frozen=True)
class AwsEndpoint:
    api_url: str
    authorize_url: str
    token_url: str
    client_id: str
    redirect_uri: str
    browser: bool  # True: hosted login in the system browser; False: the local cloud's login form, no browser
    scope: str = DEFAULT_SCOPE
    # The ID token's `iss`: exactly `issuer` (the local cloud), or a URL under `issuer_prefix` (a Cognito user pool
    # of the configured region: the pool id is not part of the settings).
    issuer: str = ""
    issuer_prefix: str = ""
    local: bool = False  # the local cloud on this machine: its answers cost nothing

    def __post_init__(self) -> None:
        for name, url in (("api_url", self.api_url), ("authorize_url", self.authorize_url),
                          ("token_url", self.token_url), ("redirect_uri", self.redirect_uri)):
            check_transport(name, url)

    @classmethod
    def from_settings(cls, aws: AwsSettings) -> AwsEndpoint:
        """Cognito: the hosted UI under auth_domain; the redirect is our localhost callback."""
        domain = aws.auth_domain.rstrip("/")
        if not domain.startswith(("http://", "https://")):
            domain = "https://" + domain
        return cls(api_url=aws.api_url.rstrip("/"), authorize_url=f"{domain}/oauth2/authorize",
                   token_url=f"{domain}/oauth2/token", client_id=aws.client_id,
                   redirect_uri=f"http://localhost:{aws.redirect_port}{CALLBACK_PATH}", browser=True,
                   issuer_prefix=f"https://cognito-idp.{aws.region or _region_of(domain)}.amazonaws.com/")

    @classmethod
    def from_local_info(cls, info: dict, login_secret: str | None = None) -> AwsEndpoint:
        """The local cloud's first stdout line (`tl-fif cloud up`); its login page asks for the run's secret."""
        authorize_url = info["authorize_url"]
        if login_secret:
            authorize_url += ("&" if "?" in authorize_url else "?") + urlencode({"login_secret": login_secret})
        return cls(api_url=info["api_url"].rstrip("/"), authorize_url=authorize_url,
                   token_url=info["token_url"], client_id=info["client_id"], redirect_uri=info["redirect_uri"],
                   browser=False, issuer=info["issuer"], local=True)


def _region_of(auth_domain: str) -> str:
    """The region of a Cognito hosted UI domain (`<prefix>.auth.<region>.amazoncognito.com`), else ""."""
    labels = (urlsplit(auth_domain).hostname or "").split(".")
    return labels[2] if len(labels) == 5 and labels[1] == "auth" and labels[3:] == ["amazoncognito", "com"] else ""


class EndpointSource(Protocol):
    def start(self) -> None:
        """Begin finding the endpoint (the embedded local cloud starts here); a fixed one has nothing to do."""

    def get(self, timeout: float | None = None) -> AwsEndpoint: ...

    def stop(self) -> None: ...


class FixedEndpoint:
    def __init__(self, endpoint: AwsEndpoint):
        self.endpoint = endpoint

    def start(self) -> None:
        pass

    def get(self, timeout: float | None = None) -> AwsEndpoint:
        return self.endpoint

    def stop(self) -> None:
        pass


class PendingEndpoint:
    """An endpoint that becomes known later (set once, from another thread); `get` waits for it."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._endpoint: AwsEndpoint | None = None
        self._error = ""

    def start(self) -> None:
        pass

    def set(self, endpoint: AwsEndpoint) -> None:
        self._endpoint = endpoint
        self._ready.set()

    def fail(self, message: str) -> None:
        self._error = message
        self._ready.set()

    def get(self, timeout: float | None = None) -> AwsEndpoint:
        if not self._ready.wait(timeout):
            raise EndpointUnavailable("the local cloud is still starting")
        if self._endpoint is None:
            raise EndpointUnavailable(self._error or "no API configured")
        return self._endpoint

    def stop(self) -> None:
        pass
