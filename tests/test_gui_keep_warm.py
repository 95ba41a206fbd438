"""Keep-warm end to end: the real window → POST /keepwarm through the local cloud's API Gateway emulation → the router
→ the queue → the real watcher process on the emulated GPU, which holds its idle timer. A "minute" is shortened to
half a second (`--minute-seconds`), for the watcher's idle timer and keep-warm's maximum lifetime alike; the app
talks HTTP only, and what is asserted is the GPU's behaviour as /ping reports it."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from app.timings import Timings
from app.controllers.keep_warm_controller import ENDED_MESSAGE
from app.models.settings import Settings
from app.services.endpoints import FixedEndpoint
from support.app_harness import GuiDriver, Recorder
from support.local_cloud import RELAXED_THROTTLE
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.e2e, pytest.mark.timeout(120)]

MINUTE_S = 0.5
# Polls kept well under the API's 5 requests/s per user.
TIMINGS = Timings(ping_interval_s=0.5, ping_starting_s=0.5, ping_after_stop_s=0.5, cost_interval_s=5.0,
                  result_poll_start_s=0.05, result_poll_cap_s=0.3)


def ask(d: GuiDriver, prompt: str) -> None:
    done = len(d.recorder.of("job.done"))
    d.type(d.window.prompt.prompt_box, prompt)
    d.send_with_ctrl_enter()
    d.until(lambda: len(d.recorder.of("job.done")) > done or d.recorder.of("job.failed"), 40, "the answer")
    assert not d.recorder.of("job.failed"), d.recorder.of("job.failed")


def test_keep_warm_holds_the_gpu_past_its_idle_time_until_off_or_the_maximum_lifetime(gui, local_cloud_factory):
    cloud = local_cloud_factory("--boot-seconds", "1", "--minute-seconds", str(MINUTE_S), *RELAXED_THROTTLE)
    token = cloud.token(user="keep-warm-observer")
    settings = Settings(idle=2, keep_warm_max_minutes=60)  # idle: 1 s after a job; keep-warm: at most 30 s
    d = gui(settings=settings, endpoints=FixedEndpoint(cloud.endpoint()), timings=TIMINGS)
    shown = Recorder(d.app.bus, ["gpu.keep_warm"])
    toggle, status = d.window.toolbar.keep_warm, d.window.status.gpu_label
    d.until(lambda: status["text"] == "GPU stopped", 30, "signed in, GPU stopped")

    # 1. On, then a prompt: the GPU stays up well past its idle time; off: it stops after the idle time.
    toggle.invoke()
    d.until(lambda: shown.of("gpu.keep_warm") and toggle.instate(["selected", "!disabled"]), 10, "keep warm on")
    assert any(line.get("routeKey") == "POST /keepwarm" and line.get("status") == "200"
               for line in cloud.access_log), "the request went through the API"
    ask(d, "stay warm")
    d.until(lambda: status["text"].startswith("GPU ready · kept warm until"), 10, "kept warm")
    time.sleep(6 * 2 * MINUTE_S)  # six idle periods: without keep-warm the GPU would have stopped long ago
    assert cloud.gpu_state(token) == "ready"
    toggle.invoke()
    d.until(lambda: toggle.instate(["!selected", "!disabled"]), 10, "keep warm off")
    off_at = time.monotonic()
    d.until(lambda: status["text"] == "GPU stopped", 20, "the idle stop after keep-warm went off")
    assert time.monotonic() - off_at < 15
    assert cloud.state()  # the cloud still runs

    # 2. A long idle time, a short maximum lifetime: the GPU stops at the maximum lifetime, the toggle goes off.
    d.app.store.current = replace(d.app.store.current, idle=30, keep_warm_max_minutes=8)  # 15 s idle, 4 s max
    ask(d, "one more")
    d.until(lambda: status["text"].startswith("GPU ready"), 10, "ready")
    toggle.invoke()
    d.until(lambda: toggle.instate(["selected", "!disabled"]), 10, "keep warm on again")
    until_s = shown.of("gpu.keep_warm")[-1]["until_ms"] / 1000
    assert 0 < until_s - time.time() <= 8 * MINUTE_S
    d.until(lambda: status["text"] in ("GPU stopping…", "GPU stopped"), 20, "the maximum lifetime stop")
    stopped_at = time.time()  # as /ping (polled every 0.5 s) first said so
    assert stopped_at >= until_s - 0.3, "held until the maximum lifetime"
    assert stopped_at < until_s + 10, "stopped by the maximum lifetime, not by the 15 s idle timer"
    d.until(lambda: toggle.instate(["!selected"]) and shown.of("gpu.keep_warm")[-1]["message"] == ENDED_MESSAGE,
            10, "the toggle goes off by itself")
    d.until(lambda: status["text"] == "GPU stopped", 15, "stopped")
    assert "keep-warm maximum lifetime reached: stopping" in cloud.log_text()
