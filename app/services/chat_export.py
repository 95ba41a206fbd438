"""Export a chat to Markdown (to read: the branch shown) or JSON (to keep: every branch; `import_json` reads it back
into an equal chat).

JSON (format "tl-fif.conversation", version 1)::

    {"format": "tl-fif.conversation", "version": 1, "exported_at": "2026-11-26T13:37:00+00:00",
     "id": "...", "title": "...", "renamed": false, "created_at": 1795700000.0, "updated_at": ...,
     "params": {"system": "...", "temperature": 0.7, "max_tokens": 512},
     "shown": "<request id of the last exchange of the branch shown>",
     "exchanges": [{"request_id", "prompt", "answer", "backend", "backend_label", "model", "started_at",
                    "finished_at", "latency_ms", "tokens", "status", "error", "idle", "stats",
                    "parent_id"}, ...]}

`parent_id` is the exchange an exchange follows ('' for a first prompt); alternatives (a regenerated answer, an
edited prompt) share a parent. A file without `parent_id` (written before branches) reads as one line.

Times are epoch seconds (exact round trip); Markdown shows them as local date and time.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.models.answer_stats import stats_line
from app.models.chat import Chat, ChatParams, exchange_from_record, exchange_record

FORMAT = "tl-fif.conversation"
VERSION = 1
MARKDOWN, JSON = "markdown", "json"


class NotAnExport(ValueError):
    """The text is not a TL-FIF conversation export this version reads."""


def format_for(path: Path) -> str:
    return JSON if Path(path).suffix.lower() == ".json" else MARKDOWN


# --- JSON ------------------------------------------------------------------------------------------------------------
def to_json_doc(chat: Chat) -> dict[str, Any]:
    return {
        "format": FORMAT, "version": VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "id": chat.id, "title": chat.title, "renamed": chat.renamed,
        "created_at": chat.created_at, "updated_at": chat.updated_at,
        "params": {"system": chat.params.system, "temperature": chat.params.temperature,
                   "max_tokens": chat.params.max_tokens},
        "shown": chat.leaf_id(),
        "exchanges": [exchange_record(e) for e in chat.exchanges],
    }


def export_json(chat: Chat) -> str:
    return json.dumps(to_json_doc(chat), ensure_ascii=False, indent=2) + "\n"


def import_json(text: str) -> Chat:
    """A chat from `export_json`'s text. NotAnExport says what is wrong with anything else."""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise NotAnExport(f"not JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise NotAnExport(f"not a TL-FIF conversation (format must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise NotAnExport(f"version {doc.get('version')!r}; this TL-FIF reads version {VERSION}")
    try:
        params = doc["params"]
        chat = Chat(id=str(doc["id"]), created_at=float(doc["created_at"]), updated_at=float(doc["updated_at"]),
                    title=str(doc["title"]), renamed=bool(doc["renamed"]),
                    params=ChatParams(system=str(params["system"]), temperature=float(params["temperature"]),
                                      max_tokens=int(params["max_tokens"])))
        for x in doc["exchanges"]:
            chat.attach(exchange_from_record(x, chat.id))
        shown = doc.get("shown")
        if shown and chat.find(str(shown)) is not None:
            chat.show(str(shown))
    except (KeyError, TypeError, ValueError) as err:
        raise NotAnExport(f"a field is missing or wrong: {err!r}") from None
    return chat


# --- Markdown --------------------------------------------------------------------------------------------------------
def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "—"


def export_markdown(chat: Chat) -> str:
    """Title, the chat's settings, then each turn of the branch shown under a header with its time and backend."""
    p = chat.params
    branch = chat.branch()
    others = len(chat.exchanges) - len(branch)
    lines = [f"# {chat.title}", "",
             f"- Started: {_when(chat.created_at)}",
             f"- Exchanges: {len(branch)}" + (f" (the branch shown; {others} alternative(s) are in the JSON export)"
                                               if others else ""),
             f"- Temperature: {p.temperature:g} · Max tokens: {p.max_tokens}"]
    if p.system:
        lines += ["- System prompt:", "", *[f"  > {ln}" if ln else "  >" for ln in p.system.splitlines()]]
    lines.append("")
    for n, e in enumerate(branch, start=1):
        backend = e.backend_label or e.backend
        record = exchange_record(e)
        lines += [f"## {n}. You · {_when(e.started_at)} · to {backend}", "", e.prompt, ""]
        who = f"{backend} ({e.model})" if e.model else backend
        header = f"## {n}. {who} · {_when(e.finished_at)}"
        if record["status"] == "done":
            lines += [header, "", e.text, ""]
        elif record["status"] == "cancelled":
            lines += [f"{header} · stopped", "", e.text or "*(stopped before any answer)*", ""]
        else:
            lines += [f"{header} · failed", "", f"*{e.error or 'no answer'}*", ""]
        figures = stats_line(e.stats) if e.stats else ""
        if not figures and e.latency_ms is not None:
            figures = f"total {e.latency_ms / 1000:.2f} s" + (f" · {e.tokens} tokens" if e.tokens else "")
        if figures:
            lines += [f"<sub>{figures}</sub>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- files -----------------------------------------------------------------------------------------------------------
def write_export(chat: Chat, path: Path) -> Path:
    """Write the chat to `path` (.json → JSON, else Markdown), atomically (temp file + rename)."""
    path = Path(path)
    text = export_json(chat) if format_for(path) == JSON else export_markdown(chat)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
