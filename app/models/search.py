"""Search across chats, the pure half: what the user typed → an FTS5 query, and a snippet → highlighted runs.

    fts_query('cold "GPU start"')  → '"cold" "GPU" "start"*'   (every word must occur; the last one as a prefix,
                                                                 so results come while typing)
    snippet_runs("a \x02cold\x03 start") → [("a ", False), ("cold", True), (" start", False)]

Every word is quoted, so nothing the user types is FTS5 syntax (no AND/OR/NEAR, column filters or stray quotes
that would make the query fail).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

HIT_START, HIT_END = "\x02", "\x03"  # around each hit in a snippet (never in chat text the user can type)
SNIPPET_ELLIPSIS = "…"
SNIPPET_TOKENS = 12  # words of context in a snippet
RESULT_LIMIT = 50
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchHit:
    chat_id: str
    chat_title: str
    request_id: str
    started_at: float
    snippet: str  # the matching text with HIT_START / HIT_END around the hits


def fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for what the user typed (None: nothing to search for)."""
    words = _WORD.findall(text or "")
    if not words:
        return None
    quoted = [f'"{word}"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def snippet_runs(snippet: str) -> list[tuple[str, bool]]:
    """The snippet as runs of (text, is_hit), newlines shown as spaces."""
    runs: list[tuple[str, bool]] = []
    hit = False
    for part in re.split(f"([{HIT_START}{HIT_END}])", " ".join((snippet or "").split())):
        if part == HIT_START:
            hit = True
        elif part == HIT_END:
            hit = False
        elif part:
            runs.append((part, hit))
    return runs
