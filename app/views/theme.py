"""The colours of the answers pane: one place, so a dark theme is one more palette here.

`LIGHT` is the one in use; every key is read by app/views/output_pane.py (a missing one fails at start-up)."""
from __future__ import annotations

LIGHT = {
    "code_background": "#f2f3f5",
    "link": "#1a56b8",
    "quote": "#4b5563",
    "table_head": "#111111",
    "find_hit": "#fff2a8",
    "find_current": "#ffb454",
    # Pygments token tags (app.models.markdown.TOKEN_TAG_NAMES)
    "md_tok_comment": "#6a737d",
    "md_tok_keyword": "#a626a4",
    "md_tok_builtin": "#0184bc",
    "md_tok_function": "#4078f2",
    "md_tok_class": "#c18401",
    "md_tok_string": "#50a14f",
    "md_tok_number": "#986801",
}


def palette() -> dict[str, str]:
    return LIGHT
