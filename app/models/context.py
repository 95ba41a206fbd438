"""Which earlier turns a prompt is sent with: the newest that fit the context budget. Pure logic, no widgets.

The TL-FIF API's watcher trims with its engine's own tokenizer and says how many turns it left out, so for the AWS
backend the app keeps only the router's limits (tlfif_common.jobs: MAX_MESSAGES turns, MAX_MESSAGES_BYTES): no
token budget. An OpenAI-compatible server does not trim: there the app estimates, ~4 characters a token (English
text with Llama's tokenizer averages 3.5–4.5) plus a few tokens a message for the chat template's role markers,
against the model's context minus the answer's max tokens. Turns go or stay in pairs (a user turn and its answer),
oldest first out; the system prompt and the prompt always stay.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from tlfif_common.jobs import MAX_MESSAGES, MAX_MESSAGES_BYTES

from app.models.exchange import DONE, STOPPED, Exchange

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4   # "<|user|>\n" … "</s>\n": the template's tokens around each message


def estimate_tokens(text: str) -> int:
    """Tokens one message costs: its text at CHARS_PER_TOKEN characters a token, plus the template's markers."""
    return MESSAGE_OVERHEAD_TOKENS + math.ceil(len(text) / CHARS_PER_TOKEN)


def context_budget(context_tokens: int, max_tokens: int) -> int:
    """Tokens left for system prompt, history and prompt once the answer's max tokens are set aside."""
    return max(context_tokens - max_tokens, 0)


def history_turns(exchanges: Iterable[Exchange]) -> list[tuple[str, str]]:
    """(prompt, answer) of the exchanges that have an answer, oldest first: done ones, and stopped ones as far as
    they got. Failed exchanges (no answer) are not part of the conversation the model sees."""
    return [(e.prompt, e.text) for e in exchanges if e.status in (DONE, STOPPED) and e.text.strip()]


@dataclass(frozen=True)
class Trimmed:
    messages: list[dict]  # the kept turns as chat messages, oldest first (no system prompt, no prompt)
    kept: int             # turns (user + assistant pairs) kept
    dropped: int          # older turns left out
    tokens: int           # estimated tokens of system prompt + kept turns + prompt
    over_budget: bool     # the system prompt and the prompt alone exceed the budget (nothing older was sent)


def trim_history(turns: Sequence[tuple[str, str]], *, prompt: str, budget_tokens: int | None, system: str = "",
                 max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_MESSAGES_BYTES) -> Trimmed:
    """Keep the newest turns whose estimated tokens fit in `budget_tokens` next to the system prompt and the
    prompt (None: no token budget, only the message and byte bounds); stop at the first turn that does not fit
    (no gaps: the model sees a contiguous recent conversation)."""
    fixed = estimate_tokens(prompt) + (estimate_tokens(system) if system.strip() else 0)
    room = budget_tokens - fixed if budget_tokens is not None else math.inf
    kept: list[tuple[str, str]] = []
    used = size = 0
    for user, assistant in reversed(turns):
        cost = estimate_tokens(user) + estimate_tokens(assistant)
        pair_bytes = len(user.encode("utf-8")) + len(assistant.encode("utf-8"))
        if used + cost > room or 2 * (len(kept) + 1) > max_messages or size + pair_bytes > max_bytes:
            break
        kept.append((user, assistant))
        used += cost
        size += pair_bytes
    kept.reverse()
    messages: list[dict] = []
    for user, assistant in kept:
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": assistant})
    return Trimmed(messages=messages, kept=len(kept), dropped=len(turns) - len(kept), tokens=fixed + used,
                   over_budget=room < 0)
