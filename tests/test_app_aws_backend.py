"""The AWS TinyLlama backend against the local cloud (real router, watcher and issuer): retries, cold start, polling,
401. The faults come from the fault proxies in front of the API, the issuer and the result objects."""
from __future__ import annotations

import threading
import time

import pytest

from app.backends.aws import COLD_START_MESSAGE, AwsTinyLlamaClient
from app.backends.base import BackendContext, BackendError, Cancelled, PromptRequest, wait_or_cancel
from app.models.settings import Settings
from app.services.auth import TokenProvider
from app.services.tlfif_api import ApiError
from app.services.tlfif_session import TlfifSession
from app.timings import Timings
from tlfif_common.api import Result, result_error
from tlfif_watcher.engines.echo import ECHO_MODEL

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


LONG = " ".join(f"w{i}" for i in range(200))  # the echo engine repeats it, a word every 20 ms


def make_client(api, timings=FAST, **kwargs):
    endpoints = api.endpoints()
    session = TlfifSession(endpoints, TokenProvider(endpoints), timings)
    ctx = BackendContext(settings=lambda: Settings(), session=session, timings=timings)
    return AwsTinyLlamaClient(ctx, **kwargs), session


def run(client, prompt="hello there, how are you", idle=5, events=None):
    events = events or Events()
    request = PromptRequest(request_id="r1", prompt=prompt, idle=idle)
    return client.run(request, events), events


def test_answer_grows_then_completes_with_bearer_on_every_api_call(api):
    api.ready_gpu()
    client, _ = make_client(api)
    prompt = " ".join(["hello there"] * 20)
    reply, events = run(client, prompt)
    assert reply.text == api.reply(prompt)
    assert reply.model == ECHO_MODEL and reply.tokens >= 40
    progress = [e[1] for e in events.of("progress")]
    assert len(progress) >= 3, "the answer should be seen growing"
    assert all(b.startswith(a) for a, b in zip(progress, progress[1:], strict=False))
    assert events.of("queued")[0][1] == "queued"
    for call in api.calls:
        assert call.auth.startswith("Bearer ") and len(call.auth) > 20
    assert api.results.calls and all(c.auth == "" for c in api.results.calls), \
        "a presigned URL must be read without an Authorization header"
    assert api.calls_to("POST", "/infer")[0].body == {"prompt": prompt, "idle": 5}


def test_502_504_are_retried_after_half_one_and_two_seconds(api):
    """The RQL's backoff, asserted as the exact delay sequence the client asks for (no wall-clock timing)."""
    api.fail("POST", "/infer", 502, 504, 502)
    slept: list[float] = []

    def record_sleep(flag, seconds):
        slept.append(seconds)

    client, _ = make_client(api, timings=Timings(result_poll_start_s=0.01, result_poll_cap_s=0.05),
                            sleep=record_sleep)
    reply, events = run(client, "hi")
    assert slept[:3] == [0.5, 1.0, 2.0]
    assert all(s <= 0.05 for s in slept[3:]), "after /infer: only the result polling's short waits"
    assert [e[2] for e in events.of("retrying")] == [1, 2, 3]
    assert reply.text == api.reply("hi")
    assert len(api.calls_to("POST", "/infer")) == 4


def test_retry_gaps_measured_at_the_server_are_at_least_the_delays(api):
    api.fail("POST", "/infer", 502, 502, 504)
    client, _ = make_client(api)
    run(client)
    times = [c.t for c in api.calls_to("POST", "/infer")]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) == 3
    for gap, delay in zip(gaps, FAST.retry_delays, strict=False):
        assert gap >= delay * 0.95, (gaps, FAST.retry_delays)


def test_no_answer_to_infer_is_retried_and_the_lost_answer_does_not_queue_the_prompt_twice(api):
    api.ready_gpu()
    api.drop("POST", "/infer")          # the connection closes before the router saw it
    api.lose_answer("POST", "/infer")   # the router queued the job; its answer never arrives
    client, _ = make_client(api)
    reply, events = run(client, "only once please")
    assert reply.text == api.reply("only once please")
    dropped, lost, retried = api.calls_to("POST", "/infer")
    assert dropped.status == lost.status == 0 and retried.status == 202
    assert retried.answer["id"] == lost.answer["id"], "the retry must be answered with the job the lost try queued"
    assert [e[1] for e in events.of("retrying")] == [f"[aws] no answer; retrying in {d:g} s"
                                                     for d in FAST.retry_delays[:2]]
    assert len(api.results.calls_to("GET", "/*")) >= 1 and api.gpu_state() == "ready"


def test_a_reset_or_5xx_on_the_result_url_does_not_end_the_answer(api):
    api.ready_gpu()
    api.results.drop("GET", "/*")
    api.results.fail("GET", "/*", 500, 503)
    api.results.drop("GET", "/*")
    client, _ = make_client(api)
    reply, _ = run(client, LONG)
    assert reply.text == api.reply(LONG) and not reply.stopped
    assert [c.status for c in api.results.calls_to("GET", "/*")][:4] == [0, 500, 503, 0]


def test_stop_gpu_is_tried_again_when_the_connection_drops(api):
    api.ready_gpu()
    api.drop("POST", "/stop")
    _, session = make_client(api)
    assert session.stop_gpu()["status"] == "stopping"
    assert [c.status for c in api.calls_to("POST", "/stop")] == [0, 200]


def test_after_the_retries_the_cold_start_message_and_more_tries_while_ping_says_starting(api):
    api.boot_gpu()  # another user's job started it: /ping says it is starting
    api.fail("POST", "/infer", *[502] * 6)
    client, _ = make_client(api)
    events = Events()
    replies: list = []
    worker = threading.Thread(target=lambda: replies.append(client.run(PromptRequest("r1", "hello", 5), events)))
    worker.start()
    deadline = time.monotonic() + 10
    while not events.of("queued") and time.monotonic() < deadline:
        time.sleep(0.01)
    messages = [e[1] for e in events.of("retrying")]
    assert messages[3:] and all(m == COLD_START_MESSAGE for m in messages[3:])
    assert COLD_START_MESSAGE == "Server likely cold-starting (~90s). Will retry."
    assert len(api.calls_to("POST", "/infer")) == 7
    assert api.calls_to("GET", "/ping"), "the client asked /ping whether the GPU is starting"
    assert {c.answer["gpu"] for c in api.calls_to("GET", "/ping")} <= {"pending", "running"}
    worker.join(20)
    assert replies[0].text == api.reply("hello")


def test_502_forever_with_the_gpu_not_starting_ends_in_a_clear_error(api):
    api.stop_gpu()
    api.fail("POST", "/infer", *[502] * 20)
    client, _ = make_client(api)
    events = Events()
    with pytest.raises(ApiError) as err:
        client.run(PromptRequest("r1", "hi", 5), events)
    message = client.error_message(err.value)
    assert message.startswith("[aws]") and "502" in message
    assert any(e[1] == COLD_START_MESSAGE for e in events.of("retrying"))
    assert len(api.calls_to("POST", "/infer")) == 5  # 1 + 3 retries + 1 after the message; then /ping said ready


def recording_sleep(events: Events, waits: list[tuple[bool, float]]):
    """The backend's sleep, noting each wait and whether the answer had shown text by then."""
    def sleep(flag, seconds):
        waits.append((bool(events.of("progress")), seconds))
        wait_or_cancel(flag, seconds)
    return sleep


POLLS = Timings(result_first_poll_s=0.005, result_poll_start_s=0.05, result_poll_cap_s=0.2)


def test_the_result_is_polled_fast_until_its_first_text_then_with_backoff(api):
    api.ready_gpu()
    api.results.fail("GET", "/*", 404, 404, 404)  # not written yet, three times
    events, waits = Events(), []
    client, _ = make_client(api, timings=POLLS, sleep=recording_sleep(events, waits))
    reply, _ = run(client, prompt=LONG, events=events)
    assert reply.text == api.reply(LONG)
    before = [s for shown, s in waits if not shown]
    after = [s for shown, s in waits if shown]
    assert len(before) >= 3 and set(before) == {POLLS.result_first_poll_s}, waits
    assert after and min(after) >= POLLS.result_poll_start_s, waits


def test_a_starting_gpu_is_not_polled_fast_before_its_eta(api):
    api.stop_gpu()
    events, waits = Events(), []
    client, _ = make_client(api, timings=POLLS, sleep=recording_sleep(events, waits))
    run(client, events=events)
    assert events.of("queued")[0][1] == "starting"
    assert waits[:3] == [(False, 0.05), (False, 0.1), (False, 0.2)], "the backoff while the GPU boots"


def test_starting_gpu_reports_eta_and_the_missing_result_403_is_not_yet(api):
    api.results.answer_as("GET", "/*", 404, 403)  # S3, when the reader may not list the bucket
    api.stop_gpu()
    eta = api.cold_start_eta()
    client, _ = make_client(api)
    reply, events = run(client)
    assert events.of("queued")[0][1:3] == ("starting", float(eta))
    assert reply.text == api.reply("hello there, how are you")
    assert 403 in {c.status for c in api.results.calls}, "the result was read before it existed"


def test_401_reauthenticates_once_with_the_refresh_token(api):
    client, _ = make_client(api)
    run(client)
    assert len(api.grants("authorization_code")) == 1
    api.fail("POST", "/infer", 401)  # the API no longer accepts the token
    reply, _ = run(client, "again")
    assert reply.text == api.reply("again")
    assert len(api.grants("refresh_token")) == 1 and len(api.grants("authorization_code")) == 1
    first, retried = api.calls_to("POST", "/infer")[-2:]
    assert first.status == 401 and retried.status == 202 and retried.auth != first.auth


def test_a_token_that_expired_mid_session_with_a_refused_refresh_signs_in_again_and_sends_the_prompt(api):
    client, _ = make_client(api)
    run(client)
    api.fail("POST", "/infer", 401)  # the session's token is no longer accepted...
    api.refuse_refresh()             # ...and neither is its refresh token
    reply, _ = run(client, "still here?")
    assert reply.text == api.reply("still here?")
    assert len(api.grants("authorization_code")) == 2
    refused, sent = api.calls_to("POST", "/infer")[-2:]
    assert refused.status == 401 and sent.status == 202 and sent.body == {"prompt": "still here?", "idle": 5}


def test_an_error_result_is_shown_with_its_code(api):
    """An error result where the watcher writes it (the job waits for the GPU to boot meanwhile)."""
    api.stop_gpu()
    client, _ = make_client(api)

    class EngineFails(Events):
        def queued(self, status, eta_s, job_id):
            super().queued(status, eta_s, job_id)
            api.put_result(Result(job_id, "error", error=result_error("engine_error", "vLLM crashed")))

    with pytest.raises(BackendError) as err:
        run(client, events=EngineFails())
    assert str(err.value) == "[aws] the model failed: vLLM crashed (engine_error)"


def test_stop_gpu_mid_answer_ends_it_stopped_with_the_text_so_far(api):
    api.ready_gpu()
    client, session = make_client(api)

    class StopGpuOnceItGrows(Events):
        def progress(self, text, tokens):
            super().progress(text, tokens)
            if len(self.of("progress")) == 2:
                threading.Thread(target=session.stop_gpu, daemon=True).start()

    reply, events = run(client, LONG, events=StopGpuOnceItGrows())
    assert reply.stopped and reply.text and api.reply(LONG).startswith(reply.text)
    assert len(reply.text) < len(api.reply(LONG))
    assert api.calls_to("POST", "/cancel/*") == [], "the watcher ended it: the client was not asked to cancel"


def test_stop_while_the_gpu_boots_cancels_the_job_and_ends_at_once(api):
    api.stop_gpu()
    client, _ = make_client(api, timings=Timings(result_poll_start_s=0.05, result_poll_cap_s=0.2))
    queued_at: list[float] = []

    class StopOnceQueued(Events):
        def queued(self, status, eta_s, job_id):
            super().queued(status, eta_s, job_id)
            queued_at.append(time.monotonic())
            threading.Timer(0.2, client.cancel, args=("r1",)).start()

    events = StopOnceQueued()
    reply = client.run(PromptRequest("r1", "hi", 5), events)
    _, status, _, job_id = events.of("queued")[0]
    assert status == "starting"
    assert time.monotonic() - queued_at[0] < 5
    assert reply.stopped and reply.text == "" and reply.generation_ms == 0
    assert [c.status for c in api.calls_to("POST", f"/cancel/{job_id}")] == [202], "the API was told"
    assert client.error_message(Cancelled()) == "[aws] cancelled"


def test_stop_mid_answer_posts_cancel_and_polls_until_the_result_says_cancelled(api):
    api.ready_gpu()
    client, _ = make_client(api)
    grown = threading.Event()

    class Watch(Events):
        def progress(self, text, tokens):
            super().progress(text, tokens)
            if tokens >= 3:
                grown.set()

    watch = Watch()
    worker = threading.Thread(target=lambda: watch.log.append(("reply", client.run(PromptRequest("r1", LONG, 5),
                                                                                   watch))))
    worker.start()
    assert grown.wait(10)
    client.cancel("r1")  # the job controller calls it on a worker thread: it posts at once
    worker.join(10)
    reply = watch.log[-1][1]
    job_id = watch.of("queued")[0][3]
    assert api.calls_to("POST", f"/cancel/{job_id}")
    doc = api.result(api.calls_to("POST", "/infer")[0].answer["result_url"])
    assert doc["status"] == "cancelled" and reply.stopped
    assert reply.text == doc["text"] and 3 <= reply.tokens < 200
    assert reply.generation_ms == doc["latency_ms"] and reply.ttft_ms == doc["ttft_ms"] is not None


def test_stop_before_infer_answered_cancels_as_soon_as_the_id_is_known(api):
    api.ready_gpu()
    api.hold("POST", "/infer", 0.5)
    client, session = make_client(api)
    session.api()  # endpoint resolved; the token is fetched by the first call
    events = Events()
    result: list = []
    worker = threading.Thread(target=lambda: result.append(client.run(PromptRequest("r1", LONG, 5), events)))
    worker.start()
    deadline = time.monotonic() + 5
    while not api.calls_to("POST", "/infer") and time.monotonic() < deadline:
        time.sleep(0.01)
    client.cancel("r1")  # /infer has not answered: nothing to post yet
    assert not [c for c in api.calls if c.path.startswith("/cancel/")]
    worker.join(10)
    reply, job_id = result[0], events.of("queued")[0][3]
    cancels = [c.path for c in api.calls if c.path.startswith("/cancel/")]
    assert cancels == [f"/cancel/{job_id}"]
    assert reply.stopped and reply.tokens < 200
    result_url = api.calls_to("POST", "/infer")[0].answer["result_url"]
    assert api.wait_result(result_url, {"cancelled", "done"})["status"] == "cancelled"


def test_stop_after_the_job_finished_keeps_the_answer(api):
    client, _ = make_client(api)
    reply, events = run(client, "quick")
    client.cancel("r1")  # too late: nothing is running any more, nothing is posted
    assert not reply.stopped and not [c for c in api.calls if c.path.startswith("/cancel/")]


def test_result_figures_come_back_for_the_stats(api):
    reply, _ = run(make_client(api)[0], "figures for the stats please")
    assert reply.ttft_ms is not None and reply.generation_ms and reply.generation_ms > 0 and reply.tokens > 5


def test_error_messages_name_the_backend():
    client = AwsTinyLlamaClient(BackendContext(settings=Settings, session=TlfifSession(None, None, Timings())))
    for err in (ApiError(400, "prompt must be a non-empty string"), ApiError(429, "slow down", retry_after=1),
                ApiError(503, "queue unavailable"), ApiError(0, "cannot reach http://x: ConnectionError"),
                ApiError(504, "gateway timeout"), RuntimeError("boom")):
        assert client.error_message(err).startswith("[aws] ")


def test_wait_or_cancel_returns_after_the_delay_and_raises_when_cancelled():
    flag = threading.Event()
    wait_or_cancel(flag, 0.01)
    flag.set()
    with pytest.raises(Cancelled):
        wait_or_cancel(flag, 10)


def test_a_result_read_that_drops_or_lags_is_read_again(api):
    """S3 dropping the connection twice, then answering slowly: the answer still arrives whole."""
    api.ready_gpu()
    api.results.drop("GET", "/*", times=2)
    api.results.hold("GET", "/*", 0.2)
    client, _ = make_client(api)
    reply, _ = run(client, "read me again")
    assert reply.text == api.reply("read me again")
    statuses = [c.status for c in api.results.calls]
    assert statuses[:2] == [0, 0] and statuses[-1] == 200, statuses

