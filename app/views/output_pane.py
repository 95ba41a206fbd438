"""OutputPane: read-only ScrolledText; each exchange with time stamp and backend name; the answer grows in place as
job.progress arrives. When it is complete (or stopped) the stats line goes under it (TTFT, tok/s, total, cold
start, cost: app.models.answer_stats) with a Copy button for the whole answer, and it is rendered as Markdown
(app.models.markdown: highlighted code blocks in monospace with a Copy button, tables, links that open on click…).
Each prompt's header has Edit (the prompt goes back to the PromptBox; sending it starts a branch) and, when the
exchange has alternatives, `‹ n/m ›`; the last answer has Regenerate (ui.regenerate, as Ctrl+R).

Rendering happens once, on the final text, and in two halves that each fit the stall budget (bench/gui_stall.py):
the parse on the RenderController's worker thread (`answer.rendered`), then the insert here, RENDER_SLICE_S of
it per after() tick. While the answer grows it is plain text appended at the end (no re-layout, no flicker)."""
from __future__ import annotations

import time
import tkinter as tk
from tkinter import font as tkfont
from tkinter.scrolledtext import ScrolledText
from typing import Callable

from tlfif_common import api

from app.bus import Bus
from app.models import markdown
from app.models.answer_stats import stats_line
from app.models.theme import token_color
from app.views import styles
from app.views.tooltip import Tooltip

COPIED_FEEDBACK_MS = 1200
RENDER_SLICE_S = 0.008  # Tk time spent inserting a rendered answer per tick (then the pump and the clock run)
RENDER_STEP = 40  # segments per insert call within a slice
# each md_tok_* tag's colour is the theme's for the first Pygments token type the highlighter files under it
TOKEN_TYPES = {tag: token_type for token_type, tag in reversed(markdown.TOKEN_TAGS)}
REGENERATE_TIP = "Another answer to this prompt (Ctrl+R); this one stays: ‹ › switch between them"


class ExchangeControls:
    """The buttons in a prompt's header: Edit, and ‹ n/m › when the exchange has alternatives."""

    def __init__(self, pane: OutputPane, request_id: str, place: tuple[int, int]):
        common = pane.small_button_options()
        # a word, not a symbol: no tooltip (one per exchange would cost a chat's opening ~7 Tk bindings each)
        self.edit_btn = tk.Button(pane, text="Edit", command=lambda: pane.edit(request_id), **common)
        self.widgets: list[tk.Widget] = [self.edit_btn]
        self.prev_btn = self.next_btn = self.label = None
        n, m = place
        if m > 1:
            self.prev_btn = tk.Button(pane, text="‹", command=lambda: pane.show_alternative(request_id, -1), **common)
            self.next_btn = tk.Button(pane, text="›", command=lambda: pane.show_alternative(request_id, +1), **common)
            self.label = tk.Label(pane, text=f"{n}/{m}", background=common["background"],
                                  foreground=styles.current(pane).muted)
            Tooltip(self.prev_btn, "Show the previous alternative of this exchange")
            Tooltip(self.next_btn, "Show the next alternative of this exchange")
            if n <= 1:
                self.prev_btn.configure(state="disabled")
            if n >= m:
                self.next_btn.configure(state="disabled")
            self.widgets = [self.prev_btn, self.label, self.next_btn, self.edit_btn]

    def destroy(self) -> None:
        for widget in self.widgets:
            widget.destroy()


class OutputPane(ScrolledText):
    def __init__(self, parent, bus: Bus):
        super().__init__(parent, wrap="word", height=18, state="disabled", padx=8, pady=6, font="TkTextFont")
        # read-only (disabled) yet reachable with Tab, to scroll and select with the keys; its scrollbar is not
        self.configure(takefocus=1)
        self.vbar.configure(takefocus=0)
        for tag in ("header", "meta", "stopped"):
            self.tag_configure(tag, font="TkSmallCaptionFont")
        # The buttons and labels embedded in the text take the small caption font from the option database: a
        # `font=` given to each widget costs Tk ~0.15 ms a widget, the database ~0.01 ms (bench/chat_open.py).
        for widget_class in ("Button", "Label"):
            self.option_add(f"*Text.{widget_class}.font", "TkSmallCaptionFont")
        for tag in ("prompt", "answer", "error"):  # created before the Markdown tags, whose colours win over them
            self.tag_configure(tag)
        self._bus = bus
        self._fonts = self._markdown_tags()
        self._answers: dict[str, str] = {}
        self._final: dict[str, str] = {}  # request id → the answer shown as plain text, waiting for its render
        self._rendering: dict[str, str] = {}  # request id → the after id of its next batch
        self.rendered: set[str] = set()  # request ids shown as Markdown
        self.render_listeners: list[Callable[[str], None]] = []  # told a request id once its Markdown is all in
        self._reveal: str | None = None  # the exchange a search hit scrolled to: kept in view while answers render
        self._bulk = False
        self._notices: list[str] = []  # shown since the pane was last cleared
        self._stopping: set[str] = set()
        self.answer_copy_buttons: dict[str, tk.Button] = {}    # request id → Copy (whole answer)
        self.code_copy_buttons: dict[str, list[tk.Button]] = {}  # request id → Copy of each code block
        self.controls: dict[str, ExchangeControls] = {}        # request id → Edit, ‹ n/m ›
        self.order: list[str] = []                             # request ids as shown, top to bottom
        self.prompts: dict[str, str] = {}                      # request id → its prompt (for Edit)
        self.regenerate_btn: tk.Button | None = None           # under the last answer, once it ended
        self.edit_listeners: list[Callable[[str, str], None]] = []  # told (request id, prompt) on Edit
        bus.subscribe_table({
            "job.submitted": self.on_submitted,
            "job.queued": self.on_queued,
            "job.retrying": self.on_retrying,
            "job.progress": self.on_progress,
            "job.done": self.on_done,
            "job.cancelled": self.on_cancelled,
            "job.failed": self.on_failed,
            "ui.cancel": self.on_cancel_asked,
            "settings.warning": self.on_notice,
            "cloud.failed": self.on_notice,
            "auth.failed": self.on_notice,
            "chat.warning": self.on_notice,
            "chat.opened": self.on_chat_opened,
            "answer.rendered": self.on_rendered,
            "chat.reveal": self.on_reveal,
        })
        self.tag_bind(markdown.LINK, "<Button-1>", self._on_link_click)
        self.tag_bind(markdown.LINK, "<Enter>", lambda _e: self.configure(cursor="hand2"))
        self.tag_bind(markdown.LINK, "<Leave>", lambda _e: self.configure(cursor=""))
        self.apply_theme(styles.current(self))

    # --- editing a read-only widget ---------------------------------------------------------------------------------
    def _edit(self, fn) -> None:
        if self._bulk:  # on_chat_opened renders many exchanges in one editable stretch
            fn()
            return
        at_bottom = self.yview()[1] >= 0.999
        self.configure(state="normal")
        try:
            fn()
        finally:
            self.configure(state="disabled")
        if at_bottom:
            self.see("end")

    def _replace(self, start: str, end: str, text: str, tags) -> None:
        self.delete(start, end)
        self.insert(end, text, tags)

    def _markdown_tags(self) -> dict[str, tkfont.Font]:
        """Tags for app.models.markdown, created in priority order (code last: it wins over bold and lists)."""
        base = tkfont.Font(self, font="TkTextFont").actual()
        fixed = tkfont.Font(self, font="TkFixedFont").actual()
        size = int(base["size"])

        def sized(delta: int) -> int:  # Tk sizes are points (> 0) or pixels (< 0)
            return size + delta if size > 0 else size - delta

        fonts = {
            "h1": tkfont.Font(self, family=base["family"], size=sized(5), weight="bold"),
            "h2": tkfont.Font(self, family=base["family"], size=sized(3), weight="bold"),
            "h3": tkfont.Font(self, family=base["family"], size=sized(1), weight="bold"),
            "bold": tkfont.Font(self, family=base["family"], size=size, weight="bold"),
            "italic": tkfont.Font(self, family=base["family"], size=size, slant="italic"),
            "bold_italic": tkfont.Font(self, family=base["family"], size=size, weight="bold", slant="italic"),
            "code": tkfont.Font(self, family=fixed["family"], size=fixed["size"]),
        }
        for level, tag in enumerate(markdown.LIST_LEVELS, start=1):
            self.tag_configure(tag, lmargin1=14 * level, lmargin2=14 * level + 14)
        for tag, key in zip(markdown.HEADINGS, ("h1", "h2", "h3"), strict=True):
            self.tag_configure(tag, font=fonts[key], spacing1=4, spacing3=2)
        self.tag_configure(markdown.BOLD, font=fonts["bold"])
        self.tag_configure(markdown.ITALIC, font=fonts["italic"])
        self.tag_configure(markdown.BOLD_ITALIC, font=fonts["bold_italic"])
        self.tag_configure(markdown.STRIKE, overstrike=True)
        self.tag_configure(markdown.QUOTE, lmargin1=16, lmargin2=16)
        self.tag_configure(markdown.CODE, font=fonts["code"])
        self.tag_configure(markdown.TABLE, font=fonts["code"], wrap="none", lmargin1=10, lmargin2=10)
        self.tag_configure(markdown.TABLE_HEAD)
        self.tag_configure(markdown.CODE_BLOCK, font=fonts["code"], lmargin1=10,
                           lmargin2=10, rmargin=10, wrap="char")
        self.tag_configure(markdown.CODE_HEAD, font="TkSmallCaptionFont", lmargin1=10, lmargin2=10, spacing1=4)
        for tag in markdown.TOKEN_TAG_NAMES:
            self.tag_configure(tag)
        self.tag_configure(markdown.LINK, underline=True)
        return fonts

    def _on_link_click(self, event) -> None:
        url = markdown.href_of(self.tag_names(f"@{event.x},{event.y}"))
        if url:
            self._bus.send("ui.open_link", url=url)

    # --- theme ------------------------------------------------------------------------------------------------------
    def apply_theme(self, p) -> None:
        """Recolour the pane, its tags and its Copy buttons from palette `p` (app.models.theme)."""
        self.configure(background=p.field, foreground=p.foreground, insertbackground=p.foreground,
                       selectbackground=p.select_bg, selectforeground=p.select_fg)
        styles.focus_ring(self, p)
        self.frame.configure(background=p.background)
        self.vbar.configure(background=p.background, troughcolor=p.field, activebackground=p.hover,
                            highlightbackground=p.background)
        for tag, colour in (("header", p.muted), ("prompt", p.prompt), ("answer", p.answer), ("meta", p.muted),
                            ("stopped", p.stopped), ("error", p.hint), (markdown.CODE_HEAD, p.muted)):
            self.tag_configure(tag, foreground=colour)
        for tag, colour in ((markdown.QUOTE, p.quote), (markdown.TABLE_HEAD, p.table_head), (markdown.LINK, p.link)):
            self.tag_configure(tag, foreground=colour)
        for tag in (markdown.CODE, markdown.CODE_BLOCK, markdown.CODE_HEAD):
            self.tag_configure(tag, background=p.code_bg)
        for tag, token_type in TOKEN_TYPES.items():
            self.tag_configure(tag, foreground=token_color(p, token_type))
        buttons = list(self.answer_copy_buttons.values()) + [b for bs in self.code_copy_buttons.values() for b in bs]
        buttons += [w for c in self.controls.values() for w in c.widgets if isinstance(w, tk.Button)]
        if self.regenerate_btn is not None:
            buttons.append(self.regenerate_btn)
        for button in buttons:
            if button.winfo_exists():
                button.configure(background=p.field, foreground=p.foreground, activebackground=p.hover,
                                 activeforeground=p.foreground)
        for controls in self.controls.values():
            if controls.label is not None and controls.label.winfo_exists():
                controls.label.configure(background=p.field, foreground=p.muted)

    def apply_fonts(self) -> None:
        """Follow a font-size change: the derived fonts (headings, bold, code) are sized from the named ones."""
        self._fonts = self._markdown_tags()
        self.apply_theme(styles.current(self))

    # --- Edit, alternatives, Regenerate -------------------------------------------------------------------------------
    def small_button_options(self) -> dict:
        p = styles.current(self)
        return {"padx": 4, "pady": 0, "borderwidth": 1, "relief": "groove",
                "takefocus": 1, "cursor": "hand2", "background": p.field, "foreground": p.foreground,
                "activebackground": p.hover, "activeforeground": p.foreground}

    def edit(self, request_id: str) -> None:
        prompt = self.prompts.get(request_id)
        if prompt is not None:
            for listener in self.edit_listeners:
                listener(request_id, prompt)

    def show_alternative(self, request_id: str, step: int) -> None:
        self._bus.send("ui.show_alternative", request_id=request_id, step=step)

    def regenerate(self) -> None:
        self._bus.send("ui.regenerate")

    def _offer_regenerate(self, request_id: str, *, bulk: bool = False) -> None:
        """Regenerate goes under the answer of the last exchange shown, once it ended (a chat being rendered:
        once, after its last exchange — `bulk`)."""
        if self._bulk != bulk or not self.order or self.order[-1] != request_id:
            return
        self._drop_regenerate()
        self.regenerate_btn = tk.Button(self, text="Regenerate", command=self.regenerate,
                                        **self.small_button_options())
        Tooltip(self.regenerate_btn, REGENERATE_TIP)
        self._edit(lambda: self.window_create(f"m1_{request_id}", window=self.regenerate_btn, padx=4))

    def _drop_regenerate(self) -> None:
        if self.regenerate_btn is not None:
            self.regenerate_btn.destroy()
            self.regenerate_btn = None

    # --- Markdown and Copy ------------------------------------------------------------------------------------------
    def copy_to_clipboard(self, text: str) -> None:
        self.clipboard_clear()
        self.clipboard_append(text)

    def _copy_button(self, text: str) -> tk.Button:
        button = tk.Button(self, text="Copy", padx=4, pady=0, borderwidth=1,
                           relief="groove", cursor="hand2", takefocus=0)

        def copy() -> None:
            self.copy_to_clipboard(text)
            button.configure(text="Copied")
            self.after(COPIED_FEEDBACK_MS, lambda: button.winfo_exists() and button.configure(text="Copy"))

        button.configure(command=copy)
        return button

    def render_answer(self, request_id: str, segments: list[markdown.Segment]) -> None:
        """Replace the answer of `request_id` with `segments`, a few milliseconds' worth of them per tick."""
        self._cancel_render(request_id)
        at_bottom = self.yview()[1] >= 0.999
        self._raw_edit(lambda: self.delete(f"a0_{request_id}", f"a1_{request_id}"))
        self.code_copy_buttons[request_id] = []
        self._render_batch(request_id, segments, 0, at_bottom)

    def _render_batch(self, request_id: str, segments: list[markdown.Segment], start: int, at_bottom: bool) -> None:
        self._rendering.pop(request_id, None)
        if f"a1_{request_id}" not in self.mark_names():
            return  # the pane was cleared meanwhile
        deadline = time.perf_counter() + RENDER_SLICE_S
        stop = start
        while stop < len(segments) and time.perf_counter() < deadline:
            stop = min(stop + RENDER_STEP, len(segments))
            self._raw_edit(lambda a=start, b=stop: self._insert_segments(request_id, segments, a, b))
            start = stop
        if stop < len(segments):
            self._rendering[request_id] = self.after(1, self._render_batch, request_id, segments, stop, at_bottom)
            return
        self.rendered.add(request_id)
        for listener in self.render_listeners:
            listener(request_id)
        if self._reveal:
            self.on_reveal(self._reveal)
        elif at_bottom:  # its own tick: scrolling lays out the whole new text
            self._rendering[request_id] = self.after(1, self._scroll_to_end, request_id)

    def _scroll_to_end(self, request_id: str) -> None:
        self._rendering.pop(request_id, None)
        self.see("end")

    def _raw_edit(self, fn) -> None:
        """Edit without following the end (rendering in slices scrolls once, at the end)."""
        if self._bulk:
            fn()
            return
        self.configure(state="normal")
        try:
            fn()
        finally:
            self.configure(state="disabled")

    def _insert_segments(self, request_id: str, segments: list[markdown.Segment], start: int, stop: int) -> None:
        end = f"a1_{request_id}"
        buttons = self.code_copy_buttons[request_id]
        batch: list = []  # text, tags, text, tags, ...: one Tk insert call per run between Copy buttons
        for k in range(start, stop):
            segment, tags = segments[k]
            tags = ("answer", *tags)
            if markdown.CODE_HEAD not in tags:
                batch += [segment, tags]
                continue
            code = []
            for following, following_tags in segments[k + 1:]:  # the block's runs, up to what is not code
                if markdown.CODE_BLOCK not in following_tags:
                    break
                code.append(following)
            code_text = "".join(code)
            self.insert(end, *batch, segment.rstrip("\n"), tags)
            batch = ["\n", tags]
            buttons.append(self._copy_button(code_text[:-1] if code_text.endswith("\n") else code_text))
            self.window_create(end, window=buttons[-1], padx=8, pady=1)
        if batch:
            self.insert(end, *batch)

    def _cancel_render(self, request_id: str) -> None:
        after_id = self._rendering.pop(request_id, None)
        if after_id:
            self.after_cancel(after_id)
        for button in self.code_copy_buttons.pop(request_id, []):
            button.destroy()
        self.rendered.discard(request_id)

    def on_reveal(self, request_id) -> None:
        """Scroll so that this exchange (a search hit) starts at the top."""
        if f"x0_{request_id}" in self.mark_names():
            self._reveal = request_id
            self.yview(f"x0_{request_id}")

    def on_rendered(self, request_id, text, segments) -> None:
        if self._final.get(request_id) == text:
            self.render_answer(request_id, segments)

    def _finish(self, request_id: str, text: str, meta: str, meta_tag: str) -> None:
        """The final answer: the stats line under it and a Copy for the whole answer (rendered on answer.rendered)."""
        self._stopping.discard(request_id)
        shown = self._answers.pop(request_id, None)
        if shown is None:
            return
        self._final[request_id] = text

        def finish():
            # Plain until answer.rendered. After streaming it is shown already, give or take its end: only that
            # changes (re-inserting a long answer would stall the window).
            if text.startswith(shown):
                self.insert(f"a1_{request_id}", text[len(shown):], "answer")
            elif shown.startswith(text):
                self.delete(f"a1_{request_id} - {len(shown) - len(text)} chars", f"a1_{request_id}")
            else:
                self._replace(f"a0_{request_id}", f"a1_{request_id}", text, "answer")
            self._replace(f"m0_{request_id}", f"m1_{request_id}", meta, meta_tag)
            if text:
                button = self.answer_copy_buttons[request_id] = self._copy_button(text)
                self.window_create(f"m1_{request_id}", window=button, padx=8)

        self._edit(finish)
        self._offer_regenerate(request_id)

    def answer_text(self, request_id: str) -> str:
        """The answer shown for a request (tests read it)."""
        return self.get(f"a0_{request_id}", f"a1_{request_id}")

    def meta_text(self, request_id: str) -> str:
        return self.get(f"m0_{request_id}", f"m1_{request_id}")

    # --- outcomes ---------------------------------------------------------------------------------------------------
    def on_submitted(self, request_id, backend, backend_label, prompt, started_at) -> None:
        self._add_exchange(request_id, backend_label, prompt, started_at, (1, 1))

    def _add_exchange(self, request_id: str, backend_label: str, prompt: str, started_at: float,
                      place: tuple[int, int]) -> None:
        if request_id in self.prompts:
            return  # already shown: the branch through it was rendered (chat.opened) before job.submitted came
        stamp = time.strftime("%H:%M:%S", time.localtime(started_at))
        if not self._bulk:
            self._reveal = None
        self._drop_regenerate()
        self.order.append(request_id)
        self.prompts[request_id] = prompt
        controls = self.controls[request_id] = ExchangeControls(self, request_id, place)

        def add():
            self.mark_set(f"x0_{request_id}", "end-1c")
            self.mark_gravity(f"x0_{request_id}", "left")
            self.insert("end", f"[{stamp}] You → {backend_label}", "header")
            for widget in controls.widgets:
                self.window_create("end", window=widget, padx=2)
            self.insert("end", "\n", "header")
            self.insert("end", prompt + "\n", "prompt")
            answer_at = self.index("end-1c")
            self.insert("end", "\n\n\n")  # the answer line, the meta line, a blank line
            meta_at = self.index(f"{answer_at} + 1 line")
            for name, index, gravity in ((f"a0_{request_id}", answer_at, "left"),
                                         (f"a1_{request_id}", answer_at, "right"),
                                         (f"m0_{request_id}", meta_at, "left"),
                                         (f"m1_{request_id}", meta_at, "right")):
                self.mark_set(name, index)
                self.mark_gravity(name, gravity)
            self.insert(f"m1_{request_id}", f"{backend_label}: waiting…", "meta")

        self._answers[request_id] = ""
        self._edit(add)

    def _set_meta(self, request_id: str, text: str, tag: str = "meta") -> None:
        if request_id in self._answers:
            self._edit(lambda: self._replace(f"m0_{request_id}", f"m1_{request_id}", text, tag))

    def on_queued(self, request_id, backend, status, eta_s, job_id) -> None:
        if status == api.INFER_STARTING:
            self._set_meta(request_id, f"GPU starting (~{int(eta_s or 90)} s); the prompt is queued and will run "
                                       "as soon as it is ready…")
        elif status == api.INFER_QUEUED:
            self._set_meta(request_id, "queued…")
        else:
            self._set_meta(request_id, f"{status}…")

    def on_retrying(self, request_id, backend, message, attempt, delay_s) -> None:
        self._set_meta(request_id, message)

    def on_progress(self, request_id, backend, text, tokens) -> None:
        old = self._answers.get(request_id)
        if old is None or text == old:
            return
        self._answers[request_id] = text

        def grow():
            if text.startswith(old):
                self.insert(f"a1_{request_id}", text[len(old):], "answer")
            else:
                self._replace(f"a0_{request_id}", f"a1_{request_id}", text, "answer")
            if request_id in self._stopping:
                self._replace(f"m0_{request_id}", f"m1_{request_id}", "stopping…", "stopped")
            else:
                self._replace(f"m0_{request_id}", f"m1_{request_id}", "…", "meta")

        self._edit(grow)

    def on_done(self, request_id, backend, text, model, stats) -> None:
        line = stats_line(stats)  # never empty: stats always hold latency_ms
        self._finish(request_id, text, f"{line} · {model}" if model else line, "meta")

    def on_cancelled(self, request_id, backend, text, model, stats) -> None:
        line = stats_line(stats) or "stopped"
        if not text:
            line = line.replace("stopped", "stopped before any answer", 1)
        self._finish(request_id, text, line, "stopped")

    def on_cancel_asked(self, request_id) -> None:
        if request_id in self._answers:
            self._stopping.add(request_id)
            self._set_meta(request_id, "stopping…", "stopped")

    def on_chat_opened(self, chat_id, title, exchanges, hidden, system, temperature, max_tokens) -> None:
        """Another chat is shown: clear the pane and render its saved exchanges the way live ones end. Notices
        shown before any exchange (a corrupt settings file at start-up…) stay on top of the chat opened at start."""
        keep = [] if any(m.startswith("a0_") for m in self.mark_names()) else self._notices
        self.clear()
        self._notices = list(keep)
        self.configure(state="normal")
        self._bulk = True
        try:
            for line in keep:
                self.insert("end", line, "error")
            self._render_saved(exchanges, hidden)
        finally:
            self._bulk = False
            self.configure(state="disabled")
        self.see("end")

    def _render_saved(self, exchanges, hidden) -> None:
        if hidden:
            self.insert("end", f"{hidden} earlier exchanges are not shown here; Export (Ctrl+E) writes them all.\n\n",
                        "meta")
        for x in exchanges:
            rid, backend = x["request_id"], x["backend"]
            place = (x.get("alternative", 1), x.get("alternatives", 1))
            self._add_exchange(rid, x["backend_label"] or backend, x["prompt"], x["started_at"], place)
            stats = x["stats"] if isinstance(x["stats"], dict) else {}
            if x["status"] == "done":  # an answer saved without stats still shows its total time
                self.on_done(rid, backend, x["answer"], x["model"], {"latency_ms": x["latency_ms"] or 0, **stats})
            elif x["status"] == "cancelled":
                self.on_cancelled(rid, backend, x["answer"], x["model"], stats)
            elif x["status"] == "pending":  # an answer still coming (a new branch was just sent): it streams in
                pass
            else:
                self.on_failed(rid, backend, x["error"] or "no answer")
        last = exchanges[-1] if exchanges else None
        if last is not None and last["status"] != "pending":
            self._offer_regenerate(last["request_id"], bulk=True)

    def clear(self) -> None:
        """Empty the pane (a chat was opened or started): text, marks, answers in progress, Copy buttons."""
        for button in [*self.answer_copy_buttons.values(), *(b for bs in self.code_copy_buttons.values() for b in bs)]:
            button.destroy()
        self.answer_copy_buttons.clear()
        self.code_copy_buttons.clear()
        for controls in self.controls.values():
            controls.destroy()
        self.controls.clear()
        self._drop_regenerate()
        self.order.clear()
        self.prompts.clear()
        for after_id in self._rendering.values():
            self.after_cancel(after_id)
        self._rendering.clear()
        self._final.clear()
        self.rendered.clear()
        self._reveal = None
        self._answers.clear()
        self._stopping.clear()
        self._edit(lambda: self.delete("1.0", "end"))
        for mark in self.mark_names():
            if mark[:3] in ("a0_", "a1_", "m0_", "m1_", "x0_"):
                self.mark_unset(mark)

    def on_notice(self, message) -> None:
        """Warnings that must not scroll away with the status line (a corrupt settings file, a failed sign-in)."""
        line = f"[{time.strftime('%H:%M:%S')}] {message}\n\n"
        self._notices.append(line)
        self._edit(lambda: self.insert("end", line, "error"))

    def on_failed(self, request_id, backend, message) -> None:
        self._stopping.discard(request_id)
        self._set_meta(request_id, message, "error")
        if self._answers.pop(request_id, None) is not None:
            self._offer_regenerate(request_id)
