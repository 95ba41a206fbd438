"""The daily-spend chart's geometry (a small chart of this month's daily spend, opened from the
CostLabel). Pure: `chart_layout(data, width, height)` turns a GET /cost answer into bars, axis ticks and labels in
canvas pixels; the view (`app.views.cost_chart`) only draws them.

`daily` is the cost reporter's series, `[{"date": "2026-11-01", "eur": 0.12}, ...]` (Cost Explorer, one entry per
day of the month so far; see tlfif_router/cost_reporter.py). One bar per day, oldest left; the y axis runs from 0 to
a "nice" ceiling (1, 2, 2.5 or 5 × 10^n) with 4-5 ticks; day numbers under the bars, thinned so they never overlap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.models.cost import NO_COST

EMPTY_TEXT = "No data yet: the cost reporter has not reported this month's spend"
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 14, 40, 30
BAR_FILL = 0.7          # share of a day's slot the bar covers
MIN_LABEL_SPACING = 22  # px between two day labels


@dataclass(frozen=True)
class Bar:
    x0: float
    y0: float  # top
    x1: float
    y1: float  # bottom (the x axis)
    day: str   # ISO date
    eur: float


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class ChartLayout:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    title: str
    total: str
    bars: tuple[Bar, ...]
    y_ticks: tuple[Label, ...]   # at the left of the plot, `y` is the tick's height
    x_labels: tuple[Label, ...]  # under the bars
    y_max: float                 # the value at the top of the plot (0 when empty)
    empty: bool


def daily_points(data: Any) -> list[tuple[str, float]]:
    """(ISO date, EUR) of the latest month in `data["daily"]`, oldest first; malformed entries are skipped."""
    raw = data.get("daily") if isinstance(data, dict) else None
    points: dict[str, float] = {}
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, dict):
            continue
        day, eur = entry.get("date"), entry.get("eur")
        if isinstance(eur, bool) or not isinstance(eur, (int, float)) or not math.isfinite(eur):
            continue
        try:
            parsed = date.fromisoformat(str(day))
        except ValueError:
            continue
        points[parsed.isoformat()] = max(0.0, float(eur))  # credits/refunds would draw below the axis
    if not points:
        return []
    month = max(points)[:7]
    return sorted((d, e) for d, e in points.items() if d.startswith(month))


def nice_axis(value: float) -> tuple[float, float]:
    """(top, step): the smallest 1, 2, 2.5 or 5 × 10^n at or above `value`, split into 4-5 equal steps."""
    if not value > 0:
        return 1.0, 0.2
    exponent = math.floor(math.log10(value))
    for mantissa, steps in ((1, 5), (2, 4), (2.5, 5), (5, 5), (10, 5)):
        top = mantissa * 10 ** exponent
        if top >= value * (1 - 1e-12):
            return top, top / steps
    raise AssertionError("unreachable")


def money(value: float, step: float) -> str:
    """€ with as many decimals as the step needs (€0.25, €1, €0.005)."""
    decimals = next((d for d in range(7) if abs(round(step, d) - step) < step * 1e-6), 6)
    return f"€{value:.{decimals}f}"


def chart_layout(data: Any, width: int = 520, height: int = 260) -> ChartLayout:
    points = daily_points(data)
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = width - MARGIN_RIGHT, height - MARGIN_BOTTOM
    title = "Daily spend"
    if points:
        first = date.fromisoformat(points[0][0])
        title = f"Daily spend, {first:%B %Y}"
    month = data.get("month_to_date_eur") if isinstance(data, dict) else None
    if isinstance(month, bool) or not isinstance(month, (int, float)):
        month = sum(eur for _, eur in points) if points else None
    total = f"Month to date €{month:.2f}" if month is not None else f"Month to date {NO_COST}"
    if not points:
        return ChartLayout(width, height, (left, top, right, bottom), title, total, (), (), (), 0.0, empty=True)

    y_top, step = nice_axis(max(eur for _, eur in points))
    plot_h = bottom - top
    ticks = []
    for i in range(int(round(y_top / step)) + 1):
        value = i * step
        ticks.append(Label(left - 6, bottom - value / y_top * plot_h, money(value, step)))

    slot = (right - left) / len(points)
    bar_w = max(1.0, slot * BAR_FILL)
    every = max(1, math.ceil(MIN_LABEL_SPACING / slot))
    bars, labels = [], []
    for i, (day, eur) in enumerate(points):
        x0 = left + i * slot + (slot - bar_w) / 2
        bars.append(Bar(x0, bottom - eur / y_top * plot_h, x0 + bar_w, bottom, day, eur))
        if i % every == 0:
            labels.append(Label(x0 + bar_w / 2, bottom + 12, str(int(day[8:]))))
    return ChartLayout(width, height, (left, top, right, bottom), title, total, tuple(bars), tuple(ticks),
                       tuple(labels), y_top, empty=False)
