"""What the chats cost, from the per-answer costs the history keeps (each exchange's stats: app.models.answer_stats):
each chat's total and this calendar month's total across the chats, AWS (GPU time, €) and OpenAI (tokens, $ with
its € figure) apart. Pure: the history thread hands in rows, the sidebar shows the texts."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

from app.models.answer_stats import COST_GPU, COST_TOKENS, money


@dataclass(frozen=True)
class Spend:
    aws_eur: float = 0.0
    openai_eur: float = 0.0
    openai_usd: float = 0.0
    unknown: int = 0  # answers whose cost is not known (a model without a price, a stopped OpenAI answer)

    @property
    def eur(self) -> float:
        return self.aws_eur + self.openai_eur

    def plus(self, stats: dict[str, Any]) -> Spend:
        basis, eur, usd = stats.get("cost_basis"), _num(stats.get("cost_eur")), _num(stats.get("cost_usd"))
        if basis == COST_GPU and eur is not None:
            return Spend(self.aws_eur + eur, self.openai_eur, self.openai_usd, self.unknown)
        if basis == COST_TOKENS and usd is not None:
            return Spend(self.aws_eur, self.openai_eur + (eur or 0.0), self.openai_usd + usd, self.unknown)
        if basis in (COST_GPU, COST_TOKENS):
            return Spend(self.aws_eur, self.openai_eur, self.openai_usd, self.unknown + 1)
        return self


@dataclass(frozen=True)
class SpendSummary:
    chats: dict[str, Spend]  # chat id → its total
    month: Spend             # this calendar month, across the chats


def month_start(now: float) -> float:
    """Epoch seconds of the first instant of `now`'s calendar month, local time."""
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1))


def summarise(rows: Iterable[tuple[str, float, dict[str, Any]]], now: float) -> SpendSummary:
    """`rows`: (chat id, the answer's start in epoch seconds, its stats) for every stored answer."""
    since = month_start(now)
    chats: dict[str, Spend] = {}
    month = Spend()
    for chat_id, started_at, stats in rows:
        chats[chat_id] = chats.get(chat_id, Spend()).plus(stats)
        if started_at >= since:
            month = month.plus(stats)
    return SpendSummary(chats, month)


def short_text(spend: Spend | None) -> str:
    """The sidebar row's figure: `€0.012`, or '' for a chat that cost nothing known."""
    if spend is None or (spend.eur == 0 and spend.openai_usd == 0):
        return ""
    return money_eur(spend.eur)


def spend_text(label: str, spend: Spend) -> str:
    """`This month €0.0123 · AWS €0.0100 · OpenAI €0.0023`."""
    text = f"{label} {money_eur(spend.eur)} · AWS {money_eur(spend.aws_eur)} · OpenAI {money_eur(spend.openai_eur)}"
    return text + (f" · {spend.unknown} unknown" if spend.unknown else "")


def spend_tooltip(spend: Spend) -> str:
    """The OpenAI figure in the currency it is billed in, and what the € figures are."""
    lines = [f"OpenAI ${money(spend.openai_usd)} (€{money(spend.openai_eur)}): the API's usage × the price table",
             f"AWS €{money(spend.aws_eur)}: GPU seconds of the answers × the GPU's hourly price",
             "The month's bill (Cost Explorer) is the CostLabel's figure."]
    if spend.unknown:
        lines.append(f"{spend.unknown} answer(s) without a known cost are not counted.")
    return "\n".join(lines)


def money_eur(amount: float) -> str:
    return f"€{money(amount)}" if amount else "€0"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
