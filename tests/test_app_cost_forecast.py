"""The cost window's month-end forecast and the GPU minutes left before the budget stop: pure model logic."""
from __future__ import annotations

from datetime import date

import pytest

from app.models.cost_forecast import RECENT_DAYS, forecast


def daily(month: str, values: list[float]) -> list[dict]:
    return [{"date": f"{month}-{day:02d}", "eur": eur} for day, eur in enumerate(values, start=1)]


def test_month_end_is_month_to_date_plus_the_days_left_at_the_recent_rate():
    # November has 30 days; the reporter has days 1-10: the last 7 average (0.2×4 + 1.0×3) / 7 = 0.542857
    values = [0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2, 1.0, 1.0, 1.0]
    data = {"month_to_date_eur": sum(values), "daily": daily("2026-11", values), "gpu_hourly_eur": 0.5659,
            "budget_eur": 20.0}
    result = forecast(data, date(2026, 11, 11))
    assert result.daily_rate == pytest.approx(3.8 / RECENT_DAYS)
    assert result.days_left == 20  # days 11-30: the newest reported day is the 10th
    assert result.month_end == pytest.approx(4.1 + 20 * 3.8 / 7)
    assert not result.over_budget and "within the €20.00 budget" in result.text()
    # (20 − 4.1) / 0.5659 × 60 = 1685.8 minutes of GPU before AWS Budgets stops it
    assert result.gpu_minutes_left == pytest.approx(15.9 / 0.5659 * 60)
    assert result.minutes_text() == "GPU time left before the budget stop: 1685 min"


def test_over_budget_no_minutes_left_and_an_explicit_budget_wins():
    data = {"month_to_date_eur": 19.0, "daily": daily("2026-11", [1.9] * 10), "gpu_hourly_eur": 0.5,
            "budget_eur": 20.0}
    result = forecast(data, date(2026, 11, 10))
    assert result.over_budget and "over the €20.00 budget" in result.text()
    assert forecast({**data, "month_to_date_eur": 25.0}, date(2026, 11, 10)).gpu_minutes_left == 0
    assert forecast(data, date(2026, 11, 10), budget=100.0).budget == 100.0


def test_missing_figures():
    assert forecast({}, date(2026, 11, 5)) is None
    assert forecast({"daily": daily("2026-10", [1.0])}, date(2026, 11, 5)) is None  # last month's series
    only_series = forecast({"daily": daily("2026-11", [0.5, 0.5])}, date(2026, 11, 3))
    assert only_series.month_to_date == 1.0 and only_series.budget is None and only_series.gpu_minutes_left is None
    assert only_series.minutes_text() == "" and "budget" not in only_series.text()
    no_price = forecast({"month_to_date_eur": 1.0, "daily": [], "budget_eur": 20}, date(2026, 11, 3))
    assert no_price.daily_rate == 0 and no_price.month_end == 1.0 and no_price.gpu_minutes_left is None
    junk = forecast({"month_to_date_eur": "lots", "daily": daily("2026-11", [2.0]), "budget_eur": True,
                     "gpu_hourly_eur": float("nan")}, date(2026, 11, 2))
    assert junk.month_to_date == 2.0 and junk.budget is None and junk.gpu_minutes_left is None
