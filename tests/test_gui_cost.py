"""The real window under Xvfb: the CostLabel updates, pauses while the GPU cold-starts and resumes; a click opens the
daily-spend chart (bars inspected on the canvas by tag); the Keep-warm toggle next to Stop GPU. The AWS backend talks
to the session's local cloud through the fault proxy; the month's figures are published as the cost reporter does
(the keep-warm run with a shortened minute is test_gui_keep_warm.py)."""
from __future__ import annotations

import re
import time
import tkinter as tk
from datetime import date

import pytest

from app.timings import Timings
from app.models.gpu import format_clock
from app.models.settings import Settings
from app.views.cost_label import PAUSED_SUFFIX
from support.app_harness import Recorder
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]

TIMINGS = Timings(retry_delays=(0.05, 0.1, 0.2), cold_start_retry_s=0.2, result_poll_start_s=0.02,
                  result_poll_cap_s=0.1, ping_interval_s=0.5, ping_starting_s=0.2, ping_after_stop_s=0.1,
                  cost_interval_s=0.3)


SESSION = r" · GPU session €\d+\.\d{3} \(\d\d:\d\d\)"  # the GPU time of the running session, as /cost counts it


@pytest.fixture
def gui(gui, api):
    return lambda **kwargs: gui(**{"settings": Settings(), "endpoints": api.endpoints(), "timings": TIMINGS,
                                   **kwargs})


def test_cost_label_updates_pauses_during_the_cold_start_and_resumes(gui, api):
    api.stop_gpu()
    d = gui()
    label = d.window.toolbar.cost_label
    d.until(lambda: label["text"] == "Cost: Month — · GPU session €0.000 (00:00)", what="first figures")
    api.set_month_cost(1.25, [0.5, 0.75])
    d.until(lambda: label["text"] == "Cost: Month €1.25 · GPU session €0.000 (00:00)", what="the label moves")
    assert label.winfo_width() >= label.winfo_reqwidth(), "the whole text is shown"

    d.type(d.window.prompt.prompt_box, "wake up")
    d.send_with_ctrl_enter()
    d.until(lambda: label["text"].endswith(PAUSED_SUFFIX), what="paused while the GPU starts")
    d.update()
    assert label.winfo_width() >= label.winfo_reqwidth(), "with its pause note too"
    paused_at = time.monotonic()
    assert d.app.cost.paused
    api.set_month_cost(1.5, [0.5, 0.75, 0.25])  # what a poll would now show
    d.until(lambda: not label["text"].endswith(PAUSED_SUFFIX), timeout=15, what="resumed when the GPU is up")
    resumed_at = time.monotonic()
    assert resumed_at - paused_at > 1.0, "the boot took a while"
    during = [c for c in api.calls_to("GET", "/cost") if paused_at + 0.5 < c.t < resumed_at - 0.1]
    assert during == [], f"no /cost call while paused: {[c.t - paused_at for c in during]}"
    d.until(lambda: re.fullmatch(f"Cost: Month €1.50{SESSION}", label["text"]), what="fresh figures at once")
    d.until(lambda: d.recorder.of("job.done"), what="the answer")


def test_clicking_the_cost_label_opens_the_daily_spend_chart(gui, api):
    days = api.set_month_cost(1.25, [0.12, 0.0, 0.4, 0.25])
    d = gui()
    label = d.window.toolbar.cost_label
    d.until(lambda: "Month €1.25" in label["text"], what="cost shown")
    label.event_generate("<Button-1>", x=4, y=4)
    d.update(0.05)
    chart = label.chart
    assert chart is not None and chart.alive and chart.top.winfo_ismapped()
    canvas = chart.canvas
    bars = canvas.find_withtag("bar")
    assert len(bars) == 4, "one bar per day"
    heights = [canvas.coords(b)[3] - canvas.coords(b)[1] for b in bars]
    assert heights[2] == max(heights) and heights[1] == 0 and heights[0] < heights[3] < heights[2]
    assert canvas.find_withtag(f"day-{days[2]['date']}") == (bars[2],)
    assert [canvas.itemcget(i, "text") for i in canvas.find_withtag("xlabel")] == ["1", "2", "3", "4"]
    ticks = [canvas.itemcget(i, "text") for i in canvas.find_withtag("ytick")]
    assert ticks[0] == "€0.0" and ticks[-1] == "€0.5"
    assert canvas.itemcget(canvas.find_withtag("total")[0], "text") == "Month to date €1.25"
    title = f"Daily spend, {date.fromisoformat(days[0]['date']):%B %Y}"
    assert canvas.itemcget(canvas.find_withtag("title")[0], "text") == title
    assert canvas.find_withtag("axis") and not canvas.find_withtag("empty")
    assert chart.forecast_label["text"].startswith("Month-end forecast €")  # the model's text, shown
    assert chart.forecast_label["text"] == chart.forecast.text() and chart.forecast.month_to_date == 1.25

    api.set_month_cost(1.25, [0.12, 0.0, 0.4, 0.25, 0.3])  # a new day reported while the chart is open
    d.until(lambda: len(canvas.find_withtag("bar")) == 5, what="the open chart redraws with the new day")
    label.event_generate("<Button-1>", x=4, y=4)  # a second click raises the same window
    d.update(0.05)
    assert label.chart is chart
    chart.top.focus_force()
    d.update(0.05)
    chart.top.event_generate("<Escape>")  # Escape closes it
    d.update(0.05)
    assert not chart.alive


def test_the_chart_says_no_data_yet(gui, api):
    d = gui()  # the cost reporter has not reported this month
    label = d.window.toolbar.cost_label
    d.until(lambda: "Month —" in label["text"], what="cost shown")
    label.event_generate("<Button-1>", x=4, y=4)
    d.update(0.05)
    canvas = label.chart.canvas
    assert canvas.find_withtag("bar") == ()
    assert [canvas.itemcget(i, "text") for i in canvas.find_withtag("empty")][0] == "No data yet"
    label.chart.close()


def test_keep_warm_toggle_sits_by_stop_gpu_and_is_for_the_gpu_backend_only(gui, api):
    api.set_month_cost(1234.56, [0.5])
    api.ready_gpu()
    d = gui(settings=Settings(keep_warm_max_minutes=90))
    bar, toggle = d.window.toolbar, d.window.toolbar.keep_warm
    d.until(lambda: re.fullmatch(f"Cost: Month €1234.56{SESSION}", bar.cost_label["text"]), what="a long cost text")
    assert isinstance(toggle, tk.ttk.Checkbutton) and toggle["text"] == "Keep warm (max 1 h 30 min)"
    assert toggle.master is bar.stop_btn.master and toggle.winfo_ismapped()
    for widget in (toggle, bar.stop_btn, bar.cost_label):  # nothing squeezed out beside the chat sidebar
        assert widget.winfo_ismapped() and widget.winfo_width() >= widget.winfo_reqwidth(), widget
    gap = bar.stop_btn.winfo_x() - (toggle.winfo_x() + toggle.winfo_width())
    assert 0 <= gap <= 12, "right next to Stop GPU"
    status = d.window.status.gpu_label
    d.until(lambda: status["text"].startswith("GPU ready"), what="ready")
    shown = Recorder(d.app.bus, ["gpu.keep_warm"])

    toggle.invoke()
    assert toggle.instate(["disabled"]), "disabled while its request is in flight"
    d.until(lambda: shown.of("gpu.keep_warm"), what="the answer")
    until = api.keep_warm_until()
    assert until and toggle.instate(["selected", "!disabled"])
    assert api.calls_to("POST", "/keepwarm")[-1].body == {"on": True, "max_minutes": 90}
    d.until(lambda: status["text"] == f"GPU ready · kept warm until {format_clock(until)}", what="kept warm")

    bar.backend_var.set("OpenAI")
    bar.backend_box.event_generate("<<ComboboxSelected>>")
    d.until(lambda: toggle.instate(["disabled", "!selected"]), what="off and disabled for OpenAI")
    assert api.calls_to("POST", "/keepwarm")[-1].body == {"on": False}
    d.until(lambda: api.calls_to("POST", "/keepwarm")[-1].status == 200, what="the off answered")
    assert api.keep_warm_until() is None
    assert d.window.status.notice["text"].startswith("Keep warm is off")

    bar.backend_var.set("AWS TinyLlama")
    bar.backend_box.event_generate("<<ComboboxSelected>>")
    d.update(0.05)
    assert toggle.instate(["!disabled", "!selected"])
    toggle.invoke()
    d.until(lambda: toggle.instate(["selected", "!disabled"]), what="on again")
    bar.stop_btn.invoke()
    d.update(0.05)
    assert toggle.instate(["!selected"]), "Stop GPU turns it off"
    d.until(lambda: [c for c in api.calls_to("POST", "/stop") if c.status == 200], what="the stop answered")
    assert api.keep_warm_until() is None
