"""The CostLabel text, the daily-spend chart's geometry, keep-warm's model bits and its setting: pure logic."""
from __future__ import annotations

from datetime import datetime

import pytest

from app.models.cost import NO_COST, cost_text, format_duration
from app.models.cost_chart import (EMPTY_TEXT, MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, chart_layout,
                                   daily_points, money, nice_axis)
from app.models.gpu import READY, GpuModel, format_clock, keep_warm_label
from app.models.settings import Settings, check_keep_warm_max
from app.services import config_file


# --- CostLabel -----------------------------------------------------------------------------------------------------
def test_cost_text_has_the_issue_format():
    answer = {"month_to_date_eur": 3.214, "as_of": "2026-11-26T06:00:03Z", "gpu_state": "running",
              "gpu_hourly_eur": 0.5659, "session_eur": 0.0943, "session_seconds": 600, "daily": []}
    assert cost_text(answer) == "Month €3.21 · GPU session €0.094 (10:00)"


def test_cost_text_when_figures_are_missing():
    assert cost_text(None) == cost_text({}) == cost_text({"gpu_state": "stopped"}) == NO_COST
    stopped = {"month_to_date_eur": None, "session_eur": 0.0, "session_seconds": 0}
    assert cost_text(stopped) == "Month — · GPU session €0.000 (00:00)"
    no_price = {"month_to_date_eur": 1.0, "session_eur": None, "session_seconds": 61}
    assert cost_text(no_price) == "Month €1.00 · GPU session €— (01:01)"
    assert cost_text({"month_to_date_eur": 2}) == "Month €2.00", "an old router without session figures"


def test_format_duration_is_mm_ss_then_h_mm_ss():
    assert format_duration(0) == "00:00" and format_duration(59.9) == "00:59" and format_duration(125) == "02:05"
    assert format_duration(3599) == "59:59" and format_duration(3600) == "1:00:00"
    assert format_duration(8 * 3600 + 61) == "8:01:01" and format_duration(-5) == "00:00"


# --- the daily-spend chart -----------------------------------------------------------------------------------------
def november(*amounts: float) -> dict:
    return {"month_to_date_eur": round(sum(amounts), 2),
            "daily": [{"date": f"2026-11-{i + 1:02d}", "eur": eur} for i, eur in enumerate(amounts)]}


def test_one_bar_per_day_heights_proportional_to_spend():
    layout = chart_layout(november(0.5, 1.0, 0.0, 2.0), width=400, height=200)
    left, top, right, bottom = layout.plot
    assert (left, top, right, bottom) == (MARGIN_LEFT, MARGIN_TOP, 400 - MARGIN_RIGHT, 200 - MARGIN_BOTTOM)
    assert not layout.empty and len(layout.bars) == 4
    assert [b.day for b in layout.bars] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    assert layout.y_max == 2.0
    heights = [b.y1 - b.y0 for b in layout.bars]
    assert heights == pytest.approx([(bottom - top) * f for f in (0.25, 0.5, 0.0, 1.0)])
    assert all(b.y1 == bottom for b in layout.bars), "bars stand on the x axis"
    xs = [b.x0 for b in layout.bars]
    assert xs == sorted(xs) and layout.bars[0].x0 >= left and layout.bars[-1].x1 <= right
    widths = {round(b.x1 - b.x0, 6) for b in layout.bars}
    assert len(widths) == 1 and widths.pop() == pytest.approx((right - left) / 4 * 0.7)


def test_axis_labels_title_and_total():
    layout = chart_layout(november(0.5, 1.0, 0.0, 2.0), width=400, height=200)
    assert [t.text for t in layout.y_ticks] == ["€0.0", "€0.5", "€1.0", "€1.5", "€2.0"]
    assert layout.y_ticks[0].y == layout.plot[3] and layout.y_ticks[-1].y == layout.plot[1]
    assert [label.text for label in layout.x_labels] == ["1", "2", "3", "4"]
    assert layout.title == "Daily spend, November 2026"
    assert layout.total == "Month to date €3.50"


def test_day_labels_are_thinned_for_a_whole_month():
    layout = chart_layout(november(*([0.1] * 30)), width=400, height=200)
    assert len(layout.bars) == 30
    xs = [label.x for label in layout.x_labels]
    assert 5 <= len(xs) < 30 and layout.x_labels[0].text == "1"
    assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= 22, "labels never overlap"


def test_total_falls_back_to_the_sum_and_no_data_is_empty():
    data = november(0.25, 0.5)
    data["month_to_date_eur"] = None
    assert chart_layout(data).total == "Month to date €0.75"
    for empty in (None, {}, {"daily": []}, {"daily": "nope"}, {"month_to_date_eur": 1.0, "daily": []}):
        layout = chart_layout(empty)
        assert layout.empty and layout.bars == () and layout.y_ticks == ()
    assert chart_layout({"month_to_date_eur": 1.0, "daily": []}).total == "Month to date €1.00"
    assert chart_layout(None).total == "Month to date —"
    assert EMPTY_TEXT.startswith("No data yet")


def test_daily_points_keep_the_latest_month_and_skip_garbage():
    raw = {"daily": [{"date": "2026-11-02", "eur": 0.2}, {"date": "2026-10-31", "eur": 9.0},
                     {"date": "2026-11-01", "eur": 0.1}, {"date": "bad", "eur": 1.0}, {"date": "2026-11-03"},
                     {"date": "2026-11-04", "eur": True}, "x", {"date": "2026-11-05", "eur": -0.01},
                     {"date": "2026-11-06", "eur": float("nan")}]}
    assert daily_points(raw) == [("2026-11-01", 0.1), ("2026-11-02", 0.2), ("2026-11-05", 0.0)]


@pytest.mark.parametrize("value, top, step", [
    (0, 1.0, 0.2), (0.004, 0.005, 0.001), (0.09, 0.1, 0.02), (0.12, 0.2, 0.05), (0.2, 0.2, 0.05),
    (0.21, 0.25, 0.05), (0.3, 0.5, 0.1), (0.7, 1.0, 0.2), (3.0, 5.0, 1.0), (12, 20, 5)])
def test_nice_axis(value, top, step):
    assert nice_axis(value) == pytest.approx((top, step))


def test_money_uses_the_decimals_the_step_needs():
    assert money(0.75, 0.25) == "€0.75" and money(2, 1) == "€2" and money(0.003, 0.001) == "€0.003"
    assert money(1.0, 0.5) == "€1.0"


# --- keep-warm ----------------------------------------------------------------------------------------------------
def test_keep_warm_label_names_the_maximum_lifetime():
    assert keep_warm_label(120) == "Keep warm (max 2 h)"
    assert keep_warm_label(45) == "Keep warm (max 45 min)"
    assert keep_warm_label(90) == "Keep warm (max 1 h 30 min)"


def test_kept_warm_replaces_the_idle_countdown_and_off_restarts_it():
    gpu = GpuModel()
    gpu.apply_ping("ready", 0.0)
    gpu.apply_job_end(5, 10.0)
    assert gpu.text(70.0) == "GPU ready · auto-stop in 4:00"
    until = int(datetime(2026, 11, 26, 14, 30).timestamp() * 1000)
    gpu.apply_keep_warm(until, 80.0)
    assert gpu.state == READY and gpu.text(400.0) == "GPU ready · kept warm until 14:30"
    assert gpu.idle_left_s(400.0) == -1.0 and format_clock(until) == "14:30"
    assert not gpu.keep_warm_over(until / 1000 - 1) and gpu.keep_warm_over(until / 1000)
    gpu.apply_keep_warm(None, 1000.0)  # off: the watcher's timer counts from now
    assert gpu.text(1060.0) == "GPU ready · auto-stop in 4:00"
    assert not gpu.keep_warm_over(until / 1000 + 1)


def test_keep_warm_max_minutes_setting(tmp_path):
    assert Settings().keep_warm_max_minutes == 120
    assert check_keep_warm_max("1") == 1 and check_keep_warm_max(480) == 480
    for bad in (0, 481, "2h", "", None, True, 1.5):
        with pytest.raises(ValueError, match="keep_warm_max_minutes"):
            check_keep_warm_max(bad)
    path = tmp_path / "tl-fif.ini"
    config_file.save(Settings(keep_warm_max_minutes=45), path)
    assert "keep_warm_max_minutes = 45" in path.read_text()
    assert config_file.load(path).settings.keep_warm_max_minutes == 45
    path.write_text("[app]\nidle = 5\n")
    assert config_file.load(path).settings.keep_warm_max_minutes == 120, "absent: the default"
    path.write_text("[app]\nkeep_warm_max_minutes = 999\n")
    loaded = config_file.load(path)
    assert loaded.warning and "keep_warm_max_minutes" in loaded.warning and loaded.settings == Settings()
