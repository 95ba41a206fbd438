"""The CostLabel: `Cost: Month €x.xx · GPU session €y.yyy (mm:ss)`, marked while polling
pauses for a cold start; a click asks for the daily-spend chart, which this view opens (and keeps up to date while
it is open)."""
from __future__ import annotations

import tkinter as tk

from app.bus import Bus
from app.models.cost import NO_COST
from app.views import styles
from app.views.cost_chart import CostChartWindow
from app.views.tooltip import Tooltip

PAUSED_SUFFIX = " (paused while the GPU starts)"


class CostLabel(tk.Label):
    def __init__(self, parent, bus: Bus):
        super().__init__(parent, text=f"Cost: {NO_COST}", anchor="e", cursor="hand2", takefocus=1)
        self._bus = bus
        self._text = NO_COST
        self._paused = False
        self.chart: CostChartWindow | None = None
        self.bind("<Button-1>", self._on_click)
        for sequence in ("<Return>", "<KP_Enter>", "<space>"):  # the chart from the keyboard too
            self.bind(sequence, self._on_click)
        self.tooltip = Tooltip(self, "Month to date and this GPU session; Enter or a click: the daily-spend chart")
        self.apply_theme(styles.current(self))
        bus.subscribe_table({
            "cost.updated": self.on_cost,
            "cost.paused": self.on_paused,
            "cost.chart": self.on_chart,
        })

    def _on_click(self, _event=None) -> None:
        self._bus.send("ui.cost_chart")

    def on_cost(self, text, data) -> None:
        self._text = text
        self._render()
        if self.chart is not None and self.chart.alive:
            self.chart.show(data)

    def on_paused(self, paused) -> None:
        self._paused = paused
        self._render()

    def on_chart(self, data) -> None:
        if self.chart is not None and self.chart.alive:
            self.chart.show(data)
            self.chart.raise_()
        else:
            self.chart = CostChartWindow(self.winfo_toplevel(), data)

    def apply_theme(self, p) -> None:
        self.configure(background=p.background, foreground=p.foreground)
        styles.focus_ring(self, p)

    def _render(self) -> None:
        self.configure(text=f"Cost: {self._text}{PAUSED_SUFFIX if self._paused else ''}")
