"""Find in the open chat, the pure half: where a query occurs in the pane's text, and which hit is next.

    find_all("Ab ab\\nxab", "ab") → [(1, 0), (1, 3), (2, 1)]   (line from 1, column from 0: Tk's "line.col")
    step(0, 3, forward=False) → 2                               (wraps around)

Case-insensitive, literal (nothing in the query is a pattern). Columns count characters as Tk does.
"""
from __future__ import annotations


def find_all(text: str, query: str) -> list[tuple[int, int]]:
    """(line, column) of every occurrence of `query` in `text`, in order, not overlapping."""
    if not query:
        return []
    needle = query.casefold()
    hits: list[tuple[int, int]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        folded = line.casefold()
        if len(folded) != len(line):  # a character whose case folding changes its length: keep columns exact
            folded = "".join(c.casefold() if len(c.casefold()) == 1 else c for c in line)
        at = folded.find(needle)
        while at >= 0:
            hits.append((number, at))
            at = folded.find(needle, at + len(needle))
    return hits


def step(current: int | None, count: int, *, forward: bool = True) -> int | None:
    """The hit after (or before) `current`, wrapping; the first (or last) when none is current yet."""
    if count == 0:
        return None
    if current is None:
        return 0 if forward else count - 1
    return (current + (1 if forward else -1)) % count


def status(current: int | None, count: int) -> str:
    if count == 0:
        return "no match"
    return f"{(current or 0) + 1} of {count}"
