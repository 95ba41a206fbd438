"""What the CostLabel shows, from GET /cost (issue "Cost" deepens it). Pure logic, tested without widgets."""
from __future__ import annotations

from typing import Any

NO_COST = "—"


def cost_text(data: dict[str, Any] | None) -> str:
    """`Month €x.xx · GPU session €y.yyy (mm:ss)` from a /cost answer; "—" when there is none."""
    if not isinstance(data, dict):
        return NO_COST
    parts = []
    month = _number(data.get("month_to_date_eur"))
    if month is not None:
        parts.append(f"Month €{month:.2f}")
    session = _number(data.get("session_eur"))
    if session is not None:
        seconds = _number(data.get("session_seconds"))
        tail = f" ({int(seconds) // 60:02d}:{int(seconds) % 60:02d})" if seconds is not None else ""
        parts.append(f"GPU session €{session:.3f}{tail}")
    return " · ".join(parts) if parts else NO_COST


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
