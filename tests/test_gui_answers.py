"""Answers in the real window under Xvfb: Stop generating end to end (Esc and the Stop button), the stats and cost
line under each answer, Markdown rendering and the Copy buttons.

Stop on AWS runs against the session's local cloud (router, Redis, watcher, echo engine) through the fault proxy: the
pane says stopped, the result object says `cancelled` with less than the whole echo, and the watcher logged closing
the engine stream.
Stop on OpenAI runs against the fake OpenAI server, which records that the client hung up before the end."""
from __future__ import annotations

import json
from dataclasses import replace
from tkinter import font as tkfont

import pytest

from app.timings import Timings
from app.models.settings import Settings
from app.services.endpoints import FixedEndpoint
from support.fake_openai import FakeOpenAI
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)
from tlfif_common import prices

pytestmark = [pytest.mark.gui, pytest.mark.timeout(90)]

FAST = Timings(result_poll_start_s=0.02, result_poll_cap_s=0.1, ping_interval_s=0.5, cost_interval_s=0.3)
# On the session's `local_cloud`, polls stay well under the API's 5 requests/s per user.
CLOUD = Timings(ping_interval_s=2.0, ping_starting_s=0.5, cost_interval_s=3.0, result_poll_start_s=0.05,
                result_poll_cap_s=0.3)
LONG = " ".join(f"w{i}" for i in range(200))
MARKDOWN_REPLY = ("## Result\nUse **pip** and *then* run `make test`:\n```sh\npip install tl-fif\nmake test\n```\n"
                  "- one\n- two")


@pytest.fixture
def gui(gui, api):
    return lambda **kwargs: gui(**{"settings": Settings(), "endpoints": api.endpoints(), "timings": FAST, **kwargs})


def tagged(pane, tag: str) -> list[str]:
    """The texts that carry `tag` in the pane."""
    ranges = pane.tag_ranges(tag)
    return [pane.get(ranges[i], ranges[i + 1]) for i in range(0, len(ranges), 2)]


def test_esc_stops_an_aws_answer_at_the_watcher(gui, api):
    api.ready_gpu()
    d = gui(timings=CLOUD)
    w = d.window
    assert w.prompt.stop_btn.instate(["disabled"]), "nothing in flight: Stop is disabled"
    prompt = "please repeat all of these words " + LONG  # 20 ms a word: time to stop the answer halfway
    rid = d.send(prompt)
    assert w.prompt.stop_btn.instate(["!disabled"]), "Stop is enabled while the request is in flight"
    d.until(lambda: len(w.output.answer_text(rid).split()) >= 4 or d.ended(rid), 60, "the answer growing")
    assert not d.ended(rid), "the echo finished before it could be stopped"

    w.prompt.prompt_box.focus_force()
    w.prompt.prompt_box.event_generate("<Escape>")
    d.update()
    assert w.prompt.stop_btn.instate(["disabled"]) and w.output.meta_text(rid) == "stopping…"
    d.until(lambda: d.app.exchanges.get(rid).status != "pending", 30, "the stop to come back")

    exchange = d.app.exchanges.get(rid)
    assert exchange.status == "stopped", exchange.error
    full_echo = api.reply(prompt)
    doc = api.result(api.calls_to("POST", "/infer")[0].answer["result_url"])
    assert doc["status"] == "cancelled", doc
    assert doc["text"] == exchange.text and 0 < len(doc["text"]) < len(full_echo)
    assert w.output.answer_text(rid) == doc["text"]
    meta = w.output.meta_text(rid)
    assert meta.startswith("stopped · TTFT ") and "echo engine · €0.00" in meta, meta  # local: free
    assert w.prompt.send_btn.instate(["!disabled"]) and w.prompt.stop_btn.instate(["disabled"])
    watcher_log = [json.loads(line) for line in api.cloud.log_text().splitlines() if line.startswith("{")]
    closed = [e for e in watcher_log if e.get("job_id") == doc["id"] and "closing the engine stream" in
              str(e.get("message") or e.get("msg") or "")]
    assert closed, "the watcher closed the engine stream for this job"


def test_the_stop_button_hangs_up_an_openai_stream(gui, api):
    with FakeOpenAI(reply=LONG, chunk_delay=0.03, model="gpt-4o-mini") as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model="gpt-4o-mini")
        d = gui(settings=settings, env={"OPENAI_API_KEY": "sk-test"})
        w = d.window
        rid = d.send("go on and on")
        d.until(lambda: len(w.output.answer_text(rid).split()) >= 4, 15, "the answer growing")
        w.prompt.stop_btn.invoke()
        d.until(lambda: d.app.exchanges.get(rid).status != "pending", 15, "the stop to come back")
        record = srv.wait_closed()
    assert record.client_closed and not record.completed
    exchange = d.app.exchanges.get(rid)
    assert exchange.status == "stopped" and LONG.startswith(exchange.text) and exchange.text != LONG
    assert w.output.answer_text(rid) == exchange.text
    assert w.output.meta_text(rid).startswith("stopped · TTFT ")
    assert w.prompt.send_btn.instate(["!disabled"]) and w.prompt.stop_btn.instate(["disabled"])


def test_aws_answer_is_rendered_with_stats_cost_and_copy_buttons(gui, api, root):
    d = gui(endpoints=api.endpoints(local=False))  # as a deployed stack: GPU time is billed
    w = d.window
    rid = d.ask("Reply:\n" + MARKDOWN_REPLY)  # the echo engine repeats it after its label
    out = w.output
    assert out.answer_text(rid) == (f"{api.reply('Reply:')}\nResult\nUse pip and then run make test:\nsh\n"
                                    "pip install tl-fif\nmake test\n• one\n• two")
    bold, code_block = tagged(out, "md_bold"), tagged(out, "md_code_block")
    assert "pip" in bold and code_block == ["pip install tl-fif\nmake test\n"]
    assert out.tag_ranges("md_h2") and out.tag_ranges("md_list1") and out.tag_ranges("md_italic")
    assert tkfont.Font(font=out.tag_cget("md_code_block", "font")).metrics("fixed"), "code is monospace"

    meta = out.meta_text(rid)
    stats = d.recorder.of("job.done")[-1]["stats"]
    assert meta.startswith("TTFT ") and " tok/s · " in meta and "GPU €" in meta and stats["cost_eur"] > 0, meta

    [code_copy] = out.code_copy_buttons[rid]
    code_copy.invoke()
    assert root.clipboard_get() == "pip install tl-fif\nmake test"
    out.answer_copy_buttons[rid].invoke()
    assert root.clipboard_get() == api.reply("Reply:\n" + MARKDOWN_REPLY)
    assert out.answer_copy_buttons[rid]["text"] == "Copied"


def test_local_cloud_answer_is_rendered_with_stats_cost_and_copy(gui, local_cloud, root):
    """The same on the local cloud: the echo engine repeats the Markdown it is sent; router and watcher between."""
    d = gui(endpoints=FixedEndpoint(local_cloud.endpoint()), timings=CLOUD)
    out = d.window.output
    rid = d.ask("Use **pip**:\n```sh\npip install tl-fif\n```\n- one", 60)
    done = d.recorder.of("job.done")[-1]
    assert done["request_id"] == rid and "You said: Use pip:" in out.answer_text(rid)
    assert "pip" in tagged(out, "md_bold") and tagged(out, "md_code_block") == ["pip install tl-fif\n"]
    meta = out.meta_text(rid)
    assert meta.startswith("TTFT ") and " tok/s · " in meta and "echo engine · €0.00" in meta, meta
    assert done["stats"]["cost_eur"] == 0  # the local cloud costs nothing
    [code_copy] = out.code_copy_buttons[rid]
    code_copy.invoke()
    assert root.clipboard_get() == "pip install tl-fif"


def test_openai_answer_shows_its_token_cost_or_cost_unknown(gui, api):
    with FakeOpenAI(reply="Short **answer**.", model="gpt-4o-mini") as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model="gpt-4o-mini")
        d = gui(settings=settings, env={"OPENAI_API_KEY": "sk-test"})
        w = d.window
        rid = d.ask("be brief")
        stats = d.recorder.of("job.done")[-1]["stats"]
        assert (stats["prompt_tokens"], stats["tokens"]) == (2, 2), "the usage the server reported"
        usd = prices.load().openai_cost_usd("gpt-4o-mini", prompt_tokens=2, completion_tokens=2)
        assert stats["cost_usd"] == pytest.approx(usd)
        meta = w.output.meta_text(rid)
        assert " · $0.0000" in meta and " (€0.0000" in meta, meta
        assert w.output.answer_text(rid) == "Short answer."

        srv.model = "my-local-llama"
        d.app.store.current = replace(d.app.store.current, openai_model="my-local-llama")
        rid2 = d.ask("and you")
        assert w.output.meta_text(rid2).endswith("cost unknown · my-local-llama")


RICH_REPLY = ("See [the docs](https://example.com/docs?x=1).\n\n| name | n |\n|:--|--:|\n| long name | 1 |\n"
              "| x | 22 |\n\n```python\ndef f():\n    return 'hi'\n```\n~~old~~")


def test_links_tables_and_highlighted_code_render_and_a_click_opens_the_browser(gui, api, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0, autoraise=True: opened.append(url) or True)
    d = gui()
    out = d.window.output
    rid = d.ask("Reply:\n" + RICH_REPLY)
    assert tagged(out, "md_link") == ["the docs"] and tagged(out, "md_strike") == ["old"]
    table = "".join(tagged(out, "md_table")).splitlines()
    assert table == ["name      │  n", "──────────┼───", "long name │  1", "x         │ 22"]
    assert tkfont.Font(font=out.tag_cget("md_table", "font")).metrics("fixed"), "tables are monospace"
    assert tagged(out, "md_tok_keyword") == ["def", "return"] and tagged(out, "md_tok_string") == ["'hi'"]
    assert out.tag_cget("md_tok_keyword", "foreground") != out.tag_cget("md_tok_string", "foreground")
    [code_copy] = out.code_copy_buttons[rid]
    code_copy.invoke()
    assert d.root.clipboard_get() == "def f():\n    return 'hi'"

    start = out.tag_ranges("md_link")[0]
    out.see(start)
    d.update(0.1)
    x, y, w, h = out.bbox(f"{start} + 2 chars")
    out.event_generate("<Motion>", x=x + 1, y=y + h // 2)
    out.event_generate("<Button-1>", x=x + 1, y=y + h // 2)
    d.until(lambda: opened, 5, "the browser opened")
    assert opened == ["https://example.com/docs?x=1"]


def test_only_web_and_mail_links_are_opened(gui, api, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0, autoraise=True: opened.append(url) or True)
    d = gui()
    d.app.bus.send("ui.open_link", url="ssh://attacker.example/x")
    d.app.bus.send("ui.open_link", url="mailto:someone@example.com")
    d.until(lambda: opened, 5, "the mail link opened")
    d.update(0.2)
    assert opened == ["mailto:someone@example.com"]
