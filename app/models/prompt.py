"""The PromptBox rule: what may be sent. Pure logic, tested without widgets."""
from __future__ import annotations

from tlfif_common.jobs import MAX_PROMPT_BYTES

EMPTY_PROMPT_HINT = "Type a prompt first (Ctrl+Enter sends)."


def check_prompt(text: str) -> str:
    """The prompt to send (trailing whitespace removed). ValueError with the hint to show when it cannot be sent."""
    prompt = (text or "").rstrip()
    if not prompt.strip():
        raise ValueError(EMPTY_PROMPT_HINT)
    if len(prompt.encode("utf-8")) > MAX_PROMPT_BYTES:
        raise ValueError(f"The prompt is longer than {MAX_PROMPT_BYTES // 1024} KiB; shorten it.")
    return prompt
