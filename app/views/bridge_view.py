"""The cold-start bridge in the OutputPane: the bridge's answer goes under the prompt at once, labelled with what
answered and what it cost; once TinyLlama's answer is there too, `‹ 2/2 ›` under it switches between the two (the
other is hidden with an elided tag, nothing is re-rendered). Shows bridge.* outcomes; publishes nothing."""
from __future__ import annotations

import tkinter as tk

from app.bus import Bus
from app.views import styles
from app.views.tooltip import Tooltip

BRIDGE, TINYLLAMA = 1, 2


class AnswerSwitch:
    def __init__(self, view: BridgeView, request_id: str):
        pane = view.pane
        self.request_id = request_id
        self.shown = TINYLLAMA
        p = styles.current(pane)
        common = {"padx": 4, "pady": 0, "borderwidth": 1, "relief": "groove",  # font: OutputPane's option
                  "takefocus": 1, "background": p.field, "foreground": p.foreground, "activebackground": p.hover}
        self.prev_btn = tk.Button(pane, text="‹", command=lambda: view.show(request_id, BRIDGE), **common)
        self.next_btn = tk.Button(pane, text="›", command=lambda: view.show(request_id, TINYLLAMA), **common)
        self.label = tk.Label(pane, text="", background=p.field, foreground=p.muted)
        Tooltip(self.prev_btn, "Show the answer given while the GPU started")
        Tooltip(self.next_btn, "Show TinyLlama's answer")

    def destroy(self) -> None:
        for widget in (self.prev_btn, self.next_btn, self.label):
            widget.destroy()


class BridgeView:
    def __init__(self, pane, bus: Bus):
        self.pane = pane
        self.labels: dict[str, str] = {}          # request id → what answered
        self.finished: set[str] = set()           # TinyLlama's answer is in
        self.switches: dict[str, AnswerSwitch] = {}
        bus.subscribe_table({
            "bridge.answered": self.on_answered,
            "bridge.failed": self.on_failed,
            "job.done": self.on_ended,
            "job.cancelled": self.on_ended,
            "chat.opened": self.on_chat_opened,
        })
        pane.render_listeners.append(self.on_rendered)

    def _has(self, request_id: str) -> bool:
        return f"a0_{request_id}" in self.pane.mark_names()

    def _insert_above(self, request_id: str, chunks) -> None:
        """Under the prompt, above TinyLlama's answer (before the prompt line's newline, outside its marks)."""
        def add():
            at = f"a0_{request_id} - 1c"
            for text, tags in chunks:  # each lands before the newline, after the one before
                self.pane.insert(at, text, tags)
        self.pane._edit(add)

    def on_answered(self, request_id, label, text, cost) -> None:
        if not self._has(request_id):
            return
        self.labels[request_id] = label
        tag = f"bridge_{request_id}"
        self._insert_above(request_id, [(f"\n⚡ {label}, while the GPU starts · {cost}\n", ("meta", tag)),
                                        (text, ("answer", tag))])
        if request_id in self.finished:
            self._add_switch(request_id)

    def on_failed(self, request_id, label, message) -> None:
        if self._has(request_id):
            self._insert_above(request_id, [(f"\n⚡ {label} could not answer while the GPU starts: {message}",
                                             ("meta", f"bridge_{request_id}"))])

    def on_ended(self, request_id, backend, text, model, stats) -> None:
        self.finished.add(request_id)
        if request_id in self.labels:
            # after the pane has rendered the final answer (it listens to the same message)
            self.pane.after_idle(self._add_switch, request_id)

    def _add_switch(self, request_id: str) -> None:
        if request_id in self.switches or not self._has(request_id):
            return
        switch = self.switches[request_id] = AnswerSwitch(self, request_id)
        pane = self.pane

        def add():
            at = f"m1_{request_id} + 1c"
            pane.insert(at, "\n")
            pane.window_create(at, window=switch.next_btn)
            pane.window_create(at, window=switch.label, padx=4)
            pane.window_create(at, window=switch.prev_btn)
        pane._edit(add)
        self.show(request_id, TINYLLAMA)

    def show(self, request_id: str, which: int) -> None:
        switch = self.switches.get(request_id)
        if switch is None:
            return
        switch.shown = which
        # TinyLlama's answer as it is now: its Markdown replaces the plain text (untagged) when the render lands
        self.pane.tag_add(f"tl_{request_id}", f"a0_{request_id}", f"m1_{request_id}")
        self.pane.tag_configure(f"bridge_{request_id}", elide=which != BRIDGE)
        self.pane.tag_configure(f"tl_{request_id}", elide=which != TINYLLAMA)
        name = self.labels[request_id] if which == BRIDGE else "TinyLlama"
        switch.label.configure(text=f"{which}/2 {name}")
        switch.prev_btn.configure(state="disabled" if which == BRIDGE else "normal")
        switch.next_btn.configure(state="disabled" if which == TINYLLAMA else "normal")

    def on_rendered(self, request_id: str) -> None:
        if request_id in self.switches:
            self.show(request_id, self.switches[request_id].shown)

    def shown_text(self, request_id: str) -> str:
        """The answer text a reader sees now (tests read it)."""
        switch = self.switches.get(request_id)
        if switch is not None and switch.shown == BRIDGE or switch is None and request_id in self.labels \
                and request_id not in self.finished:
            ranges = self.pane.tag_ranges(f"bridge_{request_id}")
            return self.pane.get(ranges[0], ranges[-1]).split("\n", 2)[-1] if ranges else ""
        return self.pane.answer_text(request_id)

    def on_chat_opened(self, **_data) -> None:
        for switch in self.switches.values():
            switch.destroy()
        self.switches.clear()
        self.labels.clear()
        self.finished.clear()
