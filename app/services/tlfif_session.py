"""The app's session with the TL-FIF API: the endpoint, the ID token, and the one 401 re-authentication.

The chat backend sends /infer and /cancel through it; the GPU, cost and keep-warm controllers call /ping, /stop,
/keepwarm and /cost. `error_message` phrases any failure of these calls for the user, starting with "[aws]".
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from tlfif_common.api import KEEP_WARM_ON

from app.services.auth import AuthError, TokenProvider
from app.services.endpoints import EndpointSource, EndpointUnavailable
from app.services.tlfif_api import ApiError, TlfifApi
from app.timings import Timings

log = logging.getLogger("tlfif.app.aws")

TAG = "[aws]"
TRANSPORT_FAILED = 0  # ApiError.status of a dropped connection or a timeout: no HTTP answer came
RETRY_STATUSES = (TRANSPORT_FAILED, 502, 504)  # no answer, or API Gateway's while the GPU is away: worth another try


class NotSignedIn(Exception):
    """A background call found no token and may not open a login window."""


class TlfifSession:
    def __init__(self, endpoints: EndpointSource, tokens: TokenProvider, timings: Timings):
        self._endpoints = endpoints
        self._tokens = tokens
        self._timings = timings
        self._apis: dict[str, TlfifApi] = {}
        self._lock = threading.Lock()

    def api(self) -> TlfifApi:
        """The API client for the current endpoint (waits for the embedded local cloud to come up)."""
        endpoint = self._endpoints.get(timeout=self._timings.endpoint_wait_s)
        with self._lock:
            api = self._apis.get(endpoint.api_url)
            if api is None:
                api = self._apis[endpoint.api_url] = TlfifApi(endpoint.api_url,
                                                              timeout=self._timings.http_timeout_s)
            return api

    @property
    def local(self) -> bool:
        """Talking to the local cloud (its answers cost nothing)? False while no endpoint is known."""
        try:
            return self._endpoints.get(timeout=0).local
        except EndpointUnavailable:  # no endpoint yet, or the local cloud could not start
            return False

    def authed(self, call: Callable[[TlfifApi, str], Any], *, interactive: bool = True) -> Any:
        """Run `call(api, token)`; on 401 re-authenticate once and run it again."""
        api = self.api()
        token = self._tokens.get(interactive=interactive)
        if token is None:
            raise NotSignedIn()
        try:
            return call(api, token)
        except ApiError as err:
            if err.status != 401:
                raise
            log.info("%s HTTP 401; signing in again once", TAG)
            self._tokens.invalidate(token)
            token = self._tokens.get(interactive=interactive)
            if token is None:
                raise NotSignedIn() from None
            return call(api, token)

    def retried(self, call: Callable[[], Any]) -> Any:
        """`call` again after each of the retry delays while it fails with no answer or a 502/504 — for calls that
        are safe to repeat (/stop, /keepwarm; /infer has its own schedule and an idempotency key)."""
        for delay in (*self._timings.retry_delays, None):
            try:
                return call()
            except ApiError as err:
                if err.status not in RETRY_STATUSES or delay is None:
                    raise
                log.info("%s %s; retrying in %g s", TAG, err if err.status == TRANSPORT_FAILED else err.status, delay)
                time.sleep(delay)

    # --- the GPU and its cost (status line, Stop GPU, Keep warm, CostLabel) ---------------------------------------
    def ping(self, *, interactive: bool = False) -> dict:
        return self.authed(lambda client, token: client.ping(token), interactive=interactive)

    def stop_gpu(self) -> dict:
        return self.retried(lambda: self.authed(lambda client, token: client.stop(token), interactive=True))

    def keep_warm(self, on: bool, max_minutes: int) -> int | None:
        """Keep-warm on for at most `max_minutes` (→ its end, epoch ms) or off (→ None)."""
        answer = self.retried(lambda: self.authed(lambda client, token: client.keep_warm(token, on, max_minutes),
                                                  interactive=True))
        if not on:
            return None
        until = answer.get("until")
        if answer.get("status") != KEEP_WARM_ON or isinstance(until, bool) or not isinstance(until, int):
            raise ApiError(0, f"/keepwarm answered without an end time: {str(answer)[:200]}")
        return until

    def cost(self, *, interactive: bool = False) -> dict | None:
        return self.authed(lambda client, token: client.cost(token), interactive=interactive)

    # --- errors -----------------------------------------------------------------------------------------------------
    def error_message(self, error: BaseException) -> str:
        """A failure of any call made through this session, phrased for the user."""
        if isinstance(error, (AuthError, NotSignedIn)):
            text = str(error) or "not signed in"
            return text if text.startswith(TAG) else f"{TAG} sign-in failed: {text}"
        if isinstance(error, EndpointUnavailable):
            return f"{TAG} no API to talk to: {error}"
        if isinstance(error, ApiError):
            return _api_error_message(error)
        return f"{TAG} unexpected error: {error.__class__.__name__}: {error}"


def _api_error_message(error: ApiError) -> str:
    status = error.status
    if status == TRANSPORT_FAILED:
        return f"{TAG} {error}"
    if status == 400:
        return f"{TAG} the API refused the prompt: {error}"
    if status in (401, 403):
        return f"{TAG} not authorised (HTTP {status}): {error}"
    if status == 429:
        wait = f"; try again in {error.retry_after:g} s" if error.retry_after else ""
        return f"{TAG} too many requests (HTTP 429){wait}"
    if status in (502, 504):
        return f"{TAG} the API kept answering HTTP {status} and the GPU is not starting: {error}"
    if status == 503:
        return f"{TAG} the service is unavailable (HTTP 503): {error}"
    return f"{TAG} HTTP {status}: {error}"
