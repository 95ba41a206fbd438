"""Keep-warm and the cost chart intent in the controllers, without widgets, against the TL-FIF API test server.
The test thread plays the Tk thread: it publishes intents and drains the outbox itself."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from app.bus import Bus, Outbox
from app.controllers.backend_base import BackendContext, Timings
from app.controllers.backends import create_all
from app.controllers.cost_controller import CostController
from app.controllers.gpu_controller import GpuController
from app.controllers.keep_warm_controller import ENDED_MESSAGE, OFF_FOR_OPENAI, KeepWarmController
from app.controllers.settings_controller import SettingsController, SettingsStore
from app.models.conversation import Conversation
from app.models.gpu import GpuModel, format_clock
from app.models.settings import Settings
from app.services.auth import TokenProvider
from app.services.endpoints import AwsEndpoint, FixedEndpoint
from support.app_harness import Recorder, drain_until
from support.fake_tlfif_api import FakeTlfifApi

pytestmark = pytest.mark.timeout(60)

TIMINGS = Timings(ping_interval_s=0.2, ping_starting_s=0.05, ping_after_stop_s=0.05, cost_interval_s=0.1)


class Stack:
    def __init__(self, api: FakeTlfifApi, tmp_path, settings: Settings | None = None):
        self.bus, self.outbox = Bus(), Outbox()
        self.recorder = Recorder(self.bus, ["gpu.keep_warm", "gpu.state", "cost.updated", "cost.chart"])
        self.store = SettingsStore(settings or Settings(keep_warm_max_minutes=45), tmp_path / "tl-fif.ini")
        endpoints = FixedEndpoint(AwsEndpoint.from_local_info(api.info))
        tokens = TokenProvider(endpoints, notify=self.outbox.post)
        ctx = BackendContext(settings=lambda: self.store.current, endpoints=endpoints, tokens=tokens,
                             timings=TIMINGS, env={})
        self.backends = create_all(ctx)
        self.executor = ThreadPoolExecutor(4)
        self.model = GpuModel()
        self.wall = [time.time()]
        self.settings = SettingsController(self.bus, self.store, tuple(self.backends))
        self.gpu = GpuController(self.bus, self.outbox, self.backends["aws"], self.model, self.executor, TIMINGS,
                                 Conversation())
        self.cost = CostController(self.bus, self.outbox, self.backends["aws"], TIMINGS)
        self.keep_warm = KeepWarmController(self.bus, self.outbox, self.backends["aws"], self.model, self.gpu,
                                            self.executor, lambda: self.store.current,
                                            wall_clock=lambda: self.wall[0])

    def until(self, predicate, timeout=10.0):
        drain_until(self.bus, self.outbox, predicate, timeout)

    def of(self, topic):
        return self.recorder.of(topic)

    def toggle(self, on: bool) -> dict:
        count = len(self.of("gpu.keep_warm"))
        self.bus.send("ui.keep_warm", on=on)
        self.until(lambda: len(self.of("gpu.keep_warm")) > count)
        return self.of("gpu.keep_warm")[-1]

    def close(self):
        self.gpu.stop()
        self.cost.stop()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.bus.close()


@pytest.fixture
def api():
    with FakeTlfifApi(gpu="ready") as server:
        yield server


@pytest.fixture
def stack(api, tmp_path):
    s = Stack(api, tmp_path)
    yield s
    s.close()


def ready_after_a_job(stack: Stack) -> None:
    stack.model.apply_ping("ready", time.monotonic())
    stack.model.apply_job_end(5, time.monotonic())


def test_on_sends_the_maximum_lifetime_and_the_status_line_says_until_when(stack, api):
    ready_after_a_job(stack)
    shown = stack.toggle(True)
    call = api.calls_to("POST", "/keepwarm")[-1]
    assert call.body == {"on": True, "max_minutes": 45} and call.auth.startswith("Bearer ")
    assert shown["on"] and shown["until_ms"] == api.keep_warm_until and shown["message"] == ""
    assert 44 * 60_000 < shown["until_ms"] - time.time() * 1000 <= 45 * 60_000
    state = stack.of("gpu.state")[-1]
    assert state["text"] == f"GPU ready · kept warm until {format_clock(shown['until_ms'])}"
    assert state["idle_left_s"] == -1.0, "the countdown is held"

    shown = stack.toggle(False)
    assert api.calls_to("POST", "/keepwarm")[-1].body == {"on": False} and api.keep_warm_until is None
    assert not shown["on"] and shown["until_ms"] == 0
    state = stack.of("gpu.state")[-1]
    assert state["text"].startswith("GPU ready · auto-stop in 5:00") or state["text"].startswith(
        "GPU ready · auto-stop in 4:59"), state["text"]


def test_a_failed_request_keeps_the_state_and_says_why(stack, api):
    api.keepwarm_statuses = [503]
    shown = stack.toggle(True)
    assert not shown["on"] and "keep warm failed: HTTP 503" in shown["message"]
    assert stack.model.keep_warm_until_ms is None and stack.keep_warm.in_flight is None
    assert stack.toggle(True)["on"], "the next try works"


def test_stop_gpu_switches_it_off(stack, api):
    assert stack.toggle(True)["on"]
    stack.bus.send("ui.stop_gpu")
    assert stack.of("gpu.keep_warm")[-1] == {"on": False, "until_ms": 0, "message": ""}
    stack.until(lambda: api.calls_to("POST", "/stop"))
    assert api.keep_warm_until is None, "the API's /stop clears it as well"
    assert len(api.calls_to("POST", "/keepwarm")) == 1, "no separate off request"


def test_the_openai_backend_switches_it_off_and_refuses_it(stack, api):
    assert stack.toggle(True)["on"]
    stack.bus.send("ui.backend_selected", backend="openai")
    assert stack.of("gpu.keep_warm")[-1]["message"] == OFF_FOR_OPENAI
    stack.until(lambda: not stack.of("gpu.keep_warm")[-1]["on"])
    assert api.calls_to("POST", "/keepwarm")[-1].body == {"on": False} and api.keep_warm_until is None
    calls = len(api.calls_to("POST", "/keepwarm"))
    shown = stack.toggle(True)
    assert not shown["on"] and shown["message"] == OFF_FOR_OPENAI
    assert len(api.calls_to("POST", "/keepwarm")) == calls, "nothing sent for the OpenAI backend"


def test_a_toggle_made_while_a_request_is_in_flight_is_sent_after_it(stack, api):
    stack.bus.send("ui.keep_warm", on=True)
    stack.bus.send("ui.keep_warm", on=False)  # before the first answer was drained
    stack.until(lambda: len(api.calls_to("POST", "/keepwarm")) == 2 and stack.keep_warm.in_flight is None
                and not stack.of("gpu.keep_warm")[-1]["on"])
    assert [c.body["on"] for c in api.calls_to("POST", "/keepwarm")] == [True, False]
    assert api.keep_warm_until is None


def test_reaching_the_maximum_lifetime_switches_it_off(stack, api):
    ready_after_a_job(stack)
    until = stack.toggle(True)["until_ms"]
    stack.wall[0] = until / 1000 - 1
    stack.bus.send("clock.tick", now=time.monotonic())
    assert stack.of("gpu.keep_warm")[-1]["on"]
    stack.wall[0] = until / 1000
    stack.bus.send("clock.tick", now=time.monotonic())
    assert stack.of("gpu.keep_warm")[-1] == {"on": False, "until_ms": 0, "message": ENDED_MESSAGE}
    assert "kept warm" not in stack.of("gpu.state")[-1]["text"]


def test_clicking_the_cost_label_asks_for_the_chart_with_the_latest_answer(stack, api):
    api.cost = {"month_to_date_eur": 0.3, "session_eur": 0.0, "session_seconds": 0,
                "daily": [{"date": "2026-11-01", "eur": 0.1}, {"date": "2026-11-02", "eur": 0.2}]}
    stack.bus.send("ui.cost_chart")
    assert stack.of("cost.chart")[-1] == {"data": None}, "nothing fetched yet: the chart says no data"
    stack.cost.start()
    stack.until(lambda: stack.of("cost.updated"))
    polls = stack.cost.poller.calls
    stack.bus.send("ui.cost_chart")
    assert stack.of("cost.chart")[-1]["data"]["daily"] == api.cost["daily"]
    stack.until(lambda: stack.cost.poller.calls > polls)


def test_max_minutes_from_the_settings_file(api, tmp_path):
    stack = Stack(api, tmp_path, replace(Settings(), keep_warm_max_minutes=480))
    try:
        stack.toggle(True)
        assert api.calls_to("POST", "/keepwarm")[-1].body == {"on": True, "max_minutes": 480}
    finally:
        stack.close()
