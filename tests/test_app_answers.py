"""Stop generating, stats and per-answer cost through the job controller, without widgets: intents in on the bus,
outcomes out, against the local cloud and the OpenAI test server. The test thread plays the Tk thread."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from app.models.exchange import STOPPED
from app.models.settings import Settings
from app.timings import Timings
from support.app_cloud import BOOT_S
from support.fake_openai import FakeOpenAI
from tlfif_common import names, prices

pytestmark = pytest.mark.timeout(60)

TIMINGS = Timings(result_poll_start_s=0.01, result_poll_cap_s=0.05, progress_min_interval_s=0.0)
LONG = " ".join(f"w{i}" for i in range(300))


@pytest.fixture
def stack(api, make_stack):
    return make_stack(api.endpoints(local=False), TIMINGS)  # as a deployed stack: its answers are billed GPU time


def test_an_aws_answer_carries_its_stats_and_gpu_cost(stack, api):
    stack.bus.send("ui.send", prompt="What is TL-FIF?")
    stack.until(lambda: stack.of("job.done") or stack.of("job.failed"))
    done = stack.of("job.done")[0]
    stats = done["stats"]
    table = prices.load()
    hourly = table.ec2_hourly_usd(names.DEFAULT_GPU_INSTANCE_TYPE, names.DEFAULT_REGION) * prices.usd_to_eur()
    exchange = stack.exchanges.get(done["request_id"])
    assert stats["ttft_ms"] is not None and stats["gpu_ms"] > 0 and stats["tokens"] == exchange.tokens > 5
    assert stats["latency_ms"] == exchange.latency_ms and stats["tokens_per_s"] > 0
    assert stats["cost_eur"] == pytest.approx(stats["gpu_ms"] / 3_600_000 * hourly)
    assert exchange.stats == stats


def test_the_deployed_gpu_price_from_cost_wins_over_the_default(stack, api):
    stack.bus.send("cost.updated", text="x", data={"gpu_hourly_eur": 3.6, "month_to_date_eur": 1.0})
    stack.bus.send("ui.send", prompt="price check")
    stack.until(lambda: stack.of("job.done"))
    stats = stack.of("job.done")[0]["stats"]
    assert stats["cost_eur"] == pytest.approx(stats["gpu_ms"] / 1000 * 0.001)  # €3.60/h = €0.001/s


def test_stop_cancels_on_a_worker_thread_and_keeps_the_partial_answer(stack, api):
    api.ready_gpu()
    threads: list[str] = []
    aws = stack.backends["aws"]
    original = aws.cancel

    def cancel(request_id):
        threads.append(threading.current_thread().name)
        original(request_id)

    aws.cancel = cancel
    stack.bus.send("ui.send", prompt=LONG)  # the echo engine repeats it, a word every 20 ms
    rid = stack.of("job.submitted")[0]["request_id"]
    stack.until(lambda: any(len(p["text"].split()) >= 3 for p in stack.of("job.progress")))
    stack.bus.send("ui.cancel", request_id=rid)
    stack.bus.send("ui.cancel", request_id=rid)  # a second Esc does nothing more
    stack.until(lambda: stack.of("job.cancelled") or stack.of("job.done") or stack.of("job.failed"))
    cancelled = stack.of("job.cancelled")[0]
    job_id = stack.of("job.queued")[0]["job_id"]
    doc = api.result_of(job_id)
    assert doc["status"] == "cancelled" and cancelled["text"] == doc["text"]
    assert 3 <= cancelled["stats"]["tokens"] < 300 + 8 and cancelled["stats"]["stopped"] is True
    assert cancelled["stats"]["gpu_ms"] == doc["latency_ms"] and cancelled["stats"]["cost_eur"] > 0
    assert len(api.calls_to("POST", f"/cancel/{job_id}")) == 1
    assert threads and threads[0] != threading.current_thread().name, "cancel ran off the Tk thread"
    exchange = stack.exchanges.get(rid)
    assert exchange.status == STOPPED and exchange.text == cancelled["text"]
    stack.bus.send("ui.send", prompt="and again")  # the app is free for the next prompt
    stack.until(lambda: stack.of("job.done"))


def test_the_cold_start_wait_is_in_the_stats(stack, api):
    api.stop_gpu()
    stack.bus.send("ui.send", prompt="wake up")
    stack.until(lambda: stack.of("job.done") or stack.of("job.failed"))
    assert stack.of("job.queued")[0]["status"] == "starting"
    stats = stack.of("job.done")[0]["stats"]
    assert BOOT_S * 1000 * 0.9 <= stats["cold_start_ms"] <= stats["latency_ms"]


@pytest.fixture
def openai_stack(api, make_stack):
    """`openai_stack(server, model)`: the controllers with the OpenAI backend selected, on the test server."""
    def make(srv, model):
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model=model)
        return make_stack(api.endpoints(), TIMINGS, settings=settings, env={"OPENAI_API_KEY": "sk-test"})
    return make


def answer_stats(s, prompt: str) -> dict:
    s.bus.send("ui.send", prompt=prompt)
    s.until(lambda: s.of("job.done") or s.of("job.failed"))
    return s.of("job.done")[0]["stats"]


def test_an_openai_answer_costs_its_usage_tokens(openai_stack):
    with FakeOpenAI(reply="Four words come back", chunk_delay=0.01) as srv:
        stats = answer_stats(openai_stack(srv, "gpt-4o-mini"), "say four words")
    usd = prices.load().openai_cost_usd("gpt-4o-mini", prompt_tokens=3, completion_tokens=4)
    assert stats["prompt_tokens"] == 3 and stats["tokens"] == 4
    assert stats["cost_usd"] == pytest.approx(usd) and stats["cost_eur"] == pytest.approx(usd * prices.usd_to_eur())
    assert stats["ttft_ms"] is not None and stats["cold_start_ms"] is None


def test_an_openai_model_without_a_price_says_cost_unknown(openai_stack):
    with FakeOpenAI(reply="local model here") as srv:
        stats = answer_stats(openai_stack(srv, "llama-local"), "hi")
    assert stats["cost_usd"] is None and "no price for model llama-local" in stats["cost_note"]


def test_openai_stop_hangs_up_the_stream(openai_stack):
    with FakeOpenAI(reply=LONG, chunk_delay=0.02) as srv:
        s = openai_stack(srv, "gpt-4o-mini")
        s.bus.send("ui.send", prompt="go on")
        rid = s.of("job.submitted")[0]["request_id"]
        s.until(lambda: len(s.of("job.progress")) >= 3)
        s.bus.send("ui.cancel", request_id=rid)
        s.until(lambda: s.of("job.cancelled") or s.of("job.done") or s.of("job.failed"))
        record = srv.wait_closed()
    cancelled = s.of("job.cancelled")[0]
    assert record.client_closed and not record.completed
    assert cancelled["text"] and LONG.startswith(cancelled["text"]) and cancelled["stats"]["stopped"]
