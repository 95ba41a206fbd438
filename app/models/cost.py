"""What the CostLabel shows, from GET /cost. Pure logic, tested without widgets.

    Month €3.21 · GPU session €0.094 (10:00)

- Month: `month_to_date_eur` (the cost reporter's last Cost Explorer figure); "Month —" while it is null (before the
  reporter's first run, or at the start of a month).
- GPU session: `session_eur` and `session_seconds` (the running GPU session × the hourly price: it moves every poll
  although Cost Explorer lags a day); mm:ss, h:mm:ss from an hour on; "€—" when the instance type has no price.
- "—" alone when there is no /cost answer (the route is absent, or nothing has answered yet).
"""
from __future__ import annotations

from typing import Any

NO_COST = "—"
SESSION_FIELDS = ("session_eur", "session_seconds")


def cost_text(data: dict[str, Any] | None) -> str:
    """`Month €x.xx · GPU session €y.yyy (mm:ss)` from a /cost answer; "—" when there is none."""
    if not isinstance(data, dict) or not any(k in data for k in ("month_to_date_eur", *SESSION_FIELDS)):
        return NO_COST
    month = _number(data.get("month_to_date_eur"))
    parts = [f"Month €{month:.2f}" if month is not None else f"Month {NO_COST}"]
    if any(k in data for k in SESSION_FIELDS):
        session = _number(data.get("session_eur"))
        seconds = _number(data.get("session_seconds"))
        money = f"€{session:.3f}" if session is not None else f"€{NO_COST}"
        tail = f" ({format_duration(seconds)})" if seconds is not None else ""
        parts.append(f"GPU session {money}{tail}")
    return " · ".join(parts)


def format_duration(seconds: float) -> str:
    """mm:ss below an hour (02:05), h:mm:ss from an hour on (1:02:05)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
