"""The "AWS TinyLlama" backend: POST /infer on the TL-FIF API, then the result object read from result_url.

- Bearer ID token on every API call; a 401 re-authenticates once (refresh, else sign in again).
- 502/504 on /infer: retried after 0.5 s, 1 s, 2 s; then "Server likely cold-starting (~90s). Will
  retry." and more tries while /ping says the GPU is starting (or /ping itself is 502/504), within a budget.
- result_url polled every 40 ms until the answer's first text (for at most 30 s from when the job should start: at
  once, or after /infer's eta), then with backoff (100 ms doubling to 1 s, back to 100 ms whenever the answer
  grew); 403/404 mean "not written yet" (S3 answers 403 for a missing key when the reader may not list the bucket).
- Stop generating (`cancel`, on a worker thread): POST /cancel/{id} with the job id /infer gave (at once, or as soon
  as /infer answers when the stop came first); polling goes on until the result says `cancelled` (the watcher
  closed the engine stream and wrote the text so far), and the Reply comes back `stopped`. A job that never
  started, or a cancel the API refused as unknown, ends stopped at once; the wait is bounded by cancel_wait_s.
The API calls go through the app's `TlfifSession` (token, 401 re-authentication); the GPU and cost calls the
status line uses are the session's, not this class's.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from tlfif_common import api
from tlfif_common.api import STATUS_CANCELLED, STATUS_DONE, STATUS_ERROR, Result
from tlfif_common.jobs import RequestError, validate_infer_request

from app.backends.base import (Backend, BackendContext, BackendError, CancelFlags, Cancelled, JobEvents,
                               PromptRequest, Reply, wait_or_cancel)
from app.services.tlfif_api import ApiError
from app.services.tlfif_session import RETRY_STATUSES, TRANSPORT_FAILED

log = logging.getLogger("tlfif.app.aws")

COLD_START_MESSAGE = "Server likely cold-starting (~90s). Will retry."
GPU_STARTING = (api.GPU_PENDING, api.GPU_RUNNING)

# What POST /cancel/{id} said (AwsTinyLlamaClient._cancel_outcome).
CANCEL_ACCEPTED, CANCEL_FINISHED, CANCEL_GONE, CANCEL_FAILED = "accepted", "finished", "gone", "failed"


@dataclass
class AwsSubmission:
    request_id: str
    job_id: str
    result_url: str
    status: str
    eta_s: float = 0.0  # /infer's estimate of when a starting GPU takes the job


class AwsTinyLlamaClient(Backend):
    key = "aws"
    label = "AWS TinyLlama"
    tag = "[aws]"

    def __init__(self, ctx: BackendContext, *, sleep: Callable[[threading.Event, float], None] = wait_or_cancel):
        super().__init__(ctx)
        self._session = ctx.session
        self._sleep = sleep
        self._cancels = CancelFlags()
        self._lock = threading.Lock()
        self._job_ids: dict[str, str] = {}            # request id → job id, while the request runs
        self._cancel_posted: set[str] = set()         # request ids whose POST /cancel was sent (or is being sent)
        self._cancel_outcome: dict[str, str] = {}     # request id → CANCEL_*
        self._closing = threading.Event()

    # --- Backend ----------------------------------------------------------------------------------------------------
    def run(self, request: PromptRequest, events: JobEvents) -> Reply:
        try:
            return self._follow(self._submit(request, events), events)
        finally:
            self._forget(request.request_id)

    def _submit(self, request: PromptRequest, events: JobEvents) -> AwsSubmission:
        """POST /infer (with the retries); cancels at once when Stop came while it was on its way."""
        body: dict[str, Any] = {"prompt": request.prompt, "idle": request.idle}
        if request.messages:
            body["messages"] = request.messages
        if request.params:
            body["params"] = request.params
        body = validate_infer_request(body, models_bucket=None)
        flag = self._cancels.flag(request.request_id)
        answer = self._infer_with_retries(body, uuid.uuid4().hex, events, flag)
        status = str(answer.get("status") or api.INFER_QUEUED)
        job_id, result_url = str(answer.get("id") or ""), answer.get("result_url")
        if not result_url:
            raise BackendError(f"{self.tag} /infer answered without a result_url")
        eta = float(answer.get("eta") or 0) if status == api.INFER_STARTING else 0.0
        log.info("[aws] job %s %s", job_id, status)
        events.queued(status, eta, job_id)
        with self._lock:
            self._job_ids[request.request_id] = job_id
            stop_now = flag.is_set() and request.request_id not in self._cancel_posted
            if stop_now:
                self._cancel_posted.add(request.request_id)
        if stop_now:  # Stop came while /infer was on its way: cancel now that the id is known
            self._post_cancel(request.request_id, job_id)
        return AwsSubmission(request.request_id, job_id, str(result_url), status, eta)

    def _follow(self, submission: AwsSubmission, events: JobEvents) -> Reply:
        """Poll result_url until the result is final (or stopped, or expired)."""
        timings = self._ctx.timings
        flag = self._cancels.flag(submission.request_id)
        reader = self._session.api()
        delay = timings.result_poll_start_s
        deadline = time.monotonic() + timings.result_timeout_s
        fast_from = time.monotonic() + submission.eta_s  # when the first token may come: poll fast until it does
        last_text: str | None = None
        last: Result | None = None  # the latest result object read
        failures = 0
        stop_deadline: float | None = None
        while True:
            if self._closing.is_set():
                raise Cancelled()
            try:
                doc = reader.get_result(submission.result_url)
                failures = 0
            except ApiError as err:
                failures += 1
                log.warning("[aws] reading result of job %s failed (%s), %d in a row", submission.job_id, err,
                            failures)
                if failures > timings.result_error_tolerance:
                    raise
                doc = None
            if doc is not None:
                last = doc
                if doc.text != last_text:
                    last_text = doc.text
                    delay = timings.result_poll_start_s
                    if doc.text:
                        events.progress(doc.text, doc.tokens)
                if doc.status in (STATUS_DONE, STATUS_CANCELLED):
                    if doc.status == STATUS_CANCELLED:
                        log.info("[aws] job %s cancelled by the watcher", submission.job_id)
                    return _reply(doc, stopped=doc.status == STATUS_CANCELLED, local=self._session.local)
                if doc.status == STATUS_ERROR:
                    code, message = (doc.error.code, doc.error.message) if doc.error else ("unknown", "error")
                    raise BackendError(f"{self.tag} the model failed: {message} ({code})")
            if time.monotonic() > deadline:
                raise BackendError(f"{self.tag} no answer within {int(timings.result_timeout_s)} s; "
                                   "the job expired")
            if flag.is_set():
                if stop_deadline is None:
                    stop_deadline = time.monotonic() + timings.cancel_wait_s
                    delay = timings.result_poll_start_s
                stopped = self._stopped_without_result(submission, last, stop_deadline)
                if stopped is not None:
                    return stopped
                if self._closing.wait(delay):
                    raise Cancelled()
            else:
                now = time.monotonic()
                first_wait = not last_text and fast_from <= now <= fast_from + timings.result_first_poll_window_s
                try:
                    self._sleep(flag, timings.result_first_poll_s if first_wait else delay)
                except Cancelled:  # Stop pressed: read the result again at once, then wait for `cancelled`
                    continue
            delay = min(delay * 2, timings.result_poll_cap_s)

    def _stopped_without_result(self, submission: AwsSubmission, last: Result | None,
                                stop_deadline: float) -> Reply | None:
        """After Stop, while the result does not say `cancelled` yet: the Reply to end with now, or None to wait on.

        A job queued while the GPU boots (no result object yet) will never run: it ends at once with no GPU time.
        A refused or failed cancel, or a watcher that does not answer within cancel_wait_s, ends it with the text
        shown so far (the API was told; the result object keeps whatever the watcher writes later)."""
        with self._lock:
            outcome = self._cancel_outcome.get(submission.request_id)
        if outcome is None and time.monotonic() <= stop_deadline:
            return None  # the cancel is still on its way
        if outcome == CANCEL_FINISHED and time.monotonic() <= stop_deadline:
            return None  # it finished first: the `done` result is about to be read
        if outcome == CANCEL_ACCEPTED and last is None and submission.status == api.INFER_STARTING:
            log.info("[aws] job %s stopped before it started", submission.job_id)
            return Reply(text="", stopped=True, generation_ms=0, local=self._session.local)
        if outcome == CANCEL_ACCEPTED and time.monotonic() <= stop_deadline:
            return None
        log.warning("[aws] job %s: no `cancelled` result (cancel %s); stopping with the text so far",
                    submission.job_id, outcome or "unanswered")
        return _reply(last, stopped=True, final=False, local=self._session.local)

    def _explain(self, error: BaseException) -> str:
        if isinstance(error, RequestError):
            return f"{self.tag} the prompt was not sent: {error}"
        return self._session.error_message(error)

    def cancel(self, request_id: str) -> None:
        """Stop generating (called on a worker thread: it calls the API). POST /cancel/{id} when the job id is known;
        otherwise _submit posts it as soon as /infer answers."""
        self._cancels.set(request_id)
        with self._lock:
            job_id = self._job_ids.get(request_id)
            if not job_id or request_id in self._cancel_posted:
                return
            self._cancel_posted.add(request_id)
        self._post_cancel(request_id, job_id)

    def close(self) -> None:
        """The app is closing: requests still polling end at once."""
        self._closing.set()

    def _post_cancel(self, request_id: str, job_id: str) -> None:
        outcome = CANCEL_FAILED
        for attempt in (1, 2):
            try:
                answer = self._session.authed(lambda client, token: client.cancel(token, job_id), interactive=False)
                outcome = CANCEL_ACCEPTED
                log.info("[aws] job %s: %s", job_id, answer.get("status") or api.CANCEL_CANCELLING)
                break
            except ApiError as err:
                if err.status == 409:
                    outcome = CANCEL_FINISHED
                elif err.status in (400, 403, 404):
                    outcome = CANCEL_GONE
                else:
                    log.warning("[aws] cancelling job %s failed (try %d): %s", job_id, attempt, err)
                    continue
                log.info("[aws] cancel of job %s refused (HTTP %d): %s", job_id, err.status, err)
                break
            except Exception as err:  # not signed in, no endpoint: nothing more to try
                log.warning("[aws] cancelling job %s failed: %s", job_id, self.error_message(err))
                break
        with self._lock:
            if request_id in self._job_ids:  # still running (not forgotten meanwhile)
                self._cancel_outcome[request_id] = outcome

    def _forget(self, request_id: str) -> None:
        self._cancels.drop(request_id)
        with self._lock:
            self._job_ids.pop(request_id, None)
            self._cancel_posted.discard(request_id)
            self._cancel_outcome.pop(request_id, None)

    # --- retries ----------------------------------------------------------------------------------------------------
    def _infer_with_retries(self, body: dict, idempotency_key: str, events: JobEvents,
                            flag: threading.Event) -> dict:
        """POST /infer, tried again on no answer (a dropped connection, a timeout) or a 502/504: after each of
        `retry_delays`, then while /ping says the GPU is starting. Every try carries the same idempotency key, so
        one whose answer was lost is not queued twice."""
        timings = self._ctx.timings
        attempt = 0
        cold_deadline: float | None = None
        while True:
            if flag.is_set():
                raise Cancelled()
            try:
                return self._session.authed(lambda client, token: client.infer(token, body, idempotency_key))
            except ApiError as err:
                if err.status not in RETRY_STATUSES:
                    raise
                if attempt < len(timings.retry_delays):
                    delay = timings.retry_delays[attempt]
                    attempt += 1
                    what = _failure(err)
                    log.info("[aws] /infer %s; retry %d in %g s", what, attempt, delay)
                    events.retrying(f"{self.tag} {what}; retrying in {delay:g} s", attempt, delay)
                    self._sleep(flag, delay)
                    continue
                # Retries spent: say so, try once more, then go on while /ping says the GPU is starting.
                if cold_deadline is None:
                    cold_deadline = time.monotonic() + timings.cold_start_budget_s
                elif time.monotonic() > cold_deadline or not self._gpu_starting():
                    raise
                attempt += 1
                log.info("[aws] /infer %s after %d retries; retry in %g s", _failure(err), attempt - 1,
                         timings.cold_start_retry_s)
                events.retrying(COLD_START_MESSAGE, attempt, timings.cold_start_retry_s)
                self._sleep(flag, timings.cold_start_retry_s)

    def _gpu_starting(self) -> bool:
        """Does /ping say the GPU is starting? A ping that itself gets 502/504 counts as "likely cold-starting"."""
        try:
            gpu = str(self._session.ping(interactive=True).get("gpu") or "")
        except ApiError as err:
            return err.status in RETRY_STATUSES
        return gpu in GPU_STARTING


def _failure(err: ApiError) -> str:
    return "no answer" if err.status == TRANSPORT_FAILED else f"HTTP {err.status}"


def _reply(doc: Result | None, *, stopped: bool, final: bool = True, local: bool = False) -> Reply:
    """A Reply from a result object (none: nothing came). `final`: the watcher's own final figures (a running
    object's latency is not); `local`: the local cloud answered (free)."""
    if doc is None:
        return Reply(text="", stopped=stopped, local=local)
    return Reply(text=doc.text, tokens=doc.tokens, model=doc.model or "", ttft_ms=doc.ttft_ms,
                 generation_ms=doc.latency_ms if final else None, stopped=stopped, local=local,
                 turns_dropped=doc.turns_dropped)
