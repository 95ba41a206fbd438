"""Models and the poller: decision logic tested without widgets."""
from __future__ import annotations

import threading
import time

import pytest

from app.controllers.poller import Poller
from app.models.cost import NO_COST, cost_text
from app.models.gpu import READY, STARTING, STOPPED, STOPPING, GpuModel, format_mm_ss
from app.models.prompt import EMPTY_PROMPT_HINT, check_prompt
from app.models.settings import check_idle


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_an_empty_prompt_is_refused_with_the_hint(text):
    with pytest.raises(ValueError, match="Type a prompt first"):
        check_prompt(text)
    assert "Ctrl+Enter" in EMPTY_PROMPT_HINT


def test_a_prompt_keeps_its_lines_and_loses_trailing_space():
    assert check_prompt("line one\n  line two\n\n") == "line one\n  line two"
    with pytest.raises(ValueError, match="32 KiB"):
        check_prompt("x" * (32 * 1024 + 1))


@pytest.mark.parametrize("value", ["0", "31", "abc", "", "5.5", "-3", True])
def test_idle_values_out_of_range_or_not_numbers_are_refused(value):
    with pytest.raises(ValueError):
        check_idle(value)


def test_gpu_boot_progress_moves_toward_the_eta_and_never_reaches_one_before_ready():
    gpu = GpuModel()
    assert gpu.apply_infer("starting", 90, now=100.0)
    assert gpu.state == STARTING and gpu.progress(100.0) == 0
    assert gpu.progress(145.0) == pytest.approx(0.5)
    assert gpu.progress(400.0) == 0.99
    assert gpu.text(145.0) == "GPU starting… 45 s of ~90 s"
    assert gpu.apply_ping("ready", 150.0) and gpu.progress(150.0) == -1


def test_the_eta_from_ping_replaces_the_built_in_one():
    gpu = GpuModel()
    assert gpu.apply_ping("pending", 10.0, eta_s=44)
    assert gpu.text(21.0) == "GPU starting… 11 s of ~44 s" and gpu.progress(32.0) == pytest.approx(0.5)
    gpu.apply_ping("pending", 22.0, eta_s=None)  # an older router sends none: the last one stands
    assert gpu.eta_s == 44


def test_ping_states_map_to_what_the_status_line_says():
    gpu = GpuModel()
    for raw, state in (("stopped", STOPPED), ("pending", STARTING), ("running", STARTING), ("ready", READY),
                       ("stopping", STOPPING)):
        gpu.apply_ping(raw, 1.0)
        assert gpu.state == state


def test_idle_countdown_runs_from_the_last_answer_while_ready():
    gpu = GpuModel()
    gpu.apply_ping("ready", 0.0)
    assert gpu.idle_left_s(10.0) == -1  # no job of ours yet: unknown
    gpu.apply_job_end(5, now=100.0)
    assert gpu.idle_left_s(160.0) == 240.0
    assert gpu.text(160.0) == "GPU ready · auto-stop in 4:00"
    assert gpu.idle_left_s(1000.0) == 0.0
    gpu.apply_ping("stopped", 1001.0)
    assert gpu.idle_left_s(1001.0) == -1


def test_after_stop_a_stale_ready_ping_is_ignored_then_stopped_wins():
    gpu = GpuModel()
    gpu.apply_ping("ready", 0.0)
    gpu.apply_stop_requested(10.0)
    assert gpu.state == STOPPING and gpu.text(10.0) == "GPU stopping…"
    assert not gpu.apply_ping("ready", 11.0)
    assert gpu.state == STOPPING
    assert gpu.apply_ping("stopped", 12.0) and gpu.text(12.0) == "GPU stopped"


def test_cost_label_text():
    assert cost_text(None) == NO_COST == "—"
    assert cost_text({}) == NO_COST
    assert cost_text({"month_to_date_eur": 3.456}) == "Month €3.46"
    assert cost_text({"month_to_date_eur": 3.4, "session_eur": 0.0421, "session_seconds": 125}) == \
        "Month €3.40 · GPU session €0.042 (02:05)"
    assert cost_text({"month_to_date_eur": "3"}) == "Month —"  # not a number: shown as unknown


def test_format_mm_ss():
    assert format_mm_ss(0) == "0:00" and format_mm_ss(299.6) == "5:00"


def test_poller_calls_periodically_pauses_resumes_and_stops():
    calls = []
    event = threading.Event()

    def call():
        calls.append(time.monotonic())
        event.set()

    poller = Poller("test", call, interval_s=0.02).start()
    try:
        assert event.wait(2)
        deadline = time.monotonic() + 2
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) >= 3
        poller.pause()
        time.sleep(0.05)
        paused_count = len(calls)
        time.sleep(0.1)
        assert len(calls) == paused_count
        poller.set_interval(30)
        poller.resume()  # polls at once on resume, then waits the (long) interval
        deadline = time.monotonic() + 2
        while len(calls) == paused_count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) == paused_count + 1
    finally:
        poller.stop()
    assert not poller._thread.is_alive()
