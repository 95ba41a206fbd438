"""The cold-start bridge in the real window under Xvfb, with the real local cloud (its GPU stopped: /infer says
starting, the instance boots) and the fake OpenAI server at the OpenAI edge: the bridge's answer shows at once,
labelled with what answered and its cost; when TinyLlama's answer comes, ‹ › switch between the two; once the GPU is
up the next prompt goes to TinyLlama alone; with the setting at `nothing` OpenAI hears nothing; a failing bridge does
not hold TinyLlama's answer."""
from __future__ import annotations

from dataclasses import replace

import pytest

from app.models.settings import Settings
from app.timings import Timings
from app.views.bridge_view import BRIDGE, TINYLLAMA
from support.fake_openai import FakeOpenAI
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]

TIMINGS = Timings(retry_delays=(0.05, 0.1, 0.2), cold_start_retry_s=0.2, result_poll_start_s=0.02,
                  result_poll_cap_s=0.1, ping_interval_s=0.5, ping_starting_s=0.2, ping_after_stop_s=0.1,
                  cost_interval_s=1.0)
KEY = "sk-bridge-test"
BRIDGE_REPLY = "A quick answer from the bridge"


def make(gui, api, srv, bridge: str, **changes):
    settings = replace(Settings(), openai_base_url=srv.base_url, openai_model="gpt-4o-mini", bridge=bridge,
                       **changes)
    return gui(settings=settings, endpoints=api.endpoints(), timings=TIMINGS, env={"OPENAI_API_KEY": KEY})


def bridge_calls(srv) -> int:
    return len([r for r in srv.requests if r.path.endswith("/chat/completions")])


def test_openai_answers_while_the_gpu_starts_and_the_two_answers_switch(gui, api):
    api.stop_gpu()
    with FakeOpenAI(reply=BRIDGE_REPLY, api_key=KEY) as srv:
        d = make(gui, api, srv, "openai")
        view = d.window.bridge_view
        rid = d.send("why is the sky blue")
        d.until(lambda: rid in view.labels, timeout=20, what="the bridge's answer")
        assert not d.ended(rid), "shown while TinyLlama still waits for the GPU"
        assert view.shown_text(rid) == BRIDGE_REPLY
        shown = d.window.output.get("1.0", "end")
        assert "⚡ OpenAI gpt-4o-mini, while the GPU starts · $" in shown, shown
        d.until(lambda: d.ended(rid), timeout=60, what="TinyLlama's answer")
        d.until(lambda: rid in view.switches, what="the switch")
        d.update()
        switch = view.switches[rid]
        assert switch.label["text"] == "2/2 TinyLlama" and view.shown_text(rid) == api.reply("why is the sky blue")
        assert int(switch.prev_btn["takefocus"]) == 1 and switch.prev_btn["text"] == "‹"  # Tab reaches it
        switch.prev_btn.invoke()
        d.until(lambda: rid in d.window.output.rendered, what="TinyLlama's answer rendered")
        d.update()
        assert switch.shown == BRIDGE and switch.label["text"] == "1/2 OpenAI gpt-4o-mini"
        shown = d.window.output.count(f"a0_{rid}", f"a1_{rid}", "displaychars")
        assert not shown, f"{shown} chars of TinyLlama's rendered answer still shown beside the bridge's"
        assert view.shown_text(rid) == BRIDGE_REPLY
        assert d.window.output.tag_cget(f"tl_{rid}", "elide") in (1, "1", True)
        switch.next_btn.invoke()
        assert switch.shown == TINYLLAMA
        assert bridge_calls(srv) == 1

        d.until(lambda: api.gpu_state() == "ready", timeout=30, what="the GPU up")
        rid2 = d.ask("and now?")
        d.update(0.3)
        assert rid2 not in view.labels and bridge_calls(srv) == 1, "a ready GPU answers alone"

        api.stop_gpu()  # cold again: the bridge gets the chat's earlier turns, as TinyLlama does
        rid3 = d.send("one more")
        d.until(lambda: rid3 in view.labels, timeout=20, what="the bridge again")
        body = [r for r in srv.requests if r.path.endswith("/chat/completions")][-1].body
        said = [(m["role"], m["content"]) for m in body["messages"]]
        assert ("user", "why is the sky blue") in said and ("assistant", api.reply("why is the sky blue")) in said
        assert said[-1] == ("user", "one more")
        d.until(lambda: d.ended(rid3), timeout=60, what="TinyLlama's third answer")


def test_nothing_is_sent_to_openai_unless_chosen(gui, api):
    api.stop_gpu()
    with FakeOpenAI(reply=BRIDGE_REPLY, api_key=KEY) as srv:
        d = make(gui, api, srv, "nothing")
        rid = d.ask("cold start, no bridge", timeout=60)
        assert d.recorder.of("job.done")[-1]["request_id"] == rid
        assert bridge_calls(srv) == 0 and not d.window.bridge_view.labels


def test_a_failing_bridge_never_holds_the_tinyllama_answer(gui, api):
    api.stop_gpu()
    with FakeOpenAI(reply=BRIDGE_REPLY, api_key=KEY, status=500) as srv:
        d = make(gui, api, srv, "local", bridge_url=srv.base_url, bridge_model="tinyllama")
        rid = d.send("bridge down")
        d.until(lambda: "could not answer while the GPU starts" in d.window.output.get("1.0", "end"), timeout=30,
                what="the bridge's failure shown")
        d.until(lambda: d.ended(rid), timeout=60, what="TinyLlama's answer all the same")
        assert d.recorder.of("job.done")[-1]["request_id"] == rid
        assert "⚡ Local model tinyllama could not answer" in d.window.output.get("1.0", "end")


def test_the_bridge_is_picked_in_the_toolbar_and_saved(gui, api, home):
    from app.services import config_file

    with FakeOpenAI(reply=BRIDGE_REPLY, api_key=KEY) as srv:
        d = make(gui, api, srv, "nothing")
        box = d.window.toolbar.bridge_box
        assert box.get() == "nothing"
        box.set("OpenAI")
        box.event_generate("<<ComboboxSelected>>")
        d.update()
        assert d.app.store.current.bridge == "openai" and config_file.load().settings.bridge == "openai"
        box.set("local model")
        box.event_generate("<<ComboboxSelected>>")
        d.update()
        assert config_file.load().settings.bridge == "local"
