"""The month-end forecast of the cost window, and the GPU minutes left before the budget kill switch. Pure.

    forecast = month to date + the days left in the month × the recent daily rate
    recent daily rate = the mean of the last RECENT_DAYS days of the cost reporter's daily series (fewer early in
                        the month); Cost Explorer's newest day is still filling, so it counts as reported
    GPU minutes left = (budget − month to date) / the GPU's price per hour × 60: AWS Budgets stops the GPU on the
                        actual spend, so these minutes are what can still run this month, fixed costs aside

`data` is a GET /cost answer (month_to_date_eur, daily, gpu_hourly_eur, budget_eur); the budget is the stack's
MonthlyBudget when the router reports it.
"""
from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.models.cost_chart import daily_points

RECENT_DAYS = 7


@dataclass(frozen=True)
class Forecast:
    month_to_date: float
    daily_rate: float
    days_left: int
    month_end: float
    budget: float | None
    gpu_minutes_left: float | None  # None without a budget or a GPU price

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.month_end > self.budget

    def text(self) -> str:
        line = f"Month-end forecast €{self.month_end:.2f} (€{self.daily_rate:.2f}/day × {self.days_left} days left)"
        if self.budget is not None:
            verdict = "over" if self.over_budget else "within"
            line += f", {verdict} the €{self.budget:.2f} budget"
        return line

    def minutes_text(self) -> str:
        if self.gpu_minutes_left is None:
            return ""
        return f"GPU time left before the budget stop: {int(self.gpu_minutes_left)} min"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def forecast(data: Any, today: date, budget: float | None = None) -> Forecast | None:
    """None before the cost reporter's first figures of this month."""
    points = [(d, eur) for d, eur in daily_points(data) if d[:7] == today.isoformat()[:7]]
    mtd = _number(data.get("month_to_date_eur")) if isinstance(data, dict) else None
    if mtd is None:
        if not points:
            return None
        mtd = sum(eur for _, eur in points)
    recent = points[-RECENT_DAYS:]
    rate = sum(eur for _, eur in recent) / len(recent) if recent else 0.0
    last_reported = date.fromisoformat(points[-1][0]) if points else today
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    days_left = max(0, days_in_month - last_reported.day)
    if budget is None and isinstance(data, dict):
        budget = _number(data.get("budget_eur"))
    hourly = _number(data.get("gpu_hourly_eur")) if isinstance(data, dict) else None
    minutes = None
    if budget is not None and hourly and hourly > 0:
        minutes = max(0.0, (budget - mtd) / hourly * 60)
    return Forecast(month_to_date=mtd, daily_rate=rate, days_left=days_left, month_end=mtd + days_left * rate,
                    budget=budget, gpu_minutes_left=minutes)
