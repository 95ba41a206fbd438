"""The real window under Xvfb: light, dark and system themes recolour the widgets (and are saved), Ctrl+= / Ctrl+- /
Ctrl+0 scale the fonts (saved), Tab walks every control in reading order with a visible focus ring, and the
CostLabel opens its chart from the keyboard with a tooltip saying so."""
from __future__ import annotations

import configparser
import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

import pytest

from app.models.settings import Settings
from app.models import markdown
from app.models.theme import DARK, LIGHT, palette, token_color
from app.timings import Timings
from app.views import styles
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]

TIMINGS = Timings(ping_interval_s=0.5, cost_interval_s=0.5)


@pytest.fixture
def gui(gui, api):
    return lambda **kwargs: gui(**{"endpoints": api.endpoints(), "timings": TIMINGS, **kwargs})


def ini(home) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(home / ".tl-fif.ini")
    return parser


def colours_of(d, name: str) -> dict:
    p = palette(name)
    w = d.window
    return {
        "pane": (str(w.output.cget("background")), p.field),
        "prompt text": (str(w.output.tag_cget("prompt", "foreground")), p.prompt),
        "prompt box": (str(w.prompt.prompt_box.cget("background")), p.field),
        "window": (str(d.top.cget("background")), p.background),
        "ttk": (str(ttk.Style(d.top).lookup(".", "background")), p.background),
        "cost label": (str(w.toolbar.cost_label.cget("foreground")), p.foreground),
        "hint": (str(ttk.Style(d.top).lookup(styles.HINT_STYLE, "foreground")), p.hint),
        "code block": (str(w.output.tag_cget(markdown.CODE_BLOCK, "background")), p.code_bg),
        "keyword token": (str(w.output.tag_cget("md_tok_keyword", "foreground")), token_color(p, "Keyword")),
        "string token": (str(w.output.tag_cget("md_tok_string", "foreground")), token_color(p, "Literal.String")),
        "link": (str(w.output.tag_cget(markdown.LINK, "foreground")), p.link),
        "find hit": (str(w.output.tag_cget("find_hit", "background")), p.find_hit),
    }


def assert_theme(d, name: str) -> None:
    wrong = {k: v for k, v in colours_of(d, name).items() if v[0] != v[1]}
    assert not wrong, f"not in the {name} palette: {wrong}"


def test_dark_theme_colours_every_part_and_switching_to_light_is_live_and_saved(gui, home):
    d = gui(settings=Settings(theme="dark"))
    d.until(lambda: d.app.appearance.palette == DARK)
    d.update()
    assert_theme(d, DARK)
    d.app.bus.send("ui.theme_selected", theme="light")  # what the settings window sends
    d.update()
    assert_theme(d, LIGHT)
    assert ini(home)["app"]["theme"] == "light"


def test_system_follows_what_the_desktop_says(gui):
    d = gui(settings=Settings(theme="system"), desktop_scheme=lambda: DARK)
    d.until(lambda: d.app.appearance.palette == DARK, what="the desktop's scheme applied")
    d.update()
    assert_theme(d, DARK)


def test_the_cost_chart_takes_the_themes_colours(gui, api):
    api.set_month_cost(1.0, [0.4, 0.6])
    d = gui(settings=Settings(theme="dark"))
    d.until(lambda: d.app.appearance.palette == DARK)
    d.until(lambda: "€1.00" in d.window.toolbar.cost_label["text"], timeout=15, what="the month's figures")
    label = d.window.toolbar.cost_label
    label.focus_force()
    d.update()
    label.event_generate("<Return>")  # from the keyboard
    d.until(lambda: label.chart is not None and label.chart.alive, what="the chart")
    canvas = label.chart.canvas
    p = palette(DARK)
    assert str(canvas.cget("background")) == p.chart_bg
    assert {canvas.itemcget(i, "fill") for i in canvas.find_withtag("bar")} == {p.chart_bar}
    label.chart.close()


def test_ctrl_plus_minus_and_zero_scale_every_font_and_are_saved(gui, home):
    d = gui(settings=Settings(theme="light"))
    box = d.window.prompt.prompt_box
    desktop = styles.desktop_font_size(d.top)
    text_font = tkfont.nametofont("TkTextFont", root=d.top)
    small_gap = styles.desktop_sizes(d.top)["TkDefaultFont"] - styles.desktop_sizes(d.top)["TkSmallCaptionFont"]
    box.focus_force()
    d.update()
    box.event_generate("<Control-equal>")
    box.event_generate("<Control-equal>")
    d.update()
    assert d.app.store.current.font_size == desktop + 2
    assert ini(home)["app"]["font_size"] == str(desktop + 2)
    points = text_font.cget("size")
    assert points == desktop + 2 or points == round(styles.desktop_sizes(d.top)["TkTextFont"] + 2)
    small = tkfont.nametofont("TkSmallCaptionFont", root=d.top).cget("size")
    assert abs((desktop + 2 - small) - small_gap) <= 1, "the small fonts keep their distance"
    assert box.get("1.0", "end-1c") == "", "the keys typed nothing"
    box.event_generate("<Control-minus>")
    d.update()
    assert d.app.store.current.font_size == desktop + 1
    box.event_generate("<Control-Key-0>")
    d.update()
    assert d.app.store.current.font_size == 0 and ini(home)["app"]["font_size"] == "0"
    assert tkfont.nametofont("TkDefaultFont", root=d.top).cget("size") == \
        round(styles.desktop_sizes(d.top)["TkDefaultFont"])


def test_tab_walks_every_control_in_reading_order_with_a_visible_focus_ring(gui):
    d = gui(settings=Settings(theme="dark"))
    d.until(lambda: d.app.appearance.palette == DARK)
    w = d.window
    focus_colour = palette(DARK).focus
    start = w.prompt.prompt_box
    start.focus_force()
    d.update()
    seen = []
    widget = start
    for _ in range(40):
        widget.event_generate("<Tab>")
        d.update()
        widget = d.top.focus_get()
        if widget is start:
            break
        seen.append(widget)
    assert widget is start, f"Tab came back to the prompt: {seen}"
    expected = [w.prompt.send_btn, w.sidebar.new_btn, w.sidebar.tree, w.sidebar.rename_btn, w.sidebar.delete_btn,
                w.sidebar.settings_btn, w.sidebar.export_btn, w.toolbar.backend_box, w.toolbar.idle_spin,
                w.toolbar.keep_warm, w.toolbar.stop_btn, w.toolbar.bridge_box, w.toolbar.cost_label, w.output]
    assert [x for x in seen if x in expected] == expected, "\n".join(str(x) for x in seen)
    style = ttk.Style(d.top)
    for x in seen:
        if isinstance(x, ttk.Widget):
            assert str(style.lookup(".", "focuscolor")) == focus_colour
        else:
            assert int(x.cget("highlightthickness")) >= 2 and str(x.cget("highlightcolor")) == focus_colour, x
    start.event_generate("<Shift-Tab>")
    d.update()
    assert d.top.focus_get() is w.output, "Shift+Tab goes back (a Text would insert a tab)"


def test_a_focused_control_shows_its_tooltip_and_hides_it_on_focus_out(gui):
    d = gui()
    label = d.window.toolbar.cost_label
    label.focus_force()
    d.until(lambda: label.tooltip.shown, what="the tooltip")
    assert "chart" in label.tooltip.label.cget("text")
    d.window.prompt.prompt_box.focus_force()
    d.until(lambda: not label.tooltip.shown, what="hidden")
    assert isinstance(label, tk.Label)
