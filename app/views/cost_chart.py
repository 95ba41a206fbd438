"""The daily-spend chart: a small Toplevel with a Tk Canvas bar chart of this month's spend per day,
its axis labels and the month-to-date total, or "no data yet". It draws `app.models.cost_chart.chart_layout`; every
canvas item is tagged (bar, axis, grid, ytick, xlabel, title, total, empty, readout) so tests can inspect it."""
from __future__ import annotations

import tkinter as tk
from datetime import date
from tkinter import ttk

from app.models.cost_chart import ChartLayout, chart_layout
from app.models.cost_forecast import Forecast, forecast
from app.views import styles

WIDTH, HEIGHT = 520, 260
TITLE = "TL-FIF: daily spend"


class CostChartWindow:
    def __init__(self, master, data):
        self.top = tk.Toplevel(master)
        self.top.title(TITLE)
        self.top.resizable(False, False)
        self.palette = styles.current(master)
        self.top.configure(background=self.palette.background)
        self.canvas = tk.Canvas(self.top, width=WIDTH, height=HEIGHT, background=self.palette.chart_bg,
                                highlightthickness=0)
        self.canvas.pack(padx=8, pady=(8, 4))
        # the month-end forecast against the budget, and the GPU minutes left before the budget stop
        self.forecast_label = ttk.Label(self.top, text="", anchor="w")
        self.forecast_label.pack(fill="x", padx=12)
        self.minutes_label = ttk.Label(self.top, text="", anchor="w")
        self.minutes_label.pack(fill="x", padx=12, pady=(0, 4))
        self.forecast: Forecast | None = None
        ttk.Button(self.top, text="Close", command=self.close).pack(pady=(0, 8))
        self.top.bind("<Escape>", lambda _event: self.close())
        self.layout: ChartLayout | None = None
        self.show(data)

    @property
    def alive(self) -> bool:
        try:
            return bool(self.top.winfo_exists())
        except tk.TclError:
            return False

    def raise_(self) -> None:
        self.top.deiconify()
        self.top.lift()

    def close(self) -> None:
        if self.alive:
            self.top.destroy()

    def show(self, data) -> None:
        self.layout = chart_layout(data, WIDTH, HEIGHT)
        self.draw(self.layout)
        self.forecast = forecast(data, date.today())
        self.forecast_label.configure(text=self.forecast.text() if self.forecast else "")
        self.minutes_label.configure(text=self.forecast.minutes_text() if self.forecast else "")

    def draw(self, layout: ChartLayout) -> None:
        c = self.canvas
        p = self.palette
        c.delete("all")
        left, top, right, bottom = layout.plot
        c.create_text(left, 16, text=layout.title, anchor="w", fill=p.chart_text, font=("TkDefaultFont", 10, "bold"),
                      tags=("title",))
        c.create_text(right, 16, text=layout.total, anchor="e", fill=p.chart_text, tags=("total",))
        if layout.empty:
            c.create_text((left + right) / 2, (top + bottom) / 2, text="No data yet", fill=p.muted,
                          font=("TkDefaultFont", 11), tags=("empty",))
            c.create_text((left + right) / 2, (top + bottom) / 2 + 20, text="the cost reporter runs every few hours",
                          fill=p.muted, tags=("empty",))
            return
        for tick in layout.y_ticks:
            c.create_line(left, tick.y, right, tick.y, fill=p.chart_grid, tags=("grid",))
            c.create_text(tick.x, tick.y, text=tick.text, anchor="e", fill=p.muted, tags=("ytick",))
        for bar in layout.bars:
            item = c.create_rectangle(bar.x0, bar.y0, bar.x1, bar.y1, fill=p.chart_bar, outline="",
                                      tags=("bar", f"day-{bar.day}"))
            c.tag_bind(item, "<Enter>", lambda _e, b=bar, i=item: self._hover(i, f"{b.day}: €{b.eur:.2f}"))
            c.tag_bind(item, "<Leave>", lambda _e, i=item: self._hover(i, ""))
        for label in layout.x_labels:
            c.create_text(label.x, label.y, text=label.text, fill=p.muted, tags=("xlabel",))
        c.create_line(left, bottom, right, bottom, fill=p.chart_axis, tags=("axis",))
        c.create_line(left, top, left, bottom, fill=p.chart_axis, tags=("axis",))
        c.create_text(right, HEIGHT - 6, text="", anchor="e", fill=p.chart_text, tags=("readout",))

    def _hover(self, item: int, text: str) -> None:
        self.canvas.itemconfigure(item, fill=self.palette.chart_bar_hover if text else self.palette.chart_bar)
        self.canvas.itemconfigure("readout", text=text)
