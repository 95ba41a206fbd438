"""The "AWS TinyLlama" backend: POST /infer on the TL-FIF API, then the result object read from result_url.

- Bearer ID token on every API call; a 401 re-authenticates once (refresh, else sign in again).
- 502/504 on /infer: retried after 0.5 s, 1 s, 2 s (RQL 1.3); then "Server likely cold-starting (~90s). Will
  retry." and more tries while /ping says the GPU is starting (or /ping itself is 502/504), within a budget.
- result_url polled with backoff (100 ms doubling to 1 s, back to 100 ms whenever the answer grew); 403/404 mean
  "not written yet" (S3 answers 403 for a missing key when the reader may not list the bucket).
Also the GPU and cost calls the status line uses: ping, stop_gpu, cost.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from tlfif_common.jobs import RequestError, validate_infer_request
from tlfif_common.results import STATUS_DONE, STATUS_ERROR

from app.controllers.backend_base import (COLD_START_MESSAGE, BackendContext, BackendError, CancelFlags, Cancelled,
                                          JobEvents, NotSignedIn, PromptRequest, Reply, wait_or_cancel)
from app.services.auth import AuthError
from app.services.endpoints import EndpointUnavailable
from app.services.tlfif_api import ApiError, TlfifApi

log = logging.getLogger("tlfif.app.aws")

RETRY_STATUSES = (502, 504)
GPU_STARTING = ("pending", "running")


@dataclass
class AwsSubmission:
    request_id: str
    job_id: str
    result_url: str
    status: str


class AwsTinyLlamaClient:
    key = "aws"
    label = "AWS TinyLlama"
    tag = "[aws]"

    def __init__(self, ctx: BackendContext, *, sleep: Callable[[threading.Event, float], None] = wait_or_cancel):
        self._ctx = ctx
        self._sleep = sleep
        self._cancels = CancelFlags()
        self._apis: dict[str, TlfifApi] = {}
        self._lock = threading.Lock()

    # --- plumbing ---------------------------------------------------------------------------------------------------
    def api(self) -> TlfifApi:
        endpoint = self._ctx.endpoints.get(timeout=self._ctx.timings.endpoint_wait_s)
        with self._lock:
            api = self._apis.get(endpoint.api_url)
            if api is None:
                api = self._apis[endpoint.api_url] = TlfifApi(endpoint.api_url,
                                                              timeout=self._ctx.timings.http_timeout_s)
            return api

    def authed(self, call: Callable[[TlfifApi, str], Any], *, interactive: bool = True) -> Any:
        """Run `call(api, token)`; on 401 re-authenticate once and run it again."""
        api = self.api()
        token = self._ctx.tokens.get(interactive=interactive)
        if token is None:
            raise NotSignedIn()
        try:
            return call(api, token)
        except ApiError as err:
            if err.status != 401:
                raise
            log.info("[aws] HTTP 401; signing in again once")
            self._ctx.tokens.invalidate(token)
            token = self._ctx.tokens.get(interactive=interactive)
            if token is None:
                raise NotSignedIn() from None
            return call(api, token)

    # --- BackendClient ----------------------------------------------------------------------------------------------
    def send_prompt(self, request: PromptRequest, events: JobEvents) -> AwsSubmission:
        body: dict[str, Any] = {"prompt": request.prompt, "idle": request.idle}
        if request.messages:
            body["messages"] = request.messages
        if request.params:
            body["params"] = request.params
        body = validate_infer_request(body, models_bucket=None)
        flag = self._cancels.flag(request.request_id)
        try:
            answer = self._infer_with_retries(body, events, flag)
        except BaseException:
            self._cancels.drop(request.request_id)
            raise
        status = str(answer.get("status") or "queued")
        job_id, result_url = str(answer.get("id") or ""), answer.get("result_url")
        if not result_url:
            raise BackendError(f"{self.tag} /infer answered without a result_url")
        eta = float(answer.get("eta") or 0) if status == "starting" else 0.0
        log.info("[aws] job %s %s", job_id, status)
        events.queued(status, eta, job_id)
        return AwsSubmission(request.request_id, job_id, str(result_url), status)

    def get_response(self, submission: AwsSubmission, events: JobEvents) -> Reply:
        timings = self._ctx.timings
        flag = self._cancels.flag(submission.request_id)
        api = self.api()
        delay = timings.result_poll_start_s
        deadline = time.monotonic() + timings.result_timeout_s
        last_text: str | None = None
        failures = 0
        try:
            while True:
                if flag.is_set():
                    raise Cancelled()
                try:
                    doc = api.get_result(submission.result_url)
                    failures = 0
                except ApiError as err:
                    failures += 1
                    log.warning("[aws] reading result of job %s failed (%s), %d in a row", submission.job_id, err,
                                failures)
                    if failures > timings.result_error_tolerance:
                        raise
                    doc = None
                if doc is not None:
                    text = str(doc.get("text") or "")
                    if text != last_text:
                        last_text = text
                        delay = timings.result_poll_start_s
                        if text:
                            events.progress(text, int(doc.get("tokens") or 0))
                    status = doc.get("status")
                    if status == STATUS_DONE:
                        return Reply(text=text, tokens=int(doc.get("tokens") or 0), model=str(doc.get("model") or ""),
                                     ttft_ms=doc.get("ttft_ms"))
                    if status == STATUS_ERROR:
                        error = doc.get("error") or {}
                        raise BackendError(f"{self.tag} the model failed: {error.get('message') or 'error'} "
                                           f"({error.get('code') or 'unknown'})")
                if time.monotonic() > deadline:
                    raise BackendError(f"{self.tag} no answer within {int(timings.result_timeout_s)} s; "
                                       "the job expired")
                self._sleep(flag, delay)
                delay = min(delay * 2, timings.result_poll_cap_s)
        finally:
            self._cancels.drop(submission.request_id)

    def handle_errors(self, error: BaseException) -> str:
        if isinstance(error, Cancelled):
            return f"{self.tag} cancelled"
        if isinstance(error, BackendError):
            return str(error)
        if isinstance(error, RequestError):
            return f"{self.tag} the prompt was not sent: {error}"
        if isinstance(error, (AuthError, NotSignedIn)):
            text = str(error) or "not signed in"
            return text if text.startswith(self.tag) else f"{self.tag} sign-in failed: {text}"
        if isinstance(error, EndpointUnavailable):
            return f"{self.tag} no API to talk to: {error}"
        if isinstance(error, ApiError):
            status = error.status
            if status == 0:
                return f"{self.tag} {error}"
            if status == 400:
                return f"{self.tag} the API refused the prompt: {error}"
            if status in (401, 403):
                return f"{self.tag} not authorised (HTTP {status}): {error}"
            if status == 429:
                wait = f"; try again in {error.retry_after:g} s" if error.retry_after else ""
                return f"{self.tag} too many requests (HTTP 429){wait}"
            if status in RETRY_STATUSES:
                return f"{self.tag} the API kept answering HTTP {status} and the GPU is not starting: {error}"
            if status == 503:
                return f"{self.tag} the service is unavailable (HTTP 503): {error}"
            return f"{self.tag} HTTP {status}: {error}"
        return f"{self.tag} unexpected error: {error.__class__.__name__}: {error}"

    def cancel(self, request_id: str) -> None:
        self._cancels.set(request_id)

    # --- GPU and cost (status line, StopGpuBtn, CostLabel) ----------------------------------------------------------
    def ping(self, *, interactive: bool = False) -> dict:
        return self.authed(lambda api, token: api.ping(token), interactive=interactive)

    def stop_gpu(self) -> dict:
        return self.authed(lambda api, token: api.stop(token), interactive=True)

    def cost(self, *, interactive: bool = False) -> dict | None:
        return self.authed(lambda api, token: api.cost(token), interactive=interactive)

    # --- retries ----------------------------------------------------------------------------------------------------
    def _infer_with_retries(self, body: dict, events: JobEvents, flag: threading.Event) -> dict:
        timings = self._ctx.timings
        attempt = 0
        cold_deadline: float | None = None
        while True:
            if flag.is_set():
                raise Cancelled()
            try:
                return self.authed(lambda api, token: api.infer(token, body))
            except ApiError as err:
                if err.status not in RETRY_STATUSES:
                    raise
                if attempt < len(timings.retry_delays):
                    delay = timings.retry_delays[attempt]
                    attempt += 1
                    log.info("[aws] /infer HTTP %s; retry %d in %g s", err.status, attempt, delay)
                    events.retrying(f"{self.tag} HTTP {err.status}; retrying in {delay:g} s", attempt, delay)
                    self._sleep(flag, delay)
                    continue
                # Retries spent: say so (RQL 1.3), try once more, then go on while /ping says the GPU is starting.
                if cold_deadline is None:
                    cold_deadline = time.monotonic() + timings.cold_start_budget_s
                elif time.monotonic() > cold_deadline or not self._gpu_starting():
                    raise
                attempt += 1
                log.info("[aws] /infer HTTP %s after %d retries; retry in %g s", err.status, attempt - 1,
                         timings.cold_start_retry_s)
                events.retrying(COLD_START_MESSAGE, attempt, timings.cold_start_retry_s)
                self._sleep(flag, timings.cold_start_retry_s)

    def _gpu_starting(self) -> bool:
        """Does /ping say the GPU is starting? A ping that itself gets 502/504 counts as "likely cold-starting"."""
        try:
            gpu = str(self.ping(interactive=True).get("gpu") or "")
        except ApiError as err:
            return err.status in RETRY_STATUSES
        return gpu in GPU_STARTING
