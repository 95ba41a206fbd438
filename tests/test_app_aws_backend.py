"""The AWS TinyLlama backend against a test server speaking the TL-FIF API: retries, cold start, polling, 401."""
from __future__ import annotations

import threading
import time

import pytest

from app.controllers.aws_backend import AwsTinyLlamaClient
from app.controllers.backend_base import (COLD_START_MESSAGE, BackendContext, BackendError, Cancelled, PromptRequest,
                                          Timings, wait_or_cancel)
from app.models.settings import Settings
from app.services.auth import TokenProvider
from app.services.endpoints import AwsEndpoint, FixedEndpoint
from app.services.tlfif_api import ApiError
from support.fake_tlfif_api import FakeTlfifApi

pytestmark = pytest.mark.timeout(60)

FAST = Timings(retry_delays=(0.05, 0.1, 0.2), cold_start_retry_s=0.1, cold_start_budget_s=5.0,
               result_poll_start_s=0.01, result_poll_cap_s=0.05, result_timeout_s=10.0)


class Events:
    def __init__(self):
        self.log: list[tuple] = []

    def queued(self, status, eta_s, job_id):
        self.log.append(("queued", status, eta_s, job_id))

    def retrying(self, message, attempt, delay_s):
        self.log.append(("retrying", message, attempt, delay_s))

    def progress(self, text, tokens):
        self.log.append(("progress", text, tokens))

    def of(self, kind):
        return [e for e in self.log if e[0] == kind]


@pytest.fixture
def api():
    with FakeTlfifApi(word_delay=0.02) as server:
        yield server


def make_client(api, timings=FAST, **kwargs):
    endpoints = FixedEndpoint(AwsEndpoint.from_local_info(api.info))
    tokens = TokenProvider(endpoints)
    ctx = BackendContext(settings=lambda: Settings(), endpoints=endpoints, tokens=tokens, timings=timings)
    return AwsTinyLlamaClient(ctx, **kwargs), tokens


def run(client, prompt="hello there", idle=5, events=None):
    events = events or Events()
    request = PromptRequest(request_id="r1", prompt=prompt, idle=idle)
    submission = client.send_prompt(request, events)
    return client.get_response(submission, events), events


def test_answer_grows_then_completes_with_bearer_on_every_api_call(api):
    client, _ = make_client(api)
    reply, events = run(client, "hello there")
    assert reply.text == api.reply("hello there")
    assert reply.model == "fake-tinyllama" and reply.tokens == len(reply.text.split(" "))
    progress = [e[1] for e in events.of("progress")]
    assert len(progress) >= 3, "the answer should be seen growing"
    assert all(b.startswith(a) for a, b in zip(progress, progress[1:], strict=False))
    assert events.of("queued")[0][1] == "queued"
    for call in api.calls:
        if call.path in ("/infer", "/ping", "/stop", "/cost"):
            assert call.auth.startswith("Bearer ") and len(call.auth) > 20
        if call.path.startswith("/results/"):
            assert call.auth == "", "a presigned URL must be read without an Authorization header"
    assert api.calls_to("POST", "/infer")[0].body == {"prompt": "hello there", "idle": 5}


def test_502_504_are_retried_after_half_one_and_two_seconds(api):
    """The RQL's backoff, asserted as the exact delay sequence the client asks for (no wall-clock timing)."""
    api.infer_statuses = [502, 504, 502]
    slept: list[float] = []

    def record_sleep(flag, seconds):
        slept.append(seconds)

    client, _ = make_client(api, timings=Timings(result_poll_start_s=0.01, result_poll_cap_s=0.05),
                            sleep=record_sleep)
    events = Events()
    submission = client.send_prompt(PromptRequest("r1", "hi", 5), events)
    assert slept == [0.5, 1.0, 2.0]
    assert [e[2] for e in events.of("retrying")] == [1, 2, 3]
    assert submission.result_url
    assert len(api.calls_to("POST", "/infer")) == 4


def test_retry_gaps_measured_at_the_server_are_at_least_the_delays(api):
    api.infer_statuses = [502, 502, 504]
    client, _ = make_client(api)
    run(client)
    times = [c.t for c in api.calls_to("POST", "/infer")]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) == 3
    for gap, delay in zip(gaps, FAST.retry_delays, strict=False):
        assert gap >= delay * 0.95, (gaps, FAST.retry_delays)


def test_after_the_retries_the_cold_start_message_and_more_tries_while_ping_says_starting(api):
    api.infer_statuses = [502] * 6
    api.set_gpu("pending")
    api.boot_s = 60  # stays "pending" for the whole test
    client, _ = make_client(api)
    events = Events()
    submission = client.send_prompt(PromptRequest("r1", "hello", 5), events)
    messages = [e[1] for e in events.of("retrying")]
    assert messages[3:] and all(m == COLD_START_MESSAGE for m in messages[3:])
    assert COLD_START_MESSAGE == "Server likely cold-starting (~90s). Will retry."
    assert len(api.calls_to("POST", "/infer")) == 7
    assert api.calls_to("GET", "/ping"), "the client asked /ping whether the GPU is starting"
    api.set_gpu("ready")
    assert client.get_response(submission, events).text == api.reply("hello")


def test_502_forever_with_the_gpu_not_starting_ends_in_a_clear_error(api):
    api.infer_statuses = [502] * 20
    client, _ = make_client(api)
    events = Events()
    with pytest.raises(ApiError) as err:
        client.send_prompt(PromptRequest("r1", "hi", 5), events)
    message = client.handle_errors(err.value)
    assert message.startswith("[aws]") and "502" in message
    assert any(e[1] == COLD_START_MESSAGE for e in events.of("retrying"))
    assert len(api.calls_to("POST", "/infer")) == 5  # 1 + 3 retries + 1 after the message; then /ping said ready


def test_starting_gpu_reports_eta_and_the_missing_result_403_is_not_yet(api):
    api.missing_status = 403
    api.set_gpu("stopped")
    api.boot_s, api.eta = 0.4, 3
    client, _ = make_client(api)
    reply, events = run(client)
    assert events.of("queued")[0][1:3] == ("starting", 3.0)
    assert reply.text == api.reply("hello there")


def test_401_reauthenticates_once_with_the_refresh_token(api):
    client, tokens = make_client(api)
    run(client)
    assert api.logins == 1
    api.expire_tokens()
    reply, _ = run(client, "again")
    assert reply.text == api.reply("again")
    assert api.refreshes == 1 and api.logins == 1


def test_an_error_result_is_shown_with_its_code(api):
    client, _ = make_client(api)
    original = api._result
    api._result = lambda job_id: {"id": job_id, "status": "error", "text": "", "tokens": 0,
                                  "error": {"code": "engine_error", "message": "vLLM crashed"}}
    try:
        with pytest.raises(BackendError) as err:
            run(client)
    finally:
        api._result = original
    assert str(err.value) == "[aws] the model failed: vLLM crashed (engine_error)"


def test_stop_while_the_gpu_boots_cancels_the_job_and_ends_at_once(api):
    api.set_gpu("pending")
    api.boot_s = 60
    client, _ = make_client(api, timings=Timings(result_poll_start_s=0.05, result_poll_cap_s=0.2))
    events = Events()
    submission = client.send_prompt(PromptRequest("r1", "hi", 5), events)
    assert submission.status == "starting"
    threading.Timer(0.2, client.cancel, args=("r1",)).start()
    started = time.monotonic()
    reply = client.get_response(submission, events)
    assert time.monotonic() - started < 5
    assert reply.stopped and reply.text == "" and reply.generation_ms == 0
    assert [c.path for c in api.calls_to("POST", f"/cancel/{submission.job_id}")], "the API was told"
    assert client.handle_errors(Cancelled()) == "[aws] cancelled"


def test_stop_mid_answer_posts_cancel_and_polls_until_the_result_says_cancelled(api):
    api.word_delay = 0.05
    api.reply = lambda prompt: " ".join(f"w{i}" for i in range(200))
    client, _ = make_client(api)
    events = Events()
    submission = client.send_prompt(PromptRequest("r1", "hi", 5), events)
    grown = threading.Event()

    class Watch(Events):
        def progress(self, text, tokens):
            super().progress(text, tokens)
            if tokens >= 3:
                grown.set()

    watch = Watch()
    worker = threading.Thread(target=lambda: watch.log.append(("reply", client.get_response(submission, watch))))
    worker.start()
    assert grown.wait(10)
    client.cancel("r1")  # the job controller calls it on a worker thread: it posts at once
    worker.join(10)
    reply = watch.log[-1][1]
    assert api.calls_to("POST", f"/cancel/{submission.job_id}")
    doc = api._result(submission.job_id)
    assert doc["status"] == "cancelled" and reply.stopped
    assert reply.text == doc["text"] and 3 <= reply.tokens < 200
    assert reply.generation_ms == doc["latency_ms"] and reply.ttft_ms == 5


def test_stop_before_infer_answered_cancels_as_soon_as_the_id_is_known(api):
    api.infer_delay = 0.5
    api.word_delay = 0.05
    api.reply = lambda prompt: " ".join(f"w{i}" for i in range(200))
    client, _ = make_client(api)
    client.api()  # endpoint resolved; the token is fetched by the first call
    events = Events()
    result: list = []

    def whole():
        submission = client.send_prompt(PromptRequest("r1", "hi", 5), events)
        result.append(submission)
        result.append(client.get_response(submission, events))

    worker = threading.Thread(target=whole)
    worker.start()
    deadline = time.monotonic() + 5
    while not api.calls_to("POST", "/infer") and time.monotonic() < deadline:
        time.sleep(0.01)
    client.cancel("r1")  # /infer has not answered: nothing to post yet
    assert not [c for c in api.calls if c.path.startswith("/cancel/")]
    worker.join(10)
    submission, reply = result
    cancels = [c.path for c in api.calls if c.path.startswith("/cancel/")]
    assert cancels == [f"/cancel/{submission.job_id}"]
    assert reply.stopped and reply.tokens < 200
    assert api._result(submission.job_id)["status"] == "cancelled"


def test_stop_after_the_job_finished_keeps_the_answer(api):
    client, _ = make_client(api)
    reply, events = run(client, "quick")
    client.cancel("r1")  # too late: nothing is running any more, nothing is posted
    assert not reply.stopped and not [c for c in api.calls if c.path.startswith("/cancel/")]


def test_result_figures_come_back_for_the_stats(api):
    reply, _ = run(make_client(api)[0], "figures")
    assert reply.ttft_ms == 5 and reply.generation_ms and reply.generation_ms > 0 and reply.tokens > 5


def test_error_messages_name_the_backend():
    client = AwsTinyLlamaClient(BackendContext(settings=Settings, endpoints=None, tokens=None))
    for err in (ApiError(400, "prompt must be a non-empty string"), ApiError(429, "slow down", retry_after=1),
                ApiError(503, "queue unavailable"), ApiError(0, "cannot reach http://x: ConnectionError"),
                ApiError(504, "gateway timeout"), RuntimeError("boom")):
        assert client.handle_errors(err).startswith("[aws] ")


def test_wait_or_cancel_returns_after_the_delay_and_raises_when_cancelled():
    flag = threading.Event()
    wait_or_cancel(flag, 0.01)
    flag.set()
    with pytest.raises(Cancelled):
        wait_or_cancel(flag, 10)
