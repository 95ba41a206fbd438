"""Keep-warm and the cost chart intent in the controllers, without widgets, against the local cloud (the keep-warm
state read where the router keeps it, in Redis).
The test thread plays the Tk thread: it publishes intents and drains the outbox itself."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from app.controllers.keep_warm_controller import ENDED_MESSAGE, OFF_FOR_OPENAI
from app.models.gpu import format_clock
from app.models.settings import Settings
from app.timings import Timings

pytestmark = pytest.mark.timeout(60)

TIMINGS = Timings(ping_interval_s=0.2, ping_starting_s=0.05, ping_after_stop_s=0.05, cost_interval_s=0.1)


@pytest.fixture
def stack(api, make_stack):
    return keep_warm_stack(api, make_stack)


def keep_warm_stack(api, make_stack, settings: Settings | None = None):
    wall = [time.time()]
    stack = make_stack(api.endpoints(), TIMINGS, settings=settings or Settings(keep_warm_max_minutes=45),
                       wall_clock=lambda: wall[0])
    stack.wall = wall
    return stack


def toggle(stack, on: bool) -> dict:
    count = len(stack.of("gpu.keep_warm"))
    stack.bus.send("ui.keep_warm", on=on)
    stack.until(lambda: len(stack.of("gpu.keep_warm")) > count)
    return stack.of("gpu.keep_warm")[-1]


def ready_after_a_job(stack) -> None:
    stack.model.apply_ping("ready", time.monotonic())
    stack.model.apply_job_end(5, time.monotonic())


def test_on_sends_the_maximum_lifetime_and_the_status_line_says_until_when(stack, api):
    ready_after_a_job(stack)
    shown = toggle(stack, True)
    call = api.calls_to("POST", "/keepwarm")[-1]
    assert call.body == {"on": True, "max_minutes": 45} and call.auth.startswith("Bearer ")
    assert shown["on"] and shown["until_ms"] == api.keep_warm_until() and shown["message"] == ""
    assert 44 * 60_000 < shown["until_ms"] - time.time() * 1000 <= 45 * 60_000
    state = stack.of("gpu.state")[-1]
    assert state["text"] == f"GPU ready · kept warm until {format_clock(shown['until_ms'])}"
    assert state["idle_left_s"] == -1.0, "the countdown is held"

    shown = toggle(stack, False)
    assert api.calls_to("POST", "/keepwarm")[-1].body == {"on": False} and api.keep_warm_until() is None
    assert not shown["on"] and shown["until_ms"] == 0
    state = stack.of("gpu.state")[-1]
    assert state["text"].startswith("GPU ready · auto-stop in 5:00") or state["text"].startswith(
        "GPU ready · auto-stop in 4:59"), state["text"]


def test_a_failed_request_keeps_the_state_and_says_why(stack, api):
    api.fail("POST", "/keepwarm", 503)
    shown = toggle(stack, True)
    assert not shown["on"] and "keep warm failed: HTTP 503" in shown["message"]
    assert stack.model.keep_warm_until_ms is None and stack.keep_warm.in_flight is None
    assert toggle(stack, True)["on"], "the next try works"


def test_stop_gpu_switches_it_off(stack, api):
    assert toggle(stack, True)["on"]
    stack.bus.send("ui.stop_gpu")
    assert stack.of("gpu.keep_warm")[-1] == {"on": False, "until_ms": 0, "message": ""}
    stack.until(lambda: [c for c in api.calls_to("POST", "/stop") if c.status == 200])
    assert api.keep_warm_until() is None, "the API's /stop clears it as well"
    assert len(api.calls_to("POST", "/keepwarm")) == 1, "no separate off request"


def test_the_openai_backend_switches_it_off_and_refuses_it(stack, api):
    assert toggle(stack, True)["on"]
    stack.bus.send("ui.backend_selected", backend="openai")
    assert stack.of("gpu.keep_warm")[-1]["message"] == OFF_FOR_OPENAI
    stack.until(lambda: not stack.of("gpu.keep_warm")[-1]["on"])
    assert api.calls_to("POST", "/keepwarm")[-1].body == {"on": False} and api.keep_warm_until() is None
    calls = len(api.calls_to("POST", "/keepwarm"))
    shown = toggle(stack, True)
    assert not shown["on"] and shown["message"] == OFF_FOR_OPENAI
    assert len(api.calls_to("POST", "/keepwarm")) == calls, "nothing sent for the OpenAI backend"


def test_a_toggle_made_while_a_request_is_in_flight_is_sent_after_it(stack, api):
    stack.bus.send("ui.keep_warm", on=True)
    stack.bus.send("ui.keep_warm", on=False)  # before the first answer was drained
    stack.until(lambda: [c.status for c in api.calls_to("POST", "/keepwarm")] == [200, 200]
                and stack.keep_warm.in_flight is None and not stack.of("gpu.keep_warm")[-1]["on"])
    assert [c.body["on"] for c in api.calls_to("POST", "/keepwarm")] == [True, False]
    assert api.keep_warm_until() is None


def test_reaching_the_maximum_lifetime_switches_it_off(stack, api):
    ready_after_a_job(stack)
    until = toggle(stack, True)["until_ms"]
    stack.wall[0] = until / 1000 - 1
    stack.bus.send("clock.tick", now=time.monotonic())
    assert stack.of("gpu.keep_warm")[-1]["on"]
    stack.wall[0] = until / 1000
    stack.bus.send("clock.tick", now=time.monotonic())
    assert stack.of("gpu.keep_warm")[-1] == {"on": False, "until_ms": 0, "message": ENDED_MESSAGE}
    assert "kept warm" not in stack.of("gpu.state")[-1]["text"]


def test_clicking_the_cost_label_asks_for_the_chart_with_the_latest_answer(stack, api):
    daily = api.set_month_cost(0.3, [0.1, 0.2])
    stack.bus.send("ui.cost_chart")
    assert stack.of("cost.chart")[-1] == {"data": None}, "nothing fetched yet: the chart says no data"
    stack.cost.start()
    stack.until(lambda: stack.of("cost.updated"))
    polls = stack.cost.poller.calls
    stack.bus.send("ui.cost_chart")
    assert stack.of("cost.chart")[-1]["data"]["daily"] == daily
    stack.until(lambda: stack.cost.poller.calls > polls)


def test_max_minutes_from_the_settings_file(api, make_stack):
    stack = keep_warm_stack(api, make_stack, replace(Settings(), keep_warm_max_minutes=480))
    toggle(stack, True)
    assert api.calls_to("POST", "/keepwarm")[-1].body == {"on": True, "max_minutes": 480}
