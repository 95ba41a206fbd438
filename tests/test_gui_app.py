"""The real Tk window under Xvfb, driven with real key events: every RQL 1.1 widget, both backends, restarts.
The AWS backend talks to the session's local cloud through the fault proxy (the embedded local cloud the app starts
itself is test_gui_local_cloud.py)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.backends.aws import COLD_START_MESSAGE
from app.timings import Timings
from app.models.settings import Settings
from app.services import config_file
from app.views import styles
from support.app_harness import GuiDriver
from support.fake_openai import FakeOpenAI
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]

TIMINGS = Timings(retry_delays=(0.05, 0.1, 0.2), cold_start_retry_s=0.2, result_poll_start_s=0.02,
                  result_poll_cap_s=0.1, ping_interval_s=0.5, ping_starting_s=0.2, ping_after_stop_s=0.1,
                  cost_interval_s=0.3)


SECOND_LINE = "second line " + " ".join(f"w{i}" for i in range(30))  # the echo engine: 20 ms a word


@pytest.fixture
def gui(gui, api):
    return lambda **kwargs: gui(**{"endpoints": api.endpoints(), "timings": TIMINGS, **kwargs})


def files_under(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


def assert_no_token_on_disk(home: Path, tokens: list[str]) -> None:
    assert tokens
    for path in files_under(home):
        content = path.read_bytes()
        for token in tokens:
            assert token.encode() not in content, f"a token was written to {path}"


def ask_and_watch(d: GuiDriver, text: str, timeout: float = 15.0) -> tuple[str, list[str]]:
    """Type a prompt, Ctrl+Enter, check SendBtn spins and Stop is on, collect the answer as it grows until done."""
    d.type(d.window.prompt.prompt_box, text)
    d.send_with_ctrl_enter()  # the binding runs at once; outcomes from workers wait for the pump (root.update)
    assert d.recorder.of("job.submitted"), "Ctrl+Enter sent the prompt"
    rid = d.last_request_id()
    prompt = d.window.prompt
    assert prompt.send_btn["text"].startswith("Sending") and prompt.stop_btn.instate(["!disabled"]), \
        "SendBtn spins while in flight (a prompt sent then waits for the answer), Stop is on"
    seen: list[str] = []

    def finished():
        shown = d.window.output.answer_text(rid)
        if shown and (not seen or seen[-1] != shown):
            seen.append(shown)
        return any(m["request_id"] == rid for m in d.recorder.of("job.done") + d.recorder.of("job.failed"))

    d.until(finished, timeout, "the answer")
    d.update()
    assert prompt.send_btn["text"] == "Send" and prompt.stop_btn.instate(["disabled"]), "SendBtn is back to Send"
    return rid, seen


def test_the_window_and_its_widgets(gui):
    d = gui()
    w = d.window
    assert d.top.title() == "TL-FIF"
    assert d.top.focus_lastfor() is w.prompt.prompt_box, "the PromptBox has the focus at start"
    assert int(w.prompt.prompt_box["height"]) == 5
    assert w.prompt.send_btn["style"] == styles.SEND_STYLE and w.toolbar.stop_btn["style"] == styles.STOP_STYLE
    assert str(w.output["state"]) == "disabled", "the OutputPane is read-only"
    assert w.toolbar.backend_var.get() == "AWS TinyLlama"
    assert list(w.toolbar.backend_box["values"]) == ["AWS TinyLlama", "OpenAI"]
    assert w.toolbar.idle_var.get() == "5"
    assert (float(w.toolbar.idle_spin["from"]), float(w.toolbar.idle_spin["to"])) == (1.0, 30.0)
    d.until(lambda: w.toolbar.cost_label["text"].startswith("Cost: Month —"), what="the cost label")


def test_closing_cancels_the_pump_and_the_pollers(gui):
    d = gui()
    pump = d.app.pump
    assert pump.running
    after_id = pump._after_id
    d.close()
    assert not pump.running
    pending = d.root.tk.splitlist(d.root.tk.call("after", "info"))
    assert after_id not in pending
    assert not d.app.gpu.poller._thread.is_alive() and not d.app.cost.poller._thread.is_alive()


def test_prompt_on_aws_answer_grows_with_latency_and_no_token_on_disk(gui, api, home):
    d = gui()
    box = d.window.prompt.prompt_box
    d.type(box, f"Hello GPU\n{SECOND_LINE}")
    assert box.get("1.0", "end-1c") == f"Hello GPU\n{SECOND_LINE}", "Enter makes a newline, it does not send"
    assert not d.recorder.of("job.submitted")
    rid, seen = ask_and_watch(d, "")
    expected = api.reply(f"Hello GPU\n{SECOND_LINE}")
    assert len(seen) >= 3 and seen[-1] == expected, seen
    assert all(b.startswith(a) for a, b in zip(seen, seen[1:], strict=False)), "the answer grows in place"
    out = d.window.output.get("1.0", "end")
    assert "You → AWS TinyLlama" in out and f"Hello GPU\n{SECOND_LINE}" in out
    assert " · total " in d.window.output.meta_text(rid)  # the stats line (TTFT · tok/s · … · cost)
    assert box.get("1.0", "end-1c") == ""
    assert api.calls_to("POST", "/infer")[0].auth.startswith("Bearer ")
    assert_no_token_on_disk(home, api.issued())


def test_empty_prompt_shows_a_hint_and_sends_nothing(gui, api):
    d = gui()
    d.send_with_ctrl_enter()
    d.update()
    hint = d.window.prompt.hint
    assert hint["text"].startswith("Type a prompt first") and str(hint["style"]) == styles.HINT_STYLE
    assert hint.winfo_ismapped()
    assert not api.calls_to("POST", "/infer") and not d.recorder.of("job.submitted")


def test_switching_backend_mid_session_with_the_key_dialog(gui, api, home):
    with FakeOpenAI(reply="Streaming from the OpenAI side of things", chunk_delay=0.02,
                    api_key="sk-typed-in-dialog") as srv:
        d = gui(settings=replace(Settings(), openai_base_url=srv.base_url, openai_model="gpt-test"))
        ask_and_watch(d, "first to aws")
        toolbar = d.window.toolbar
        toolbar.backend_var.set("OpenAI")
        toolbar.backend_box.event_generate("<<ComboboxSelected>>")
        d.update()
        assert config_file.load().settings.backend == "openai"
        d.type(d.window.prompt.prompt_box, "now openai")
        d.send_with_ctrl_enter()
        d.until(lambda: d.window.key_dialog is not None and d.window.key_dialog.winfo_exists(), what="key dialog")
        dialog = d.window.key_dialog
        d.type(dialog.entry, "sk-typed-in-dialog")
        dialog.ok_btn.invoke()
        d.until(lambda: d.recorder.of("job.done") and len(d.recorder.of("job.done")) == 2, what="openai answer")
        rid = d.last_request_id()
        assert d.recorder.of("job.done")[-1]["backend"] == "openai"
        assert d.window.output.answer_text(rid) == "Streaming from the OpenAI side of things"
        assert " · total " in d.window.output.meta_text(rid)
        assert "You → OpenAI" in d.window.output.get("1.0", "end")
        toolbar.backend_var.set("AWS TinyLlama")
        toolbar.backend_box.event_generate("<<ComboboxSelected>>")
        rid3, _ = ask_and_watch(d, "back to aws")
        assert d.recorder.of("job.done")[-1]["backend"] == "aws"
        assert config_file.load().settings.backend == "aws"
        assert_no_token_on_disk(home, api.issued() + ["sk-typed-in-dialog"])


def test_stop_gpu_shows_stopping_then_stopped(gui, api):
    api.ready_gpu()
    d = gui()
    status = d.window.status
    d.until(lambda: status.gpu_label["text"].startswith("GPU ready"), what="GPU ready")
    d.window.toolbar.stop_btn.invoke()
    d.update()
    assert status.gpu_label["text"] == "GPU stopping…"
    d.until(lambda: status.gpu_label["text"] == "GPU stopped", timeout=10, what="GPU stopped within 10 s")
    assert api.calls_to("POST", "/stop")


def test_idle_timeout_is_validated_saved_and_survives_a_restart(gui, api, home):
    d = gui()
    spin, hint = d.window.toolbar.idle_spin, d.window.toolbar.idle_hint
    spin.selection_range(0, "end")
    d.type(spin, "12")
    spin.event_generate("<Return>")
    d.update()
    assert config_file.load().settings.idle == 12
    spin.selection_range(0, "end")
    d.type(spin, "45")
    spin.event_generate("<Return>")
    d.update()
    assert hint["text"] == "Idle timeout must be from 1 to 30 minutes" and hint.winfo_ismapped()
    assert d.window.toolbar.idle_var.get() == "12", "the refused value is replaced by the one in force"
    spin.selection_range(0, "end")
    d.type(spin, "abc")
    spin.event_generate("<Return>")
    d.update()
    assert "whole number" in hint["text"]
    assert config_file.load().settings.idle == 12, "a refused value is never saved"
    d.close()
    again = gui()
    assert again.window.toolbar.idle_var.get() == "12"
    ask_and_watch(again, "idle check")
    assert api.calls_to("POST", "/infer")[-1].body["idle"] == 12


def test_cold_start_shows_progress_and_pauses_cost(gui, api):
    api.stop_gpu()
    api.set_month_cost(2.5, [2.5])
    d = gui()
    status, cost = d.window.status, d.window.toolbar.cost_label
    d.until(lambda: cost["text"].startswith("Cost: Month €2.50"), what="cost shown")
    eta = api.cold_start_eta()
    d.type(d.window.prompt.prompt_box, "wake up")
    d.send_with_ctrl_enter()
    d.until(lambda: status.gpu_label["text"].startswith("GPU starting"), what="starting")
    rid = d.last_request_id()
    d.until(lambda: d.window.output.meta_text(rid).startswith(f"GPU starting (~{eta} s)"),
            what="pane says starting")
    d.until(lambda: status.progress.winfo_ismapped() and float(status.progress["value"]) > 20, what="progress")
    assert str(status.progress["mode"]) == "determinate"
    assert cost["text"].endswith("(paused while the GPU starts)")
    d.until(lambda: d.recorder.of("job.done"), timeout=15, what="the answer after the boot")
    d.until(lambda: not status.progress.winfo_ismapped(), what="progress bar hidden when ready")
    d.until(lambda: "auto-stop in" in status.gpu_label["text"], what="idle countdown")
    d.until(lambda: not cost["text"].endswith("(paused while the GPU starts)"), what="cost polling resumed")


def test_502_retries_then_the_cold_start_message(gui, api):
    api.boot_gpu()
    api.fail("POST", "/infer", 502, 504, 502, 502, 502)
    d = gui()
    d.type(d.window.prompt.prompt_box, "are you there")
    d.send_with_ctrl_enter()
    d.update()
    rid = d.last_request_id()
    d.until(lambda: d.window.status.notice["text"] == COLD_START_MESSAGE, what="the cold-start message")
    assert d.window.output.meta_text(rid) == COLD_START_MESSAGE
    d.until(lambda: d.recorder.of("job.done"), timeout=15, what="the answer")
    times = [c.t for c in api.calls_to("POST", "/infer")]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g >= want * 0.95 for g, want in zip(gaps, TIMINGS.retry_delays, strict=False)), gaps


def test_an_error_is_shown_in_the_pane_and_the_app_stays_usable(gui, api):
    api.fail("POST", "/infer", 400)
    d = gui()
    rid, _ = ask_and_watch(d, "bad one")
    assert d.window.output.meta_text(rid).startswith("[aws] the API refused the prompt")
    ask_and_watch(d, "good one")
    assert d.recorder.of("job.done")


def test_a_corrupt_settings_file_is_kept_aside_with_a_warning(gui, home):
    (home / ".tl-fif.ini").write_text("[app\nidle = five\n")
    d = gui()
    d.update(0.3)
    assert "was unreadable" in d.window.output.get("1.0", "end"), "the warning stays visible in the pane"
    assert list(home.glob(".tl-fif.ini.corrupt-*"))
    assert d.window.toolbar.idle_var.get() == "5"


def test_one_bad_value_falls_back_alone_and_the_aws_settings_stay(gui, home):
    ini = home / ".tl-fif.ini"
    ini.write_text("[app]\nidle = 99\nbackend = aws\nfuture_knob = on\n\n[aws]\nregion = eu-west-1\n")
    d = gui()
    d.update(0.3)
    shown = d.window.output.get("1.0", "end")
    assert "[app] idle = '99'" in shown, "the notice names the key and the value"
    assert ini.exists() and not list(home.glob(".tl-fif.ini.corrupt-*")), "only an unparseable file moves aside"
    assert d.window.toolbar.idle_var.get() == "5"
    assert "region = eu-west-1" in ini.read_text() and "future_knob = on" in ini.read_text()
