"""Regenerate, edit, branch and prompts that wait, in the real window under Xvfb (real key events and clicks), on a
local cloud whose watcher runs its vLLM engine against a server speaking the OpenAI protocol: what that server
received is what the app sent through the whole cloud (history included), and its reply can change between
answers, so alternatives differ on screen."""
from __future__ import annotations

import pytest

from app.models.settings import Settings
from app.services.endpoints import FixedEndpoint
from app.timings import Timings
from app.views.prompt_panel import EDIT_HINT
from support.app_harness import GuiDriver
from support.fake_openai import FakeOpenAI
from support.local_cloud import RELAXED_THROTTLE, CloudProcess
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.e2e, pytest.mark.timeout(120)]

TIMINGS = Timings(ping_interval_s=2.0, ping_starting_s=0.5, cost_interval_s=5.0, result_poll_start_s=0.05,
                  result_poll_cap_s=0.2, progress_min_interval_s=0.05)


@pytest.fixture(scope="module")
def engine():
    with FakeOpenAI(reply="First answer.") as srv:
        yield srv


@pytest.fixture(scope="module")
def cloud(engine, tmp_path_factory):
    # The app polls at test speed here; the per-user limit is not under test in this module, so it is raised.
    cloud = CloudProcess.start(["--boot-seconds", "0.5", "--engine", engine.base_url, "--user-rps", "1000",
                                *RELAXED_THROTTLE],
                               tmp_path_factory.mktemp("branches-cloud"))
    yield cloud
    cloud.stop()


@pytest.fixture
def d(gui, cloud, engine) -> GuiDriver:
    engine.reply, engine.chunk_delay = "First answer.", 0.0
    return gui(settings=Settings(), endpoints=FixedEndpoint(cloud.endpoint()), timings=TIMINGS)


def pane_text(d: GuiDriver) -> str:
    return d.window.output.get("1.0", "end")


def prompts_sent(engine) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in engine.chat_requests]


def wait_answer(d: GuiDriver, before: int) -> str:
    """Wait for the next job.done after `before` of them and for the window to show it rendered; its id."""
    d.until(lambda: len(d.recorder.of("job.done")) > before, timeout=30, what="the answer")
    rid = d.recorder.of("job.done")[-1]["request_id"]
    d.until(lambda: rid in d.window.output.rendered, timeout=30, what="its rendering")
    d.update(0.05)
    return rid


def test_regenerate_keeps_every_answer_and_the_one_shown_is_the_context(d, engine):
    out = d.window.output
    d.ask("Tell me a joke")
    assert out.regenerate_btn is not None and out.regenerate_btn.winfo_ismapped()
    first_id = d.recorder.of("job.done")[0]["request_id"]
    assert {str(w.cget("font")) for w in (out.regenerate_btn, out.controls[first_id].edit_btn,
                                          out.answer_copy_buttons[first_id])} == {"TkSmallCaptionFont"}, \
        "the pane's buttons are in the small caption font (from the option database)"
    assert int(out.regenerate_btn["takefocus"]) == 1, "Tab reaches it"

    engine.reply = "Second answer."
    before = len(d.recorder.of("job.done"))
    out.regenerate_btn.invoke()
    second = wait_answer(d, before)
    assert "Second answer." in pane_text(d) and "First answer." not in pane_text(d)
    controls = out.controls[second]
    assert controls.label["text"] == "2/2" and str(controls.next_btn["state"]) == "disabled"

    engine.reply = "Third answer."
    before = len(d.recorder.of("job.done"))
    d.window.prompt.prompt_box.focus_force()
    d.window.prompt.prompt_box.event_generate("<Control-r>")  # the keyboard way
    third = wait_answer(d, before)
    assert out.controls[third].label["text"] == "3/3" and "Third answer." in pane_text(d)
    alone = [{"role": "user", "content": "Tell me a joke"}]
    assert [r.body["messages"] for r in engine.chat_requests][-2:] == [alone, alone]

    out.controls[third].prev_btn.invoke()
    d.until(lambda: second in out.controls and "Second answer." in pane_text(d), what="the previous alternative")
    assert out.controls[second].label["text"] == "2/3"
    out.controls[second].prev_btn.invoke()
    d.until(lambda: "First answer." in pane_text(d), what="the first alternative shown")
    assert out.controls[first_id].label["text"] == "1/3" and str(out.controls[first_id].prev_btn["state"]) == "disabled"
    assert "Third answer." not in pane_text(d)

    engine.reply = "A follow-up."
    d.ask("Another one?")
    assert engine.chat_requests[-1].body["messages"] == [
        {"role": "user", "content": "Tell me a joke"}, {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Another one?"}], "the alternative shown is what the model sees"


def test_edit_brings_the_prompt_back_and_sending_it_starts_a_branch(d, engine):
    out, prompt = d.window.output, d.window.prompt
    a, b = d.ask("Alpha"), d.ask("Bravo")
    d.ask("Charlie")
    d.type(prompt.prompt_box, "my draft")
    out.controls[b].edit_btn.invoke()
    d.update()
    assert prompt.prompt_box.get("1.0", "end-1c") == "Bravo" and prompt.hint["text"] == EDIT_HINT
    prompt.prompt_box.event_generate("<Escape>")
    d.update()
    assert prompt.prompt_box.get("1.0", "end-1c") == "my draft", "Esc gives the draft back"
    assert prompt.branch_of == ""

    out.controls[b].edit_btn.invoke()
    d.update()
    prompt.prompt_box.mark_set("insert", "end")
    d.type(prompt.prompt_box, " two")
    engine.reply = "Bravo two, answered."
    before = len(d.recorder.of("job.done"))
    d.send_with_ctrl_enter()
    edited = wait_answer(d, before)
    assert engine.chat_requests[-1].body["messages"] == [
        {"role": "user", "content": "Alpha"}, {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Bravo two"}], "sent with the turns before the edited prompt only"
    text = pane_text(d)
    assert "Bravo two" in text and "Charlie" not in text, "the new branch, from the edit on"
    assert out.controls[edited].label["text"] == "2/2"
    assert prompt.prompt_box.get("1.0", "end-1c") == "my draft", "the draft is back once the edit went"

    out.controls[edited].prev_btn.invoke()
    d.until(lambda: "Charlie" in pane_text(d), what="the old branch with its later turns")
    assert "Bravo two" not in pane_text(d) and out.controls[b].label["text"] == "1/2"
    assert a in out.controls and out.controls[a].label is None, "an exchange without alternatives has no ‹ ›"


def test_a_prompt_sent_while_an_answer_streams_waits_and_can_be_withdrawn(d, engine):
    engine.reply = " ".join(f"word{i}" for i in range(40))
    engine.chunk_delay = 0.05  # about two seconds of streaming
    first = d.send("Stream a long answer")
    d.until(lambda: d.recorder.of("job.progress"), timeout=30, what="the answer streaming")
    assert str(d.window.prompt.send_btn["state"]) != "disabled", "Send stays available while an answer comes"
    d.type(d.window.prompt.prompt_box, "Next question")
    d.send_with_ctrl_enter()
    d.type(d.window.prompt.prompt_box, "Never mind")
    d.send_with_ctrl_enter()
    d.update()
    waiting = d.window.waiting
    assert waiting.winfo_ismapped() and len(waiting.texts()) == 2
    assert waiting.texts()[0].endswith("Next question") and waiting.texts()[1].endswith("Never mind")
    assert d.window.prompt.prompt_box.get("1.0", "end-1c") == "", "the box is free for the next prompt"
    assert not d.ended(first), "still streaming"
    list(waiting.rows.values())[1].withdraw_btn.invoke()
    d.update()
    assert len(waiting.texts()) == 1

    engine.chunk_delay = 0.0
    d.until(lambda: len(d.recorder.of("job.done")) == 2, timeout=60, what="both answers")
    d.update(0.1)
    assert [s["prompt"] for s in d.recorder.of("job.submitted")] == ["Stream a long answer", "Next question"]
    assert prompts_sent(engine)[-2:] == ["Stream a long answer", "Next question"]
    assert "Never mind" not in prompts_sent(engine), "a withdrawn prompt is never sent"
    assert not waiting.rows and not waiting.winfo_ismapped()
    assert engine.chat_requests[-1].body["messages"][1]["content"] == engine.reply, \
        "the waiting prompt went with the answer it waited for"
