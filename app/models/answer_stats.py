"""The figures under each answer: time to first token, tokens/s, total latency, cold-start wait, and what it cost.

Pure logic, tested without widgets or servers. `answer_stats(...)` turns what the job controller measured and what
the backend reported into a plain JSON-able dict (the conversation store keeps it as is in its `stats` column);
`stats_line(stats)` is the text the OutputPane shows under the answer, e.g.

    TTFT 0.42 s · 38 tok/s · 118 tokens · total 3.10 s · GPU €0.0004
    TTFT 0.31 s · 55 tok/s · 42 tokens · total 1.02 s · $0.00012 (€0.00010)
    TTFT 0.20 s · 30 tok/s · 64 tokens · total 2.31 s · local CPU · €0.00

Cost: an AWS answer costs the GPU seconds it used (the watcher's `latency_ms`: from the job's start
on the GPU to its last token) × the GPU's hourly price; an OpenAI answer costs its usage tokens × the model's token
price. Prices come from THE price table (`tlfif_common.prices`, prices.json); nothing here knows a price.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tlfif_common.names import ECHO_MODEL

COST_GPU = "gpu_seconds"   # cost_basis: AWS, GPU seconds × hourly price
COST_TOKENS = "tokens"     # cost_basis: OpenAI, usage tokens × token price
COST_LOCAL = "local"       # cost_basis: the local cloud on this machine, free

STATS_KEYS = ("stopped", "ttft_ms", "tokens", "tokens_per_s", "latency_ms", "cold_start_ms", "gpu_ms",
              "prompt_tokens", "cached_tokens", "model", "cost_basis", "cost_usd", "cost_eur", "cost_note")


@dataclass(frozen=True)
class Timeline:
    """What the app saw of one request, in time.monotonic() seconds (None: it did not happen)."""
    sent: float                       # the worker started the request
    ended: float                      # the answer was complete (or stopped, or failed)
    starting: float | None = None     # job.queued said "starting": the GPU was booting for this prompt
    first_token: float | None = None  # the first progress with text reached the app


@dataclass(frozen=True)
class BackendFigures:
    """What the backend reported about the answer (the AWS result object; OpenAI's stream and usage)."""
    tokens: int = 0
    ttft_ms: int | None = None        # from the start of generation to the first token
    generation_ms: int | None = None  # from the start of generation to the last token (AWS: GPU time)
    model: str = ""
    prompt_tokens: int | None = None  # OpenAI usage (None when the API reported none)
    cached_tokens: int = 0


@dataclass(frozen=True)
class Pricing:
    """The prices an answer is costed with (from tlfif_common.prices, resolved by the caller)."""
    gpu_hourly_eur: float | None = None   # AWS: the GPU's on-demand price per hour, in EUR
    usd_to_eur: float | None = None       # EUR per USD
    token_table: Any = None               # a tlfif_common.prices.PriceTable, for OpenAI token prices


def answer_stats(backend: str, timeline: Timeline, figures: BackendFigures, pricing: Pricing, *,
                 stopped: bool = False, local: bool = False) -> dict[str, Any]:
    """The stats dict for one answer. `backend` is the backend key ("aws" costs GPU time, anything else tokens);
    `local`: the AWS backend on the local cloud, which costs nothing."""
    latency_ms = _ms(timeline.ended - timeline.sent)
    ttft_ms = figures.ttft_ms
    if ttft_ms is None and timeline.first_token is not None:
        # No backend figure: the app's own, from the request to the first token, minus any cold start.
        ttft_ms = _ms(timeline.first_token - (timeline.starting if timeline.starting is not None else timeline.sent))
    cold_start_ms = None
    if timeline.starting is not None:
        until = timeline.first_token if timeline.first_token is not None else timeline.ended
        cold_start_ms = _ms(until - timeline.starting)
    tokens = max(int(figures.tokens or 0), 0)
    stats: dict[str, Any] = {
        "stopped": bool(stopped),
        "ttft_ms": ttft_ms,
        "tokens": tokens,
        "tokens_per_s": tokens_per_second(tokens, ttft_ms, figures.generation_ms),
        "latency_ms": latency_ms,
        "cold_start_ms": cold_start_ms,
        "gpu_ms": None,
        "prompt_tokens": figures.prompt_tokens,
        "cached_tokens": int(figures.cached_tokens or 0),
        "model": figures.model or "",
        "cost_basis": None,
        "cost_usd": None,
        "cost_eur": None,
        "cost_note": "",
    }
    if backend == "aws" and local:
        stats["cost_basis"] = COST_LOCAL
        stats["cost_eur"] = 0.0
    elif backend == "aws":
        stats["cost_basis"] = COST_GPU
        stats["gpu_ms"] = figures.generation_ms
        stats.update(gpu_cost(figures.generation_ms, pricing.gpu_hourly_eur))
    else:
        stats["cost_basis"] = COST_TOKENS
        stats.update(token_cost(figures.model, figures.prompt_tokens, tokens, figures.cached_tokens, pricing))
    return stats


def tokens_per_second(tokens: int, ttft_ms: int | None, generation_ms: int | None) -> float | None:
    """Decode speed: tokens over the time from the first token to the last (the whole generation time when that
    is zero or the first token's time is unknown). None when there is nothing to divide."""
    if not tokens or generation_ms is None or generation_ms <= 0:
        return None
    decode_ms = generation_ms - ttft_ms if ttft_ms is not None else 0
    if tokens > 1 and decode_ms > 0:
        return round((tokens - 1) * 1000 / decode_ms, 1)
    return round(tokens * 1000 / generation_ms, 1)


def gpu_cost(gpu_ms: int | None, hourly_eur: float | None) -> dict[str, Any]:
    """GPU seconds × hourly price (EUR)."""
    if gpu_ms is None:
        return {"cost_note": "cost unknown: the GPU time was not reported"}
    if hourly_eur is None:
        return {"cost_note": "cost unknown: no GPU price"}
    return {"cost_eur": max(gpu_ms, 0) / 3_600_000 * hourly_eur}


def token_cost(model: str, prompt_tokens: int | None, completion_tokens: int, cached_tokens: int,
               pricing: Pricing) -> dict[str, Any]:
    """Usage tokens × the model's price (USD, and EUR at the table's or the configured rate)."""
    if prompt_tokens is None:
        return {"cost_note": "cost unknown: no token usage reported"}
    if pricing.token_table is None:
        return {"cost_note": "cost unknown: no price table"}
    usd = pricing.token_table.openai_cost_usd(model or "", prompt_tokens=prompt_tokens,
                                              completion_tokens=completion_tokens, cached_tokens=cached_tokens)
    if usd is None:
        return {"cost_note": f"cost unknown: no price for model {model or '?'}"}
    out: dict[str, Any] = {"cost_usd": usd}
    if pricing.usd_to_eur is not None:
        out["cost_eur"] = usd * pricing.usd_to_eur
    return out


# --- the line under the answer ----------------------------------------------------------------------------------------
def stats_line(stats: dict[str, Any] | None) -> str:
    """`TTFT 0.42 s · 38 tok/s · 118 tokens · total 3.10 s · cold start 92 s · GPU €0.0004`; missing figures are
    left out. Never raises on an odd dict (it may come back from a stored conversation)."""
    if not isinstance(stats, dict):
        return ""
    parts: list[str] = []
    if stats.get("stopped"):
        parts.append("stopped")
    ttft = _num(stats.get("ttft_ms"))
    if ttft is not None:
        parts.append(f"TTFT {ttft / 1000:.2f} s")
    rate = _num(stats.get("tokens_per_s"))
    if rate is not None:
        parts.append(f"{rate:.0f} tok/s" if rate >= 10 else f"{rate:.1f} tok/s")
    tokens = _num(stats.get("tokens"))
    if tokens:
        parts.append(f"{int(tokens)} tokens")
    latency = _num(stats.get("latency_ms"))
    if latency is not None:
        parts.append(f"total {latency / 1000:.2f} s")
    cold = _num(stats.get("cold_start_ms"))
    if cold:
        parts.append(f"cold start {cold / 1000:.0f} s")
    if stats.get("cost_basis") == COST_LOCAL:
        parts.append("echo engine" if stats.get("model") == ECHO_MODEL else "local CPU")
    parts.append(cost_text(stats))
    return " · ".join(p for p in parts if p)


def cost_text(stats: dict[str, Any]) -> str:
    """`GPU €0.0004` (AWS), `$0.00012 (€0.00010)` (OpenAI), or `cost unknown`."""
    usd, eur = _num(stats.get("cost_usd")), _num(stats.get("cost_eur"))
    if stats.get("cost_basis") == COST_LOCAL:
        return "€0.00"
    if stats.get("cost_basis") == COST_GPU and eur is not None:
        return f"GPU €{money(eur)}"
    if usd is not None:
        return f"${money(usd)}" + (f" (€{money(eur)})" if eur is not None else "")
    if eur is not None:
        return f"€{money(eur)}"
    return "cost unknown" if stats.get("cost_basis") else ""


def money(amount: float) -> str:
    """Small amounts with two significant digits and at least 4 decimals: 0.0004, 0.00012, 0.0123, 1.2345."""
    if amount <= 0:
        return "0"
    decimals = max(4, min(8, 1 - math.floor(math.log10(amount))))
    text = f"{amount:.{decimals}f}"
    while decimals > 4 and text.endswith("0"):
        text, decimals = text[:-1], decimals - 1
    return text


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _ms(seconds: float) -> int:
    return max(int(round(seconds * 1000)), 0)
