"""Fit a conversation into the model's context window, counted by the engine's own tokenizer.

    fitted = fit(messages, budget=budget(context_window, job.params), count=engine_counter)
    fitted.messages   system prompt(s) + the newest history turns that fit + the prompt
    fitted.dropped    whole earlier turns left out (a turn: a user message and the replies after it)

The oldest turns go first; the system prompt and the prompt are never dropped (when they alone do not fit, the
engine says so). `count(messages)` is monotonic in the turns kept, so the cut is found by bisection: a few
tokenizer calls for any history length. A conversation whose UTF-8 size already fits costs no call at all: every
token of a byte-level BPE or byte-fallback SentencePiece vocabulary covers at least one byte.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# Room kept for the answer when the job does not say (llama.cpp would otherwise generate up to the window's end).
DEFAULT_ANSWER_TOKENS = 256
# Bound on what a chat template adds: role markers and separators per message, BOS and a generation prompt.
TEMPLATE_TOKENS_PER_MESSAGE = 16
TEMPLATE_TOKENS_FIXED = 64


@dataclass(frozen=True)
class Fitted:
    messages: list[dict]
    dropped: int
    tokens: int | None  # the prompt's tokens as counted (None: it fit by its size, nothing was counted)


def budget(context_window: int, params: dict | None) -> int:
    """Tokens the prompt may take: the window less the answer's `max_tokens`."""
    answer = (params or {}).get("max_tokens") or min(DEFAULT_ANSWER_TOKENS, context_window // 2)
    return max(1, context_window - answer)


def _turns(history: list[dict]) -> list[list[dict]]:
    turns: list[list[dict]] = []
    for message in history:
        if message["role"] == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def upper_bound(messages: list[dict]) -> int:
    """At least as many tokens as the templated conversation can have."""
    return TEMPLATE_TOKENS_FIXED + sum(len(m["content"].encode("utf-8")) + TEMPLATE_TOKENS_PER_MESSAGE
                                       for m in messages)


def fit(messages: list[dict], *, budget: int, count: Callable[[list[dict]], int]) -> Fitted:
    if upper_bound(messages) <= budget:
        return Fitted(messages, 0, None)
    lead = 0
    while lead < len(messages) - 1 and messages[lead]["role"] == "system":
        lead += 1
    system, history, prompt = messages[:lead], messages[lead:-1], messages[-1:]
    turns = _turns(history)

    def keeping_from(start: int) -> list[dict]:
        return system + [m for turn in turns[start:] for m in turn] + prompt

    tokens = count(messages)
    if tokens <= budget or not turns:
        return Fitted(messages, 0, tokens)
    # Smallest number of dropped turns that fits: dropping all fits or nothing does (then drop all, say so).
    lo, hi = 1, len(turns)
    hi_tokens = count(keeping_from(hi))
    while lo < hi:
        mid = (lo + hi) // 2
        mid_tokens = count(keeping_from(mid))
        if mid_tokens <= budget:
            hi, hi_tokens = mid, mid_tokens
        else:
            lo = mid + 1
    return Fitted(keeping_from(hi), hi, hi_tokens)
