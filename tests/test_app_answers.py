"""Stop generating, stats and per-answer cost through the job controller, without widgets: intents in on the bus,
outcomes out, against the test servers for the TL-FIF API and OpenAI. The test thread plays the Tk thread."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from app.bus import Bus, Outbox
from app.controllers.backend_base import BackendContext, Timings
from app.controllers.backends import create_all
from app.controllers.job_controller import JobController
from app.controllers.settings_controller import SettingsStore
from app.models.conversation import STOPPED, Conversation
from app.models.settings import Settings
from app.services.auth import TokenProvider
from app.services.endpoints import AwsEndpoint, FixedEndpoint
from support.app_harness import Recorder, drain_until
from support.fake_openai import FakeOpenAI
from support.fake_tlfif_api import FakeTlfifApi
from tlfif_common import names, prices

pytestmark = pytest.mark.timeout(60)

TIMINGS = Timings(result_poll_start_s=0.01, result_poll_cap_s=0.05, progress_min_interval_s=0.0)
TOPICS = ["job.submitted", "job.queued", "job.progress", "job.done", "job.cancelled", "job.failed"]
LONG = " ".join(f"w{i}" for i in range(300))


class Stack:
    def __init__(self, api: FakeTlfifApi, tmp_path, settings: Settings | None = None, env=None):
        self.bus, self.outbox = Bus(), Outbox()
        self.recorder = Recorder(self.bus, TOPICS)
        self.store = SettingsStore(settings or Settings(), tmp_path / "tl-fif.ini")
        # The fake API stands for a deployed stack: its answers are billed GPU time.
        endpoints = FixedEndpoint(replace(AwsEndpoint.from_local_info(api.info), local=False))
        ctx = BackendContext(settings=lambda: self.store.current, endpoints=endpoints,
                             tokens=TokenProvider(endpoints, notify=self.outbox.post), timings=TIMINGS,
                             env=env if env is not None else {})
        self.backends = create_all(ctx)
        self.executor = ThreadPoolExecutor(4)
        self.conversation = Conversation()
        self.jobs = JobController(self.bus, self.outbox, self.backends, self.store, self.conversation, self.executor,
                                  TIMINGS)

    def until(self, predicate, timeout=10.0):
        drain_until(self.bus, self.outbox, predicate, timeout)

    def of(self, topic):
        return self.recorder.of(topic)

    def close(self):
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.bus.close()


@pytest.fixture
def api():
    with FakeTlfifApi(word_delay=0.02) as server:
        yield server


@pytest.fixture
def stack(api, tmp_path):
    s = Stack(api, tmp_path)
    yield s
    s.close()


def test_an_aws_answer_carries_its_stats_and_gpu_cost(stack, api):
    stack.bus.send("ui.send", prompt="What is TL-FIF?")
    stack.until(lambda: stack.of("job.done") or stack.of("job.failed"))
    done = stack.of("job.done")[0]
    stats = done["stats"]
    table = prices.load()
    hourly = table.ec2_hourly_usd(names.DEFAULT_GPU_INSTANCE_TYPE, names.DEFAULT_REGION) * prices.usd_to_eur()
    assert stats["ttft_ms"] == 5 and stats["gpu_ms"] > 0 and stats["tokens"] == done["tokens"] > 5
    assert stats["latency_ms"] == done["latency_ms"] and stats["tokens_per_s"] > 0
    assert stats["cost_eur"] == pytest.approx(stats["gpu_ms"] / 3_600_000 * hourly)
    assert stack.conversation.get(done["request_id"]).stats == stats


def test_the_deployed_gpu_price_from_cost_wins_over_the_default(stack, api):
    stack.bus.send("cost.updated", text="x", data={"gpu_hourly_eur": 3.6, "month_to_date_eur": 1.0})
    stack.bus.send("ui.send", prompt="price check")
    stack.until(lambda: stack.of("job.done"))
    stats = stack.of("job.done")[0]["stats"]
    assert stats["cost_eur"] == pytest.approx(stats["gpu_ms"] / 1000 * 0.001)  # €3.60/h = €0.001/s


def test_stop_cancels_on_a_worker_thread_and_keeps_the_partial_answer(stack, api):
    api.reply = lambda prompt: LONG
    api.word_delay = 0.03
    threads: list[str] = []
    aws = stack.backends["aws"]
    original = aws.cancel

    def cancel(request_id):
        threads.append(threading.current_thread().name)
        original(request_id)

    aws.cancel = cancel
    stack.bus.send("ui.send", prompt="talk for a while")
    rid = stack.of("job.submitted")[0]["request_id"]
    stack.until(lambda: any(len(p["text"].split()) >= 3 for p in stack.of("job.progress")))
    stack.bus.send("ui.cancel", request_id=rid)
    stack.bus.send("ui.cancel", request_id=rid)  # a second Esc does nothing more
    stack.until(lambda: stack.of("job.cancelled") or stack.of("job.done") or stack.of("job.failed"))
    cancelled = stack.of("job.cancelled")[0]
    job_id = stack.of("job.queued")[0]["job_id"]
    doc = api._result(job_id)
    assert doc["status"] == "cancelled" and cancelled["text"] == doc["text"]
    assert 3 <= cancelled["tokens"] < 300 and cancelled["stats"]["stopped"] is True
    assert cancelled["stats"]["gpu_ms"] == doc["latency_ms"] and cancelled["stats"]["cost_eur"] > 0
    assert len(api.calls_to("POST", f"/cancel/{job_id}")) == 1
    assert threads and threads[0] != threading.current_thread().name, "cancel ran off the Tk thread"
    exchange = stack.conversation.get(rid)
    assert exchange.status == STOPPED and exchange.text == cancelled["text"]
    api.reply = lambda prompt: "short one"
    stack.bus.send("ui.send", prompt="and again")  # the app is free for the next prompt
    stack.until(lambda: stack.of("job.done"))


def test_the_cold_start_wait_is_in_the_stats(stack, api):
    api.set_gpu("stopped")
    api.boot_s = 0.6
    stack.bus.send("ui.send", prompt="wake up")
    stack.until(lambda: stack.of("job.done") or stack.of("job.failed"))
    assert stack.of("job.queued")[0]["status"] == "starting"
    stats = stack.of("job.done")[0]["stats"]
    assert 500 <= stats["cold_start_ms"] <= stats["latency_ms"]


def test_an_openai_answer_costs_its_usage_tokens(api, tmp_path):
    with FakeOpenAI(reply="Four words come back", chunk_delay=0.01) as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model="gpt-4o-mini")
        s = Stack(api, tmp_path, settings=settings, env={"OPENAI_API_KEY": "sk-test"})
        try:
            s.bus.send("ui.send", prompt="say four words")
            s.until(lambda: s.of("job.done") or s.of("job.failed"))
            stats = s.of("job.done")[0]["stats"]
        finally:
            s.close()
    usd = prices.load().openai_cost_usd("gpt-4o-mini", prompt_tokens=3, completion_tokens=4)
    assert stats["prompt_tokens"] == 3 and stats["tokens"] == 4
    assert stats["cost_usd"] == pytest.approx(usd) and stats["cost_eur"] == pytest.approx(usd * prices.usd_to_eur())
    assert stats["ttft_ms"] is not None and stats["cold_start_ms"] is None


def test_an_openai_model_without_a_price_says_cost_unknown(api, tmp_path):
    with FakeOpenAI(reply="local model here") as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model="llama-local")
        s = Stack(api, tmp_path, settings=settings, env={"OPENAI_API_KEY": "sk-test"})
        try:
            s.bus.send("ui.send", prompt="hi")
            s.until(lambda: s.of("job.done") or s.of("job.failed"))
            stats = s.of("job.done")[0]["stats"]
        finally:
            s.close()
    assert stats["cost_usd"] is None and "no price for model llama-local" in stats["cost_note"]


def test_openai_stop_hangs_up_the_stream(api, tmp_path):
    with FakeOpenAI(reply=LONG, chunk_delay=0.02) as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model="gpt-4o-mini")
        s = Stack(api, tmp_path, settings=settings, env={"OPENAI_API_KEY": "sk-test"})
        try:
            s.bus.send("ui.send", prompt="go on")
            rid = s.of("job.submitted")[0]["request_id"]
            s.until(lambda: len(s.of("job.progress")) >= 3)
            s.bus.send("ui.cancel", request_id=rid)
            s.until(lambda: s.of("job.cancelled") or s.of("job.done") or s.of("job.failed"))
            record = srv.wait_closed()
        finally:
            s.close()
    cancelled = s.of("job.cancelled")[0]
    assert record.client_closed and not record.completed
    assert cancelled["text"] and LONG.startswith(cancelled["text"]) and cancelled["stats"]["stopped"]
