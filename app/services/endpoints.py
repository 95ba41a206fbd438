"""Where the AWS backend talks to: the deployed stack (from ~/.tl-fif.ini) or the embedded local cloud."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from app.models.settings import AwsSettings

CALLBACK_PATH = "/callback"
DEFAULT_SCOPE = "openid email profile"


class EndpointUnavailable(RuntimeError):
    """No API to talk to (the local cloud could not start, or is still starting past the wait)."""


@dataclass(frozen=True)
class AwsEndpoint:
    api_url: str
    authorize_url: str
    token_url: str
    client_id: str
    redirect_uri: str
    browser: bool  # True: hosted login in the system browser; False: the local cloud's login form, no browser
    scope: str = DEFAULT_SCOPE
    local: bool = False  # the local cloud on this machine: its answers cost nothing

    @classmethod
    def from_settings(cls, aws: AwsSettings) -> AwsEndpoint:
        """Cognito: the hosted UI under auth_domain; the redirect is our localhost callback."""
        domain = aws.auth_domain.rstrip("/")
        if not domain.startswith(("http://", "https://")):
            domain = "https://" + domain
        return cls(api_url=aws.api_url.rstrip("/"), authorize_url=f"{domain}/oauth2/authorize",
                   token_url=f"{domain}/oauth2/token", client_id=aws.client_id,
                   redirect_uri=f"http://localhost:{aws.redirect_port}{CALLBACK_PATH}", browser=True)

    @classmethod
    def from_local_info(cls, info: dict, login_secret: str | None = None) -> AwsEndpoint:
        """The local cloud's first stdout line (`tl-fif cloud up`); its login page asks for the run's secret."""
        authorize_url = info["authorize_url"]
        if login_secret:
            authorize_url += ("&" if "?" in authorize_url else "?") + urlencode({"login_secret": login_secret})
        return cls(api_url=info["api_url"].rstrip("/"), authorize_url=authorize_url,
                   token_url=info["token_url"], client_id=info["client_id"], redirect_uri=info["redirect_uri"],
                   browser=False, local=True)


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
