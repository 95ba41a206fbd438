"""Controllers without widgets: intents in on the bus, outcomes out, against the local cloud (faults from the proxy
in front of it). The test thread plays the Tk thread: it publishes intents and drains the outbox itself."""
from __future__ import annotations

from dataclasses import replace

import pytest

from app.backends.aws import COLD_START_MESSAGE
from app.backends.registry import REGISTRY, labels
from app.models.settings import Settings
from app.services import config_file
from app.timings import Timings
from support.app_cloud import BOOT_S
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.timeout(60)

TIMINGS = Timings(retry_delays=(0.05, 0.1, 0.2), cold_start_retry_s=0.1, result_poll_start_s=0.01,
                  result_poll_cap_s=0.05, ping_interval_s=0.2, ping_starting_s=0.05, ping_after_stop_s=0.05,
                  cost_interval_s=0.1, progress_min_interval_s=0.0)


@pytest.fixture
def stack(api, make_stack):
    return make_stack(api.endpoints(), TIMINGS)


def test_the_registry_lists_both_backends_aws_first():
    assert labels() == {"aws": "AWS TinyLlama", "openai": "OpenAI"}
    assert set(REGISTRY) == {"aws", "openai"}


def test_send_runs_the_job_and_publishes_each_stage(stack, api):
    prompt = " ".join(["What is TL-FIF?"] * 15)  # long enough for the watcher to write it growing
    stack.bus.send("ui.send", prompt=prompt)
    stack.until(lambda: stack.of("job.done") or stack.of("job.failed"))
    assert not stack.of("job.failed")
    rid = stack.of("job.submitted")[0]["request_id"]
    topics = [t for t, d in stack.recorder.messages if t.startswith("job.") and d.get("request_id") == rid]
    assert topics[0] == "job.submitted" and topics[1] == "job.queued" and topics[-1] == "job.done"
    assert topics.count("job.progress") >= 2
    done = stack.of("job.done")[0]
    assert done["text"] == api.reply(prompt) and done["stats"]["latency_ms"] > 0 and done["backend"] == "aws"
    assert stack.exchanges.get(rid).status == "done"
    assert stack.of("auth.signed_in"), "the first AWS use signed the local user in"


def test_an_empty_prompt_is_rejected_and_nothing_is_sent(stack, api):
    stack.bus.send("ui.send", prompt="   \n")
    assert stack.of("job.rejected")[0]["message"].startswith("Type a prompt first")
    assert not stack.of("job.submitted") and not api.calls_to("POST", "/infer")


def test_a_prompt_sent_while_an_answer_comes_waits_for_it_and_carries_it_as_context(stack, api):
    stack.bus.send("ui.send", prompt="one")
    stack.bus.send("ui.send", prompt="two")
    stack.bus.send("ui.send", prompt="withdrawn")
    assert len(stack.of("job.submitted")) == 1, "one request at a time"
    waiting = stack.of("job.waiting")
    assert [(w["prompt"], w["position"]) for w in waiting] == [("two", 1), ("withdrawn", 2)]
    stack.bus.send("ui.cancel", request_id=waiting[1]["request_id"])
    assert stack.of("job.withdrawn") == [{"request_id": waiting[1]["request_id"]}]
    stack.until(lambda: len(stack.of("job.done")) == 2)
    submitted = stack.of("job.submitted")
    assert [s["prompt"] for s in submitted] == ["one", "two"]
    assert submitted[1]["request_id"] == waiting[0]["request_id"], "the id job.waiting gave is the one sent"
    infers = api.calls_to("POST", "/infer")
    assert [c.body["prompt"] for c in infers] == ["one", "two"], "the withdrawn prompt never left the app"
    assert infers[1].body["messages"] == [{"role": "user", "content": "one"},
                                          {"role": "assistant", "content": api.reply("one")}], \
        "sent when the answer it waited for had come, with that answer in its context"
    assert not stack.of("job.rejected")


def test_no_more_than_max_waiting_prompts_wait(stack, api):
    from app.controllers.job_controller import MAX_WAITING

    for n in range(MAX_WAITING + 2):
        stack.bus.send("ui.send", prompt=f"p{n}")
    assert len(stack.of("job.waiting")) == MAX_WAITING
    assert stack.of("job.rejected")[0]["message"].startswith(f"{MAX_WAITING} prompts are already waiting")
    stack.until(lambda: len(stack.of("job.done")) == MAX_WAITING + 1, timeout=40)
    assert [c.body["prompt"] for c in api.calls_to("POST", "/infer")] == [f"p{n}" for n in range(MAX_WAITING + 1)]


def test_the_idle_setting_is_validated_saved_and_sent_with_the_next_prompt(stack, api):
    stack.bus.send("ui.idle_changed", value="45")
    assert stack.of("settings.invalid")[0] == {"field": "idle", "message": "Idle timeout must be from 1 to 30 minutes",
                                               "current": "5"}
    assert not stack.path.exists(), "an invalid value is never saved"
    stack.bus.send("ui.idle_changed", value=" 12 ")
    assert stack.of("settings.saved")[0]["idle"] == 12
    assert config_file.load(stack.path).settings.idle == 12
    stack.bus.send("ui.send", prompt="hi")
    stack.until(lambda: stack.of("job.done"))
    assert api.calls_to("POST", "/infer")[0].body["idle"] == 12


def test_backend_switch_is_saved_and_the_next_prompt_goes_to_openai(api, make_stack):
    with FakeOpenAI(reply="from openai", api_key="sk-x") as srv:
        settings = replace(Settings(), openai_base_url=srv.base_url, openai_model="m")
        s = make_stack(api.endpoints(), TIMINGS, settings=settings, env={"OPENAI_API_KEY": "sk-x"})
        s.bus.send("ui.backend_selected", backend="openai")
        assert config_file.load(s.path).settings.backend == "openai"
        s.bus.send("ui.send", prompt="hello")
        s.until(lambda: s.of("job.done") or s.of("job.failed"))
        assert s.of("job.done")[0]["text"] == "from openai" and s.of("job.done")[0]["backend"] == "openai"
        assert not api.calls_to("POST", "/infer")


def test_openai_without_a_key_asks_for_one_and_sends_when_it_arrives(api, make_stack):
    with FakeOpenAI(reply="keyed", api_key="sk-typed") as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url)
        s = make_stack(api.endpoints(), TIMINGS, settings=settings, env={})
        s.bus.send("ui.send", prompt="hello")
        assert s.of("auth.key_needed") == [{"backend": "openai", "backend_label": "OpenAI"}]
        assert not s.of("job.submitted")
        s.bus.send("ui.api_key_entered", backend="openai", key="sk-typed")
        s.until(lambda: s.of("job.done") or s.of("job.failed"))
        assert s.of("job.done")[0]["text"] == "keyed"
        assert "sk-typed" not in s.path.read_text() if s.path.exists() else True


def test_a_failure_is_published_with_the_backend_tag_and_the_app_stays_usable(stack, api):
    api.fail("POST", "/infer", 400)
    stack.bus.send("ui.send", prompt="first")
    stack.until(lambda: stack.of("job.failed"))
    assert stack.of("job.failed")[0]["message"].startswith("[aws] the API refused the prompt")
    stack.bus.send("ui.send", prompt="second")
    stack.until(lambda: stack.of("job.done"))


def test_cold_start_retries_publish_the_message(stack, api):
    api.boot_gpu()
    api.fail("POST", "/infer", 502, 504, 502, 502)
    stack.bus.send("ui.send", prompt="cold")
    stack.until(lambda: stack.of("job.done") or stack.of("job.failed"))
    messages = [m["message"] for m in stack.of("job.retrying")]
    assert messages[:3] == ["[aws] HTTP 502; retrying in 0.05 s", "[aws] HTTP 504; retrying in 0.1 s",
                            "[aws] HTTP 502; retrying in 0.2 s"]
    assert messages[3] == COLD_START_MESSAGE
    assert stack.of("job.done")


def test_starting_gpu_shows_progress_and_pauses_cost_polling(stack, api):
    api.stop_gpu()
    api.set_month_cost(1.5, [])
    stack.gpu.start()
    stack.cost.start()
    stack.until(lambda: stack.of("cost.updated"))
    assert stack.of("cost.updated")[-1]["text"].startswith("Month €1.50")
    stack.bus.send("ui.send", prompt="wake up")
    stack.until(lambda: any(m["state"] == "starting" for m in stack.of("gpu.state")))
    assert stack.cost.paused and stack.of("cost.paused")[-1] == {"paused": True}
    starting = [m for m in stack.of("gpu.state") if m["state"] == "starting"]
    assert 0 <= starting[0]["progress"] < 1
    stack.until(lambda: stack.of("job.done"), timeout=15 + BOOT_S)
    stack.until(lambda: stack.of("gpu.state")[-1]["state"] == "ready")
    stack.until(lambda: stack.of("cost.paused")[-1] == {"paused": False})
    assert stack.of("gpu.state")[-1]["idle_left_s"] > 0, "the idle countdown runs after the answer"


def test_a_start_seen_only_through_ping_shows_the_measured_eta(stack, api):
    """Another client started the GPU: the app learns of the boot from /ping alone, with its `eta` (the median of
    the recorded cold starts), not the built-in 90 s."""
    api.stop_gpu()
    saved = api.boot_samples()
    api.set_boot_samples("[40, 44, 48]")
    try:
        stack.gpu.start()
        stack.until(lambda: stack.of("gpu.state") and stack.of("gpu.state")[-1]["state"] == "stopped")
        api.boot_gpu()
        stack.until(lambda: any(m["state"] == "starting" for m in stack.of("gpu.state")))
        starting = [m for m in stack.of("gpu.state") if m["state"] == "starting"]
        assert starting[0]["text"].endswith("of ~44 s"), starting[0]
        api.ready_gpu()
    finally:
        api.set_boot_samples(saved)


def test_stop_gpu_shows_stopping_then_stopped(stack, api):
    api.ready_gpu()
    stack.gpu.start()
    stack.until(lambda: stack.of("gpu.state") and stack.of("gpu.state")[-1]["state"] == "ready")
    stack.bus.send("ui.stop_gpu")
    assert stack.of("gpu.state")[-1]["state"] == "stopping"
    stack.until(lambda: stack.gpu.poller.interval_s == TIMINGS.ping_after_stop_s)
    stack.until(lambda: stack.of("gpu.state")[-1]["state"] == "stopped", timeout=10)
    assert api.calls_to("POST", "/stop")
    assert stack.gpu.poller.interval_s == TIMINGS.ping_interval_s, "back to the normal pace once stopped"


def test_cost_route_absent_shows_a_dash(stack, api):
    api.fail("GET", "/cost", 404)  # a stack deployed before the route existed
    stack.cost.start()
    stack.until(lambda: stack.of("cost.updated"))
    assert stack.of("cost.updated")[0] == {"text": "—", "data": None}
